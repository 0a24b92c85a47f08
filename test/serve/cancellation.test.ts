/**
 * Work that multiplies and work nobody waits for (issue 17), on the real server with one worker and a queue of
 * one: repeated methods run once; a client that disconnects frees its worker (the running job's worker is
 * replaced; a queued job is dropped unrun); a job past its deadline is stopped the same way; while the worker is
 * busy and the queue full, /healthz says degraded and a large upload is refused with 503 before its body is read,
 * with a Retry-After from the measured cost of the work ahead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { PoolStats } from '../../src/serve/index.js';
import { assertMatchesSpec, largeUpload, makeTestModel, NIH_IMAGE, postForm, startServer, type Field } from './helpers.js';

const png = new Uint8Array(readFileSync(NIH_IMAGE));
const modelPath = makeTestModel();
const image: Field = { name: 'image', value: png, filename: 'chest.png' };
/** Occlusion for all 14 findings with overlays: hundreds of forward passes in the one worker. */
const SLOW: Field[] = [image, { name: 'methods', value: 'occlusion' }, { name: 'heatmap', value: 'png' }];
const QUICK: Field[] = [image, { name: 'heatmap', value: 'none' }];

let server: Awaited<ReturnType<typeof startServer>>;
/** How long one slow analysis takes on this machine, measured below. */
let slowMs = 0;

before(async () => {
  // No admission wait: a request that finds the queue full is refused at once (concurrency.test covers waiting).
  server = await startServer({ modelPath, workers: 1, queueLimit: 1, admissionWaitMs: 0 });
});
after(() => server.app.close());

async function health(url = server.url): Promise<{ status: number; retryAfter: string | null; body: { status: string; pool: PoolStats } }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as { status: string; pool: PoolStats } };
}

async function until(condition: () => Promise<boolean>, what: string, url = server.url): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await condition()) return;
    await sleep(25);
  }
  throw new Error(`gave up waiting until ${what}: ${JSON.stringify((await health(url)).body)}`);
}

/** A request the test can abandon (the connection is closed, as when a browser tab is closed). */
function abandonable(fields: Field[]): { done: Promise<unknown>; abandon: () => void } {
  const controller = new AbortController();
  const done = postForm(server.url, fields, {}, controller.signal).catch((error: Error) => error);
  return { done, abandon: () => controller.abort() };
}

