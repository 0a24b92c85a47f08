#!/usr/bin/env node
// Starts the cxr CLI. On Linux it first re-launches Node with glibc malloc tunables: without them, the large
// tensors ONNX Runtime allocates and frees are returned to the OS every time, which is many times slower on VMs
// (see ENGINE.md). Set GLIBC_TUNABLES yourself, or CXR_NO_REEXEC=1, to skip the re-launch.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';

if (process.platform === 'linux' && !process.env.GLIBC_TUNABLES && !process.env.CXR_NO_REEXEC) {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: TUNABLES },
  });
  // Ctrl-C reaches the child directly (same process group), which decides how to stop; other signals sent to
  // this process are passed on. Either way this process only waits and then exits as the child did.
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
} else {
  await import('../dist/src/cli/main.js');
}
