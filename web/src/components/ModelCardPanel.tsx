/** What model answers: architecture, where its weights came from (so nobody mistakes an untrained head), thresholds. */
import type { ModelCard } from '../../../src/serve/model-card.js';

export function ModelCardPanel(props: { card: ModelCard }) {
  const { card } = props;
  const p = card.preprocessing;
  return (
    <section class="model-card" aria-labelledby="model-title">
      <h2 id="model-title">Model</h2>
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
        <dd>{card.thresholds ? `${card.thresholds.rule}, chosen on the ${card.thresholds.source}` : 'none validated: probabilities only'}</dd>
      </dl>
    </section>
  );
}
