/** What the input checks said: each raised flag with its reason, and for a rejected image a way to see findings anyway. */
import type { InputFlag, InputVerdict } from '../../../src/serve/analysis.js';

export function InputChecks(props: { flags: InputFlag[]; verdict: InputVerdict; hasDetector: boolean; onShowAnyway: () => void; disabled: boolean }) {
  const { flags, verdict } = props;
  return (
    <section class={`input-checks ${verdict}`} aria-labelledby="checks-title" data-verdict={verdict}>
      <h2 id="checks-title">Input checks</h2>
      {flags.length === 0 ? (
        <p class="muted">{props.hasDetector ? 'Passed: the image looks like the frontal chest X-rays this model was trained on.' : 'No flags raised; this model has no out-of-distribution detector, so only the image size, blankness and DICOM tags were checked.'}</p>
      ) : (
        <ul>
          {flags.map((f) => (
            <li key={`${f.code}-${f.rule}`} data-flag={f.code} class={`flag ${f.severity}`}>
              <strong>{f.severity === 'reject' ? 'Rejected' : f.severity}</strong>: {f.message}
              <small>{f.rule}</small>
            </li>
          ))}
        </ul>
      )}
      {verdict === 'rejected' && (
        <p>
          No findings are given for this image.{' '}
          <button type="button" class="show-anyway" disabled={props.disabled} onClick={props.onShowAnyway}>
            Show findings anyway (not to be trusted)
          </button>
        </p>
      )}
      {verdict === 'rejected-shown' && <p class="flag reject">Findings shown on request for a rejected image: they are not to be trusted.</p>}
    </section>
  );
}
