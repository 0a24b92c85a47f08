/**
 * Calibration, operating points and input checks fitted on real NIH images and measured on real negatives: natural
 * photographs, the non-chest DICOMs, the dog's lateral thorax, the header-says-MONOCHROME1 file, and held-out NIH
 * images turned, inverted, cropped, blanked or replaced by noise. The model: ImageNet MobileNetV2 at 128 px whose
 * classifier is a per-finding logistic regression fitted (barely penalised, so over-confident) on the reference
 * patients' features: real, meaningful and miscalibrated logits, made in seconds. Patients are split 50/25/25.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Dataset, readNihDataset, splitByPatient } from '../../src/data/index.js';
import { parseThresholdRule } from '../../src/eval/thresholds.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { findingsFromLogits } from '../../src/outputs/findings.js';
import { Predictor } from '../../src/inference/predictor.js';
import { importWeights } from '../../src/models/import/index.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { type Model, checkGraph, float32, readModelFile, writeModelFile } from '../../src/onnx/index.js';
import { type CalibrateResult, calibrateModel, chooseThresholds, labelledImages, meanEce } from '../../src/safety/calibrate.js';
import { fitGaussian, fitLogistic } from '../../src/safety/detector.js';
import { type ImageOutputs, fileSource, runImages } from '../../src/safety/features.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-safety-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const files = (folder: string, pattern: RegExp) =>
  readdirSync(sharedDataPath(folder))
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => sharedDataPath(folder, f));

let split: Record<'reference' | 'validation' | 'test', Dataset>;
let result: CalibrateResult;
let modelPath: string;
let thumbnails: ReturnType<typeof fileSource>[];

/** Sets the classifier to per-finding logistic regressions on the reference features (through 32 whitened directions). */
function fitClassifier(model: Model, reference: ImageOutputs, dataset: Dataset): void {
  const g = fitGaussian(reference.pooled, 32);
  const c = g.channels;
  const labels = dataset.labelSet.labels;
  const weight = new Float32Array(labels.length * c);
  const bias = new Float32Array(labels.length);
  const z = new Float32Array(reference.pooled.rows * 32);
  for (let i = 0; i < reference.pooled.rows; i++) {
    for (let k = 0; k < 32; k++) {
      let p = 0;
      for (let j = 0; j < c; j++) p += (reference.pooled.data[i * c + j] - g.mean[j]) * g.basis[j * 32 + k];
      z[i * 32 + k] = p / Math.sqrt(g.variances[k]);
    }
  }
  labels.forEach((_, l) => {
    const y = dataset.records.map((r) => (r.labels[l] >= 0.5 ? 1 : 0));
    if (!y.includes(1)) return;
    const head = fitLogistic({ rows: y.length, columns: 32, data: z }, y, 0.01);
    // logit = w . (V^T (f - mean) / sqrt(lambda)) + b, written back in feature space.
    let shift = head.bias;
    for (let j = 0; j < c; j++) {
      let w = 0;
      for (let k = 0; k < 32; k++) w += (g.basis[j * 32 + k] * head.weights[k]) / Math.sqrt(g.variances[k]);
      weight[l * c + j] = w;
      shift -= w * g.mean[j];
    }
    bias[l] = shift;
  });
  model.graph.initializers.set('classifier.1.weight', float32([labels.length, c], weight));
  model.graph.initializers.set('classifier.1.bias', float32([labels.length], bias));
}

