/**
 * Issue 17's proof on the real server: `cxr serve` started as users start it (bin/cxr.js, which re-launches Node
 * with the serving malloc settings), on loopback, 2 workers, gets every hostile input of scripts/hostile-inputs.ts
 * at once, with the worst options (Grad-CAM overlays for all 14 findings, showRejected), while a normal request
 * (a real NIH film) is sent in the middle of the attack. Each bomb is answered 422 (the two at-budget images 200,
 * downscaled) within HOSTILE_ANSWER_MS, the normal request 200 within NORMAL_DURING_ATTACK_MS, /healthz is ok
 * again afterwards, and the server's resident memory (VmRSS of its process, from /proc) stays within
 * RSS_BOUND_MB of what it was idle, during and after the suite. It does not fall back after the attack: RSS after
 * is the peak in every run (333-539 MB above idle here, and the same in bench/results/serve.json's runs), an open
 * defect whose cause is not found (not V8's heap, libvips's cache, glibc's arena count or ONNX Runtime's arena:
 * each was tried). So the bound holds the growth; a test that memory is given back would fail today.
 *
 * And the memory high-water mark: with the training malloc settings (memory never given back), a burst of large
 * images pushes the server above --worker-max-rss, workers are retired between analyses and replaced, and the
 * server keeps answering; a mark below the idle server's RSS is refused at start.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { hostileInputs, type HostileInput } from '../../scripts/hostile-inputs.js';
import type { PoolStats } from '../../src/serve/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { makeTestModel, NIH_IMAGE, NIH_IMAGE_2, postForm, type Field } from './helpers.js';

/** Every hostile file, sent at once to 2 workers (queue waits included), is answered within this. */
const HOSTILE_ANSWER_MS = 30_000;
/** The normal request sent while the hostile files are queued and running is answered 200 within this. */
const NORMAL_DURING_ATTACK_MS = 30_000;
/** The server's RSS may grow at most this much over its idle RSS, at the peak of the attack and after it. */
const RSS_BOUND_MB = 1024;
/** What bin/cxr.js gives `cxr serve` (its SERVING_TUNABLES). */
const SERVING_TUNABLES = 'glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432';
const TRAINING_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';

const CXR = join(REPO_ROOT, 'bin', 'cxr.js');
const modelPath = makeTestModel();
const normal: Field[] = [{ name: 'image', value: new Uint8Array(readFileSync(NIH_IMAGE)), filename: 'chest.png' }, { name: 'heatmap', value: 'none' }];

interface Serve {
  url: string;
  /** The process that serves (the launcher's child on Node 20, the launcher itself where it can exec). */
  pid: number;
  child: ChildProcess;
  stderr: () => string;
  stop: () => Promise<number | null>;
}

/** Starts `cxr serve` through the launcher, with `env` changes (undefined removes a variable). */
async function serve(args: string[], env: Record<string, string | undefined>): Promise<Serve> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const child = spawn(process.execPath, [CXR, 'serve', '--model', modelPath, '--port', '0', '--log-level', 'warn', ...args], { env: childEnv });
  let stderr = '';
  child.stdout!.resume();
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const match = stderr.match(/cxr-lens viewer: (http:\/\/127\.0\.0\.1:\d+)\//);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`cxr serve exited with ${code}: ${stderr}`)));
  });
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const pid = children.length === 1 ? children[0] : child.pid!;
  const stop = () => {
    if (child.exitCode !== null) return Promise.resolve(child.exitCode);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    return exited;
  };
  return { url, pid, child, stderr: () => stderr, stop };
}

function rssMb(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

async function health(url: string): Promise<{ status: number; body: { status: string; pool: PoolStats } }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as { status: string; pool: PoolStats } };
}

async function untilHealthy(url: string, ms: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < ms) {
    if ((await health(url)).status === 200) return performance.now() - start;
    await sleep(50);
  }
  throw new Error(`/healthz not ok within ${ms} ms: ${JSON.stringify((await health(url)).body)}`);
}

