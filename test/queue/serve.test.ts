/**
 * `cxr serve --redis`: servers dispatching to a shared fleet of real `cxr worker` processes through a real
 * redis-server. Two servers sharing one worker answer exactly as the in-process server does for the same NIH film;
 * a full shared queue is a 503 with Retry-After, and clients that leave take their jobs with them; a worker killed
 * mid-job: the next worker takes the job over once its lock expires and the client gets its answer, or, with no
 * worker left, a 504 at the deadline; no worker at all is a 503 at once that says so; a job for another model file
 * is refused by the worker.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadModel } from '../../src/api.js';
import { fileSha256 } from '../../src/queue/index.js';
import { ANALYSIS_JOB_VERSION, analysisKeys, analysisQueueName } from '../../src/serve/dispatch-redis-job.js';
import type { ServeOptions } from '../../src/serve/index.js';
import { NIH_IMAGE, postForm, startServer, type Field } from '../serve/helpers.js';
import { killWorkers, startWorker, until, type WorkerProcess } from './processes.js';
import { RedisServer } from './redis.js';

const png = new Uint8Array(readFileSync(NIH_IMAGE));
const image: Field = { name: 'image', value: png, filename: '00000075_000.png' };
/** Grad-CAM overlays for two findings: the answer has everything a client gets (probabilities, flags, PNGs). */
const FULL: Field[] = [image, { name: 'findings', value: 'Effusion,Cardiomegaly' }, { name: 'heatmap', value: 'both' }];
/** Occlusion for every finding: hundreds of forward passes, long enough to kill a worker in the middle. */
const SLOW: Field[] = [image, { name: 'methods', value: 'occlusion' }, { name: 'heatmap', value: 'png' }];
const QUICK: Field[] = [image, { name: 'heatmap', value: 'none' }];
/** Short locks, so a dead worker's job is taken over within the test's patience. */
const WORKER_ARGS = ['--threads', '1', '--lock-duration', '1500'];

type Started = Awaited<ReturnType<typeof startServer>>;
const servers: Started[] = [];
const redisServers: RedisServer[] = [];
let redis: RedisServer;
let client: Redis;
let queue: Queue;

async function server(options: ServeOptions): Promise<Started> {
  const started = await startServer(options);
  servers.push(started);
  return started;
}

async function worker(): Promise<WorkerProcess> {
  const started = startWorker('--redis', redis.url, ...WORKER_ARGS);
  await until('the worker to be ready', () => started.events().some((e) => e.event === 'ready'), 60_000);
  return started;
}

/** What must be the same whoever ran the analysis (not the request id or timings). */
function answer(body: Record<string, unknown>) {
  const { model, image: img, inputFlags, verdict, findings, explanations } = body;
  return { model, image: img, inputFlags, verdict, findings, explanations };
}

before(async () => {
  redis = await RedisServer.start();
  redisServers.push(redis);
  client = redis.client();
  queue = new Queue(analysisQueueName(await fileSha256(loadModel().path)), { connection: client });
});
after(async () => {
  killWorkers();
  for (const s of servers) await s.app.close();
  await queue.close();
  for (const r of redisServers) await r.close();
});

