/**
 * The queue as a library, on a real redis-server and real NIH films: a batch scored by a worker gives exactly what
 * `cxr predict` gives; a corrupt image lands in the failures (and BullMQ's failed set) with the decoder's message
 * while the rest complete; submitting again does no work twice; a worker with another model file refuses the
 * batch; heatmaps drawn in jobs; an unreachable Redis is a clear error after retries.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEFAULT_MODEL_PATH, createPredictor, loadModel } from '../../src/api.js';
import { Explainer, renderHeatmap } from '../../src/explain/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { toCsv } from '../../src/cli/commands/predict.js';
import { listImageFiles, predictFiles } from '../../src/inference/files.js';
import { BatchWorker, QUEUE_NAME, type WorkerEvent, batchResults, heatmapFindings, batchStatus, connectRedis, listBatchSources, submitBatch } from '../../src/queue/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { RedisServer } from './redis.js';

const NIH = ['00000075_000.png', '00000100_000.png', '00000129_000.png', '00000211_000.png', '00000353_000.png', '00000404_000.png'];
const dir = mkdtempSync(join(tmpdir(), 'cxr-queue-'));
const images = join(dir, 'images');
const otherModel = join(dir, 'other.onnx');
let server: RedisServer;
let redis: Redis;

before(async () => {
  mkdirSync(images);
  for (const name of NIH) copyFileSync(sharedDataPath('nih-cxr14-subset', 'images', name), join(images, name));
  writeFileSync(join(images, 'corrupt.png'), Buffer.from('this is not an image, only text with a .png name'));
  // The same network with one more doc_string field (protobuf: the last one wins): a valid model, another file.
  writeFileSync(otherModel, Buffer.concat([readFileSync(DEFAULT_MODEL_PATH), Buffer.from([0x32, 0x01, 0x78])]));
  server = await RedisServer.start();
  redis = await connectRedis(server.url);
});
/** Workers and connections still open when a test fails: closed in after(), so the test process can end. */
const open: { worker: BatchWorker; connection: Redis }[] = [];
after(async () => {
  for (const { worker, connection } of open) {
    await worker.close(true).catch(() => {});
    connection.disconnect();
  }
  redis?.disconnect();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs an in-process worker until the queue is empty; what it reported. */
async function work(options: { modelPath?: string } = {}): Promise<WorkerEvent[]> {
  const events: WorkerEvent[] = [];
  const connection = await connectRedis(server.url);
  const worker = await BatchWorker.start(connection, { threads: 1, concurrency: 2, modelPath: options.modelPath, onEvent: (e) => events.push(e) });
  open.push({ worker, connection });
  await worker.whenIdle(200);
  await worker.close();
  connection.disconnect();
  open.pop();
  return events;
}

describe('batch queue', { timeout: 120_000 }, () => {
  it('scores a folder as cxr predict does; the corrupt image fails with the decoder\'s message and the rest complete', async () => {
    const files = await listBatchSources(images);
    assert.equal(files.length, NIH.length + 1);
    const submitted = await submitBatch(redis, { batch: 'b1', files, attempts: 2, backoffMs: 50 });
    assert.deepEqual([submitted.total, submitted.queued, submitted.done, submitted.retried], [7, 7, 0, 0]);
    const events = await work();
    assert.equal(events.filter((e) => e.event === 'completed').length, NIH.length);
    const failedEvents = events.filter((e) => e.event === 'failed');
    assert.deepEqual(failedEvents.map((e) => e.event === 'failed' && e.final), [false, true], 'retried once, then kept');

    const status = await batchStatus(redis, 'b1');
    assert.deepEqual([status.total, status.done, status.failed, status.pending], [7, 6, 1, 0]);
    assert.equal(status.failures[0].file, join(images, 'corrupt.png'));
    assert.match(status.failures[0].reason, /unrecognised image format \(not PNG, JPEG or DICOM/);
    assert.equal(status.failures[0].attempts, 2);
    assert.ok(status.perSecond && status.perSecond > 0 && status.etaSeconds === 0);
    // BullMQ's failed set is the dead-letter list: the job is there with the same reason.
    const queue = new Queue(QUEUE_NAME, { connection: redis });
    const dead = await queue.getFailed();
    await queue.close();
    assert.deepEqual(dead.map((j) => [j.id, j.failedReason]), [[status.failures[0].job, status.failures[0].reason]]);
    for (const e of events) assert.ok(!JSON.stringify(e).includes('.png'), 'events name jobs, never files');

    // The same numbers, rows and columns as cxr predict on the same files (its error text names the file instead).
    const predictor = await createPredictor(undefined, { threads: 1 });
    const expected = await predictFiles(predictor, listImageFiles([images]).map((f) => join(f)));
    await predictor.close();
    const results = await batchResults(redis, 'b1');
    assert.deepEqual(results.map((r) => r.file), files);
    for (const [i, r] of results.entries()) {
      if (expected[i].error) continue;
      assert.deepEqual(r.prediction?.findings, expected[i].prediction?.findings, r.file);
      assert.equal(r.prediction?.verdict, expected[i].prediction?.verdict);
    }
    const ours = toCsv(results, status.labels).split('\n');
    const theirs = toCsv(expected, status.labels).split('\n');
    assert.equal(ours.length, theirs.length);
    for (const [i, line] of ours.entries()) if (!line.includes('corrupt.png')) assert.equal(line, theirs[i]);
  });

  it('submitting the same batch again does no work twice; only the failed image goes round again', async () => {
    const files = await listBatchSources(images);
    const again = await submitBatch(redis, { batch: 'b1', files });
    assert.deepEqual([again.queued, again.done, again.retried], [0, 6, 1]);
    const events = await work();
    assert.equal(events.filter((e) => e.event === 'completed').length, 0, 'no image scored twice');
    assert.equal(events.filter((e) => e.event === 'failed').length, 2, 'its tries start again, as submitted');
    const status = await batchStatus(redis, 'b1');
    assert.deepEqual([status.done, status.failed, status.pending], [6, 1, 0]);
    assert.equal(await redis.hlen('cxr:batch:b1:results'), 6);
    // A batch's images and model are fixed when it is first submitted.
    await assert.rejects(submitBatch(redis, { batch: 'b1', files: files.slice(1) }), /b1 already holds 7 other images/);
    await assert.rejects(submitBatch(redis, { batch: 'b1', files, modelPath: otherModel }), /b1 was submitted for model sha256 [0-9a-f]{12}…, not this one/);
  });

  it('a worker with another model file refuses the batch: nothing is scored with the wrong model', async () => {
    const files = (await listBatchSources(images)).filter((f) => !f.endsWith('corrupt.png'));
    await submitBatch(redis, { batch: 'other-model', files, modelPath: otherModel, attempts: 3, backoffMs: 50 });
    const events = await work();
    assert.equal(events.filter((e) => e.event === 'completed').length, 0);
    const status = await batchStatus(redis, 'other-model');
    assert.deepEqual([status.done, status.failed, status.pending], [0, files.length, 0]);
    for (const f of status.failures) {
      assert.match(f.reason, /^refused: the batch is for model sha256 [0-9a-f]{12}…, this worker has [0-9a-f]{12}…/);
      assert.equal(f.attempts, 1, 'refused at once, not retried');
    }
    // The right worker, after the batch is submitted again, scores it.
    const again = await submitBatch(redis, { batch: 'other-model', files, modelPath: otherModel });
    assert.equal(again.retried, files.length);
    await work({ modelPath: otherModel });
    assert.deepEqual((await batchStatus(redis, 'other-model')).done, files.length);
  });

  it('heatmaps in a job: an overlay per positive finding, the bytes `cxr explain`\'s library draws', async () => {
    const files = (await listBatchSources(images)).filter((f) => !f.endsWith('corrupt.png'));
    const out = join(dir, 'heatmaps');
    await submitBatch(redis, { batch: 'maps', files, heatmaps: { method: 'gradcam', out } });
    await work();
    const results = await batchResults(redis, 'maps');
    assert.equal(results.length, files.length);
    const { model } = loadModel();
    const explainer = await Explainer.create(model, { threads: 1 });
    let overlays = 0;
    for (const [index, r] of results.entries()) {
      const prediction = r.prediction!;
      assert.equal(r.heatmaps?.folder, join(out, `${index}-${basename(r.file, '.png')}`));
      assert.deepEqual(Object.keys(r.heatmaps.files).sort(), heatmapFindings(prediction).sort());
      for (const [finding, file] of Object.entries(r.heatmaps.files)) {
        const image = await decodeImageFile(r.file);
        const explanation = await explainer.explain(image, { findings: [finding], method: 'gradcam' });
        assert.deepEqual(readFileSync(join(r.heatmaps.folder, file)), Buffer.from(await renderHeatmap(image, explanation, explanation.findings[0])), file);
        overlays++;
      }
    }
    await explainer.close();
    assert.ok(overlays > 0, 'some film has a positive finding');
  });

  it('a DICOM film: its result keeps the Study, Series and SOP Instance UIDs (in --jsonl) that tie it to the PACS', async () => {
    const film = sharedDataPath('dicom', 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm');
    const submitted = await submitBatch(redis, { batch: 'dicom', files: [film, film] });
    assert.equal(submitted.total, 1, 'a file given twice is one image');
    await work();
    const [result] = await batchResults(redis, 'dicom');
    const { metadata } = await decodeImageFile(film);
    const uids = (m: typeof metadata) => [m.studyInstanceUid, m.seriesInstanceUid, m.sopInstanceUid];
    assert.match(String(metadata.sopInstanceUid), /^[0-9.]+$/);
    assert.deepEqual(uids(result.prediction!.image.metadata), uids(metadata));
  });

  it('an unreachable Redis: retries with back-off, then an error naming the server (not its password)', async () => {
    const closed = `redis://:secret@127.0.0.1:${server.port + 1}`;
    const retries: string[] = [];
    const started = Date.now();
    await assert.rejects(connectRedis(closed, { attempts: 3, onRetry: (m) => retries.push(m) }), (error: Error) => {
      assert.match(error.message, new RegExp(`cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port + 1} after 3 attempts: .*ECONNREFUSED`));
      return true;
    });
    assert.equal(retries.length, 2);
    assert.match(retries[0], /ECONNREFUSED.*retrying in 0\.5 s \(attempt 2 of 3\)/);
    assert.ok(!retries.join('').includes('secret'));
    assert.ok(Date.now() - started >= 1400, 'backed off 0.5 s then 1 s');
    await assert.rejects(connectRedis('http://127.0.0.1:6379'), /expected a redis:\/\/ or rediss:\/\/ URL/);
  });
});
