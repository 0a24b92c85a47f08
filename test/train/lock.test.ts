/** The run folder's lock: one owner, named when refused; stale owners (gone, or their pid reused) taken over. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LOCK_FILE, lockRunFolder } from '../../src/train/lock.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const LOCK_MODULE = join(REPO_ROOT, 'dist', 'src', 'train', 'lock.js');
const folder = (name: string) => {
  const path = join(dir, name);
  spawnSync('mkdir', ['-p', path]);
  return path;
};
const owner = (path: string) => JSON.parse(readFileSync(join(path, LOCK_FILE), 'utf8'));

describe('run folder lock', () => {
  it('is exclusive across processes, names the owner, re-entrant within one, and released on exit', async () => {
    const run = folder('exclusive');
    const lock = lockRunFolder(run);
    assert.equal(owner(run).pid, process.pid);
    assert.equal(owner(run).host, hostname());
    const again = lockRunFolder(run); // the CLI holds it around train(), which takes it too
    again.release();
    assert.ok(existsSync(join(run, LOCK_FILE)), 'still held by the outer holder');
    const other = spawnSync(process.execPath, ['--input-type=module', '-e', `import { lockRunFolder } from ${JSON.stringify(LOCK_MODULE)}; lockRunFolder(${JSON.stringify(run)});`], { encoding: 'utf8' });
    assert.notEqual(other.status, 0);
    assert.match(other.stderr, new RegExp(`in use by another cxr train \\(pid ${process.pid} on ${hostname()}`));
    lock.release();
    assert.ok(!existsSync(join(run, LOCK_FILE)));

    // process.exit() in the middle of work still removes it.
    const exiting = spawnSync(process.execPath, ['--input-type=module', '-e', `import { lockRunFolder } from ${JSON.stringify(LOCK_MODULE)}; lockRunFolder(${JSON.stringify(run)}); process.exit(3);`]);
    assert.equal(exiting.status, 3);
    assert.ok(!existsSync(join(run, LOCK_FILE)));
  });

  it('takes over the lock of a process that is gone, or whose pid now belongs to another process', async () => {
    const run = folder('stale');
    const dead = spawnSync('true').pid;
    writeFileSync(join(run, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), startTicks: null, since: '2020-01-01T00:00:00Z' }));
    const messages: string[] = [];
    lockRunFolder(run, (m) => messages.push(m)).release();
    assert.match(messages[0], new RegExp(`took over the run lock of pid ${dead} on .* which no longer runs`));

    // A live pid with another start time: the pid was reused by an unrelated process.
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(join(run, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, host: hostname(), startTicks: 1, since: '2020-01-01T00:00:00Z' }));
      messages.length = 0;
      lockRunFolder(run, (m) => messages.push(m)).release();
      assert.match(messages[0], /which no longer runs/);
      // The same live process (its real start time) keeps its lock.
      const ticks = Number(readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19]);
      writeFileSync(join(run, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, host: hostname(), startTicks: ticks, since: '2020-01-01T00:00:00Z' }));
      assert.throws(() => lockRunFolder(run), new RegExp(`in use by another cxr train \\(pid ${sleeper.pid} `));
    } finally {
      sleeper.kill('SIGKILL');
    }
    // Another host's lock cannot be checked from here: refused, with the way out.
    writeFileSync(join(run, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere', startTicks: null, since: '2020-01-01T00:00:00Z' }));
    assert.throws(() => lockRunFolder(run), /pid 1 on elsewhere, since .*If that process is gone, remove .*run\.lock/);
  });
});
