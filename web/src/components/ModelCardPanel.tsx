/** Folded away by default (a <details>; its summary names the model, thresholds and calibration). What model answers: architecture, where its weights came from (so nobody mistakes an untrained head), thresholds, calibration, input checks. */
import type { ModelCard } from '../../../src/serve/model-card.js';
import { ruleText } from '../findings.js';

function eceText(card: ModelCard): string {
  const held = card.calibration?.ece?.at(-1);
  return held ? ` (mean ECE ${held.before.toFixed(3)} before, ${held.after.toFixed(3)} after, on the ${held.data})` : '';
}

export function ModelCardPanel(props: { card: ModelCard }) {
  const { card } = props;
  const p = card.preprocessing;
  return (
    <details class="model-card" data-testid="model-card">
      <summary>
        <h2 id="model-title">Model</h2>
        <span class="muted" title={`${card.architecture} · ${card.thresholds ? `thresholds: ${ruleText(card.thresholds.rule)}` : 'no thresholds'} · ${card.calibration ? `calibrated (${card.calibration.method})` : 'uncalibrated'}`}>
          {card.architecture}
        </span>
      </summary>
      <dl>
        <dt>Architecture</dt>
        <dd>{card.architecture}</dd>
        <dt>Weights</dt>
        <dd class="weights" data-testid="weights">
          {card.weights}
          <small>Where the weights came from: read this before trusting any probability.</small>
        </dd>
        <dt>File</dt>
        <dd>
          {card.file} <span class="muted">sha256 {card.sha256.slice(0, 12)}…</span>
        </dd>
        <dt>Input</dt>
        <dd>
          {p.channels} × {p.height} × {p.width}, {p.resize}
        </dd>
        <dt>Findings</dt>
        <dd>{card.labels.length}</dd>
        <dt>Thresholds</dt>
        <dd>{card.thresholds ? `${ruleText(card.thresholds.rule)}, chosen on the ${card.thresholds.source}` : 'none validated: probabilities only'}</dd>
        <dt>Calibration</dt>
        <dd>{card.calibration ? `${card.calibration.method}, fitted on the ${card.calibration.source}${eceText(card)}` : 'none: probabilities are the plain sigmoid'}</dd>
        <dt>Input checks</dt>
        <dd>{card.inputChecks ? `${[...new Set(card.inputChecks.checks.map((c) => c.code))].join(', ')}; thresholds set on the ${card.inputChecks.source}` : 'image size, blankness and DICOM tags only (no out-of-distribution detector)'}</dd>
      </dl>
    </details>
  );
}
