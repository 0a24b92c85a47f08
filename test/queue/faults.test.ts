/**
 * Faults a fleet must survive, with real processes: a worker killed with SIGKILL mid-job (its job is taken over
 * once its lock expires), a worker stopped with SIGTERM (it finishes its job first), and Redis restarted mid-batch
 * with its append-only file on. Each time every image ends
 * with exactly one result, none lost, none twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { QUEUE_NAME } from '../../src/queue/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { cxr, killWorkers, startWorker, until } from './processes.js';
import { RedisServer } from './redis.js';

const IMAGES = sharedDataPath('nih-cxr14-subset', 'images');
const dir = mkdtempSync(join(tmpdir(), 'cxr-queue-faults-'));
const servers: RedisServer[] = [];
after(async () => {
  killWorkers();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Submits the first `n` NIH films as a CSV list (as `cxr batch submit` reads one); their paths. */
async function submit(server: RedisServer, name: string, n: number): Promise<string[]> {
  const files = readdirSync(IMAGES).filter((f) => f.endsWith('.png')).sort().slice(0, n).map((f) => join(IMAGES, f));
  const csv = join(dir, `${name}.csv`);
  writeFileSync(csv, `file\n${files.join('\n')}\n`);
  const run = cxr('batch', 'submit', csv, '--redis', server.url, '--name', name);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), name);
  return files;
}

/** Every image has exactly one result and no failure, read back as users do (--jsonl). */
function assertExactlyOnce(server: RedisServer, name: string, files: string[]): void {
  const out = join(dir, `${name}.jsonl`);
  const run = cxr('batch', 'results', name, '--redis', server.url, '--jsonl', out);
  assert.equal(run.code, 0, run.stderr);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { file: string; findings?: unknown[]; error?: string });
  assert.deepEqual(rows.map((r) => r.file), files, 'one row per image, in order, none twice');
  for (const r of rows) assert.equal(r.findings?.length ?? r.error, 14, r.error);
}

describe('queue faults', { timeout: 120_000 }, () => {
  it('kill -9 of a worker mid-job: the job is taken over after its lock expires, every image gets one result', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = server.client();
    const files = await submit(server, 'killed', 24);
    const first = startWorker('--redis', server.url, '--threads', '1', '--lock-duration', '2000');
    await until('the first results', async () => (await redis.hlen('cxr:batch:killed:results')) >= 3);
    first.child.kill('SIGKILL');
    await first.exited;
    // The dead worker still holds a job: it was killed mid-job.
    const queue = new Queue(QUEUE_NAME, { connection: redis });
    const orphans = (await queue.getActive()).map((j) => j.id);
    assert.equal(orphans.length, 1, 'one job was running when the worker died');

    const second = startWorker('--redis', server.url, '--threads', '1', '--lock-duration', '2000', '--exit-when-idle');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    const events = second.events();
    assert.ok(events.some((e) => e.event === 'stalled' && e.job === orphans[0]), "the second worker found the dead worker's job");
    assert.ok(events.some((e) => e.event === 'completed' && e.job === orphans[0]), 'and scored it');
    assert.equal((await queue.getFailed()).length, 0);
    await queue.close();
    assertExactlyOnce(server, 'killed', files);
    redis.disconnect();
  });

  it('SIGTERM: the worker finishes its running job, leaves the rest queued and exits 143', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = server.client();
    await submit(server, 'stopped', 24);
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
    redis.disconnect();
  });

  it('Redis restarted mid-batch (append-only file on): the batch completes, nothing lost or duplicated', async () => {
    const server = await RedisServer.start({ appendOnly: true });
    servers.push(server);
    const redis = server.client();
    const files = await submit(server, 'restarted', 40);
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
    assertExactlyOnce(server, 'restarted', files);
    redis.disconnect();
  });
});
