/** Server or private mode, saying plainly where the image goes. */
import type { Mode } from '../engines.js';

export function ModeSwitch(props: { mode: Mode; onChange: (mode: Mode) => void; disabled: boolean; privateStatus: string }) {
  const option = (mode: Mode, title: string, detail: string) => (
    <label class={`mode-option ${props.mode === mode ? 'active' : ''}`}>
      <input type="radio" name="mode" value={mode} checked={props.mode === mode} disabled={props.disabled} onChange={() => props.onChange(mode)} />
      <span>
        <strong>{title}</strong> <small>{detail}</small>
      </span>
    </label>
  );
  return (
    <fieldset class="mode" aria-describedby="mode-status">
      <legend>Where the analysis runs</legend>
      <div class="mode-options">
        {option('server', 'Server', `uploaded to the cxr server at ${location.host}`)}
        {option('private', 'Private (in this browser)', 'the image never leaves this browser (onnxruntime-web)')}
      </div>
      <p id="mode-status" class="muted">{props.privateStatus}</p>
    </fieldset>
  );
}