/** Samples the server's RSS every 100 ms; `stop` returns the peak. */
function rssSampler(pid: number): () => number {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

const mb = (x: number) => Math.round(x);

describe('cxr serve under the hostile-input suite', () => {
  let server: Serve;
  let inputs: HostileInput[];
  before(async () => {
    inputs = await hostileInputs();
    // No GLIBC_TUNABLES of the test run: the launcher chooses, as for a user.
    server = await serve(['--workers', '2'], { GLIBC_TUNABLES: undefined, CXR_NO_REEXEC: undefined });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('runs with the serving malloc settings, not the training ones', () => {
    // glibc splits the variable at its colons in place (NULs), so each setting is looked for on its own.
    // Only the variable itself is read: under npm, other variables (npm_lifecycle_script) quote the training settings.
    const entries = readFileSync(`/proc/${server.pid}/environ`, 'utf8').split('\0');
    const first = entries.findIndex((e) => e.startsWith('GLIBC_TUNABLES='));
    assert.ok(first >= 0, 'the server has GLIBC_TUNABLES');
    const settings = [entries[first].slice('GLIBC_TUNABLES='.length)];
    for (let i = first + 1; i < entries.length && entries[i].startsWith('glibc.'); i++) settings.push(entries[i]);
    const tunables = settings.flatMap((s) => s.split(':'));
    for (const setting of SERVING_TUNABLES.split(':')) assert.ok(tunables.includes(setting), `${setting} in ${tunables.join(':')}`);
    assert.ok(!tunables.includes('glibc.malloc.mmap_max=0'), `not the training settings: ${tunables.join(':')}`);
  });

  it('answers every bomb 422 (at-budget images 200, downscaled) in time, a normal request during the attack, then /healthz ok, RSS bounded', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await postForm(server.url, normal)).status, 200); // warm
    await sleep(500);
    const idle = rssMb(server.pid);
    const peakOf = rssSampler(server.pid);
    const started = performance.now();
    const attacks = inputs.map(async (input) => {
      const fields: Field[] = [{ name: 'image', value: input.bytes, filename: input.name }, { name: 'showRejected', value: 'true' }];
      const result = await postForm(server.url, fields);
      return { input, ...result, ms: performance.now() - started };
    });
    // The normal request goes in while the bombs are queued and running.
    await sleep(200);
    const normalStarted = performance.now();
    const during = await postForm(server.url, normal);
    const normalMs = performance.now() - normalStarted;
    const results = await Promise.all(attacks);
    const peak = peakOf();
    const healthyMs = await untilHealthy(server.url, 5000);
    await sleep(1000);
    const afterRss = rssMb(server.pid);

    for (const r of results) {
      console.log(`# ${r.input.name} (${r.input.bytes.length} bytes): ${r.status} in ${mb(r.ms)} ms${r.status === 200 ? `, ${r.body.image.width}x${r.body.image.height}` : `: ${r.body.message}`}`);
    }
    console.log(`# normal request during the attack: ${during.status} in ${mb(normalMs)} ms; /healthz ok ${mb(healthyMs)} ms after the last answer`);
    console.log(`# server RSS: idle ${mb(idle)} MB, peak ${mb(peak)} MB, after ${mb(afterRss)} MB`);
    for (const r of results) {
      if (r.input.expect === 'refused') {
        assert.equal(r.status, 422, `${r.input.name}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.message, r.input.error!, r.input.name);
      } else {
        assert.equal(r.status, 200, `${r.input.name}: ${JSON.stringify(r.body)}`);
        assert.ok(Math.max(r.body.image.width, r.body.image.height) <= 4096, `${r.input.name} downscaled: ${r.body.image.width}x${r.body.image.height}`);
      }
      assert.ok(r.ms < HOSTILE_ANSWER_MS, `${r.input.name} answered after ${mb(r.ms)} ms`);
    }
    assert.equal(during.status, 200, JSON.stringify(during.body));
    assert.ok(normalMs < NORMAL_DURING_ATTACK_MS, `the normal request took ${mb(normalMs)} ms`);
    const healthz = await health(server.url);
    assert.equal(healthz.body.status, 'ok');
    assert.equal(healthz.body.pool.workers, 2);
    assert.ok(peak - idle < RSS_BOUND_MB, `RSS peak ${mb(peak)} MB, idle ${mb(idle)} MB`);
    assert.ok(afterRss - idle < RSS_BOUND_MB, `RSS after ${mb(afterRss)} MB, idle ${mb(idle)} MB`);
  });

  it('a flood of occlusion requests holds one worker of two at most: a quick request passes the queued ones and starts at once', async () => {
    const slow: Field[] = [normal[0], { name: 'methods', value: 'occlusion' }, { name: 'heatmap', value: 'png' }];
    const controller = new AbortController();
    const flood = Array.from({ length: 4 }, () => postForm(server.url, slow, {}, controller.signal).catch((e: Error) => e));
    try {
      for (let i = 0; i < 200 && (await health(server.url)).body.pool.queued < 3; i++) await sleep(25);
      const pool = (await health(server.url)).body.pool;
      assert.deepEqual([pool.busy, pool.queued], [1, 3], JSON.stringify(pool));
      const quick = await postForm(server.url, normal);
      assert.equal(quick.status, 200);
      console.log(`# during the occlusion flood: quick request queued ${quick.body.timings.queuedMs} ms, total ${quick.body.timings.totalMs} ms`);
      assert.ok(quick.body.timings.queuedMs < 100, `queued ${quick.body.timings.queuedMs} ms`);
      assert.equal((await health(server.url)).body.pool.queued, 3, 'the slow ones still wait');
    } finally {
      controller.abort();
      await Promise.all(flood);
    }
    await untilHealthy(server.url, 10_000);
  });
});

describe('--worker-max-rss', () => {
  it('a mark below the idle server is refused at start', async () => {
    await assert.rejects(serve(['--workers', '1', '--worker-max-rss', '1'], { GLIBC_TUNABLES: undefined, CXR_NO_REEXEC: undefined }), /worker memory mark \(1 MB\) is not above the server's resident memory/);
  });

  it('with memory never given back (training settings), large images push RSS over the mark: workers are replaced between analyses and the server keeps answering', async () => {
    // 4096 px films (a real one upscaled), with Grad-CAM overlays: each leaves a few hundred MB in the allocator.
    const large = new Uint8Array(await sharp(readFileSync(NIH_IMAGE_2)).resize(4096, 4096).png().toBuffer());
    const probe = await serve(['--workers', '2'], { GLIBC_TUNABLES: TRAINING_TUNABLES });
    const idle = rssMb(probe.pid);
    await probe.stop();
    const mark = Math.ceil(idle + 150);
    const server = await serve(['--workers', '2', '--worker-max-rss', String(mark)], { GLIBC_TUNABLES: TRAINING_TUNABLES });
    try {
      assert.match(server.stderr(), new RegExp(`workers replaced above ${mark} MB resident`));
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => postForm(server.url, [{ name: 'image', value: large, filename: 'large.png' }, { name: 'findings', value: 'Effusion,Cardiomegaly' }])),
      );
      for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
      await untilHealthy(server.url, 30_000);
      // The last retired worker's replacement may still be loading the model.
      for (let i = 0; i < 400 && (await health(server.url)).body.pool.workers < 2; i++) await sleep(50);
      const pool = (await health(server.url)).body.pool;
      console.log(`# mark ${mark} MB (idle ${mb(idle)} MB): ${pool.retired} workers retired, RSS now ${pool.rssMb} MB`);
      // One at a time, at most one per 30 s.
      assert.equal(pool.retired, 1, JSON.stringify(pool));
      assert.equal(pool.workers, 2);
      assert.equal((await postForm(server.url, normal)).status, 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
