/**
 * Training end to end on real NIH images: an ImageNet MobileNetV2 learns something on held-out patients, an
 * interrupted run resumes exactly (dropout and patient metadata included), and the saved model is the trained one.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { resolveConfig } from '../../src/train/config.js';
import { finishRun } from '../../src/train/finish.js';
import { train } from '../../src/train/trainer.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Both NIH sets (664 patients): the 64 px set alone has so few patients that a validation split of it is noise.
const DATASETS = [
  { format: 'nih', csv: sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv'), images: sharedDataPath('nih-cxr14-subset', 'images') },
  { format: 'nih', csv: sharedDataPath('nih-cxr14-64px', 'labels.csv'), images: sharedDataPath('nih-cxr14-64px', 'images') },
];

const recipe = (overrides: Record<string, unknown> = {}) =>
  resolveConfig({
    datasets: DATASETS,
    model: { architecture: 'mobilenet_v2', pretrained: sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), size: 128 },
    optimizer: { kind: 'adamw', lr: 0.003 },
    loss: { kind: 'bce', posWeight: 'auto' },
    epochs: 2,
    batchSize: 32,
    freeze: { headEpochs: 2, then: 'all' },
    threads: 2,
    cacheDir: join(dir, 'cache'),
    ...overrides,
  });

interface LogLine {
  event: string;
  globalStep?: number;
  loss?: number;
}

const steps = (run: string) =>
  readFileSync(join(run, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.event === 'step');

describe('cxr train on real NIH images', () => {
  it('learns above chance on held-out patients and writes a model card with thresholds', async () => {
    const config = recipe();
    const out = join(dir, 'full');
    const outcome = await train({ config, outDir: out });
    assert.equal(outcome.status, 'completed');
    assert.equal(outcome.history.length, 2);
    const best = outcome.history[outcome.bestEpoch].validationMeanAuroc;
    assert.ok(best > 0.6, `validation mean AUROC ${best} (about 0.67 when this test was written)`);
    const { card } = await finishRun(outcome, config, out, () => {});
    const validation = card.metrics.validation.summary;
    assert.ok(validation.meanAurocBootstrap && validation.meanAurocBootstrap.lower > 0.5, `validation 95% CI ${JSON.stringify(validation.meanAurocBootstrap)}`);
    const info = readModelInfo(readModelFile(join(out, 'model.onnx')));
    // Every finding either has a threshold or says why not (fewer than 10 validation positives or negatives).
    const thresholds = info.thresholds!;
    const decided = Object.keys(thresholds.values);
    const withheld = Object.keys(thresholds.withheld ?? {});
    assert.deepEqual([...decided, ...withheld].sort(), [...info.labels].sort());
    for (const label of withheld) assert.match(thresholds.withheld![label], /positive|negative|no threshold/, label);
    for (const label of decided) assert.ok(card.metrics.validation.classes.find((k) => k.label === label)!.positives >= 10, `${label} has a threshold from 10 or more positives`);
    assert.match(readFileSync(join(out, 'model-card.md'), 'utf8'), /NOT FOR CLINICAL USE/);
  });

  it('an interrupted run resumes at the same step and continues exactly', async () => {
    // Head first, then everything, with dropout and the patient-metadata input: 64 px keeps it quick.
    const config = recipe({
      model: { architecture: 'mobilenet_v2', pretrained: sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), size: 64, metadata: true },
      freeze: { headEpochs: 1, then: 'all' },
      optimizer: { kind: 'adamw', lr: 0.001 },
    });
    const reference = join(dir, 'reference');
    await train({ config, outDir: reference });
    assert.equal(readModelInfo(readModelFile(join(reference, 'best.onnx'))).io.metadata, 'metadata', 'the pretrained backbone keeps the asked metadata input');
    const out = join(dir, 'interrupted');
    const controller = new AbortController();
    const first = await train({
      config,
      outDir: out,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.epoch === 1 && e.step === 5) controller.abort();
      },
    });
    assert.equal(first.status, 'interrupted');
    await assert.rejects(train({ config, outDir: out }), /already holds a training run; continue it with --resume/);
    await assert.rejects(train({ config: { ...config, seed: 7 }, outDir: out, resume: true }), /these settings differ: seed/);
    const resumed = await train({ config, outDir: out, resume: true });
    assert.equal(resumed.status, 'completed');
    const a = steps(reference);
    const b = steps(out);
    assert.deepEqual(b.map((s) => s.globalStep), a.map((s) => s.globalStep), 'every step once, in order');
    b.forEach((s, i) => assert.ok(Math.abs((s.loss ?? 0) - (a[i].loss ?? 0)) < 1e-5, `step ${s.globalStep}: ${s.loss} vs ${a[i].loss}`));
  });
});
