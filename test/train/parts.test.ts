/** Checkpoints, BatchNorm statistics for folded weights, merged datasets, the patient-metadata input. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { concatDatasets, readNihDataset } from '../../src/data/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { Predictor } from '../../src/inference/predictor.js';
import { importWeights } from '../../src/models/import/index.js';
import { encodeMetadata, METADATA_FEATURES } from '../../src/models/patient-metadata.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { identityBatchNorms, unfoldBatchNorms } from '../../src/train/batchnorm.js';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { preprocess } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-train-parts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('checkpoints', () => {
  it('round-trip the header and every vector exactly', () => {
    const file = join(dir, 'a.ckpt');
    const params = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i));
    writeCheckpoint(file, { epoch: 3, note: 'x' }, { params, odd: Float32Array.of(1, 2, 3) });
    const back = readCheckpoint(file);
    assert.deepEqual(back.header, { epoch: 3, note: 'x' });
    assert.deepEqual(back.vectors.params, params);
    assert.deepEqual(back.vectors.odd, Float32Array.of(1, 2, 3));
  });

  it('says what is wrong with a truncated file or another file', () => {
    const file = join(dir, 'b.ckpt');
    writeCheckpoint(file, { epoch: 1 }, { params: new Float32Array(100) });
    writeFileSync(join(dir, 'cut.ckpt'), readFileSync(file).subarray(0, 200));
    assert.throws(() => readCheckpoint(join(dir, 'cut.ckpt')), /cut\.ckpt: the checkpoint is truncated \(vector "params"\)/);
    writeFileSync(join(dir, 'other.ckpt'), 'hello');
    assert.throws(() => readCheckpoint(join(dir, 'other.ckpt')), /other\.ckpt: not a cxr-lens training checkpoint/);
  });
});

describe('BatchNorm statistics for folded weights', () => {
  it('measures them on real X-rays without changing what the model computes', async () => {
    const imported = importWeights(readFileSync(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx')), 'mobilenet.onnx', { newHead: true, height: 128 });
    assert.equal(identityBatchNorms(imported.model).length, 52);
    const names = ['00000001_000.png', '00000001_001.png', '00000001_002.png', '00000002_000.png'];
    const images = await Promise.all(names.map((n) => decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images-1024', n))));
    const tensor = float32([images.length, 3, 128, 128]);
    const modelSpec = { height: 128, width: 128, channels: 3 as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'pad' as const };
    images.forEach((image, i) => tensor.data.set(preprocess(image, modelSpec).tensor.data, i * 3 * 128 * 128));
    const before = await run(imported.model, tensor);
    const result = await unfoldBatchNorms(imported.model, [{ image: tensor }], 1);
    assert.equal(result.layers.length, 52);
    assert.equal(result.images, 4);
    assert.deepEqual(identityBatchNorms(imported.model), []);
    const weight = imported.model.graph.initializers.get('features.0.1.weight')?.data as Float32Array;
    assert.ok(weight.some((w) => Math.abs(w - 1) > 0.01), 'the scales now carry the measured spread');
    const afterwards = await run(imported.model, tensor);
    assert.ok(relativeError(afterwards, before) < 1e-4, `inference changed by ${relativeError(afterwards, before)}`);
  });
});

describe('datasets and metadata', () => {
  it("joins NIH's subset and its 64 px set into one dataset, and refuses an image counted twice", async () => {
    const subset = await readNihDataset({ csvPath: sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv'), imageRoot: sharedDataPath('nih-cxr14-subset', 'images') });
    const small = await readNihDataset({ csvPath: sharedDataPath('nih-cxr14-64px', 'labels.csv'), imageRoot: sharedDataPath('nih-cxr14-64px', 'images') });
    // Four images (of four patients) are in both sets, with the same labels.
    assert.throws(() => concatDatasets([subset, small]), /image "00000075_000\.png" appears in .*nih-cxr14-subset\/Data_Entry\.csv \(row 1\) and in .*nih-cxr14-64px\/labels\.csv \(row \d+\)/);
    const all = concatDatasets([subset, small], { duplicates: 'keep-first' });
    assert.equal(all.records.length, 1396);
    const dropped = all.report.warnings.filter((w) => w.endsWith('the second copy is left out'));
    assert.equal(dropped.length, 4);
    assert.equal(all.records.find((r) => r.id === '00000075_000.png')?.imagePath, sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png'));
  });

  it('encodes age, sex and view with explicit missing flags', () => {
    assert.deepEqual([...encodeMetadata({ age: 58, sex: 'F', view: 'PA' })], [0.58, 0, 0, 1, 0, 1, 0, 0, 0].map(Math.fround));
    assert.deepEqual([...encodeMetadata(undefined)], [0, 1, 0, 0, 1, 0, 0, 0, 1]);
    assert.equal(METADATA_FEATURES.length, 9);
  });

  it('a model with a metadata input uses what a DICOM carries and still runs on a PNG without any', async () => {
    const model = buildModel('mobilenet_v2', { height: 64, metadata: true });
    const head = model.graph.initializers.get('metadata_head.weight')?.data as Float32Array;
    head.fill(0);
    head[0] = 10; // Atelectasis's logit rises by 10 x age/100
    const predictor = await Predictor.create(model, { threads: 1 });
    try {
      const dicom = await decodeImageFile(sharedDataPath('dicom', 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm'));
      const png = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png'));
      assert.ok(dicom.metadata.patientAge !== undefined, 'the NIH DICOM states the age');
      const [withAge] = await predictor.predict([dicom]);
      const [stripped] = await predictor.predict([{ ...dicom, metadata: {} }]);
      const shift = withAge.findings[0].logit - stripped.findings[0].logit;
      assert.ok(Math.abs(shift - (10 * (dicom.metadata.patientAge as number)) / 100) < 1e-4, `age moved the logit by ${shift}`);
      const [fromPng] = await predictor.predict([png]);
      assert.equal(fromPng.findings.length, 14);
    } finally {
      await predictor.close();
    }
  });
});

async function run(model: Parameters<typeof OrtSession.create>[0], image: ReturnType<typeof float32>): Promise<Float32Array> {
  const session = await OrtSession.create(model, { threads: 1 });
  try {
    return (await session.run({ image }, ['logits'])).logits.data as Float32Array;
  } finally {
    await session.release();
  }
}
