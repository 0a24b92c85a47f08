/**
 * The image viewer: one canvas (overlay) or two side by side (original | overlay) sharing zoom, pan and
 * window/level. Mouse: wheel zooms, drag pans, shift+drag changes window/level. Keyboard (when focused):
 * + and - zoom, arrows pan, 0 fits.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { DecodedImage } from '../../../src/imaging/browser.js';
import { type Window, windowedCanvas } from '../render.js';

interface View {
  zoom: number;
  x: number;
  y: number;
}

const FIT: View = { zoom: 1, x: 0, y: 0 };

export function Viewer(props: {
  image: DecodedImage;
  windowing: Window;
  onWindow: (w: Window) => void;
  layer: HTMLCanvasElement | null;
  opacity: number;
  sideBySide: boolean;
  layerLabel: string;
  /** More controls for the toolbar's row, after zoom (window/level, layout). */
  toolbar?: ComponentChildren;
}) {
  const { image, windowing: window, layer, opacity, sideBySide } = props;
  const [view, setView] = useState<View>(FIT);
  const gray = useMemo(() => windowedCanvas(image, window), [image, window.center, window.width]);
  useEffect(() => setView(FIT), [image]);
  const drag = useRef<{ x: number; y: number; view: View; window: Window; shift: boolean } | null>(null);

  const zoomBy = (factor: number) => setView((v) => ({ ...v, zoom: Math.min(32, Math.max(0.25, v.zoom * factor)) }));
  const panBy = (dx: number, dy: number) => setView((v) => ({ ...v, x: v.x + dx, y: v.y + dy }));

  const onKeyDown = (event: KeyboardEvent) => {
    const step = 40;
    const actions: Record<string, () => void> = {
      '+': () => zoomBy(1.25),
      '=': () => zoomBy(1.25),
      '-': () => zoomBy(0.8),
      '0': () => setView(FIT),
      ArrowLeft: () => panBy(step, 0),
      ArrowRight: () => panBy(-step, 0),
      ArrowUp: () => panBy(0, step),
      ArrowDown: () => panBy(0, -step),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  };
  const onPointerDown = (event: PointerEvent) => {
    (event.currentTarget as HTMLElement).setPointerCapture(event.pointerId);
    drag.current = { x: event.clientX, y: event.clientY, view, window, shift: event.shiftKey };
  };
  const onPointerMove = (event: PointerEvent) => {
    const start = drag.current;
    if (!start) return;
    const dx = event.clientX - start.x;
    const dy = event.clientY - start.y;
    if (start.shift) {
      const unit = image.maxValue / 500;
      props.onWindow({ center: start.window.center - dy * unit, width: Math.max(1, start.window.width + dx * unit) });
    } else setView({ ...start.view, x: start.view.x + dx, y: start.view.y + dy });
  };
  const onPointerUp = () => {
    drag.current = null;
  };
  const onWheel = (event: WheelEvent) => {
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? 1.1 : 1 / 1.1);
  };

  const panes = sideBySide ? [{ label: 'Original', layer: null }, { label: props.layerLabel, layer }] : [{ label: props.layerLabel, layer }];
  return (
    <section class="viewer" aria-label="Image viewer">
      <div class="viewer-toolbar">
        <button type="button" onClick={() => zoomBy(1.25)} aria-label="Zoom in">+</button>
        <button type="button" onClick={() => zoomBy(0.8)} aria-label="Zoom out">−</button>
        <button type="button" onClick={() => setView(FIT)}>Fit</button>
        <span class="zoom-level" aria-live="polite">{Math.round(view.zoom * 100)}%</span>
        {props.toolbar}
      </div>
      <div
        class={`viewer-panes ${sideBySide ? 'two' : 'one'}`}
        tabIndex={0}
        role="img"
        aria-label={`${image.source}, ${image.width} by ${image.height}. Keys: plus and minus zoom, arrows pan, 0 fits. Shift-drag changes window and level.`}
        onKeyDown={onKeyDown}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onWheel={onWheel}
      >
        {panes.map((pane) => (
          <Pane key={pane.label} label={pane.label} gray={gray} layer={pane.layer} opacity={opacity} view={view} />
        ))}
      </div>
    </section>
  );
}

function Pane(props: { label: string; gray: HTMLCanvasElement; layer: HTMLCanvasElement | null; opacity: number; view: View }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  // Drawn before the browser paints, so the canvas never shows a frame older than the controls.
  useLayoutEffect(() => {
    const element = canvas.current!;
    const { clientWidth, clientHeight } = element;
    const ratio = globalThis.devicePixelRatio || 1;
    element.width = Math.max(1, Math.round(clientWidth * ratio));
    element.height = Math.max(1, Math.round(clientHeight * ratio));
    const context = element.getContext('2d')!;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = '#000';
    context.fillRect(0, 0, element.width, element.height);
    const { gray, layer, opacity, view } = props;
    const fit = Math.min(element.width / gray.width, element.height / gray.height);
    const scale = fit * view.zoom;
    context.setTransform(scale, 0, 0, scale, (element.width - gray.width * scale) / 2 + view.x * ratio, (element.height - gray.height * scale) / 2 + view.y * ratio);
    context.imageSmoothingEnabled = scale < 1;
    context.drawImage(gray, 0, 0);
    if (layer) {
      context.globalAlpha = opacity;
      context.imageSmoothingEnabled = true;
      context.drawImage(layer, 0, 0);
      context.globalAlpha = 1;
    }
  });
  return (
    <figure class="pane">
      <div class="pane-canvas">
        <canvas ref={canvas} data-pane={props.label} />
      </div>
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}
