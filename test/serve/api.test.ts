/** The HTTP API on real NIH images and a real DICOM: shapes (checked against the OpenAPI document) and numbers. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadModel } from '../../src/api.js';
import { NIH_FINDINGS } from '../../src/data/labels.js';
import { Explainer, EXPLANATION_METHODS } from '../../src/explain/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { Predictor } from '../../src/inference/predictor.js';
import { OPENAPI_DOCUMENT, type AnalyzeResponse, type ModelCard } from '../../src/serve/index.js';
import { assertMatchesSpec, DICOM_IMAGE, makeTestModel, NIH_IMAGE, postForm, startServer } from './helpers.js';

const modelPath = makeTestModel();
const logs = new PassThrough();
const logLines: string[] = [];
logs.on('data', (chunk: Buffer) => logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
const uploads = mkdtempSync(join(tmpdir(), 'cxr-uploads-'));
let server: Awaited<ReturnType<typeof startServer>>;
const png = new Uint8Array(readFileSync(NIH_IMAGE));

before(async () => {
  server = await startServer({ modelPath, workers: 2, logLevel: 'info', logStream: logs, saveUploadsTo: uploads });
});
after(() => server.app.close());

describe('cxr serve API', () => {
  it('GET /api/v1/model: the model card of the loaded file, with the weights description and no thresholds', async () => {
    const response = await fetch(`${server.url}/api/v1/model`);
    const card = (await response.json()) as ModelCard;
    assert.equal(response.status, 200);
    assertMatchesSpec('/api/v1/model', 'get', 200, card);
    const { info } = loadModel(modelPath);
    assert.deepEqual(card.labels, [...NIH_FINDINGS]);
    assert.equal(card.architecture, 'mobilenet_v2');
    assert.equal(card.weights, info.weights);
    assert.match(card.weights, /new classifier head/);
    assert.deepEqual(card.preprocessing, info.preprocessing);
    assert.deepEqual(card.explanationMethods, [...EXPLANATION_METHODS]);
    assert.equal(card.thresholds, null);
  });

  it('serves the model file itself (for private mode), matching the card sha256', async () => {
    const card = (await (await fetch(`${server.url}/api/v1/model`)).json()) as ModelCard;
    const response = await fetch(`${server.url}${card.modelUrl}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(response.status, 200);
    assert.equal(bytes.length, card.bytes);
    const { createHash } = await import('node:crypto');
    assert.equal(createHash('sha256').update(bytes).digest('hex'), card.sha256);
  });

  it('GET /healthz and the OpenAPI document', async () => {
    const health = await fetch(`${server.url}/healthz`);
    const body = (await health.json()) as { status: string; pool: { workers: number } };
    assert.equal(health.status, 200);
    assertMatchesSpec('/healthz', 'get', 200, body);
    assert.equal(body.status, 'ok');
    assert.equal(body.pool.workers, 2);
    const doc = await (await fetch(`${server.url}/api/v1/openapi.json`)).json();
    assert.deepEqual(doc, JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
  });

  it('POST /api/v1/analyze (no heatmaps): the same probabilities as the library in process, no made-up decisions', async () => {
    const { status, headers, body } = await postForm(server.url, [
      { name: 'image', value: png, filename: '00000075_000.png' },
      { name: 'heatmap', value: 'none' },
    ]);
    assert.equal(status, 200, JSON.stringify(body));
    assertMatchesSpec('/api/v1/analyze', 'post', 200, body);
    const analysis = body as AnalyzeResponse;
    assert.equal(headers.get('x-request-id'), analysis.requestId);
    assert.deepEqual(analysis.findings.map((f) => f.name), [...NIH_FINDINGS]);
    assert.deepEqual(analysis.explanations, []);
    assert.deepEqual(analysis.inputFlags, []);
    assert.deepEqual([analysis.image.width, analysis.image.height, analysis.image.format], [512, 512, 'png']);
    const { model } = loadModel(modelPath);
    const predictor = await Predictor.create(model, { threads: 1, batchSize: 1 });
    const [reference] = await predictor.predict([await decodeImageFile(NIH_IMAGE)]);
    await predictor.close();
    analysis.findings.forEach((f, i) => {
      assert.ok(Math.abs(f.probability - reference.findings[i].probability) < 1e-7, `${f.name}: ${f.probability} vs ${reference.findings[i].probability}`);
      assert.equal(f.threshold, null);
      assert.equal(f.decision, null);
    });
  });

  it('heatmaps: overlay PNGs at the image size and raw maps equal to the in-process Explainer', async () => {
    const { status, body } = await postForm(server.url, [
      { name: 'image', value: png, filename: 'chest.png' },
      { name: 'findings', value: 'Effusion,Mass' },
      { name: 'methods', value: 'occlusion' },
      { name: 'heatmap', value: 'both' },
      { name: 'colormap', value: 'inferno' },
    ]);
    assert.equal(status, 200, JSON.stringify(body));
    assertMatchesSpec('/api/v1/analyze', 'post', 200, body);
    const [explanation] = (body as AnalyzeResponse).explanations;
    assert.equal(explanation.method, 'occlusion');
    assert.deepEqual(explanation.maps.map((m) => m.finding), ['Effusion', 'Mass']);
    const { model } = loadModel(modelPath);
    const explainer = await Explainer.create(model, { threads: 1 });
    const reference = await explainer.explain(await decodeImageFile(NIH_IMAGE), { findings: ['Effusion', 'Mass'], method: 'occlusion' });
    await explainer.close();
    assert.deepEqual(explanation.geometry, reference.geometry);
    for (const [i, map] of explanation.maps.entries()) {
      const meta = await sharp(Buffer.from(map.overlayPng!.replace(/^data:image\/png;base64,/, ''), 'base64')).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', 512, 512]);
      const bytes = Buffer.from(map.raw!.data, 'base64');
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      assert.deepEqual([map.raw!.width, map.raw!.height, values.length], [224, 224, 224 * 224]);
      const expected = reference.findings[i].map.data;
      let worst = 0;
      for (let k = 0; k < values.length; k++) worst = Math.max(worst, Math.abs(values[k] - expected[k]));
      assert.ok(worst < 1e-5, `${map.finding}: raw map differs from the in-process map by ${worst}`);
      assert.ok(values.some((v) => v !== 0), `${map.finding}: the map is all zero`);
    }
  });

  it('a real DICOM (JPEG 2000, MONOCHROME1) is decoded, inverted and analysed', async () => {
    const { status, body } = await postForm(server.url, [
      { name: 'image', value: new Uint8Array(readFileSync(DICOM_IMAGE)), filename: 'chest.dcm' },
      { name: 'heatmap', value: 'none' },
    ]);
    assert.equal(status, 200, JSON.stringify(body));
    assertMatchesSpec('/api/v1/analyze', 'post', 200, body);
    assert.equal(body.image.format, 'dicom');
    assert.equal(body.image.metadata.photometric, 'MONOCHROME1');
    assert.equal(body.image.metadata.inverted, true);
    assert.equal(body.findings.length, 14);
  });

  it('keeps a plain X-Request-Id from the client, and logs each request as JSON with its id', async () => {
    const { status, headers, body } = await postForm(server.url, [{ name: 'image', value: png, filename: 'a.png' }, { name: 'heatmap', value: 'none' }], { 'x-request-id': 'study-42.img-1' });
    assert.equal(status, 200);
    assert.equal(body.requestId, 'study-42.img-1');
    assert.equal(headers.get('x-request-id'), 'study-42.img-1');
    const entries = logLines.map((line) => JSON.parse(line) as { reqId?: string; msg: string; timings?: object });
    const analysed = entries.find((e) => e.reqId === 'study-42.img-1' && e.msg === 'analysed');
    assert.ok(analysed?.timings, 'an "analysed" log entry with timings');
    assert.ok(entries.some((e) => e.reqId === 'study-42.img-1' && e.msg === 'request completed'));
  });

  it('writes uploads to disk only where configured: here, one file per decoded upload, named by a server-generated id', async () => {
    const before = new Set(readdirSync(uploads));
    const { status } = await postForm(server.url, [{ name: 'image', value: png, filename: 'b.png' }, { name: 'heatmap', value: 'none' }]);
    assert.equal(status, 200);
    const added = readdirSync(uploads).filter((f) => !before.has(f));
    assert.equal(added.length, 1);
    assert.match(added[0], /^[0-9a-f-]{36}\.png$/);
    assert.deepEqual(new Uint8Array(readFileSync(join(uploads, added[0]))), png);
  });
});

describe('cxr serve without an uploads folder', () => {
  it('writes nothing to the temporary folder while analysing', async () => {
    // A temporary folder of its own (this test file runs in its own process), so other tests cannot disturb it.
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'cxr-tmp-'));
    const plain = await startServer({ modelPath, workers: 1 });
    try {
      const { status } = await postForm(plain.url, [{ name: 'image', value: png, filename: 'c.png' }, { name: 'heatmap', value: 'png' }]);
      assert.equal(status, 200);
      assert.deepEqual(readdirSync(tmpdir()), []);
    } finally {
      await plain.app.close();
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  });
});
