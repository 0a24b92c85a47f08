/**
 * EM prior shift (src/safety/prior-shift.ts) on real logits of models/default.onnx over NIH images, and
 * `cxr calibrate --unlabelled` end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { readNihDataset } from '../../src/data/nih.js';
import { chooseThreshold, parseThresholdRule } from '../../src/eval/thresholds.js';
import { findingsFromLogits } from '../../src/outputs/findings.js';
import { type Adaptation, readAdaptation, readModelInfo, setAdaptation, setCalibration } from '../../src/models/metadata.js';
import { readModelFile, writeModelFile } from '../../src/onnx/index.js';
import { calibratedProbabilities, fitCalibration } from '../../src/outputs/calibration.js';
import { fileSource, runImages } from '../../src/safety/features.js';
import { adaptableLabels, adaptationRecord, applyPriorShift, estimatePrevalences, estimatePrior, labelPrevalence } from '../../src/safety/prior-shift.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

const IMAGES = 240;
let labels: string[];
let logits: Float64Array;
let targets: Float32Array;
let mask: Float32Array;
const dir = mkdtempSync(join(tmpdir(), 'cxr-prior-shift-'));

before(async () => {
  // The first 240 images of nih-cxr14-subset (one per patient) with their NIH labels, through the default model.
  const model = readModelFile(DEFAULT_MODEL_PATH);
  labels = readModelInfo(model).labels;
  const dataset = await readNihDataset({ csvPath: sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv'), imageRoot: sharedDataPath('nih-cxr14-subset', 'images') });
  const records = dataset.records.slice(0, IMAGES);
  const out = await runImages(model, records.map((r) => fileSource(r.imagePath)), { batchSize: 16, threads: 2 });
  logits = Float64Array.from(out.logits.data);
  const c = labels.length;
  targets = new Float32Array(records.length * c);
  mask = new Float32Array(records.length * c);
  records.forEach((r, i) => {
    for (let j = 0; j < c; j++) {
      targets[i * c + j] = r.labels[j] >= 0.5 ? 1 : 0;
      mask[i * c + j] = r.mask[j];
    }
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Rows of a [images, labels] array. */
function rows<T extends Float64Array | Float32Array>(values: T, keep: number[], c: number): T {
  const out = new (values.constructor as new (n: number) => T)(keep.length * c);
  keep.forEach((i, k) => out.set(values.subarray(i * c, (i + 1) * c), k * c));
  return out;
}

