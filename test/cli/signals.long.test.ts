/**
 * Signals on the real CLI (`node bin/cxr.js`, re-launching itself with the malloc settings as users run it): the
 * launcher passes SIGTERM/SIGINT on and exits as the trainer did; kill -9 of the launcher leaves no orphan; one
 * process per run folder; every stop (TERM, INT, the launcher killed, a crash of the trainer itself) resumes
 * from the next batch, and the run that was stopped four times ends with exactly the weights of one that was not.
 * A tiny real recipe: MobileNetV2 (ImageNet int8) at 32 px on the 64 px NIH set, one epoch of 44 steps, 1 thread.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

const CXR = join(REPO_ROOT, 'bin', 'cxr.js');
const TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';
const STEPS = 44; // 700 training images / 16
const dir = mkdtempSync(join(tmpdir(), 'cxr-signals-'));
const recipe = join(dir, 'recipe.json');
writeFileSync(
  recipe,
  JSON.stringify({
    datasets: [{ format: 'nih', csv: sharedDataPath('nih-cxr14-64px', 'labels.csv'), images: sharedDataPath('nih-cxr14-64px', 'images') }],
    model: { architecture: 'mobilenet_v2', pretrained: sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), size: 32 },
    optimizer: { kind: 'adamw', lr: 0.001 },
    epochs: 1,
    batchSize: 16,
    threads: 1,
    cacheDir: join(dir, 'cache'),
  }),
);

const started: ChildProcess[] = [];
const pidsToReap: number[] = [];
after(() => {
  for (const pid of [...started.map((c) => c.pid ?? 0), ...pidsToReap]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `node bin/cxr.js ...`: through the launcher (no GLIBC_TUNABLES in the environment) or as one process. */
