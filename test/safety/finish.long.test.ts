/**
 * The end of a training run ships a calibrated model with input checks: finishRun on a model (ImageNet MobileNetV2,
 * 64 px, its classifier untrained: the weights do not matter to what is checked here) over NIH's 64 px images
 * split by patient as `cxr train` splits them. The card reports ECE before and after, the thresholds' sensitivity
 * re-computed, the checks' thresholds and their measured AUROCs; the written model carries all of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importWeights } from '../../src/models/import/index.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile, writeModelFile } from '../../src/onnx/index.js';
import { resolveConfig } from '../../src/train/config.js';
import { readDatasets, splitData } from '../../src/train/data.js';
import { type ModelCard, finishRun } from '../../src/train/finish.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-safety-finish-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let card: ModelCard;
let markdown: string;

before(async () => {
  const config = resolveConfig({
    datasets: [{ format: 'nih', csv: sharedDataPath('nih-cxr14-64px', 'labels.csv'), images: sharedDataPath('nih-cxr14-64px', 'images') }],
    labels: ['Cardiomegaly', 'Effusion', 'Infiltration', 'Atelectasis'],
    model: { architecture: 'mobilenet_v2', size: 64 },
    threads: 2,
    cacheDir: join(dir, 'cache'),
  });
  const data = await splitData(await readDatasets(config), config);
  const { model } = importWeights(readFileSync(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx')), 'mobilenetv2-12-int8.onnx', {
    newHead: true,
    labels: config.labels as string[],
    height: 64,
    width: 64,
  });
  const best = join(dir, 'best.onnx');
  writeModelFile(best, model);
  const outcome = { status: 'completed' as const, bestModelPath: best, bestEpoch: 0, history: [], data, start: { weights: 'imported', notes: [] } };
  ({ card } = await finishRun(outcome, config, dir, () => {}));
  markdown = readFileSync(join(dir, 'model-card.md'), 'utf8');
});

describe('finishRun', () => {
  it('calibrates on the validation split and reports the ECE before and after there and on the test split', () => {
    const ece = card.calibration.ece ?? [];
    assert.deepEqual(ece.map((e) => e.data.replace(/\(\d+ images, \d+ patients\)/, '(n)')), ['validation split (n) (the fitting data)', 'test split (n) (held out)']);
    for (const e of ece) assert.ok(Number.isFinite(e.before) && Number.isFinite(e.after));
    assert.match(markdown, /## Calibration\n[\s\S]*\| data \| mean ECE before \| mean ECE after \|/);
  });

  it('chooses thresholds on the calibrated validation probabilities, each reproduced through the run-time code', () => {
    assert.match(card.thresholds.source, /^validation split \(\d+ images, \d+ patients\), on calibrated probabilities$/);
    assert.deepEqual(card.operatingPoints.map((p) => p.label), Object.keys(card.thresholds.values));
    for (const p of card.operatingPoints) assert.deepEqual(p.reproduced, p.stated, p.label);
    // The validation table of the card is evaluated at exactly the stored thresholds.
    for (const k of card.metrics.validation.classes) if (k.threshold) assert.equal(k.threshold.value, card.thresholds.values[k.label]);
  });

  it('fits the input checks and measures them on turned, inverted, cropped, blank and noise images of test patients', () => {
    assert.deepEqual(
      card.inputChecks.checks.map((c) => `${c.code} ${c.score}`),
      [
        'not-chest-xray ood',
        'not-chest-xray ood',
        'not-chest-xray layout',
        'not-chest-xray layout',
        'not-chest-xray spread',
        'not-chest-xray smoothness',
        'not-chest-xray doubts',
        'rotated orientation:rotated',
        'inverted orientation:inverted',
        'mirrored orientation:mirrored',
        'not-chest-xray colourfulness',
        'blank spread',
        'not-chest-xray smoothness',
        'too-small shorterSide',
      ],
    );
    const measured = card.inputChecks.measured ?? [];
    assert.match(measured[0].kind, /^real frontal chest X-rays, held out \(test split/);
    for (const kind of [/rotated 90/, /rotated 180/, /rotated 270/, /mirrored/, /inverted$/, /cropped/, /^blank/, /^uniform noise/]) {
      const m = measured.find((k) => kind.test(k.kind));
      assert.ok(m && m.images > 0 && Number.isFinite(m.aurocs.ood) && Number.isFinite(m.aurocs['orientation:rotated']), `${kind} measured`);
    }
    assert.match(markdown, /## Input checks\n[\s\S]*\| input \| images \| rejected \| warned \| AUROC not-chest-xray \(ood\) \|/);
  });

  it('writes the model with its calibration, thresholds and checks, which read back as the card says', () => {
    const info = readModelInfo(readModelFile(join(dir, 'model.onnx')));
    assert.deepEqual(info.thresholds, card.thresholds);
    assert.deepEqual(info.calibration, card.calibration);
    assert.deepEqual(info.safety, card.inputChecks);
  });
});
