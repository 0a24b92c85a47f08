/**
 * What a recipe change bought: two models scored on the default recipe's fixed held-out test split (or, with
 * --validation, on its validation split: where recipe choices are made), with paired
 * confidence intervals (both models see the same images, so their errors covary and a paired interval is narrower
 * than two separate ones). Per finding: DeLong's paired test of the AUROC difference; the mean AUROC difference:
 * 95% percentile bootstrap over patients, the same resamples for both models.
 *
 * A model path ending in `+tta` stands for test-time augmentation: the model's mean logit over TTA_VIEWS, each view
 * transformed as training augments films (about the centre, bilinear, black outside). Paths joined by commas stand
 * for an ensemble: the models' mean logit.
 *
 *   node dist/scripts/compare-models.js [--validation] <model A> <model B> [out.md] [name A] [name B]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { bootstrapAurocs, percentileInterval } from '../src/eval/bootstrap.js';
import { delongPairedTest } from '../src/eval/delong.js';
import { readModelInfo } from '../src/models/metadata.js';
import { readModelFile } from '../src/onnx/index.js';
import { type AppliedAugmentation, applyAugmentation } from '../src/imaging/augment.js';
import { type ImageSource, fileSource, runImages } from '../src/safety/features.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';

const onValidation = process.argv[2] === '--validation';
const [pathA, pathB, out, nameA = pathA, nameB = pathB] = process.argv.slice(onValidation ? 3 : 2);
if (!pathA || !pathB) throw new Error('usage: node dist/scripts/compare-models.js [--validation] <model A> <model B> [out.md] [name A] [name B]');
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

const recipe = resolveConfig(readConfigFile(join('configs', 'default-model.yaml')), 'configs/default-model.yaml');
const split = await splitData(await readDatasets(recipe), recipe);
const images = onValidation ? split.validation.records : split.test.records;
const splitName = onValidation ? 'validation split (where recipe choices are made)' : 'fixed held-out test split';
const TTA = '+tta';
const modelFile = (path: string) => readModelFile((path.endsWith(TTA) ? path.slice(0, -TTA.length) : path).split(',')[0]);
const labels = readModelInfo(modelFile(pathA)).labels;
const c = labels.length;
for (const path of [...pathA.split(','), ...pathB.split(',')]) {
  if (readModelInfo(modelFile(path)).labels.join() !== labels.join()) throw new Error(`${path}: every model compared must have the same labels in the same order`);
}

const still = { rotationDeg: 0, translateX: 0, translateY: 0, scale: 1, flip: false, brightness: 1, contrast: 1 };
/** The film itself, zoomed in and out and turned either way, within the default recipe's training augmentation. */
const TTA_VIEWS: AppliedAugmentation[] = [still, { ...still, scale: 1.05 }, { ...still, scale: 0.95 }, { ...still, rotationDeg: 5 }, { ...still, rotationDeg: -5 }];

function viewed(source: ImageSource, view: AppliedAugmentation): ImageSource {
  return {
    id: source.id,
    load: async () => {
      const image = await source.load();
      if (!(image.pixels instanceof Uint8Array)) throw new Error(`${source.id}: test-time augmentation takes 8-bit films`);
      return { ...image, pixels: applyAugmentation(image.pixels, image.width, image.height, view) };
    },
  };
}

async function logitsOf(path: string): Promise<Float32Array> {
  const members = path.split(',');
  if (members.length > 1) {
    const each: Float32Array[] = [];
    for (const member of members) each.push(await logitsOf(member));
    return Float32Array.from(each[0], (_, k) => each.reduce((sum, l) => sum + l[k], 0) / each.length);
  }
  const views = path.endsWith(TTA) ? TTA_VIEWS : [still];
  log(`${path}: ${images.length} images of the ${splitName}${views.length > 1 ? `, ${views.length} views each` : ''}`);
  const model = modelFile(path);
  const sum = new Float32Array(images.length * c);
  for (const view of views) {
    const sources = images.map((r) => (view === still ? fileSource(r.imagePath) : viewed(fileSource(r.imagePath), view)));
    const logits = (await runImages(model, sources, { batchSize: 16 })).logits.data;
    for (let k = 0; k < sum.length; k++) sum[k] += logits[k] / views.length;
  }
  return sum;
}
const logits = [await logitsOf(pathA), await logitsOf(pathB)];

