#!/usr/bin/env node
// Starts the cxr CLI. On Linux, Node must start with glibc malloc tunables: without them, the large tensors ONNX
// Runtime allocates and frees are returned to the OS every time, which is many times slower on VMs (see
// ENGINE.md). glibc reads them only at process start, and Node cannot set them itself, so this script starts
// Node again with them set: training settings for every command but `cxr serve`, which gets serving settings that
// give memory back (below). Set GLIBC_TUNABLES yourself, or CXR_NO_REEXEC=1, to skip that.
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

// Training, evaluation, prediction: no mmap'd chunks at all and a 64 GiB trim threshold, so nothing freed is ever
// given back; the same large tensors are reused at full speed for the whole (finite) run.
const TRAINING_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';
// `cxr serve` runs for weeks and any upload may make a worker decode a 4096 px image or draw 2048 px overlays:
// with the training settings every such peak (hundreds of MB) would stay resident for good. Serving mmaps every
// allocation of 16 MiB or more (decoded large images, their resized copies, full-size overlays) and so hands it
// back on free, and trims an arena's free top above 32 MiB. The threshold is fixed, so glibc does not raise it
// after the first big free (its default would, up to 32 MiB). Not lower: each request allocates a few buffers of
// 4-16 MiB, and at a 1 or 4 MiB threshold mmapping them cost a third of the throughput (28-31 against 45-60
// analyses/s, 4 clients, 2 cores). bench/results/serve.json (memory) has RSS and throughput under both settings.
const SERVING_TUNABLES = 'glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432';

/** The subcommand: the first argument that is not an option (the program's own options take no value). */
function subcommand(args) {
  return args.find((arg) => !arg.startsWith('-'));
}

if (process.platform === 'linux' && !process.env.GLIBC_TUNABLES && !process.env.CXR_NO_REEXEC) {
  const argv = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const env = { ...process.env, GLIBC_TUNABLES: subcommand(process.argv.slice(2)) === 'serve' ? SERVING_TUNABLES : TRAINING_TUNABLES };
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
