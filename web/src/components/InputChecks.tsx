/**
 * What the input checks said, as a banner above the findings: a rejected image says so plainly with every reason
 * (and a way to see the findings anyway, marked); warnings are shown while the findings are still listed; a clean
 * pass is one quiet line.
 */
import type { InputFlag, InputVerdict } from '../../../src/serve/analysis.js';

function BannerIcon(props: { kind: 'reject' | 'warning' | 'ok' }) {
  const label = props.kind === 'reject' ? 'rejected' : props.kind === 'warning' ? 'warning' : 'passed';
  return (
    <svg class={`banner-icon ${props.kind}`} viewBox="0 0 24 24" width="22" height="22" role="img" aria-label={label}>
      {props.kind === 'ok' ? (
        <path d="M4 12.5l5 5L20 6.5" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round" stroke-linejoin="round" />
      ) : (
        <>
          <path d="M12 2.5L23 21.5H1z" fill="currentColor" />
          <path d="M12 9v6" stroke="#15171a" stroke-width="2.6" stroke-linecap="round" />
          <circle cx="12" cy="18.2" r="1.5" fill="#15171a" />
        </>
      )}
    </svg>
  );
}

export function InputChecks(props: { flags: InputFlag[]; verdict: InputVerdict; hasDetector: boolean; onShowAnyway: () => void; disabled: boolean }) {
  const { flags, verdict } = props;
  const rejected = verdict !== 'accepted';
  const kind = rejected ? 'reject' : flags.length > 0 ? 'warning' : 'ok';
  const title =
    verdict === 'rejected'
      ? 'Rejected by the input checks: no findings for this image.'
      : verdict === 'rejected-shown'
        ? 'Rejected by the input checks: the findings below were shown on request and are not to be trusted.'
        : flags.length > 0
          ? 'Check this image: the input checks raised warnings. Findings are listed, marked.'
          : props.hasDetector
            ? 'Input checks passed: the image looks like the frontal chest X-rays this model was trained on.'
            : 'Input checks: no flags, but this model has no out-of-distribution detector (only size, blankness and DICOM tags were checked).';
  return (
    <section class={`input-checks banner ${kind} ${verdict}`} aria-labelledby="checks-title" data-verdict={verdict} role={kind === 'ok' ? undefined : 'alert'}>
      <BannerIcon kind={kind} />
      <div class="banner-body">
        <h2 id="checks-title">{title}</h2>
        {flags.length > 0 && (
          <ul>
            {flags.map((f) => (
              <li key={`${f.code}-${f.rule}`} data-flag={f.code} class={`flag ${f.severity}`}>
                <strong>{f.severity === 'reject' ? 'Rejected' : f.severity === 'warning' ? 'Warning' : 'Note'}:</strong> {f.message}
                <small>{f.rule}</small>
              </li>
            ))}
          </ul>
        )}
      </div>
      {verdict === 'rejected' && (
        <button type="button" class="show-anyway" disabled={props.disabled} onClick={props.onShowAnyway}>
          Show findings anyway (not to be trusted)
        </button>
      )}
    </section>
  );
}