function cxr(args: string[], { launcher }: { launcher: boolean }): Run {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.CXR_NO_REEXEC;
  if (!launcher) env.GLIBC_TUNABLES = TUNABLES;
  const child = spawn(process.execPath, [CXR, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  // 'exit', not 'close': a launcher killed with -9 leaves its pipes open in the child for a moment.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

const train = (out: string, extra: string[] = [], launcher = true) => cxr(['train', '--config', recipe, '--out', out, ...extra], { launcher });

/** Whether a process runs (a zombie, exited but not yet reaped by whoever adopted it, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 120_000, run?: Run): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}${run ? `\nstderr: ${run.stderr()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface LogLine {
  event: string;
  epoch?: number;
  step?: number;
  globalStep?: number;
  loss?: number;
}
const logOf = (run: string): LogLine[] =>
  existsSync(join(run, 'log.jsonl'))
    ? readFileSync(join(run, 'log.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as LogLine)
    : [];
const lastStep = (run: string) => Math.max(0, ...logOf(run).filter((l) => l.event === 'step').map((l) => l.globalStep ?? 0));
/** The loss of every step, the last line of each (steps after a crash's checkpoint are done again). */
const lossesOf = (run: string) => {
  const losses = new Map<number, number>();
  for (const l of logOf(run)) if (l.event === 'step') losses.set(l.globalStep ?? 0, l.loss ?? Number.NaN);
  return [...losses.entries()].sort((a, b) => a[0] - b[0]);
};
const lockOwner = (run: string): { pid: number; host: string } | undefined => {
  try {
    return JSON.parse(readFileSync(join(run, 'run.lock'), 'utf8'));
  } catch {
    return undefined;
  }
};
const progressOf = (run: string) => (readCheckpoint(join(run, 'checkpoint.ckpt')).header.progress as { epoch: number; batch: number; globalStep: number });
/** The final (end of training) checkpoint, then stop the process: what comes after it (test scoring, card) is not at issue. */
async function trainToEnd(run: Run, out: string): Promise<void> {
  await until('the end-of-training checkpoint', () => existsSync(join(out, 'checkpoint.ckpt')) && progressOf(out).epoch === 1, 240_000, run);
  run.child.kill('SIGKILL');
  const owner = lockOwner(out);
  if (owner && alive(owner.pid)) process.kill(owner.pid, 'SIGKILL');
  await run.exited;
}

describe('cxr train and serve under signals', () => {
  it('TERM, INT and kill -9 of the launcher, a concurrent resume and a crash: stops promptly, resumes mid-epoch, ends with the uninterrupted weights', async (t) => {
    // The reference: the same recipe, never stopped (one process; it runs beside the stopped one).
    const referenceDir = join(dir, 'reference');
    const reference = train(referenceDir, [], false);
    const out = join(dir, 'stopped');
    // The two share the image cache: the second starts once the first has built it (builders race on its temporary file).
    await until('the reference to start training', () => lastStep(referenceDir) >= 1, 180_000, reference);

    // 1. SIGTERM to the launcher: the trainer (another pid) saves an interrupt checkpoint mid-epoch and exits 143.
    const first = train(out);
    await until('3 steps', () => lastStep(out) >= 3, 120_000, first);
    const owner = await until('the run lock', () => lockOwner(out), 10_000, first);
    assert.notEqual(owner.pid, first.child.pid, 'the lock names the process doing the work, not the launcher');
    assert.ok(alive(owner.pid));
    pidsToReap.push(owner.pid);
    // A second trainer in the same folder is refused, naming the pid that holds it.
    const concurrent = spawnSync(process.execPath, [CXR, 'train', '--config', recipe, '--out', out, '--resume'], {
      encoding: 'utf8',
      env: { ...process.env, GLIBC_TUNABLES: TUNABLES },
    });
    assert.equal(concurrent.status, 1, concurrent.stderr);
    assert.match(concurrent.stderr, new RegExp(`in use by another cxr train \\(pid ${owner.pid} on `));
    await until('6 steps', () => lastStep(out) >= 6, 120_000, first);
    const termAt = performance.now();
    first.child.kill('SIGTERM');
    const term = await first.exited;
    t.diagnostic(`SIGTERM -> exit ${term.code} in ${(term.at - termAt).toFixed(0)} ms`);
    assert.equal(term.code, 143, first.stderr());
    assert.ok(term.at - termAt < 20_000, `exited ${term.at - termAt} ms after SIGTERM`);
    assert.match(first.stdout(), /interrupted; continue with: cxr train .* --resume/);
    assert.ok(!alive(owner.pid), 'the trainer exited with the launcher');
    assert.ok(!existsSync(join(out, 'run.lock')), 'the lock is released');
    const k1 = progressOf(out);
    assert.equal(k1.epoch, 0);
    assert.equal(k1.batch, lastStep(out), 'the checkpoint holds every step done');
    assert.ok(k1.batch >= 6 && k1.batch < STEPS, `mid-epoch: batch ${k1.batch}`);
    assert.equal(logOf(out).at(-1)?.event, 'interrupted');

    // 2. SIGINT to the launcher (kill -INT, not a terminal): the same, exit 130, resumed from the next batch.
    const second = train(out, ['--resume']);
    await until('3 more steps', () => lastStep(out) >= k1.batch + 3, 120_000, second);
    const intAt = performance.now();
    second.child.kill('SIGINT');
    const int = await second.exited;
    t.diagnostic(`SIGINT -> exit ${int.code} in ${(int.at - intAt).toFixed(0)} ms`);
    assert.equal(int.code, 130, second.stderr());
    assert.ok(int.at - intAt < 20_000);
    const resumed = logOf(out).filter((l) => l.event === 'resumed');
    assert.deepEqual(resumed.map((l) => l.step), [k1.batch], 'resumed at the batch after the checkpoint');
    const k2 = progressOf(out);
    assert.ok(k2.batch > k1.batch && k2.batch < STEPS, `mid-epoch: batch ${k2.batch}`);

    // 3. kill -9 of the launcher: the trainer notices, checkpoints and exits; nothing keeps writing the folder.
    const third = train(out, ['--resume']);
    await until('3 more steps', () => lastStep(out) >= k2.batch + 3, 120_000, third);
    const orphan = await until('the run lock', () => lockOwner(out), 10_000, third);
    pidsToReap.push(orphan.pid);
    const killAt = performance.now();
    third.child.kill('SIGKILL');
    await third.exited;
    await until('the trainer to exit after its launcher was killed', () => !alive(orphan.pid), 20_000, third);
    t.diagnostic(`launcher kill -9 -> trainer gone in ${(performance.now() - killAt).toFixed(0)} ms`);
    const size = readFileSync(join(out, 'log.jsonl')).length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(readFileSync(join(out, 'log.jsonl')).length, size, 'no process writes the run folder any more');
    assert.equal(logOf(out).at(-1)?.event, 'interrupted', 'the trainer saved an interrupt checkpoint');
    assert.ok(!existsSync(join(out, 'run.lock')));
    const k3 = progressOf(out);
    assert.ok(k3.batch > k2.batch && k3.batch < STEPS, `mid-epoch: batch ${k3.batch}`);

    // 4. A crash (kill -9 of the trainer itself) with checkpoints every 4 steps: the lock is left behind.
    const fourth = train(out, ['--resume', '--checkpoint-every', '4'], false);
    await until('6 more steps', () => lastStep(out) >= k3.batch + 6, 120_000, fourth);
    fourth.child.kill('SIGKILL');
    await fourth.exited;
    const stale = lockOwner(out);
    assert.equal(stale?.pid, fourth.child.pid, 'a crashed trainer leaves its lock');
    const k4 = progressOf(out);
    assert.ok(k4.batch >= k3.batch + 4 && k4.batch < STEPS, `a checkpoint within the epoch after the crash: batch ${k4.batch} (interrupted at ${k3.batch})`);

    // 5. Resume after the crash: the stale lock is taken over, training continues from the periodic checkpoint.
    const fifth = train(out, ['--resume'], false);
    await until('the end-of-training checkpoint', () => existsSync(join(out, 'checkpoint.ckpt')) && progressOf(out).epoch === 1, 240_000, fifth);
    // SIGTERM after training, while the model, card and evaluation are written: no waiting for them, a way to finish later.
    const finishAt = performance.now();
    fifth.child.kill('SIGTERM');
    const finish = await fifth.exited;
    t.diagnostic(`SIGTERM after training -> exit ${finish.code} in ${(finish.at - finishAt).toFixed(0)} ms`);
    assert.equal(finish.code, 143, fifth.stderr());
    assert.ok(finish.at - finishAt < 20_000);
    assert.match(fifth.stdout() + fifth.stderr(), /--resume writes them/);
    assert.equal((readCheckpoint(join(out, 'checkpoint.ckpt')).header.progress as { done?: string }).done, 'completed', 'resuming only finishes');
    assert.match(fifth.stderr(), new RegExp(`took over the run lock of pid ${fourth.child.pid} .*which no longer runs`));
    assert.equal(logOf(out).filter((l) => l.event === 'resumed').at(-1)?.step, k4.batch);

    await trainToEnd(reference, referenceDir);
    const a = readCheckpoint(join(referenceDir, 'checkpoint.ckpt'));
    const b = readCheckpoint(join(out, 'checkpoint.ckpt'));
    assert.deepEqual(Object.keys(b.vectors), Object.keys(a.vectors));
    for (const name of Object.keys(a.vectors)) {
      const same = Buffer.from(a.vectors[name].buffer).equals(Buffer.from(b.vectors[name].buffer));
      assert.ok(same, `${name}: the run stopped four times ends with the uninterrupted run's values, bit for bit`);
    }
    assert.deepEqual(lossesOf(out), lossesOf(referenceDir), 'every step has the same loss');
    assert.equal(lossesOf(out).length, STEPS);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it('Ctrl-C on a terminal reaches the trainer once: a checkpoint and exit 130, not "quit at once"', { skip: !hasScript && 'needs script(1) for a pseudo-terminal' }, async (t) => {
    // script(1) runs the launcher on a pseudo-terminal; ^C written to it is the terminal's SIGINT to the foreground group.
    const out = join(dir, 'terminal');
    const env = { ...process.env };
    delete env.GLIBC_TUNABLES;
    delete env.CXR_NO_REEXEC;
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CXR)} train --config ${JSON.stringify(recipe)} --out ${JSON.stringify(out)}`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    started.push(child);
    let screen = '';
    child.stdout.on('data', (d) => (screen += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until('3 steps', () => lastStep(out) >= 3, 120_000);
    const at = performance.now();
    child.stdin.write('\x03');
    const code = await exited;
    t.diagnostic(`Ctrl-C -> exit ${code} in ${(performance.now() - at).toFixed(0)} ms`);
    assert.equal(code, 130, screen);
    assert.match(screen, /SIGINT: stopping after this step and saving a checkpoint/);
    assert.doesNotMatch(screen, /quitting without a checkpoint/);
    assert.match(screen, /checkpoint saved: /);
    const progress = progressOf(out);
    assert.ok(progress.batch >= 3 && progress.batch < STEPS);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`cxr serve: ${signal} to the launcher closes the server, exits 0 promptly and releases the port`, async (t) => {
      const run = cxr(['serve', '--port', '0', '--workers', '1'], { launcher: true });
      const port = Number(await until('the server to listen', () => /viewer: http:\/\/127\.0\.0\.1:(\d+)\//.exec(run.stderr())?.[1], 120_000, run));
      const pid = Number(await until('the server pid in its log', () => /"pid":(\d+)/.exec(run.stdout())?.[1], 10_000, run));
      pidsToReap.push(pid);
      assert.notEqual(pid, run.child.pid);
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      const at = performance.now();
      run.child.kill(signal);
      const exit = await run.exited;
      t.diagnostic(`${signal} -> exit ${exit.code} in ${(exit.at - at).toFixed(0)} ms`);
      assert.equal(exit.code, 0, run.stderr());
      assert.ok(exit.at - at < 10_000, `exited ${exit.at - at} ms after ${signal}`);
      assert.ok(!alive(pid), 'the server process is gone');
      await new Promise<void>((resolve, reject) => {
        const probe = createServer().once('error', reject);
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
      });
    });
  }

  it('cxr serve: kill -9 of the launcher stops the server too, and releases the port', async (t) => {
    const run = cxr(['serve', '--port', '0', '--workers', '1'], { launcher: true });
    const port = Number(await until('the server to listen', () => /viewer: http:\/\/127\.0\.0\.1:(\d+)\//.exec(run.stderr())?.[1], 120_000, run));
    const pid = Number(await until('the server pid in its log', () => /"pid":(\d+)/.exec(run.stdout())?.[1], 10_000, run));
    pidsToReap.push(pid);
    const at = performance.now();
    run.child.kill('SIGKILL');
    await run.exited;
    await until('the server to exit after its launcher was killed', () => !alive(pid), 20_000, run);
    t.diagnostic(`launcher kill -9 -> server gone in ${(performance.now() - at).toFixed(0)} ms`);
    await new Promise<void>((resolve, reject) => {
      const probe = createServer().once('error', reject);
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
    });
  });
});