describe('one worker, a queue of one', () => {
  it('methods=occlusion,occlusion,... (409 copies) runs occlusion once; repeated findings count once', async () => {
    const repeated = Array.from({ length: 409 }, () => 'occlusion').join(',');
    const started = performance.now();
    const result = await postForm(server.url, [image, { name: 'methods', value: repeated }, { name: 'findings', value: 'Effusion,Effusion,Effusion' }, { name: 'heatmap', value: 'raw' }]);
    const ms = performance.now() - started;
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assertMatchesSpec('/api/v1/analyze', 'post', 200, result.body);
    assert.equal(result.body.explanations.length, 1);
    assert.deepEqual(result.body.explanations[0].maps.map((m: { finding: string }) => m.finding), ['Effusion']);
    console.log(`# 409 x occlusion, one finding: ${Math.round(ms)} ms (one occlusion run)`);
  });

  it('a slow analysis (occlusion, 14 findings, overlays) completes; its duration is measured', async () => {
    const started = performance.now();
    const result = await postForm(server.url, SLOW);
    slowMs = performance.now() - started;
    assert.equal(result.status, 200);
    assert.equal(result.body.explanations[0].maps.length, 14);
    console.log(`# slow analysis: ${Math.round(slowMs)} ms`);
    assert.ok(slowMs > 1000, `the slow analysis must be slow enough to test cancellation (${Math.round(slowMs)} ms)`);
  });

  it('a client that disconnects mid-analysis frees the worker: the next request is served long before the abandoned one would have finished', async () => {
    const before = (await health()).body.pool;
    const slow = abandonable(SLOW);
    await until(async () => (await health()).body.pool.busy === 1, 'the worker is busy');
    await sleep(200);
    const left = performance.now();
    slow.abandon();
    await slow.done;
    await until(async () => {
      const pool = (await health()).body.pool;
      return pool.workers === 1 && pool.busy === 0;
    }, 'the worker is free');
    const freed = performance.now() - left;
    const next = await postForm(server.url, QUICK);
    const served = performance.now() - left;
    assert.equal(next.status, 200);
    const after = (await health()).body.pool;
    assert.equal(after.cancelled, before.cancelled + 1);
    assert.equal(after.completed, before.completed + 1, 'only the following request completed');
    assert.equal(after.recycled, before.recycled, 'the worker stopped the analysis itself (no termination needed)');
    console.log(`# disconnect -> worker free in ${Math.round(freed)} ms; next request answered ${Math.round(served)} ms after the disconnect (the abandoned analysis takes ${Math.round(slowMs)} ms)`);
    assert.ok(served < Math.max(slowMs, 1000) + 5000 && served < 15_000, `served ${Math.round(served)} ms after the disconnect`);
  });

  it('a queued job whose client left is dropped unrun; the running one is answered', async () => {
    const before = (await health()).body.pool;
    const running = postForm(server.url, SLOW);
    await until(async () => (await health()).body.pool.busy === 1, 'the worker is busy');
    const queued = abandonable(SLOW);
    await until(async () => (await health()).body.pool.queued === 1, 'one job waits');
    queued.abandon();
    await queued.done;
    await until(async () => (await health()).body.pool.queued === 0, 'the queue is empty');
    assert.equal((await running).status, 200);
    const after = (await health()).body.pool;
    assert.equal(after.cancelled, before.cancelled + 1);
    assert.equal(after.completed, before.completed + 1, 'the abandoned job never ran');
    assert.equal(after.recycled, before.recycled, 'no worker was replaced for a job that never started');
  });

  it('busy and queue full: /healthz degraded (503); a 40 MB upload gets 503 before its body is read, Retry-After from the measured wait', async () => {
    const running = abandonable(SLOW);
    await until(async () => (await health()).body.pool.busy === 1, 'the worker is busy');
    const waiting = abandonable(SLOW);
    await until(async () => (await health()).body.pool.queued === 1, 'the queue is full');
    const degraded = await health();
    assert.equal(degraded.status, 503);
    assertMatchesSpec('/healthz', 'get', 503, degraded.body);
    assert.equal(degraded.body.status, 'degraded');
    assert.ok(Number(degraded.retryAfter) >= 1);

    const total = 40 * 1024 * 1024;
    const started = performance.now();
    const refused = await largeUpload(server.url, total);
    const ms = performance.now() - started;
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assertMatchesSpec('/api/v1/analyze', 'post', 503, refused.body);
    assert.equal(refused.body.code, 'CXR_BUSY');
    assert.ok(refused.sent < total, `refused after ${refused.sent} of ${total} bytes`);
    // One slow analysis running (part done) and one waiting, one worker: between one and two slow durations.
    const retryAfter = Number(refused.retryAfter);
    const expected = [Math.max(1, Math.floor(slowMs / 1000)), Math.ceil((2 * slowMs) / 1000) + 1];
    assert.ok(retryAfter >= expected[0] && retryAfter <= expected[1], `Retry-After ${retryAfter} s, expected ${expected[0]}-${expected[1]} s for ${Math.round(slowMs)} ms jobs`);
    console.log(`# queue full: 503 after ${refused.sent} of ${total} bytes, in ${Math.round(ms)} ms; Retry-After ${retryAfter} s (slow job ${Math.round(slowMs)} ms, pool estimate ${degraded.body.pool.estimatedWaitMs} ms)`);

    waiting.abandon();
    running.abandon();
    await Promise.all([waiting.done, running.done]);
    await until(async () => (await health()).status === 200, '/healthz is ok again');
    assert.equal((await postForm(server.url, QUICK)).status, 200);
  });
});

describe('a running analysis past its deadline', () => {
  let short: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    short = await startServer({ modelPath, workers: 1, analysisTimeoutMs: 1500 });
  });
  after(() => short.app.close());

  it('answers 504 and stops the analysis; the worker serves the next request', async () => {
    const started = performance.now();
    const result = await postForm(short.url, SLOW);
    assert.equal(result.status, 504, JSON.stringify(result.body));
    assert.match(result.body.message, /did not finish within 1500 ms \(still running\)/);
    await until(async () => (await health(short.url)).body.pool.busy === 0, 'the worker is free', short.url);
    const freed = performance.now() - started - 1500;
    const next = await postForm(short.url, QUICK);
    assert.equal(next.status, 200);
    const pool = (await health(short.url)).body.pool;
    assert.deepEqual([pool.timedOut, pool.recycled, pool.completed], [1, 0, 1]);
    console.log(`# deadline 1500 ms: 504, worker free ${Math.round(freed)} ms after the deadline, next request answered ${Math.round(performance.now() - started)} ms after the first was sent`);
  });
});

