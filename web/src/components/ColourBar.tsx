/**
 * What the overlay's colours mean: the colour map from the cut-off to the map's strongest value, the part below
 * the cut-off shown as the bare film, and in words that the scale is this map's own range (not a probability,
 * not comparable across findings or methods).
 */
import { useEffect, useRef } from 'preact/hooks';
import { type ColormapName, DEFAULT_CUTOFF } from '../../../src/imaging/browser.js';
import { colourBarCanvas } from '../render.js';

const WIDTH = 256;
const HEIGHT = 12;

export function ColourBar(props: { colormap: ColormapName; finding: string; method: string }) {
  const target = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = target.current;
    if (!canvas) return;
    const context = canvas.getContext('2d')!;
    context.clearRect(0, 0, WIDTH, HEIGHT);
    context.drawImage(colourBarCanvas(props.colormap, WIDTH, HEIGHT), 0, 0);
  }, [props.colormap]);
  const cut = Math.round(DEFAULT_CUTOFF * 100);
  return (
    <figure class="colour-bar" aria-label="Heatmap colour scale" data-cutoff={DEFAULT_CUTOFF}>
      <canvas ref={target} width={WIDTH} height={HEIGHT} role="img" aria-label={`${props.colormap} colour scale, transparent below ${cut}%`} />
      <div class="colour-bar-ticks" aria-hidden="true">
        <span>weakest</span>
        <span style={{ left: `${cut}%` }}>{cut}%</span>
        <span>strongest</span>
      </div>
      <figcaption>
        How strongly each region drove <b>{props.finding.replace(/_/g, ' ')}</b> ({props.method}), on this map's own range from its weakest to its
        strongest value. Below {cut}% the film is left as it is. Not a probability; not comparable between findings or methods.
      </figcaption>
    </figure>
  );
}
