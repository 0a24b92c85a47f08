/** `cxr` processes for the queue tests, as users run them (bin/cxr.js), with the malloc settings set so each is one process. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/fixtures.js';

const CXR = join(REPO_ROOT, 'bin', 'cxr.js');
// Set, so bin/cxr.js does not re-launch Node: the pid we hold (and kill -9) is the worker itself.
const ENV = { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736' };

export function cxr(...args: string[]) {
  const run = spawnSync(process.execPath, [CXR, ...args], { encoding: 'utf8', env: ENV });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** The worker's log so far, one parsed JSON object per line. */
  events(): Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];

/** Kills (SIGKILL) every worker these tests started that is still running: for after(), so no test hangs on one. */
export function killWorkers(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export function startWorker(...args: string[]): WorkerProcess {
  const child = spawn(process.execPath, [CXR, 'worker', ...args], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(child);
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const events = () =>
    log
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { child, events, exited };
}

/** Polls `check` every 50 ms until it holds, failing after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