before(async () => {
  const dataset = await readNihDataset({ csvPath: sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv'), imageRoot: sharedDataPath('nih-cxr14-subset', 'images') });
  split = splitByPatient(dataset, { fractions: { reference: 0.5, validation: 0.25, test: 0.25 }, seed: 0 }) as typeof split;
  const weights = readFileSync(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'));
  const { model } = importWeights(weights, 'mobilenetv2-12-int8.onnx', { newHead: true, height: 128, width: 128 });
  const referenceSources = split.reference.records.map((r) => fileSource(r.imagePath));
  const referenceOutputs = await runImages(model, referenceSources, { threads: 2 });
  fitClassifier(model, referenceOutputs, split.reference);
  const negatives = [
    { kind: 'natural photographs', sources: files('natural-photos', /\.(png|jpe?g)$/).map(fileSource) },
    { kind: 'non-chest DICOMs', sources: files('dicom', /^neg/).map(fileSource) },
    { kind: "dog's lateral thorax", sources: files('dicom', /CANINE/).map(fileSource) },
    { kind: 'header MONOCHROME1, pixels MONOCHROME2', sources: files('dicom', /FakeMONO1/).map(fileSource) },
  ];
  thumbnails = files('nih-cxr14-64px/images', /\.png$/).slice(0, 12).map(fileSource);
  result = await calibrateModel(
    model,
    {
      reference: referenceSources,
      validation: labelledImages(split.validation, 'validation patients'),
      test: labelledImages(split.test, 'test patients'),
      apart: { description: '64 px thumbnails kept apart', sources: thumbnails },
      negatives,
    },
    { threads: 2, syntheticNegatives: 40, referenceOutputs, orientationEpochs: 10 },
  );
  modelPath = join(dir, 'calibrated.onnx');
  writeModelFile(modelPath, result.model);
});

describe('held-out images kept apart', () => {
  it('count in the false refusals of the checks and in no metric', () => {
    const real = (result.safety.measured ?? []).find((m) => m.kind.startsWith('real frontal chest X-rays, held out ('));
    assert.ok(real, 'the held-out films are measured');
    assert.equal(real.images, split.test.records.length + thumbnails.length);
    assert.match(real.kind, /test patients and 64 px thumbnails kept apart/);
    const labels = readModelInfo(result.model).labels.length;
    assert.equal(result.test?.calibrated.probabilities.length, split.test.records.length * labels, 'the test metrics see the test images only');
  });
});

describe('input checks on real negatives', () => {
  it('separate photographs (out-of-distribution score), noise (smoothness) and blank images (spread) from held-out NIH images with AUROC >= 0.95', (t) => {
    const measured = result.safety.measured ?? [];
    t.diagnostic(JSON.stringify(measured.map((m) => ({ kind: m.kind, images: m.images, rejected: m.rejected, aurocs: m.aurocs }))));
    const of = (kind: RegExp) => {
      const entry = measured.find((m) => kind.test(m.kind));
      assert.ok(entry, `no measurement for ${kind}`);
      return entry;
    };
    for (const [kind, score] of [[/^natural photographs/, 'ood'], [/^uniform noise/, 'smoothness'], [/^blank/, 'spread']] as const) {
      assert.ok(of(kind).aurocs[score] >= 0.95, `${kind} by ${score}: AUROC ${of(kind).aurocs[score]}`);
    }
    assert.equal(of(/^uniform noise/).rejected, 1);
    assert.equal(of(/^blank/).rejected, 1);
    const kinds = measured.map((m) => m.kind);
    for (const kind of [/rotated 90/, /rotated 180/, /inverted$/, /cropped/, /dog/, /non-chest/, /MONOCHROME1/]) assert.ok(kinds.some((k) => kind.test(k)), `${kind} measured`);
  });

  it('reject few real held-out images, and say for each check how its threshold was chosen', () => {
    const real = result.safety.measured?.[0];
    assert.match(real?.kind ?? '', /^real frontal chest X-rays, held out \(test patients and 64 px thumbnails kept apart\)/);
    assert.ok(real && real.rejected <= 0.1, `${real?.rejected} of held-out real images rejected`);
    assert.deepEqual(
      result.safety.checks.map((c) => `${c.code} ${c.score} ${c.severity}`),
      [
        'not-chest-xray ood warning',
        'not-chest-xray ood reject',
        'not-chest-xray layout warning',
        'not-chest-xray layout reject',
        'not-chest-xray spread warning',
        'not-chest-xray smoothness warning',
        'not-chest-xray doubts reject',
        'rotated orientation:rotated reject',
        'inverted orientation:inverted reject',
        'mirrored orientation:mirrored warning',
        'not-chest-xray colourfulness reject',
        'blank spread reject',
        'not-chest-xray smoothness reject',
        'too-small shorterSide reject',
      ],
    );
    for (const check of result.safety.checks) assert.ok(check.rule.length > 20 && Number.isFinite(check.threshold), check.code);
    assert.match(result.safety.checks[0].rule, /^99th percentile of the model features' out-of-distribution score on 100 held-out real images \(validation patients\)/);
    assert.match(result.safety.checks[1].rule, /^2 x the largest model features' out-of-distribution score among the held-out real images \(\d\.\d{3}\), and at least its 99.5th percentile/);
    // Warning below rejection, for both one-class scores.
    assert.ok(result.safety.checks[0].threshold <= result.safety.checks[1].threshold && result.safety.checks[2].threshold <= result.safety.checks[3].threshold);
  });

  it('the written model is self-contained: valid graph, validated metadata, safety outputs', () => {
    const model = readModelFile(modelPath);
    checkGraph(model.graph);
    const info = readModelInfo(model, modelPath);
    assert.deepEqual(info.safety?.heads, []);
    assert.ok(info.safety?.orientation && info.safety.layout, 'the orientation network and the thumbnail Gaussian are stored');
    assert.deepEqual(
      model.graph.outputs.map((o) => o.name),
      ['logits', 'features', 'safety.ood'],
    );
    assert.equal(info.calibration?.method, 'platt');
    assert.equal(info.thresholds?.rule, 'specificity:0.9', 'the default rule');
    assert.deepEqual(info.thresholds, result.thresholds, 'intervals and withheld findings travel in the file');
  });

  it('the Predictor withholds findings for rejected inputs, gives them marked on request, and accepts real held-out images', async () => {
    const predictor = await Predictor.create(readModelFile(modelPath), { threads: 2, source: modelPath });
    try {
      const photo = await decodeImageFile(sharedDataPath('natural-photos', 'astronaut.png'));
      const [rejected] = await predictor.predict([photo]);
      assert.equal(rejected.verdict, 'rejected');
      assert.deepEqual(rejected.findings, []);
      assert.ok(rejected.inputFlags.some((f) => f.code === 'not-chest-xray' && f.severity === 'reject' && f.score! > f.threshold!), JSON.stringify(rejected.inputFlags));
      const [shown] = await predictor.predict([photo], { showRejected: true });
      assert.equal(shown.verdict, 'rejected-shown');
      assert.equal(shown.findings.length, 14);
      assert.deepEqual(shown.inputFlags, rejected.inputFlags);

      const hip = await decodeImageFile(files('dicom', /^neg2/)[0]);
      const [hipPrediction] = await predictor.predict([hip]);
      assert.ok(hipPrediction.inputFlags.some((f) => f.rule === 'DICOM tag BodyPartExamined (0018,0015) = "HIP"'));

      const heldOut = await Promise.all(split.test.records.slice(0, 30).map((r) => decodeImageFile(r.imagePath)));
      const predictions = await predictor.predict(heldOut);
      const accepted = predictions.filter((p) => p.verdict === 'accepted');
      assert.ok(accepted.length >= 25, `${accepted.length} of 30 held-out NIH images accepted`);
      for (const p of accepted) {
        assert.equal(p.findings.length, 14);
        assert.equal(p.inputChecks.length, 14);
        assert.ok(p.inputFlags.every((f) => f.severity !== 'reject'));
      }
    } finally {
      await predictor.close();
    }
  });
});

describe('calibration and operating points', () => {
  it('calibration lowers the mean ECE on the fitting patients and on held-out patients', (t) => {
    const ece = result.calibration.ece ?? [];
    t.diagnostic(JSON.stringify(ece));
    assert.equal(ece.length, 2);
    for (const e of ece) assert.ok(e.after < e.before, `${e.data}: ECE ${e.before} -> ${e.after}`);
    assert.ok(Math.abs(ece[1].before - meanEce(result.test!.uncalibrated)) < 1e-12);
  });

  it('every stored threshold reproduces its sensitivity and specificity through the run-time code; each finding has a threshold with its CI or the reason it has none', (t) => {
    t.diagnostic(JSON.stringify({ withheld: result.thresholds.withheld, skipped: result.calibration.skipped }));
    assert.ok(result.operatingPoints.length >= 3, `${result.operatingPoints.length} thresholds`);
    for (const p of result.operatingPoints) {
      assert.equal(p.reproduced.sensitivity, p.stated.sensitivity, p.label);
      assert.equal(p.reproduced.specificity, p.stated.specificity, p.label);
      assert.ok(p.stated.specificity >= 0.9, `${p.label}: specificity ${p.stated.specificity}`);
      assert.equal(result.thresholds.values[p.label], p.threshold);
      assert.deepEqual(result.thresholds.intervals?.[p.label], p.interval);
      assert.ok(p.interval && p.interval[0] <= p.threshold && p.threshold <= p.interval[1], `${p.label}: ${p.threshold} in ${p.interval}`);
    }
    const withheld = Object.keys(result.thresholds.withheld ?? {});
    assert.deepEqual([...result.operatingPoints.map((p) => p.label), ...withheld].sort(), [...split.validation.labelSet.labels].sort());
    for (const label of withheld) assert.match(result.thresholds.withheld![label], /a stable threshold needs at least 10|no threshold reaches/, label);
  });

  it('a target-sensitivity rule is met on the data it was chosen on, through the model file and the Predictor', async () => {
    const validation = labelledImages(split.validation, 'validation patients');
    const model = readModelFile(modelPath);
    const info = readModelInfo(model);
    const predictor = await Predictor.create(model, { threads: 2, showRejected: true });
    let logits: Float32Array;
    try {
      const images = await Promise.all(split.validation.records.map((r) => decodeImageFile(r.imagePath)));
      const predictions = await predictor.predict(images);
      logits = Float32Array.from(predictions.flatMap((p) => p.findings.map((f) => f.logit)));
    } finally {
      await predictor.close();
    }
    const rule = parseThresholdRule('sensitivity:0.8');
    const { thresholds, operatingPoints } = chooseThresholds(info.labels, logits, validation, info.calibration, rule);
    assert.equal(thresholds.rule, 'sensitivity:0.8');
    for (const p of operatingPoints) {
      assert.ok(p.stated.sensitivity >= 0.8, `${p.label}: ${p.stated.sensitivity}`);
      assert.equal(p.reproduced.sensitivity, p.stated.sensitivity, p.label);
    }
    // And the decisions of a finding carry the rule that set its threshold.
    const [first] = findingsFromLogits(info.labels, logits, { thresholds, calibration: info.calibration });
    assert.equal(first.thresholdRule, 'sensitivity:0.8');
  });
});
