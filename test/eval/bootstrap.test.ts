/**
 * The bootstrap: every resampled AUROC must equal the AUROC of the resample written out in full (the weighted
 * one-pass count replaces a sort per resample, so this is what proves it), with ties, subsets and clusters; and
 * its intervals must behave like intervals (seeded, stratification, agreement with DeLong on large samples).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapAuroc, bootstrapAurocs, percentileInterval } from '../../src/eval/bootstrap.js';
import { delong } from '../../src/eval/delong.js';
import { SeededRandom } from '../../src/eval/random.js';
import { auroc } from '../../src/eval/roc.js';

/** Scores with ties (one decimal) that rank positives higher on average. */
function syntheticColumn(n: number, prevalence: number, seed: number, decimals = 1) {
  const random = new SeededRandom(seed);
  const labels = new Uint8Array(n);
  const scores = new Float64Array(n);
  const f = 10 ** decimals;
  for (let i = 0; i < n; i++) {
    labels[i] = random.uint32() / 2 ** 32 < prevalence ? 1 : 0;
    scores[i] = Math.round((random.uint32() / 2 ** 32 + 0.4 * labels[i]) * f) / f;
  }
  return { scores, labels };
}

describe('bootstrapAurocs', () => {
  it('each resampled AUROC equals the AUROC of that resample written out, for a full column and a subset column', () => {
    const n = 120;
    const full = syntheticColumn(n, 0.3, 1);
    // The second class leaves every third sample out (as a mask would).
    const kept = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0);
    const partial = syntheticColumn(n, 0.4, 2);
    const subset = { scores: kept.map((i) => partial.scores[i]), labels: kept.map((i) => partial.labels[i]), samples: kept };
    const result = bootstrapAurocs([full, subset], n, { resamples: 40, seed: 7 });

    const random = new SeededRandom(7);
    for (let r = 0; r < 40; r++) {
      const draws = Array.from({ length: n }, () => random.below(n));
      const fullScores = draws.map((i) => full.scores[i]);
      const fullLabels = draws.map((i) => full.labels[i]);
      const entryOf = new Map(kept.map((sample, entry) => [sample, entry]));
      const subsetDraws = draws.filter((i) => entryOf.has(i)).map((i) => entryOf.get(i)!);
      const expectedFull = auroc(fullScores, fullLabels);
      const expectedSubset = auroc(subsetDraws.map((e) => subset.scores[e]), subsetDraws.map((e) => subset.labels[e]));
      assert.ok(Math.abs(result.values[0][r] - expectedFull) < 1e-12, `resample ${r}: ${result.values[0][r]} vs ${expectedFull}`);
      assert.ok(Math.abs(result.values[1][r] - expectedSubset) < 1e-12, `resample ${r} (subset): ${result.values[1][r]} vs ${expectedSubset}`);
    }
  });

  it('clusters: whole clusters are drawn, and each resample matches the written-out resample', () => {
    const n = 90;
    const column = syntheticColumn(n, 0.35, 3);
    const clusters = Array.from({ length: n }, (_, i) => 1000 + Math.floor(i / 3)); // 30 patients with 3 images each
    const result = bootstrapAurocs([column], n, { resamples: 25, seed: 11, clusters });
    const random = new SeededRandom(11);
    for (let r = 0; r < 25; r++) {
      const drawn = Array.from({ length: 30 }, () => random.below(30));
      const samples = drawn.flatMap((c) => [3 * c, 3 * c + 1, 3 * c + 2]);
      const expected = auroc(samples.map((i) => column.scores[i]), samples.map((i) => column.labels[i]));
      assert.ok(Math.abs(result.values[0][r] - expected) < 1e-12, `resample ${r}`);
    }
  });

  it('the mean AUROC interval is the percentile interval of the per-resample means', () => {
    const n = 200;
    const columns = [syntheticColumn(n, 0.2, 4), syntheticColumn(n, 0.5, 5), syntheticColumn(n, 0.3, 6)];
    const result = bootstrapAurocs(columns, n, { resamples: 300, seed: 1 });
    const means = result.values[0].map((_, r) => (result.values[0][r] + result.values[1][r] + result.values[2][r]) / 3);
    assert.deepEqual(result.mean, percentileInterval(means, 0.95));
    assert.ok(result.mean!.lower < result.mean!.upper);
  });

  it('the same seed gives the same intervals; another seed other ones', () => {
    const column = syntheticColumn(300, 0.3, 8);
    const a = bootstrapAuroc(column.scores, column.labels, { resamples: 200, seed: 5 });
    const b = bootstrapAuroc(column.scores, column.labels, { resamples: 200, seed: 5 });
    const c = bootstrapAuroc(column.scores, column.labels, { resamples: 200, seed: 6 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('a rare class: resamples without positives are skipped and counted; stratified resampling never lacks them', () => {
    const n = 500;
    const column = syntheticColumn(n, 0, 9);
    column.labels[10] = 1;
    column.labels[20] = 1;
    const plain = bootstrapAuroc(column.scores, column.labels, { resamples: 400, seed: 2 })!;
    // P(no positive drawn) = (1 - 2/500)^500 ~ e^-2 ~ 13.5%.
    assert.ok(plain.skipped > 30 && plain.skipped < 80, `skipped ${plain.skipped}`);
    assert.equal(plain.used + plain.skipped, 400);
    const stratified = bootstrapAuroc(column.scores, column.labels, { resamples: 400, seed: 2, stratified: true })!;
    assert.equal(stratified.skipped, 0);
  });

  it('on a large sample the bootstrap and DeLong agree: similar standard errors and intervals', () => {
    const column = syntheticColumn(3000, 0.2, 12, 3);
    const boot = bootstrapAuroc(column.scores, column.labels, { resamples: 1000, seed: 3 })!;
    const stratified = bootstrapAuroc(column.scores, column.labels, { resamples: 1000, seed: 3, stratified: true })!;
    const d = delong(column.scores, column.labels);
    for (const b of [boot, stratified]) {
      const ratio = b.standardError / d.standardError;
      assert.ok(ratio > 0.85 && ratio < 1.15, `bootstrap SE ${b.standardError} vs DeLong ${d.standardError}`);
      assert.ok(b.lower < d.auc && d.auc < b.upper);
      assert.ok(Math.abs(b.lower - (d.auc - 1.96 * d.standardError)) < 0.3 * 1.96 * d.standardError);
      assert.ok(Math.abs(b.upper - (d.auc + 1.96 * d.standardError)) < 0.3 * 1.96 * d.standardError);
    }
  });

  it('a class absent from the data gets no interval (null), the others still do', () => {
    const a = syntheticColumn(50, 0.3, 1);
    const none = { scores: a.scores, labels: new Uint8Array(50) };
    const result = bootstrapAurocs([a, none], 50, { resamples: 50 });
    assert.ok(result.classes[0] !== null);
    assert.equal(result.classes[1], null);
    assert.ok(result.values[1].every(Number.isNaN));
    assert.ok(result.mean !== null, 'the mean is over the defined classes');
  });

  it('bad options and inputs are errors that say what is wrong', () => {
    const c = syntheticColumn(20, 0.5, 1);
    assert.throws(() => bootstrapAuroc(c.scores, c.labels, { resamples: 0 }), /resamples must be a positive whole number, got 0/);
    assert.throws(() => bootstrapAuroc(c.scores, c.labels, { level: 95 }), /confidence level must be between 0 and 1, got 95/);
    assert.throws(() => bootstrapAurocs([c], 20, { stratified: true, clusters: new Array(20).fill(0) }), /stratified bootstrap cannot also resample clusters/);
    assert.throws(() => bootstrapAurocs([c], 21), /column 0: 20 scores for 21 samples/);
    assert.throws(() => bootstrapAurocs([c], 20, { clusters: [1, 2] }), /clusters: 2 given for 20 samples/);
    assert.throws(() => bootstrapAurocs([{ ...c, samples: Array.from({ length: 20 }, (_, i) => i + 5) }], 20), /column 0: sample index 2[0-9] outside 0\.\.19/);
    assert.throws(() => bootstrapAuroc([0.1, NaN], [0, 1]), /column 0: score 1 is NaN/);
  });
});
