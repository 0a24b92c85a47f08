/**
 * The worker pool under load: a full queue answers 503 with Retry-After (at once without an admission wait; with
 * one, after waiting unread for a place, and a place that frees admits the next waiting request), nothing is lost
 * (every other request is answered 200), an analysis past its deadline answers 504, and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { assertMatchesSpec, makeTestModel, NIH_IMAGE, postForm, startServer } from './helpers.js';

const png = new Uint8Array(readFileSync(NIH_IMAGE));
const modelPath = makeTestModel();
const image = { name: 'image', value: png, filename: 'chest.png' };

async function health(url: string) {
  return (await (await fetch(`${url}/healthz`)).json()) as {
    pool: { busy: number; queued: number; completed: number; rejected: number; timedOut: number; cancelled: number };
    admission: { waiting: number; admittedAfterWaiting: number; refusedAfterWaiting: number; refusedAtOnce: number };
  };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await condition()) return;
    await sleep(50);
  }
  throw new Error(`gave up waiting until ${what}`);
}

describe('one worker, a queue of one, no admission wait', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer({ modelPath, workers: 1, queueLimit: 1, admissionWaitMs: 0 });
  });
  after(() => server.app.close());

  it('while the worker is busy: one request waits, the rest get 503 + Retry-After, and the waiting one is answered', async () => {
    // An occlusion analysis keeps the only worker busy for hundreds of forward passes.
    const busy = postForm(server.url, [image, { name: 'heatmap', value: 'png' }]);
    await until(async () => (await health(server.url)).pool.busy === 1, 'the worker is busy');
    const burst = await Promise.all(Array.from({ length: 4 }, () => postForm(server.url, [image, { name: 'heatmap', value: 'none' }])));
    const refused = burst.filter((r) => r.status === 503);
    const served = burst.filter((r) => r.status === 200);
    assert.equal(served.length, 1, `statuses ${burst.map((r) => r.status).join(', ')}`);
    assert.equal(refused.length, 3);
    for (const r of refused) {
      assertMatchesSpec('/api/v1/analyze', 'post', 503, r.body);
      assert.equal(r.body.code, 'CXR_BUSY');
      assert.match(r.body.message, /the queue is full\); retry in about \d+ s/);
      assert.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After ${r.headers.get('retry-after')}`);
    }
    assert.ok(served[0].body.timings.queuedMs > 0, 'the served one waited in the queue');
    const first = await busy;
    assert.equal(first.status, 200);
    assert.equal(first.body.explanations[0].maps.length, 14);
    const stats = (await health(server.url)).pool;
    assert.deepEqual([stats.busy, stats.queued, stats.rejected], [0, 0, 3]);
  });
});

describe('one worker, no queue, requests waiting for admission', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    // maxWaiting is 4 per place: 4 here (one worker, no queue).
    server = await startServer({ modelPath, workers: 1, queueLimit: 0, admissionWaitMs: 60_000 });
  });
  after(() => server.app.close());
  /** Occlusion for all 14 findings: hundreds of forward passes, seconds in the one worker. */
  const slow = () => postForm(server.url, [image, { name: 'methods', value: 'occlusion' }, { name: 'heatmap', value: 'png' }]);

  it('while the worker is busy, waiting requests are admitted in turn as it frees (all 200), and one beyond the limit is refused at once', async () => {
    const before = await health(server.url);
    const started = performance.now();
    const busy = slow();
    await until(async () => (await health(server.url)).pool.busy === 1, 'the worker is busy');
    const waiting = Array.from({ length: 4 }, () => postForm(server.url, [image, { name: 'heatmap', value: 'none' }]));
    await until(async () => (await health(server.url)).admission.waiting === 4, 'four requests wait');
    const beyond = await postForm(server.url, [image, { name: 'heatmap', value: 'none' }]);
    assert.equal(beyond.status, 503);
    assertMatchesSpec('/api/v1/analyze', 'post', 503, beyond.body);
    assert.ok(Number(beyond.headers.get('retry-after')) >= 1);

    assert.equal((await busy).status, 200);
    console.log(`# the occlusion analysis held the worker ${Math.round(performance.now() - started)} ms`);
    const answers = await Promise.all(waiting);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200]);
    const stats = await health(server.url);
    assert.deepEqual([stats.pool.busy, stats.admission.waiting], [0, 0]);
    assert.equal(stats.admission.admittedAfterWaiting - before.admission.admittedAfterWaiting, 4);
    assert.equal(stats.admission.refusedAtOnce - before.admission.refusedAtOnce, 1);
    assert.equal(stats.pool.rejected - before.pool.rejected, 1);
  });

  it('a client that leaves while waiting is not analysed: once admitted, its analysis is cancelled before it runs', async () => {
    const before = await health(server.url);
    const busy = slow();
    await until(async () => (await health(server.url)).pool.busy === 1, 'the worker is busy');
    const leaving = new AbortController();
    const gone = postForm(server.url, [image, { name: 'heatmap', value: 'none' }], {}, leaving.signal).catch((e: Error) => e);
    await until(async () => (await health(server.url)).admission.waiting === 1, 'one request waits');
    leaving.abort();
    assert.ok((await gone) instanceof Error);
    assert.equal((await busy).status, 200);
    await until(async () => (await health(server.url)).pool.cancelled === before.pool.cancelled + 1, "the left client's analysis is cancelled");
    const stats = await health(server.url);
    assert.equal(stats.pool.completed - before.pool.completed, 1, 'only the busy analysis completed');
    assert.deepEqual([stats.pool.busy, stats.pool.queued, stats.admission.waiting], [0, 0, 0]);
  });
});

describe('an analysis past its deadline', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    // 1 ms: no analysis (decode + inference in a worker) can finish in time.
    server = await startServer({ modelPath, workers: 1, analysisTimeoutMs: 1 });
  });
  after(() => server.app.close());

  it('answers 504 naming the limit; the abandoned job is stopped (its worker replaced) and the pool is whole again', async () => {
    const result = await postForm(server.url, [image, { name: 'heatmap', value: 'none' }]);
    assert.equal(result.status, 504, JSON.stringify(result.body));
    assertMatchesSpec('/api/v1/analyze', 'post', 504, result.body);
    assert.equal(result.body.code, 'CXR_TIMEOUT');
    assert.match(result.body.message, /did not finish within 1 ms/);
    await until(async () => {
      const pool = (await health(server.url)).pool as { busy: number; workers?: number };
      return pool.busy === 0 && pool.workers === 1;
    }, 'the worker is free');
    const stats = (await health(server.url)).pool;
    assert.equal(stats.timedOut, 1);
    assert.equal(stats.completed, 0, 'an abandoned result is not counted as answered');
  });
});
