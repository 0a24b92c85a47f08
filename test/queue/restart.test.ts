/**
 * Stops and restarts, with real processes and a real redis-server: a worker stopped with SIGTERM (it finishes its
 * running job and leaves nothing claimed), and Redis restarted mid-batch with its append-only file on (the batch
 * completes; every image ends with exactly one result, none lost, none twice).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { QUEUE_NAME } from '../../src/queue/index.js';
import { assertExactlyOnce, submitList } from './batches.js';
import { cxr, killWorkers, startWorker, until } from './processes.js';
import { RedisServer } from './redis.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-queue-restart-'));
const servers: RedisServer[] = [];
after(async () => {
  killWorkers();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('queue faults: stops and restarts', { timeout: 120_000 }, () => {
  it('SIGTERM: the worker finishes its running job, leaves the rest queued and exits 143', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = server.client();
    submitList(server, dir, 'stopped', 24);
    const worker = startWorker('--redis', server.url, '--threads', '1');
    await until('the first results', async () => (await redis.hlen('cxr:batch:stopped:results')) >= 3);
    worker.child.kill('SIGTERM');
    assert.deepEqual(await worker.exited, { code: 143, signal: null });
    const events = worker.events();
    assert.ok(events.some((e) => e.event === 'stopping' && e.reason === 'SIGTERM'));
    assert.equal(events.at(-1)?.event, 'stopped');
    const queue = new Queue(QUEUE_NAME, { connection: redis });
    const counts = await queue.getJobCounts('active', 'waiting', 'failed');
    await queue.close();
    const done = await redis.hlen('cxr:batch:stopped:results');
    assert.equal(counts.active, 0, 'no job left claimed by the stopped worker');
    assert.equal(counts.failed, 0);
    assert.equal(done + counts.waiting, 24, 'every image is done or waiting for the next worker');
    assert.equal(done, events.filter((e) => e.event === 'completed').length);
    const status = cxr('batch', 'status', 'stopped', '--redis', server.url);
    assert.equal(status.code, 2, 'images still pending');
    assert.match(status.stdout, new RegExp(`${done} of 24 done, 0 failed, ${24 - done} pending .*\nrate [\\d.]+ images/s, about \\d+ (s|min) left`));
    redis.disconnect();
  });

  it('Redis restarted mid-batch (append-only file on): the batch completes, nothing lost or duplicated', async () => {
    const server = await RedisServer.start({ appendOnly: true });
    servers.push(server);
    const redis = server.client();
    const files = submitList(server, dir, 'restarted', 40);
    const worker = startWorker('--redis', server.url, '--threads', '1', '--lock-duration', '5000', '--exit-when-idle');
    await until('the first results', async () => (await redis.hlen('cxr:batch:restarted:results')) >= 5);
    await server.restart();
    const doneAfterRestart = await redis.hlen('cxr:batch:restarted:results');
    assert.ok(doneAfterRestart >= 5 && doneAfterRestart < files.length, `restarted mid-batch (${doneAfterRestart} of ${files.length} done)`);
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    assert.ok(worker.events().some((e) => e.event === 'redis' && /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ .*retrying in/.test(String(e.message))), 'the worker saw the outage and waited it out');
    const status = cxr('batch', 'status', 'restarted', '--redis', server.url, '--json');
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.deepEqual([parsed.done, parsed.failed, parsed.pending], [files.length, 0, 0]);
    assertExactlyOnce(server, dir, 'restarted', files);
    redis.disconnect();
  });
});