describe('EM prior shift on real logits', () => {
  it('recovers a known prevalence after resampling the images to it, and stays put without a shift', () => {
    const c = labels.length;
    // Calibrated on the same images (a Platt fit per finding), so the only difference in the resample below is the
    // prevalence: label shift by construction (p(image | label) unchanged), the assumption EM makes.
    const calibration = fitCalibration({ labels, logits, targets, mask }, 'platt', `${IMAGES} nih-cxr14-subset images`);
    const j = labels.indexOf('Effusion');
    assert.ok(calibration.values.Effusion, 'Effusion is calibrated on these images');
    const source = labelPrevalence(labels, targets, mask).Effusion;
    const probabilities = calibratedProbabilities(calibration, labels, logits);
    const column = (keep: number[]) => keep.map((i) => probabilities[i * c + j]);
    const all = Array.from({ length: IMAGES }, (_, i) => i);

    // No shift: on the fitting images EM's fixed point is their own prevalence (Platt's smoothed targets move the
    // mean probability a little off it: within 0.01 here).
    const same = estimatePrior(column(all), source);
    assert.ok(same.converged);
    assert.ok(Math.abs(same.prior - source) < 0.01, `${same.prior} against ${source}`);

    // Keep every positive and one negative in four: the prevalence rises from about 12% to about 35%.
    const positives = all.filter((i) => targets[i * c + j] === 1);
    const negatives = all.filter((i) => targets[i * c + j] === 0);
    const keep = [...positives, ...negatives.filter((_, k) => k % 4 === 0)];
    const truth = positives.length / keep.length;
    assert.ok(truth > 2 * source, `resampled prevalence ${truth} against ${source}`);
    const [estimate] = estimatePrevalences(labels, rows(probabilities, keep, c), { Effusion: source }, { resamples: 1000, seed: 0 });
    assert.equal(estimate.boundary, undefined);
    // It moves most of the way from the source prevalence to the truth, and its 95% interval covers the truth.
    assert.ok(Math.abs(estimate.prior - truth) < 0.5 * Math.abs(source - truth), `EM ${estimate.prior}, truth ${truth}, source ${source}`);
    assert.ok(estimate.lower! <= truth && truth <= estimate.upper!, `truth ${truth} outside [${estimate.lower}, ${estimate.upper}]`);
    assert.ok(Math.abs(estimate.delta - (Math.log(estimate.prior / (1 - estimate.prior)) - Math.log(source / (1 - source)))) < 1e-12);
    // The same seed gives the same interval.
    const again = estimatePrevalences(labels, rows(probabilities, keep, c), { Effusion: source }, { resamples: 1000, seed: 0 })[0];
    assert.deepEqual([again.lower, again.upper], [estimate.lower, estimate.upper]);
  });

  it('the adapted calibration and thresholds make the same decisions at a fixed-specificity threshold, with shifted probabilities', () => {
    const c = labels.length;
    const calibration = { ...fitCalibration({ labels, logits, targets, mask }, 'platt', 'fit'), prevalence: labelPrevalence(labels, targets, mask) };
    const probabilities = calibratedProbabilities(calibration, labels, logits);
    const rule = parseThresholdRule('specificity:0.9');
    const values: Record<string, number> = {};
    labels.forEach((label, j) => {
      if (!calibration.values[label]) return;
      const scores = Float64Array.from({ length: IMAGES }, (_, i) => probabilities[i * c + j]);
      const truth = Uint8Array.from({ length: IMAGES }, (_, i) => targets[i * c + j]);
      values[label] = chooseThreshold(scores, truth, rule).threshold;
    });
    const thresholds = { rule: 'specificity:0.9', source: 'fit', values };
    // The images of the first test, every positive of Effusion and one negative in four.
    const j = labels.indexOf('Effusion');
    const keep = Array.from({ length: IMAGES }, (_, i) => i).filter((i) => targets[i * c + j] === 1 || i % 4 === 0);
    const local = rows(logits, keep, c);
    const { labels: adaptable } = adaptableLabels(labels, calibration, calibration.prevalence, local);
    assert.ok(adaptable.length >= 3, `adaptable: ${adaptable.join(', ')}`);
    const estimates = estimatePrevalences(labels, calibratedProbabilities(calibration, labels, local), Object.fromEntries(adaptable.map((l) => [l, calibration.prevalence[l]])), { resamples: 0 });
    const applied = estimates.filter((e) => !e.boundary);
    assert.ok(applied.some((e) => e.label === 'Effusion' && e.delta > 0.5), 'Effusion shifted up');
    const adapted = applyPriorShift(calibration, thresholds, applied, 'test');
    let compared = 0;
    for (let i = 0; i < IMAGES; i++) {
      const before = findingsFromLogits(labels, logits, { calibration, thresholds }, i * c);
      const afterwards = findingsFromLogits(labels, logits, adapted, i * c);
      for (const e of applied) {
        const k = labels.indexOf(e.label);
        if (values[e.label] === undefined) continue;
        assert.equal(afterwards[k].decision, before[k].decision, `${e.label}, image ${i}`);
        // The probability is the prior-shifted one (Bayes' rule on the odds).
        const odds = (p: number) => p / (1 - p);
        assert.ok(Math.abs(Math.log(odds(afterwards[k].probability) / odds(before[k].probability)) - e.delta) < 1e-9);
        compared++;
      }
    }
    assert.ok(compared >= 3 * IMAGES);
    // The stored prevalence is now the estimate; the original objects are untouched.
    assert.equal(adapted.calibration.prevalence!.Effusion, applied.find((e) => e.label === 'Effusion')!.prior);
    assert.notEqual(calibration.prevalence.Effusion, adapted.calibration.prevalence!.Effusion);
  });

  it('the adaptation record round-trips through the model metadata, and a malformed one is an error naming the key', () => {
    const c = labels.length;
    const calibration = fitCalibration({ labels, logits, targets, mask }, 'platt', 'fit');
    const priors = labelPrevalence(labels, targets, mask);
    const estimates = estimatePrevalences(labels, calibratedProbabilities(calibration, labels, logits.subarray(0, 100 * c)), { Infiltration: priors.Infiltration, Effusion: priors.Effusion }, { resamples: 50, seed: 3 });
    const record: Adaptation = adaptationRecord(estimates, { rule: 'r', source: 's', values: { Effusion: 0.2 } }, { rule: 'r', source: 's', values: { Effusion: 0.3 } }, {
      data: '100 images',
      images: 100,
      rejected: 2,
      sourcePrior: 'test',
      interval: { level: 0.95, resamples: 50, seed: 3 },
      skipped: { Hernia: 'why' },
    });
    const model = { metadata: {} as Record<string, string> };
    assert.equal(readAdaptation(model), undefined);
    setAdaptation(model, record);
    assert.deepEqual(readAdaptation(model), JSON.parse(JSON.stringify(record)));
    assert.equal(readAdaptation(model)!.findings.Effusion.thresholdAfter, 0.3);
    model.metadata['cxr.adaptation'] = JSON.stringify({ ...record, findings: { Effusion: { prior: 'high' } } });
    assert.throws(() => readAdaptation(model, 'm.onnx'), /m\.onnx: metadata "cxr\.adaptation" gives "Effusion"/);
    setAdaptation(model, undefined);
    assert.equal(model.metadata['cxr.adaptation'], undefined);
  });
});

