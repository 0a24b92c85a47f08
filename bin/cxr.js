#!/usr/bin/env node
// Starts the cxr CLI. On Linux, Node must start with glibc malloc tunables: without them, the large tensors ONNX
// Runtime allocates and frees are returned to the OS every time, which is many times slower on VMs (see
// ENGINE.md). glibc reads them only at process start, and Node cannot set them itself, so this script starts
// Node again with them set. Set GLIBC_TUNABLES yourself, or CXR_NO_REEXEC=1, to skip that.
//
// Where Node has process.execve (22.15+), the new Node replaces this process: one process, one pid, signals reach
// the CLI directly. Elsewhere (Node 20) a child process runs the CLI and this launcher stands in for it:
// - the child runs in its own session (detached), so a terminal's Ctrl-C reaches only the launcher, which passes
//   it on once (the CLI treats a second SIGINT as "quit at once"; two copies of one Ctrl-C must not look like it);
// - SIGINT, SIGTERM and SIGHUP sent to the launcher are passed on; the launcher waits for the child and exits
//   with its status (or its signal); Ctrl-Z stops both, fg continues both;
// - if the launcher is killed outright (kill -9), the child sees its IPC channel close and stops itself as on
//   SIGTERM (src/cli/main.ts), so no orphan keeps running.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';

if (process.platform === 'linux' && !process.env.GLIBC_TUNABLES && !process.env.CXR_NO_REEXEC) {
  const argv = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const env = { ...process.env, GLIBC_TUNABLES: TUNABLES };
  if (typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, ...argv], env);
  }
  const child = spawn(process.execPath, argv, {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...env, CXR_LAUNCHER_PID: String(process.pid) },
    detached: true,
  });
  const pass = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => pass(signal));
  // The child is in its own session, so the terminal's Ctrl-Z stops only this process: stop the child too.
  process.on('SIGTSTP', () => {
    pass('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  });
  process.on('SIGCONT', () => pass('SIGCONT'));
  child.on('error', (error) => {
    process.stderr.write(`cxr: cannot start ${process.execPath}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  });
} else {
  await import('../dist/src/cli/main.js');
}
