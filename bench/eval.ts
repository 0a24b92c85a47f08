/**
 * Evaluation benchmark at NIH's official test-set size: 25,596 images x 14 findings. Labels are real NIH label
 * vectors (rows of NIH's 5,606-image sample_labels.csv drawn with replacement, so findings co-occur as they do);
 * scores are sigmoid(1.3 label - 2.2 + noise) rounded to 6 decimals as `cxr predict --csv` writes them (so there
 * are ties). Beside us in the same run, one persistent Python process: scikit-learn's roc_auc_score in a Python
 * loop over resamples and classes, a NumPy-vectorised bootstrap doing the same counting as ours, the Sun & Xu
 * DeLong in NumPy/SciPy, and roc_auc_score + average_precision_score. Ours and theirs alternate; medians.
 * Run: npx tsc -p . && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 node dist/bench/eval.js
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readNihDataset } from '../src/data/nih.js';
import { NIH_FINDINGS } from '../src/data/labels.js';
import { bootstrapAurocs } from '../src/eval/bootstrap.js';
import { delong } from '../src/eval/delong.js';
import { evaluate } from '../src/eval/evaluate.js';
import { averagePrecision } from '../src/eval/pr.js';
import { SeededRandom } from '../src/eval/random.js';
import { auroc } from '../src/eval/roc.js';
import { BENCH_DIR, type HeadlineCase, PythonWorker, headlineCase, median, peakRssMb, round, writeResults } from './lib.js';

const N = 25_596;
const C = NIH_FINDINGS.length;
const RESAMPLES = Number(process.env.BENCH_RESAMPLES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** scikit-learn's loop takes about a minute a round: fewer rounds of it. */
const SKLEARN_ROUNDS = Number(process.env.BENCH_SKLEARN_ROUNDS ?? 1);
const data = resolve(BENCH_DIR, '..', '..', 'shared', 'data');

interface Timed {
  ms: number;
}

