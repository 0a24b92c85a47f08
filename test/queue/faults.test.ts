/**
 * Workers that die, with real processes and a real redis-server: one killed with SIGKILL mid-job (its job is taken
 * over once its lock expires; every image ends with exactly one result), and a poison image that stops every worker
 * taking it (failed, with the reason, after 3 stalls, while the rest complete).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { QUEUE_NAME, jobIdFor } from '../../src/queue/index.js';
import { assertExactlyOnce, submitList } from './batches.js';
import { cxr, killWorkers, startWorker, until } from './processes.js';
import { RedisServer } from './redis.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-queue-faults-'));
const servers: RedisServer[] = [];
after(async () => {
  killWorkers();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('queue faults: dead workers', { timeout: 120_000 }, () => {
  it('kill -9 of a worker mid-job: the job is taken over after its lock expires, every image gets one result', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = server.client();
    const files = submitList(server, dir, 'killed', 24);
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
    assertExactlyOnce(server, dir, 'killed', files);
    redis.disconnect();
  });

  it('a poison image that stops every worker taking it: failed with the reason after 3 stalls, the rest complete', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = server.client();
    // A FIFO with no writer: a worker reading it blocks there for good, and is killed there, as if the image crashed it.
    const poison = join(dir, 'poison.png');
    assert.equal(spawnSync('mkfifo', [poison]).status, 0);
    const files = submitList(server, dir, 'poison', 4, [poison]);
    const poisonJob = jobIdFor('poison', { kind: 'file', path: poison });
    const queue = new Queue(QUEUE_NAME, { connection: redis });
    for (let kill = 0; kill < 3; kill++) {
      const worker = startWorker('--redis', server.url, '--threads', '1', '--lock-duration', '1000');
      // The first worker scores the good films first (jobs run in order); each later one finds the job stalled.
      if (kill === 0) await until('the good films', async () => (await redis.hlen('cxr:batch:poison:results')) === 4);
      else await until('the stalled poison job', () => worker.events().some((e) => e.event === 'stalled' && e.job === poisonJob));
      await until('the poison job taken', async () => (await queue.getJobState(poisonJob)) === 'active');
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    const last = startWorker('--redis', server.url, '--threads', '1', '--lock-duration', '1000', '--exit-when-idle');
    assert.deepEqual(await last.exited, { code: 0, signal: null });
    assert.deepEqual((await queue.getFailed()).map((j) => j.id), [poisonJob]);
    await queue.close();
    const status = cxr('batch', 'status', 'poison', '--redis', server.url, '--json');
    const parsed = JSON.parse(status.stdout);
    assert.deepEqual([parsed.done, parsed.failed, parsed.pending], [4, 1, 0]);
    assert.equal(parsed.failures[0].file, files[4]);
    assert.match(parsed.failures[0].reason, /^every worker that took it stopped mid-job .*job stalled more than allowable limit/);
  });
});
