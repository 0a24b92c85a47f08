/**
 * The worker pool under load: a full queue answers 503 with Retry-After at once (nothing is lost: every other
 * request is answered 200), an analysis past its deadline answers 504, and the server keeps serving.
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
  return (await (await fetch(`${url}/healthz`)).json()) as { pool: { busy: number; queued: number; completed: number; rejected: number; timedOut: number } };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await condition()) return;
    await sleep(50);
  }
  throw new Error(`gave up waiting until ${what}`);
}

describe('one worker, a queue of one', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer({ modelPath, workers: 1, queueLimit: 1 });
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
