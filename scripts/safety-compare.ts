/**
 * Measures candidate out-of-distribution scores and head settings on one trained model, to choose the detector by
 * measurement: real held-out NIH frontal images (the run's test split) against each kind of negative (natural
 * photographs, non-chest DICOMs, the dog's lateral thorax, the header-says-MONOCHROME1 file, and test images turned,
 * inverted, cropped, blanked or replaced by noise). Writes a JSON and a Markdown table.
 *
 *   node dist/scripts/safety-compare.js runs/quick [out-prefix]
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auroc } from '../src/eval/roc.js';
import { readModelFile } from '../src/onnx/index.js';
import { resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';
import { type Corruption } from '../src/safety/corrupt.js';
import { type FeatureMatrix, fitGaussian, fitLogistic, logisticProbability, mahalanobisScore, project } from '../src/safety/detector.js';
import { type ImageOutputs, type ImageSource, corrupted, fileSource, runImages } from '../src/safety/features.js';
import type { ImageStatistics } from '../src/safety/image-checks.js';

const [runDir, outPrefix = join(runDir ?? '.', 'safety-compare')] = process.argv.slice(2);
if (!runDir) throw new Error('usage: safety-compare <run folder> [out prefix]');
const shared = join(process.cwd(), '..', 'shared', 'data');
const config = resolveConfig(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')), join(runDir, 'config.json'));
const data = await splitData(await readDatasets(config), config);
const model = readModelFile(join(runDir, 'best.onnx'));
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const run = async (name: string, sources: ImageSource[]) => {
  log(`${name}: ${sources.length} images`);
  return runImages(model, sources, { batchSize: 16, threads: 2 });
};

const files = (d: string[]) => d.map((p) => fileSource(p));
const testSources = files(data.test.records.map((r) => r.imagePath));
const synthetic = (kind: Corruption, count = 100) => testSources.slice(0, count).map((s, i) => corrupted(s, kind, 1000 + i));
const photos = readdirSync(join(shared, 'natural-photos')).filter((f) => /\.(png|jpe?g)$/i.test(f)).map((f) => join(shared, 'natural-photos', f));
const dicom = (pattern: RegExp) => readdirSync(join(shared, 'dicom')).filter((f) => pattern.test(f)).map((f) => join(shared, 'dicom', f));

const reference = await run('reference (train)', files(data.train.records.map((r) => r.imagePath)));
const heldOut = await run('positives (test)', testSources);
const negatives: Record<string, ImageOutputs> = {
  'natural photographs': await run('photos', files(photos)),
  'non-chest DICOMs (tibia, hip, dental, CT)': await run('non-chest', files(dicom(/^neg/))),
  "dog's lateral thorax (DICOM)": await run('dog', files(dicom(/CANINE/))),
  'header MONOCHROME1, pixels MONOCHROME2 (shown inverted)': await run('fake mono1', files(dicom(/FakeMONO1/))),
  'NIH rotated 90': await run('rot90', synthetic('rotate90')),
  'NIH rotated 180': await run('rot180', synthetic('rotate180')),
  'NIH inverted': await run('invert', synthetic('invert')),
  'NIH heavy crop (30% of each side)': await run('crop', synthetic('crop')),
  'NIH blank': await run('blank', synthetic('blank', 30)),
  'NIH uniform noise': await run('noise', synthetic('noise', 30)),
};
const headCount = Math.min(600, reference.pooled.rows);
const headSources = files(data.train.records.slice(0, headCount).map((r) => r.imagePath));
const turned = await run('heads: turned', headSources.map((s, i) => corrupted(s, (['rotate90', 'rotate180', 'rotate270'] as const)[i % 3], i)));
const inverted = await run('heads: inverted', headSources.map((s, i) => corrupted(s, 'invert', i)));

const rowsOf = (m: FeatureMatrix) => Array.from({ length: m.rows }, (_, i) => m.data.subarray(i * m.columns, (i + 1) * m.columns));
const separation = (positive: number[], negative: number[]) => {
  const scores = Float64Array.from([...positive, ...negative]);
  const labels = Uint8Array.from([...positive.map(() => 0), ...negative.map(() => 1)]);
  return auroc(scores, labels);
};

type Score = (o: ImageOutputs) => number[];
const detectors: Record<string, Score> = {};
for (const k of [16, 32, 64, 128, 256]) {
  const g = fitGaussian(reference.pooled, k);
  detectors[`Mahalanobis PPCA k=${k}`] = (o) => rowsOf(o.pooled).map((f) => mahalanobisScore(g, f));
  if (k === 64) {
    detectors['Mahalanobis, top 64 directions only'] = (o) => rowsOf(o.pooled).map((f) => project(g, f).whitened.reduce((s, z) => s + z * z, 0));
  }
}
const unit = (v: ArrayLike<number>) => {
  const n = Math.sqrt(Array.from(v).reduce((s, a) => s + a * a, 0)) || 1;
  return Float64Array.from(v, (a) => a / n);
};
const referenceUnits = rowsOf(reference.pooled).map(unit);
for (const k of [1, 5]) {
  detectors[`k-NN cosine distance, k=${k}`] = (o) =>
    rowsOf(o.pooled).map((f) => {
      const u = unit(f);
      const sims = referenceUnits.map((r) => r.reduce((s, a, j) => s + a * u[j], 0)).sort((a, b) => b - a);
      return 1 - sims[k - 1];
    });
}
const logitRows = (o: ImageOutputs) => rowsOf(o.logits);
detectors['max logit (negated)'] = (o) => logitRows(o).map((z) => -Math.max(...z));
detectors['energy: -sum softplus(logit)'] = (o) => logitRows(o).map((z) => -Array.from(z).reduce((s, a) => s + Math.log1p(Math.exp(a)), 0));
const statVector = (s: ImageStatistics) => [s.mean, s.std, s.p1, s.p50, s.p99, s.spread, s.smoothness, s.borderContrast, s.entropy];
const statGaussian = fitGaussian({ rows: reference.statistics.length, columns: 9, data: Float32Array.from(reference.statistics.flatMap(statVector)) }, 8);
detectors['image statistics, Mahalanobis (9 statistics)'] = (o) => o.statistics.map((s) => mahalanobisScore(statGaussian, statVector(s)));

const table: Record<string, Record<string, number>> = {};
for (const [name, score] of Object.entries(detectors)) {
  log(`scoring ${name}`);
  const positive = score(heldOut);
  table[name] = Object.fromEntries(Object.entries(negatives).map(([kind, o]) => [kind, separation(positive, score(o))]));
}

const heads: Record<string, Record<string, number>> = {};
for (const k of [16, 32, 64, 128, 256]) {
  const g = fitGaussian(reference.pooled, k);
  const whiten = (m: FeatureMatrix) => rowsOf(m).map((f) => project(g, f).whitened);
  const up = whiten({ rows: headCount, columns: reference.pooled.columns, data: reference.pooled.data.subarray(0, headCount * reference.pooled.columns) });
  for (const [name, changed, kinds] of [
    ['rotated', turned, ['NIH rotated 90', 'NIH rotated 180']],
    ['inverted', inverted, ['NIH inverted', 'header MONOCHROME1, pixels MONOCHROME2 (shown inverted)']],
  ] as const) {
    const bad = whiten(changed.pooled);
    const x = Float32Array.from([...up, ...bad].flatMap((r) => Array.from(r)));
    const y = Uint8Array.from([...up.map(() => 0), ...bad.map(() => 1)]);
    for (const l2 of [0.1, 1, 10]) {
      const head = fitLogistic({ rows: y.length, columns: k, data: x }, y, l2);
      const p = (o: ImageOutputs) => whiten(o.pooled).map((z) => logisticProbability(head, z));
      const positive = p(heldOut);
      heads[`${name} head, k=${k}, l2=${l2}`] = Object.fromEntries(kinds.map((kind) => [kind, separation(positive, p(negatives[kind]))]));
    }
  }
}

const counts = Object.fromEntries(Object.entries(negatives).map(([k, o]) => [k, o.pooled.rows]));
writeFileSync(`${outPrefix}.json`, `${JSON.stringify({ model: join(runDir, 'best.onnx'), positives: heldOut.pooled.rows, reference: reference.pooled.rows, counts, detectors: table, heads }, null, 2)}\n`);
const kinds = Object.keys(negatives);
const md = [
  `Positives: ${heldOut.pooled.rows} real NIH frontal images of held-out patients; reference: ${reference.pooled.rows} training images. AUROC per kind (n).`,
  '',
  `| score | ${kinds.map((k) => `${k} (${counts[k]})`).join(' | ')} |`,
  `|---|${kinds.map(() => '---').join('|')}|`,
  ...Object.entries(table).map(([name, row]) => `| ${name} | ${kinds.map((k) => row[k].toFixed(3)).join(' | ')} |`),
  '',
  '| head | kind | AUROC |',
  '|---|---|---|',
  ...Object.entries(heads).flatMap(([name, row]) => Object.entries(row).map(([kind, v]) => `| ${name} | ${kind} | ${v.toFixed(3)} |`)),
].join('\n');
writeFileSync(`${outPrefix}.md`, `${md}\n`);
log(`wrote ${outPrefix}.json and .md`);
