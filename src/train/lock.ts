/**
 * A run folder belongs to one process at a time: `cxr train` (and `--resume`) hold `run.lock` in it, a file made
 * with O_EXCL that names the owner (pid, host, the process's start time, when). A second trainer in the same
 * folder is refused with the owner's pid; a lock whose owner is gone (a crash, kill -9) is taken over with a
 * message. On Linux the owner's start time (from /proc) tells a live owner from an unrelated process that was
 * given the same pid later. The lock is re-entrant within a process (the CLI holds it around train() and
 * finishRun(), and train() takes it too) and is removed when the process exits, even by process.exit().
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

export const LOCK_FILE = 'run.lock';

export interface LockOwner {
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (Linux /proc/<pid>/stat field 22); null elsewhere. */
  startTicks: number | null;
  since: string;
  command?: string;
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

/** Locks this process holds: file -> count of holders. */
const held = new Map<string, number>();
let exitHookInstalled = false;

function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/** Whether the owner named in a lock still runs: same host, pid alive, and (where known) the same process. */
function ownerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot tell from here: assume it runs
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a process of another user has that pid now; ours would be ours.
  }
  if (owner.startTicks !== null) {
    const now = startTicks(owner.pid);
    if (now !== null && now !== owner.startTicks) return false; // the pid was reused
  }
  return true;
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(owner.pid) && typeof owner.host === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}

function describe(owner: LockOwner): string {
  return `pid ${owner.pid} on ${owner.host}, since ${owner.since}`;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const file of held.keys()) {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    }
    held.clear();
  });
}

/**
 * Takes the lock of run folder `dir` (which must exist) for this process, or throws naming the process that holds
 * it. `onMessage` hears about stale locks taken over.
 */
export function lockRunFolder(dir: string, onMessage: (message: string) => void = () => {}): RunLock {
  const file = resolve(join(dir, LOCK_FILE));
  const count = held.get(file);
  if (count !== undefined) {
    held.set(file, count + 1);
    return handle(file);
  }
  const me: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startTicks: startTicks(process.pid),
    since: new Date().toISOString(),
    command: process.argv.slice(2).join(' ').slice(0, 500),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${dir}: cannot create the run lock ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      const owner = readOwner(file);
      if (owner && ownerAlive(owner)) {
        throw new Error(
          `${dir} is in use by another cxr train (${describe(owner)}); wait for it to finish or stop it (kill -TERM ${owner.pid} saves a checkpoint). ` +
            `If that process is gone, remove ${file}`,
        );
      }
      if (!owner) {
        // A lock being written this instant, or a broken one: a broken one stays broken a moment later.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        const again = readOwner(file);
        if (again && ownerAlive(again)) continue;
      }
      // Take it over: move the stale lock aside atomically (only one contender's rename finds it), then retry.
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
        const moved = readOwner(aside);
        if (moved && ownerAlive(moved)) {
          // Another contender took the stale lock over between our read and our rename: put theirs back.
          try {
            linkSync(aside, file);
          } catch {
            // a third one holds it now
          }
          unlinkSync(aside);
          throw new Error(`${dir} is in use by another cxr train (${describe(moved)}); wait for it to finish or stop it (kill -TERM ${moved.pid} saves a checkpoint)`);
        }
        unlinkSync(aside);
        onMessage(`took over the run lock of ${owner ? `${describe(owner)}, which no longer runs` : 'an unreadable lock file'} (${file})`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
    held.set(file, 1);
    installExitHook();
    return handle(file);
  }
  throw new Error(`${dir}: could not take the run lock ${file} (others keep taking it)`);
}

function handle(file: string): RunLock {
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      const count = held.get(file) ?? 0;
      if (count > 1) {
        held.set(file, count - 1);
        return;
      }
      held.delete(file);
      const owner = readOwner(file);
      if (owner?.pid === process.pid) {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      }
    },
  };
}