const patientIndex = new Map<string, number>();
const clusterOf = images.map((r) => patientIndex.get(r.patientId) ?? patientIndex.set(r.patientId, patientIndex.size).get(r.patientId)!);
/** One finding's labelled entries: scores of each model, the labels, and the samples they belong to. */
const column = (j: number) => {
  const rows = images.flatMap((r, i) => (r.mask[j] === 1 ? [i] : []));
  return {
    scores: logits.map((l) => Float64Array.from(rows, (i) => l[i * c + j])),
    labels: Uint8Array.from(rows, (i) => (images[i].labels[j] >= 0.5 ? 1 : 0)),
    samples: Int32Array.from(rows),
  };
};
const columns = labels.map((_, j) => column(j));
const compared = columns.map((col) => {
  const positives = col.labels.reduce((a, b) => a + b, 0);
  return positives >= 2 && col.labels.length - positives >= 2 ? delongPairedTest(col.scores[1], col.scores[0], col.labels) : null;
});

// The same seed and clusters give both models the same resamples; each resample's mean over the findings both define.
const boot = [0, 1].map((m) => bootstrapAurocs(columns.map((col) => ({ scores: col.scores[m], labels: col.labels, samples: col.samples })), images.length, { resamples: 1000, seed: 0, clusters: clusterOf }));
const differences: number[] = [];
for (let s = 0; s < 1000; s++) {
  let sum = 0;
  let n = 0;
  for (let j = 0; j < c; j++) {
    const a = boot[0].values[j][s];
    const b = boot[1].values[j][s];
    if (compared[j] === null || Number.isNaN(a) || Number.isNaN(b)) continue;
    sum += b - a;
    n++;
  }
  if (n > 0) differences.push(sum / n);
}
const defined = compared.flatMap((d, j) => (d ? [{ label: labels[j], d }] : []));
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const meanA = mean(defined.map(({ d }) => d.aucB));
const meanB = mean(defined.map(({ d }) => d.aucA));
const interval = percentileInterval(Float64Array.from(differences), 0.95);

const f3 = (v: number) => v.toFixed(3);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
const md = `# ${nameB} against ${nameA}, on the ${splitName}

${images.length} images of ${patientIndex.size} patients (configs/default-model.split)${onValidation ? ', never trained on' : ', never trained or tuned on'}; scores are the logits.

Mean AUROC over the ${defined.length} findings with at least 2 positives and 2 negatives: **${f3(meanA)} -> ${f3(meanB)}**, difference **${signed(meanB - meanA)}** (95% CI ${interval ? `${signed(interval.lower)} to ${signed(interval.upper)}` : 'n/a'}, paired bootstrap over patients, 1000 resamples).

| finding | positives | ${nameA} | ${nameB} | difference | 95% CI (paired DeLong) | p |
|---|---|---|---|---|---|---|
${labels
  .map((label, j) => {
    const d = compared[j];
    const positives = columns[j].labels.reduce((a, b) => a + b, 0);
    return d ? `| ${label} | ${positives} | ${f3(d.aucB)} | ${f3(d.aucA)} | ${signed(d.difference)} | ${signed(d.interval.lower)} to ${signed(d.interval.upper)} | ${d.pValue < 0.001 ? '<0.001' : d.pValue.toFixed(3)} |` : `| ${label} | ${positives} | n/a | n/a | n/a | too few positives | |`;
  })
  .join('\n')}
`;
if (out) writeFileSync(out, md);
process.stdout.write(md);
