/** Training recipes: defaults, overrides, and errors that name the field. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_AUGMENTATION } from '../../src/imaging/index.js';
import { applyOverride, readConfigFile, resolveConfig } from '../../src/train/config.js';
import { LearningRateSchedule } from '../../src/train/schedule.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('training recipes', () => {
  it('fills every default and resolves paths relative to the recipe file', () => {
    const file = join(dir, 'recipe.yaml');
    writeFileSync(file, 'datasets:\n  - format: nih\n    csv: data/labels.csv\n    images: data/images\nmodel:\n  architecture: mobilenet_v2\n  pretrained: weights.onnx\n');
    const config = resolveConfig(readConfigFile(file), file);
    assert.equal(config.datasets[0].csv, join(dir, 'data', 'labels.csv'));
    assert.equal(config.model.pretrained, join(dir, 'weights.onnx'));
    assert.deepEqual(config.model, { architecture: 'mobilenet_v2', pretrained: join(dir, 'weights.onnx'), size: 224, channels: 3, resize: 'pad', metadata: false });
    assert.deepEqual(config.optimizer, { kind: 'adamw', lr: 1e-4, weightDecay: 1e-4 });
    assert.deepEqual(config.augmentation, DEFAULT_AUGMENTATION);
    assert.deepEqual(config.split, { method: 'patient', train: 0.7, validation: 0.15, test: 0.15 });
  });

  it('applies dotted overrides as JSON values where they parse', () => {
    const raw: Record<string, unknown> = { datasets: [{ format: 'nih', csv: 'x.csv' }] };
    applyOverride(raw, 'optimizer.kind', 'sgd');
    applyOverride(raw, 'optimizer.lr', '0.05');
    applyOverride(raw, 'freeze.then', '3');
    const config = resolveConfig(raw);
    assert.deepEqual(config.optimizer, { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    assert.deepEqual(config.freeze, { headEpochs: 0, then: 3 });
  });

  it('names each wrong field', () => {
    const bad = {
      datasets: [{ format: 'dicom-folder', csv: 'x.csv' }],
      model: { architecture: 'vgg16', size: 16 },
      optimizer: { kind: 'adamw', lr: -1 },
      epochs: 0,
      typo: true,
    };
    assert.throws(
      () => resolveConfig(bad, 'recipe.yaml'),
      (e: Error) =>
        e.message.startsWith('recipe.yaml is not a valid training recipe:') &&
        /datasets\.0\.format: must be one of "nih", "chexpert", "csv"/.test(e.message) &&
        /model\.architecture: must be one of "densenet121"/.test(e.message) &&
        /model\.size: must be >= 32/.test(e.message) &&
        /epochs: must be >= 1/.test(e.message) &&
        /\(top level\): unknown setting "typo"/.test(e.message),
    );
    assert.throws(() => resolveConfig({}), /\(top level\): needs "datasets"/);
  });

  it('reports unreadable and unparsable recipe files by name', () => {
    assert.throws(() => readConfigFile(join(dir, 'missing.yaml')), /missing\.yaml: cannot read the config \(ENOENT\)/);
    writeFileSync(join(dir, 'broken.json'), '{ "epochs": ');
    assert.throws(() => readConfigFile(join(dir, 'broken.json')), /broken\.json: not valid JSON/);
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    assert.throws(() => readConfigFile(join(dir, 'list.yaml')), /list\.yaml: the config must be a mapping of settings/);
  });
});

describe('learning-rate schedules', () => {
  it('cosine: linear warm-up, then down to the floor at the last step', () => {
    const s = new LearningRateSchedule({ type: 'cosine', warmupEpochs: 1, minLr: 0.1 }, 1, 40, 10);
    assert.equal(s.at(0), 0.1);
    assert.equal(s.at(9), 1);
    assert.equal(s.at(10), 1);
    assert.ok(Math.abs(s.at(25) - 0.55) < 1e-12, 'half way down: (1 + 0.1) / 2');
    assert.ok(Math.abs(s.at(40) - 0.1) < 1e-12);
  });

  it('reduce-on-plateau: cuts the rate after `patience` epochs without improvement, and resumes from its state', () => {
    const s = new LearningRateSchedule({ type: 'plateau', factor: 0.5, patience: 1, minLr: 0.2 }, 1, 100, 10);
    for (const metric of [0.6, 0.7, 0.69]) s.epochEnd(metric);
    assert.equal(s.at(0), 1);
    s.epochEnd(0.68);
    assert.equal(s.at(0), 0.5);
    const copy = new LearningRateSchedule({ type: 'plateau', factor: 0.5, patience: 1, minLr: 0.2 }, 1, 100, 10);
    copy.load(s.state());
    for (const metric of [0.1, 0.1, 0.1, 0.1]) {
      s.epochEnd(metric);
      copy.epochEnd(metric);
    }
    assert.equal(copy.at(0), s.at(0));
    assert.equal(s.at(0), 0.2, 'never below minLr');
  });
});