describe('cxr calibrate --unlabelled', () => {
  const cxr = (...args: string[]) => {
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' }, cwd: REPO_ROOT });
    return { code: run.status, stdout: run.stdout, stderr: run.stderr };
  };

  it('adapts the default model on a small real folder (nested), and `cxr info` shows the adaptation', () => {
    const folder = join(dir, 'site');
    mkdirSync(join(folder, 'ward'), { recursive: true });
    const names = readdirSync(sharedDataPath('nih-cxr14-subset2', 'images')).sort().slice(0, 24);
    names.forEach((name, i) => copyFileSync(sharedDataPath('nih-cxr14-subset2', 'images', name), join(folder, i % 2 ? 'ward' : '', name)));
    writeFileSync(join(folder, 'broken.png'), 'not a png');
    const out = join(dir, 'adapted.onnx');
    // The shipped model stores the prevalence its calibration was fitted at, and adapts from it directly.
    const direct = cxr('calibrate', '-m', DEFAULT_MODEL_PATH, '--unlabelled', folder, '-o', join(dir, 'direct.onnx'), '--resamples', '100', '-t', '2');
    assert.equal(direct.code, 0, direct.stderr);
    assert.match(readAdaptation(readModelFile(join(dir, 'direct.onnx')))!.sourcePrior, /^the calibration's stored prevalence/);
    // A model calibrated before the prevalence was stored is refused without labelled data, and adapts with them.
    const legacy = join(dir, 'legacy.onnx');
    const old = readModelFile(DEFAULT_MODEL_PATH);
    const { prevalence: _dropped, ...calibration } = readModelInfo(old).calibration!;
    setCalibration(old, calibration);
    writeModelFile(legacy, old);
    const refused = cxr('calibrate', '-m', legacy, '--unlabelled', folder, '-o', out);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /does not store the prevalence[\s\S]*--reference[\s\S]*--config/);
    const run = cxr('calibrate', '-m', legacy, '--config', join(REPO_ROOT, 'configs', 'default-model.yaml'), '--unlabelled', folder, '-o', out, '--resamples', '100', '-t', '2');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /images: 24 used, 0 rejected by the input checks, 1 unreadable/);
    assert.match(run.stdout, /finding\s+source prevalence\s+local prevalence \[95% CI\]\s+logit shift\s+threshold/);
    const adaptation = readAdaptation(readModelFile(out))!;
    assert.equal(adaptation.images, 24);
    assert.match(adaptation.sourcePrior, /validation split of .*default-model\.yaml/);
    assert.equal(Object.keys(adaptation.findings).length + Object.keys(adaptation.skipped ?? {}).length, 14);
    const info = cxr('info', out);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /adaptation\s+prevalence shift without labels .* on 24 images/);
    const json = JSON.parse(cxr('info', out, '--json').stdout);
    assert.deepEqual(json.adaptation, JSON.parse(JSON.stringify(adaptation)));
    // Too few usable images is a clear error.
    const few = cxr('calibrate', '-m', out, '--unlabelled', join(folder, 'ward'), '-o', join(dir, 'few.onnx'), '-t', '2');
    assert.notEqual(few.code, 0);
    assert.match(few.stderr, /only 12 usable images .* needs at least 20/);
    assert.match(cxr('calibrate', '--help').stdout, /--unlabelled[\s\S]*Saerens[\s\S]*\$ cxr calibrate --model .* --unlabelled/);
  });
});