describe('cxr serve --redis: servers sharing a fleet of cxr workers', { timeout: 240_000 }, () => {
  let first: WorkerProcess;

  it('two servers sharing one worker answer exactly as the in-process server for a real NIH film', async () => {
    first = await worker();
    const [a, b, local] = await Promise.all([server({ redisUrl: redis.url }), server({ redisUrl: redis.url }), server({ workers: 1 })]);
    const expected = await postForm(local.url, FULL);
    assert.equal(expected.status, 200, JSON.stringify(expected.body));
    for (const remote of [a, b]) {
      const got = await postForm(remote.url, FULL);
      assert.equal(got.status, 200, JSON.stringify(got.body));
      assert.deepEqual(answer(got.body), answer(expected.body));
    }
    assert.equal(expected.body.explanations[0].maps.length, 2);
    // What the queue costs a quick analysis (upload and answer through Redis, queue events), beside the pool.
    const median = async (url: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t = performance.now();
        assert.equal((await postForm(url, QUICK)).status, 200);
        ms.push(performance.now() - t);
      }
      return ms.sort((x, y) => x - y)[4];
    };
    const [viaRedis, inProcess] = [await median(a.url), await median(local.url)];
    console.log(`# quick analysis, median of 9: ${viaRedis.toFixed(1)} ms through Redis and a cxr worker, ${inProcess.toFixed(1)} ms in process`);
    const health = (await (await fetch(`${a.url}/healthz`)).json()) as { status: string; pool: { workers: number; completed: number } };
    assert.equal(health.status, 'ok');
    assert.equal(health.pool.workers, 1, 'the fleet has one worker');
    assert.equal(health.pool.completed, 10);
    // Nothing of the upload is left in Redis once the answers were read.
    assert.deepEqual(await client.keys('cxr:analyze:*'), []);
    // The worker's log names jobs by id only.
    assert.ok(!JSON.stringify(first.events()).includes('00000075'), 'no file name in the worker log');
  });

  it('a full shared queue answers 503 with Retry-After; clients that leave take their jobs with them', async () => {
    const s = await server({ redisUrl: redis.url, queueLimit: 1, admissionWaitMs: 0 });
    const running = new AbortController();
    const queued = new AbortController();
    const slow = postForm(s.url, SLOW, {}, running.signal).catch((e: Error) => e);
    await until('the worker to take the slow job', async () => (await queue.getActiveCount()) === 1);
    const waiting = postForm(s.url, QUICK, {}, queued.signal).catch((e: Error) => e);
    await until('the second job to wait', async () => (await queue.getWaitingCount()) === 1);
    const refused = await postForm(s.url, QUICK);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'CXR_BUSY');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'degraded');

    queued.abort();
    await until('the queued job to be removed', async () => (await queue.getWaitingCount()) === 0);
    running.abort();
    await until('the worker to stop the running job', () => first.events().some((e) => e.event === 'analysis-skipped'));
    assert.ok((await slow) instanceof Error && (await waiting) instanceof Error);
    await until('the running job to end', async () => (await queue.getActiveCount()) === 0);
    assert.equal((await postForm(s.url, QUICK)).status, 200, 'room again');
  });

  it('the only worker killed mid-job: 504 at the deadline, never a hang', async () => {
    const s = await server({ redisUrl: redis.url, analysisTimeoutMs: 4000 });
    const started = performance.now();
    const slow = postForm(s.url, SLOW);
    await until('the worker to take the job', async () => (await queue.getActiveCount()) === 1);
    first.child.kill('SIGKILL');
    await first.exited;
    const answered = await slow;
    const ms = performance.now() - started;
    assert.equal(answered.status, 504, JSON.stringify(answered.body));
    assert.equal(answered.body.code, 'CXR_TIMEOUT');
    assert.ok(ms < 6000, `answered in ${Math.round(ms)} ms`);
  });

  it('a worker killed mid-job: the next worker takes the job over when its lock expires; the client gets its answer', async () => {
    const s = await server({ redisUrl: redis.url, analysisTimeoutMs: 60_000 });
    const doomed = await worker();
    const slow = postForm(s.url, SLOW);
    await until('the worker to take the job', () => doomed.events().length > 0 && queue.getActiveCount().then((n) => n === 1));
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const rescuer = await worker();
    const answered = await slow;
    assert.equal(answered.status, 200, JSON.stringify(answered.body));
    assert.equal(answered.body.findings.length, 14);
    assert.equal(answered.body.explanations[0].method, 'occlusion');
    assert.ok(rescuer.events().some((e) => e.event === 'analysed'), 'the second worker ran it');
  });

  it('a job for another model file is refused by the worker, with both hashes in the reason', async () => {
    const connection = client.duplicate();
    connection.on('error', () => {});
    const events = new QueueEvents(queue.name, { connection });
    await events.waitUntilReady();
    const keys = analysisKeys('wrong-model');
    const request = { findings: ['Effusion'], methods: [], heatmap: 'none', colormap: 'turbo', showRejected: false };
    const job = await queue.add('analyze', { version: ANALYSIS_JOB_VERSION, modelHash: 'f'.repeat(64), name: 'upload', request, ...keys, deadline: Date.now() + 60_000 });
    await assert.rejects(job.waitUntilFinished(events, 30_000), /refused: the server's model is sha256 ffffffffffff…, this worker has [0-9a-f]{12}…/);
    await events.close();
    connection.disconnect();
  });

  it('no worker connected: 503 at once, saying so; /healthz says unavailable', async () => {
    const empty = await RedisServer.start();
    redisServers.push(empty);
    const s = await server({ redisUrl: empty.url, analysisTimeoutMs: 10_000 });
    const started = performance.now();
    const refused = await postForm(s.url, QUICK);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(refused.body.message, /no analysis worker for this server's model is connected to Redis at redis:\/\/127\.0\.0\.1:\d+/);
    assert.ok(refused.headers.get('retry-after'));
    assert.ok(performance.now() - started < 2000);
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'unavailable');
  });
});
