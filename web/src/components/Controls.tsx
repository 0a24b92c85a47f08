/** Heatmap method, opacity and colour map; window/level; layout. All plain form controls, so keyboard-usable. */
import { COLORMAP_NAMES, type ColormapName } from '../../../src/imaging/browser.js';
import type { Window } from '../render.js';

export function HeatmapControls(props: {
  methods: string[];
  available: string[];
  method: string;
  onMethod: (m: string) => void;
  opacity: number;
  onOpacity: (o: number) => void;
  colormap: ColormapName;
  onColormap: (c: ColormapName) => void;
}) {
  return (
    <fieldset class="controls">
      <legend>Heatmap</legend>
      <label>
        Method{' '}
        <select value={props.method} onChange={(e) => props.onMethod((e.currentTarget as HTMLSelectElement).value)}>
          {props.methods.map((m) => (
            <option key={m} value={m} disabled={!props.available.includes(m)}>
              {m}
              {props.available.includes(m) ? '' : ' (server only)'}
            </option>
          ))}
        </select>
      </label>
      <label>
        Opacity{' '}
        <input type="range" min={0} max={1} step={0.05} value={props.opacity} aria-valuetext={`${Math.round(props.opacity * 100)}%`} onInput={(e) => props.onOpacity(Number((e.currentTarget as HTMLInputElement).value))} />
        <output>{Math.round(props.opacity * 100)}%</output>
      </label>
      <label>
        Colours{' '}
        <select value={props.colormap} onChange={(e) => props.onColormap((e.currentTarget as HTMLSelectElement).value as ColormapName)}>
          {COLORMAP_NAMES.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </label>
    </fieldset>
  );
}

export function DisplayControls(props: { windowing: Window; maxValue: number; onWindow: (w: Window) => void; onReset: () => void; sideBySide: boolean; onSideBySide: (v: boolean) => void }) {
  const { windowing: window, maxValue } = props;
  const step = Math.max(1, Math.round(maxValue / 255));
  return (
    <fieldset class="controls">
      <legend>Display</legend>
      <label>
        Level{' '}
        <input type="range" min={0} max={maxValue} step={step} value={window.center} onInput={(e) => props.onWindow({ ...window, center: Number((e.currentTarget as HTMLInputElement).value) })} />
      </label>
      <label>
        Window{' '}
        <input type="range" min={1} max={maxValue * 2} step={step} value={window.width} onInput={(e) => props.onWindow({ ...window, width: Number((e.currentTarget as HTMLInputElement).value) })} />
      </label>
      <button type="button" onClick={props.onReset}>
        Reset window
      </button>
      <label>
        <input type="checkbox" checked={props.sideBySide} onChange={(e) => props.onSideBySide((e.currentTarget as HTMLInputElement).checked)} /> Side by side
      </label>
    </fieldset>
  );
}
