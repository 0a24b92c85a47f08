/**
 * The findings at a glance: positive calls first and marked by colour, an icon and a word; each row a button (it
 * selects the heatmap) with the probability, a bar with the threshold's mark, and the threshold with its rule.
 * Findings the model makes no decision on say so, with the reason when the API or the model card gives one.
 */
import type { ModelCard } from '../../../src/serve/model-card.js';
import { decisionOf, type FindingView, noDecisionReason, orderFindings, percent, thresholdText, thresholdTitle } from '../findings.js';

const LABEL = { positive: 'positive', negative: 'negative', none: 'no decision' } as const;

/** The decision's icon: a filled red disc with a plus, a grey ring with a minus, or a dashed ring. Labelled for screen readers. */
export function DecisionIcon(props: { decision: keyof typeof LABEL }) {
  const { decision } = props;
  return (
    <svg class={`decision-icon ${decision}`} viewBox="0 0 20 20" width="18" height="18" role="img" aria-label={LABEL[decision]}>
      {decision === 'positive' && (
        <>
          <circle cx="10" cy="10" r="9" fill="currentColor" />
          <path d="M10 5v10M5 10h10" stroke="#1a0507" stroke-width="2.6" stroke-linecap="round" />
        </>
      )}
      {decision === 'negative' && (
        <>
          <circle cx="10" cy="10" r="8" fill="none" stroke="currentColor" stroke-width="1.8" />
          <path d="M6 10h8" stroke="currentColor" stroke-width="2" stroke-linecap="round" />
        </>
      )}
      {decision === 'none' && <circle cx="10" cy="10" r="8" fill="none" stroke="currentColor" stroke-width="1.8" stroke-dasharray="3 2.5" />}
    </svg>
  );
}

export function FindingsList(props: {
  findings: FindingView[];
  card: ModelCard | null;
  selected: string | null;
  onSelect: (name: string) => void;
  hasMaps: boolean;
  /** `warning`: the input checks raised warnings; `untrusted`: a rejected image's findings shown on request. */
  caution: 'warning' | 'untrusted' | null;
}) {
  const sorted = orderFindings(props.findings);
  const positives = sorted.filter((f) => f.decision === 'positive');
  const decided = sorted.filter((f) => f.decision !== null).length;
  // When no probability is calibrated, say it once rather than on every row.
  const noneCalibrated = sorted.length > 0 && sorted.every((f) => f.calibrated === false);
  return (
    <section class={`findings ${props.caution ?? ''}`} aria-labelledby="findings-title" data-caution={props.caution ?? ''}>
      <div class="findings-head">
        <h2 id="findings-title">Findings</h2>
        <p class="findings-summary" data-testid="findings-summary">
          {decided === 0 ? (
            'No decisions: this model has no validated thresholds.'
          ) : (
            <>
              <strong class={positives.length ? 'count-positive' : ''}>{positives.length} positive</strong> of {decided} decided
              {decided < sorted.length ? `, ${sorted.length - decided} no decision` : ''}
            </>
          )}
          {noneCalibrated && <span class="uncalibrated"> Probabilities uncalibrated (plain sigmoid).</span>}
        </p>
      </div>
      {props.caution === 'untrusted' && (
        <p class="findings-caution untrusted" role="note">
          Rejected image, findings shown on request: not to be trusted.
        </p>
      )}
      {props.caution === 'warning' && (
        <p class="findings-caution warning" role="note">
          Input-check warnings above: read with care.
        </p>
      )}
      <ol>
        {sorted.map((f) => {
          const decision = decisionOf(f);
          const selected = props.selected === f.name;
          return (
            <li key={f.name} data-finding={f.name} data-probability={String(f.probability)} data-decision={decision}>
              <button type="button" aria-pressed={selected} onClick={() => props.onSelect(f.name)} class={`finding ${decision}${selected ? ' selected' : ''}`}>
                <DecisionIcon decision={decision} />
                <span class="finding-name">
                  {f.name.replace(/_/g, ' ')}
                  {f.calibrated === false && !noneCalibrated && <small class="uncalibrated" title="not recalibrated: the plain sigmoid of the logit"> uncalibrated</small>}
                </span>
                <span class={`finding-call ${decision}`}>{LABEL[decision]}</span>
                <span class="finding-value" title={f.calibrated === true ? 'calibrated probability' : f.calibrated === false ? 'not recalibrated: the plain sigmoid' : undefined}>
                  {percent(f.probability)}
                </span>
                <span class="bar" aria-hidden="true">
                  <span class="bar-fill" style={{ width: `${f.probability * 100}%` }} />
                  {f.threshold !== null && <span class="bar-threshold" style={{ left: `${f.threshold * 100}%` }} />}
                </span>
                <span class="finding-decision" title={thresholdTitle(f)}>{f.decision === null ? noDecisionReason(f, props.card) : `${thresholdText(f)}${f.decisionNote ? ` · ${f.decisionNote}` : ''}`}</span>
              </button>
            </li>
          );
        })}
      </ol>
      <p class="hint">
        Probabilities are independent (they do not add up to 100%).{decided > 0 ? ' The white mark on each bar is its threshold.' : ''}
        {props.hasMaps ? ' Select a finding for its heatmap.' : ''}
      </p>
    </section>
  );
}
