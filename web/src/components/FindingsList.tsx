/** Findings sorted by probability, each a button with a bar and its threshold (or a plain "no validated threshold"). */
import type { FindingResult } from '../../../src/serve/analysis.js';

export function FindingsList(props: { findings: FindingResult[]; selected: string | null; onSelect: (name: string) => void; hasMaps: boolean }) {
  const sorted = [...props.findings].sort((a, b) => b.probability - a.probability);
  const anyThreshold = sorted.some((f) => f.threshold !== null);
  return (
    <section class="findings" aria-labelledby="findings-title">
      <h2 id="findings-title">Findings</h2>
      <p class="hint">
        Probability per finding (independent; they do not add up to 100%).{' '}
        {anyThreshold ? 'The mark on each bar is its validated threshold.' : 'This model has no validated thresholds, so no finding is called positive or negative.'}
        {props.hasMaps ? ' Select a finding to show its heatmap.' : ''}
      </p>
      <ol>
        {sorted.map((f) => (
          <li key={f.name} data-finding={f.name} data-probability={String(f.probability)}>
            <button type="button" aria-pressed={props.selected === f.name} onClick={() => props.onSelect(f.name)} class={props.selected === f.name ? 'finding selected' : 'finding'}>
              <span class="finding-name">{f.name.replace(/_/g, ' ')}</span>
              <span class="finding-value">{(f.probability * 100).toFixed(1)}%</span>
              <span class="bar" aria-hidden="true">
                <span class="bar-fill" style={{ width: `${f.probability * 100}%` }} />
                {f.threshold !== null && <span class="bar-threshold" style={{ left: `${f.threshold * 100}%` }} />}
              </span>
              <span class="finding-decision">
                {f.threshold === null ? 'no validated threshold' : `threshold ${(f.threshold * 100).toFixed(1)}% (${f.thresholdRule}): ${f.decision}`}
              </span>
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}