async function main(): Promise<void> {
  const sample = await readNihDataset({ csvPath: join(data, 'nih-meta', 'sample_labels.csv'), checkImages: false });
  const random = new SeededRandom(2017);
  const labels = new Uint8Array(N * C);
  const scores = new Float64Array(N * C);
  for (let i = 0; i < N; i++) {
    const record = sample.records[random.below(sample.records.length)];
    for (let j = 0; j < C; j++) {
      const y = record.labels[j];
      labels[i * C + j] = y;
      const noise = (random.uint32() / 2 ** 32 + random.uint32() / 2 ** 32 + random.uint32() / 2 ** 32 - 1.5) * 2;
      scores[i * C + j] = Number((1 / (1 + Math.exp(-(1.3 * y - 2.2 + noise)))).toFixed(6));
    }
  }
  const columns = NIH_FINDINGS.map((_, j) => ({
    scores: Float64Array.from({ length: N }, (_, i) => scores[i * C + j]),
    labels: Uint8Array.from({ length: N }, (_, i) => labels[i * C + j]),
  }));
  const positives = columns.map((col) => col.labels.reduce((a, b) => a + b, 0));

  const work = mkdtempSync(join(tmpdir(), 'cxr-bench-eval-'));
  const python = new PythonWorker('eval_reference.py');
  try {
    writeFileSync(join(work, 'scores.f64'), scores);
    writeFileSync(join(work, 'labels.u8'), labels);
    const { versions } = await python.request<{ versions: Record<string, string> }>({ op: 'load', scores: join(work, 'scores.f64'), labels: join(work, 'labels.u8'), n: N, c: C });

    const timeOurs = (work: () => unknown) => {
      const start = performance.now();
      work();
      return performance.now() - start;
    };
    /** Warm-up once each, then alternate: medians of ours and theirs. */
    const compare = async <T extends Timed>(ours: () => unknown, request: object, oursRounds: number, theirRounds: number) => {
      ours();
      const a: number[] = [];
      const b: number[] = [];
      let reply!: T;
      for (let r = 0; r < Math.max(oursRounds, theirRounds); r++) {
        if (r < oursRounds) a.push(timeOurs(ours));
        if (r < theirRounds) {
          reply = await python.request<T>(request);
          b.push(reply.ms);
        }
      }
      return { oursMs: median(a), referenceMs: median(b), reply };
    };

    // Accuracy first: the same numbers as scikit-learn and the DeLong reference on this data.
    const ourAurocs = columns.map((col) => auroc(col.scores, col.labels));
    const ourAps = columns.map((col) => averagePrecision(col.scores, col.labels));
    const ourDelong = columns.map((col) => delong(col.scores, col.labels));

    const metrics = await compare<Timed & { aurocs: number[]; aps: number[] }>(
      () => columns.forEach((col) => (auroc(col.scores, col.labels), averagePrecision(col.scores, col.labels))),
      { op: 'metrics' },
      ROUNDS,
      ROUNDS,
    );
    const delongRun = await compare<Timed & { aucs: number[]; variances: number[] }>(() => columns.forEach((col) => delong(col.scores, col.labels)), { op: 'delong' }, ROUNDS, ROUNDS);
    const ourBootstrap = () => bootstrapAurocs(columns, N, { resamples: RESAMPLES, seed: 1 });
    const numpyRun = await compare<Timed & { intervals: number[][] }>(ourBootstrap, { op: 'numpy_bootstrap', resamples: RESAMPLES, seed: 1 }, ROUNDS, Math.min(ROUNDS, 3));
    const sklearnRun = await compare<Timed & { intervals: number[][] }>(ourBootstrap, { op: 'sklearn_bootstrap', resamples: RESAMPLES, seed: 1 }, ROUNDS, SKLEARN_ROUNDS);
    const ours = ourBootstrap();
    // The whole evaluate() (curves, DeLong, thresholds, calibration, 1,000 resamples), for the record.
    const input = { labels: [...NIH_FINDINGS], probabilities: scores, targets: labels };
    const evaluateMs = median(Array.from({ length: 3 }, () => timeOurs(() => evaluate(input, { bootstrap: { resamples: RESAMPLES } }))));

    const maxAbs = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    const endpointDifference = (intervals: number[][]) =>
      Math.max(...ours.classes.map((k, j) => Math.max(Math.abs(k!.lower - intervals[j][0]), Math.abs(k!.upper - intervals[j][1]))));
    const reference = (what: string) => `${what} (scikit-learn ${versions.sklearn}, NumPy ${versions.numpy}, SciPy ${versions.scipy}; one Python process)`;
    const bootstrapOurs = 'bootstrapAurocs: 14 findings sorted once, then per resample one weighted pass per finding (+ the mean AUROC interval); one thread';
    const headline: HeadlineCase & { ours: string } = {
      ...headlineCase(sklearnRun.oursMs, sklearnRun.referenceMs, reference(`roc_auc_score in a Python loop: ${RESAMPLES} resamples x ${C} findings, indices drawn by NumPy's default_rng`)),
      ours: bootstrapOurs,
    };
    const path = writeResults('eval', {
      benchmark: 'eval',
      node: process.version,
      data: `${N} images x ${C} findings: label vectors drawn with replacement from NIH's sample_labels.csv (5,606 images); scores sigmoid(1.3 y - 2.2 + noise) rounded to 6 decimals`,
      positives: Object.fromEntries(NIH_FINDINGS.map((f, j) => [f, positives[j]])),
      rounds: { ours: ROUNDS, numpy_bootstrap: Math.min(ROUNDS, 3), sklearn_bootstrap: SKLEARN_ROUNDS },
      accuracy: {
        auroc_max_abs_difference_vs_sklearn: maxAbs(ourAurocs, metrics.reply.aurocs),
        average_precision_max_abs_difference_vs_sklearn: maxAbs(ourAps, metrics.reply.aps),
        delong_variance_max_relative_difference: Math.max(...ourDelong.map((d, j) => Math.abs(d.variance - delongRun.reply.variances[j]) / delongRun.reply.variances[j])),
        bootstrap_interval_endpoints_max_abs_difference_vs_sklearn_loop: round(endpointDifference(sklearnRun.reply.intervals), 5),
        bootstrap_interval_endpoints_max_abs_difference_vs_numpy: round(endpointDifference(numpyRun.reply.intervals), 5),
        note: 'bootstrap endpoints differ by resampling noise only (different random streams)',
      },
      headline: { [`bootstrap_${N}x${C}_${RESAMPLES}`]: headline },
      cases: {
        [`bootstrap_${N}x${C}_${RESAMPLES}_numpy`]: { ...headlineCase(numpyRun.oursMs, numpyRun.referenceMs, reference('NumPy-vectorised bootstrap with the same counting as ours (bincount draws, sorted once per finding, reduceat over tie groups, 100 resamples at a time)')), ours: bootstrapOurs },
        delong_25596x14: { ...headlineCase(delongRun.oursMs, delongRun.referenceMs, reference('Sun & Xu fast DeLong per finding, midranks by scipy.stats.rankdata')), ours: 'delong() per finding: one sort, placement values, unbiased variances' },
        auroc_ap_25596x14: { ...headlineCase(metrics.oursMs, metrics.referenceMs, reference('roc_auc_score + average_precision_score per finding')), ours: 'auroc() + averagePrecision() per finding (each sorts)' },
      },
      evaluate_all_25596x14_ms: round(evaluateMs),
      evaluate_all_note: 'evaluate(): AUROC, AP, DeLong, 1,000-resample bootstrap with the mean, Youden thresholds, calibration and plot curves for 14 findings',
      peak_rss_mb: peakRssMb(),
    });
    process.stdout.write(`${path}\n`);
  } finally {
    python.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
