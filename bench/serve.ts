/**
 * Load on `cxr serve` over loopback: autocannon clients POST real NIH images (16 different PNGs, cycled) to
 * /api/v1/analyze of a server running in its own process (2 workers x 1 ONNX Runtime thread, MobileNetV2 224 px).
 * - below the queue limit (1 and 4 clients; 2 clients with Grad-CAM heatmaps): throughput, p50/p99 latency,
 *   and zero failed or lost requests (every request sent is answered 200);
 * - above it (32 clients against a queue of 4): the rate of clean 503s (each with Retry-After), nothing else.
 * Server RSS is sampled from /proc during every run. The reference is the same work in process, no HTTP: decode +
 * Predictor.predict for one image (1 thread), so speedup = in-process ms / HTTP p50 ms is the HTTP-and-queueing
 * overhead factor (below 1: HTTP costs that much on top).
 *
 * Issue 17's load cases, on a server with the default queue (16), each for a fixed time:
 * - saturation (16 clients) and overload (64 clients retrying 50 ms after a 503; 64 honouring Retry-After; and 64
 *   impatient ones against a server with --admission-wait 0): successful throughput; the overload cases' headlines
 *   are ms per successful analysis against saturation's (speedup < 1: overload lost throughput);
 * - abandoned clients: 8 clients that leave mid-upload or while their occlusion analysis waits or runs, beside 2
 *   normal clients; and a slow-method flood: 8 clients sending occlusion analyses (all 14 findings, overlays)
 *   beside 2 normal clients. Headline: the normal clients' p99 against the same 2 clients alone.
 * And memory: the server under training and serving malloc settings (and serving with --worker-max-rss), its RSS
 * idle, during and after a burst of 4096 px PNGs (real NIH films upscaled, Grad-CAM overlays), and after every
 * hostile input of scripts/hostile-inputs.ts; and the normal throughput under each setting.
 *
 * Run: npm run build && GLIBC_TUNABLES=... node dist/bench/serve.js
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadModel } from '../src/api.js';
import { Explainer, renderHeatmap } from '../src/explain/index.js';
import { decodeImage } from '../src/imaging/index.js';
import { Predictor } from '../src/inference/predictor.js';
import { importWeights } from '../src/models/import/index.js';
import { writeModelFile } from '../src/onnx/index.js';
import { hostileInputs } from '../scripts/hostile-inputs.js';
import sharp from 'sharp';
import { BENCH_DIR, headlineCase, median, option, round, writeResults } from './lib.js';

const DATA = join(BENCH_DIR, '..', '..', 'shared', 'data');
const IMAGES = readdirSync(join(DATA, 'nih-cxr14-subset', 'images')).sort().slice(0, 16);
const WORKERS = 2;
/** Seconds each load case runs. */
const LOAD_S = 6;
const BOUNDARY = 'cxr-bench-boundary';
/** Large images are analysed as the viewer asks, for two findings (Grad-CAM, 2048 px overlays). */
const LARGE_FIELDS = { methods: 'gradcam', heatmap: 'png', findings: 'Effusion,Cardiomegaly' };
/** The --worker-max-rss of the memory case that uses it. */
const WORKER_MAX_RSS_MB = 640;

function multipart(file: Uint8Array, name: string, fields: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(fields)) parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${value}\r\n`));
  parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`), Buffer.from(file), Buffer.from(`\r\n--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  url: string;
}

/** bin/cxr.js's malloc settings: TRAINING_TUNABLES (every command but serve) and SERVING_TUNABLES (cxr serve). */
const MALLOC = {
  training: 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736',
  serving: 'glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432',
} as const;

async function startServer(model: string, queue: number, tunables: string = MALLOC.serving, extra: string[] = []): Promise<Running> {
  // GLIBC_TUNABLES given, so the launcher does not re-launch: the child is the server itself (its RSS is read).
  const child = spawn(process.execPath, [join(BENCH_DIR, '..', 'bin', 'cxr.js'), 'serve', '--model', model, '--port', '0', '--workers', String(WORKERS), '--threads', '1', '--queue', String(queue), '--log-level', 'warn', ...extra], {
    env: { ...process.env, GLIBC_TUNABLES: tunables },
  });
  child.stdout.resume();
  const url = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const match = stderr.match(/viewer: (http:\/\/[^/\s]+)\//);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`cxr serve exited (${code}): ${stderr}`)));
  });
  return { child, url };
}

async function stopServer(server: Running): Promise<void> {
  const exited = new Promise((resolve) => server.child.on('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return line ? round(Number(line[1]) / 1024, 1) : NaN;
}

interface LoadResult {
  clients: number;
  requests_sent: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  lost: number;
  throughput_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  rss_mb: { before: number; peak: number; after: number };
  retry_after_missing?: number;
}

async function load(server: Running, clients: number, amount: number, fields: Record<string, string>, timeoutS: number): Promise<LoadResult> {
  const bodies = IMAGES.map((name) => multipart(new Uint8Array(readFileSync(join(DATA, 'nih-cxr14-subset', 'images', name))), name, fields));
  const statuses: Record<string, number> = {};
  let retryAfterMissing = 0;
  let sent = 0;
  const rss = { before: rssMb(server.child.pid!), peak: 0, after: 0 };
  const sampler = setInterval(() => (rss.peak = Math.max(rss.peak, rssMb(server.child.pid!))), 200);
  // Each client starts at a different image, so concurrent requests carry different images.
  const requests = bodies.map((body) => ({
    method: 'POST' as const,
    path: '/api/v1/analyze',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body,
    setupRequest: (request: object) => {
      sent++;
      return request;
    },
    onResponse: (status: number, _body: string, _context: object, headers?: IncomingHttpHeaders) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 503 && !headers?.['retry-after']) retryAfterMissing++;
    },
  }));
  const result = await autocannon({ url: server.url, connections: clients, amount, requests, timeout: timeoutS, excludeErrorStats: true });
  clearInterval(sampler);
  rss.after = rssMb(server.child.pid!);
  rss.peak = Math.max(rss.peak, rss.after);
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  const ok = statuses[200] ?? 0;
  return {
    clients,
    requests_sent: sent,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    lost: sent - answered,
    throughput_per_s: round(ok / result.duration, 2),
    latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    rss_mb: rss,
    ...(statuses[503] ? { retry_after_missing: retryAfterMissing } : {}),
  };
}

interface Sample {
  status: number;
  ms: number;
  /** Retry-After of a 503, in seconds. */
  retryAfter?: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/**
 * One POST of a prepared multipart body. `abandon`: 'upload' sends half the body and closes the connection;
 * 'waiting' sends it all and closes `afterMs` later (while the analysis waits or runs). Resolves null when abandoned.
 */
function post(url: string, body: Buffer, abandon?: { when: 'upload' | 'waiting'; afterMs: number }): Promise<Sample | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = httpRequest(`${url}/api/v1/analyze`, {
      method: 'POST',
      agent: abandon ? undefined : agent,
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      res.resume();
      const retryAfter = Number(res.headers['retry-after']);
      res.on('end', () => resolve({ status: res.statusCode!, ms: performance.now() - started, ...(retryAfter ? { retryAfter } : {}) }));
    });
    req.on('error', () => resolve(abandon ? null : { status: 0, ms: performance.now() - started }));
    if (abandon) {
      req.write(abandon.when === 'upload' ? body.subarray(0, body.length >> 1) : body);
      setTimeout(() => req.destroy(), abandon.afterMs);
    } else {
      req.end(body);
    }
  });
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface ClientsResult {
  clients: number;
  requests: number;
  statuses: Record<string, number>;
  /** Successful (200) analyses per second over the run. */
  ok_per_s: number;
  /** Latency of the successful analyses. */
  ok_latency_ms: { p50: number; p99: number; max: number };
  /** Latency of every answer (503s included). */
  all_latency_ms: { p50: number; p99: number };
}

function summarize(clients: number, samples: Sample[], seconds: number): ClientsResult {
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const ok = samples.filter((s) => s.status === 200).map((s) => s.ms);
  const all = samples.map((s) => s.ms);
  return {
    clients,
    requests: samples.length,
    statuses,
    ok_per_s: round(ok.length / seconds, 2),
    ok_latency_ms: { p50: round(percentile(ok, 50), 1), p99: round(percentile(ok, 99), 1), max: round(Math.max(...ok), 1) },
    all_latency_ms: { p50: round(percentile(all, 50), 1), p99: round(percentile(all, 99), 1) },
  };
}

/** `clients` closed-loop clients, each sending the next of `bodies` as soon as its previous answer came, until `stopAt`. */
async function clients(
  url: string,
  count: number,
  bodies: Buffer[],
  stopAt: number,
  abandon?: (i: number) => { when: 'upload' | 'waiting'; afterMs: number },
  honourRetryAfter = false,
): Promise<{ samples: Sample[]; abandoned: number }> {
  const samples: Sample[] = [];
  let abandoned = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: count }, async (_, c) => {
      for (let i = c; performance.now() < stopAt; i += count) {
        const sample = await post(url, bodies[i % bodies.length], abandon?.(n++));
        if (sample) samples.push(sample);
        else abandoned++;
        // A refused client waits 50 ms before trying again (impatient), or what Retry-After says (up to the end).
        if (sample?.status === 503) await sleep(honourRetryAfter && sample.retryAfter ? Math.min(sample.retryAfter * 1000, Math.max(0, stopAt - performance.now())) : 50);
      }
    }),
  );
  return { samples, abandoned };
}

async function health(url: string): Promise<{ status: string; pool: Record<string, number>; admission: Record<string, number> }> {
  return (await (await fetch(`${url}/healthz`)).json()) as { status: string; pool: Record<string, number>; admission: Record<string, number> };
}

/** Waits until /healthz says ok (the pool drained), at most `ms`; returns how long it took. */
async function untilHealthy(url: string, ms = 60_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < ms) {
    if ((await health(url)).status === 'ok') return round(performance.now() - start, 0);
    await sleep(100);
  }
  return NaN;
}

async function loadCases(model: string, normalBodies: Buffer[], occlusionBodies: Buffer[]) {
  const server = await startServer(model, 16);
  const out: Record<string, unknown> = {};
  try {
    const pid = server.child.pid!;
    await clients(server.url, 2, normalBodies, performance.now() + 2000); // warm-up
    const timed = async (seconds: number, run: (stopAt: number) => Promise<void>) => {
      const rss = { before: rssMb(pid), peak: 0, after: 0 };
      const sampler = setInterval(() => (rss.peak = Math.max(rss.peak, rssMb(pid))), 200);
      await run(performance.now() + seconds * 1000);
      clearInterval(sampler);
      rss.after = rssMb(pid);
      rss.peak = Math.max(rss.peak, rss.after);
      return rss;
    };
    let normal = await clients(server.url, 2, normalBodies, 0);
    let rss = await timed(LOAD_S, async (stopAt) => void (normal = await clients(server.url, 2, normalBodies, stopAt)));
    out.normal_2_clients_alone = { ...summarize(2, normal.samples, LOAD_S), rss_mb: rss };

    for (const count of [16, 64]) {
      rss = await timed(LOAD_S, async (stopAt) => void (normal = await clients(server.url, count, normalBodies, stopAt)));
      out[`clients_${count}`] = { ...summarize(count, normal.samples, LOAD_S), rss_mb: rss, healthy_after_ms: await untilHealthy(server.url) };
    }
    // The same 64 clients waiting as long as Retry-After says after a 503: what is left of the overload's cost is
    // the impatient clients' retries (client and server share the 2 cores).
    rss = await timed(LOAD_S, async (stopAt) => void (normal = await clients(server.url, 64, normalBodies, stopAt, undefined, true)));
    out.clients_64_honouring_retry_after = { ...summarize(64, normal.samples, LOAD_S), rss_mb: rss, healthy_after_ms: await untilHealthy(server.url) };

    // Abandoned: 8 clients that alternately leave mid-upload and 300 ms after sending an occlusion request.
    const before = (await health(server.url)).pool;
    let leaving = { samples: [] as Sample[], abandoned: 0 };
    rss = await timed(LOAD_S, async (stopAt) => {
      [normal, leaving] = await Promise.all([
        clients(server.url, 2, normalBodies, stopAt),
        clients(server.url, 8, occlusionBodies, stopAt, (i) => (i % 2 ? { when: 'upload', afterMs: 100 } : { when: 'waiting', afterMs: 300 })),
      ]);
    });
    const healthyAfter = await untilHealthy(server.url);
    const afterStats = (await health(server.url)).pool;
    out.abandoned_clients = {
      normal: summarize(2, normal.samples, LOAD_S),
      abandoning_clients: 8,
      abandoned: leaving.abandoned,
      answered_before_leaving: leaving.samples.length,
      cancelled_by_server: afterStats.cancelled - before.cancelled,
      workers_recycled: afterStats.recycled - before.recycled,
      healthy_after_ms: healthyAfter,
      rss_mb: rss,
    };

    // Slow-method flood: 8 clients sending occlusion analyses beside the 2 normal clients.
    let flood = { samples: [] as Sample[], abandoned: 0 };
    rss = await timed(LOAD_S * 2, async (stopAt) => {
      [normal, flood] = await Promise.all([clients(server.url, 2, normalBodies, stopAt), clients(server.url, 8, occlusionBodies, stopAt)]);
    });
    out.occlusion_flood = {
      normal: summarize(2, normal.samples, LOAD_S * 2),
      flood: summarize(8, flood.samples, LOAD_S * 2),
      healthy_after_ms: await untilHealthy(server.url),
      rss_mb: rss,
    };
    const after = await health(server.url);
    out.pool_after = after.pool;
    out.admission_after = after.admission;
  } finally {
    await stopServer(server);
  }
  // The same impatient overload on a server that refuses at once (--admission-wait 0, as before admission waits).
  const refusing = await startServer(model, 16, MALLOC.serving, ['--admission-wait', '0']);
  try {
    await clients(refusing.url, 2, normalBodies, performance.now() + 2000); // warm-up
    const stopAt = performance.now() + LOAD_S * 1000;
    const impatient = await clients(refusing.url, 64, normalBodies, stopAt);
    out.clients_64_without_admission_wait = summarize(64, impatient.samples, LOAD_S);
  } finally {
    await stopServer(refusing);
  }
  return out;
}

/** 4096 px PNGs made from real NIH films (Lanczos upscaling), as a modern detector would send them. */
async function largePngs(count: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const name of IMAGES.slice(0, count)) {
    out.push(await sharp(readFileSync(join(DATA, 'nih-cxr14-subset', 'images', name))).resize(4096, 4096, { kernel: 'lanczos3' }).png({ compressionLevel: 6 }).toBuffer());
  }
  return out;
}

async function memoryCase(model: string, tunables: string, extra: string[], large: Buffer[], normalBodies: Buffer[], hostile: { name: string; body: Buffer }[]) {
  const server = await startServer(model, 16, tunables, extra);
  try {
    const pid = server.child.pid!;
    await clients(server.url, 2, normalBodies, performance.now() + 2000); // warm-up
    await sleep(500);
    const idle = rssMb(pid);
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
    // Each large image once, 4 clients at once.
    const burstStart = performance.now();
    const sent = await Promise.all(
      Array.from({ length: 4 }, async (_, c) => {
        const s: Sample[] = [];
        for (let i = c; i < large.length; i += 4) s.push((await post(server.url, large[i % large.length]))!);
        return s;
      }),
    );
    const burst = { samples: sent.flat() };
    const burstMs = performance.now() - burstStart;
    const burstPeak = peak;
    await sleep(2000);
    const afterBurst = rssMb(pid);
    peak = afterBurst;
    const hostileStatuses: Record<string, number> = {};
    let slowestHostileMs = 0;
    for (const h of hostile) {
      const s = (await post(server.url, h.body))!;
      hostileStatuses[`${h.name}`] = s.status;
      slowestHostileMs = Math.max(slowestHostileMs, s.ms);
    }
    const hostilePeak = peak;
    await sleep(2000);
    clearInterval(sampler);
    const afterHostile = rssMb(pid);
    const stop = performance.now() + 4000;
    const normal = await clients(server.url, 4, normalBodies, stop);
    return {
      glibc_tunables: tunables,
      options: extra.join(' ') || undefined,
      rss_mb: { idle, burst_peak: burstPeak, after_burst: afterBurst, hostile_peak: hostilePeak, after_hostile: afterHostile, after_normal_load: rssMb(pid) },
      large_burst: { images: burst.samples.length, statuses: countStatuses(burst.samples), seconds: round(burstMs / 1000, 1), p99_ms: round(percentile(burst.samples.map((s) => s.ms), 99), 0) },
      hostile: { statuses: hostileStatuses, slowest_ms: round(slowestHostileMs, 0) },
      normal_4_clients_after: summarize(4, normal.samples, 4),
      pool: (await health(server.url)).pool,
    };
  } finally {
    await stopServer(server);
  }
}

function countStatuses(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.status] = (out[s.status] ?? 0) + 1;
  return out;
}

async function inProcessReference(model: string) {
  const { model: loaded } = loadModel(model);
  const files = IMAGES.map((name) => new Uint8Array(readFileSync(join(DATA, 'nih-cxr14-subset', 'images', name))));
  const predictor = await Predictor.create(loaded, { threads: 1, batchSize: 1 });
  const times: number[] = [];
  for (let i = 0; i < 48; i++) {
    const start = performance.now();
    await predictor.predict([await decodeImage(files[i % files.length], IMAGES[i % files.length])]);
    if (i >= 8) times.push(performance.now() - start);
  }
  await predictor.close();
  const explainer = await Explainer.create(loaded, { threads: 1 });
  const explainTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const image = await decodeImage(files[i], IMAGES[i]);
    const explanation = await explainer.explain(image, { method: 'gradcam' });
    for (const finding of explanation.findings) await renderHeatmap(image, explanation, finding);
    explainTimes.push(performance.now() - start);
  }
  await explainer.close();
  return { predictMs: median(times), explainMs: median(explainTimes) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cxr-bench-serve-'));
  const model = join(dir, 'mobilenet-new-head.onnx');
  const weights = join(DATA, 'weights', 'mobilenetv2-12-int8.onnx');
  writeModelFile(model, importWeights(new Uint8Array(readFileSync(weights)), weights, { newHead: true, height: 224, width: 224 }).model);

  // --only load|memory: that part alone, printed, no results written (for development).
  const only = option('only');
  if (only) {
    const nih = IMAGES.map((name) => new Uint8Array(readFileSync(join(DATA, 'nih-cxr14-subset', 'images', name))));
    const normalBodies = nih.map((f, i) => multipart(f, IMAGES[i], { heatmap: 'none' }));
    if (only === 'load') {
      const occlusionBodies = nih.slice(0, 4).map((f, i) => multipart(f, IMAGES[i], { methods: 'occlusion', heatmap: 'png' }));
      process.stdout.write(`${JSON.stringify(await loadCases(model, normalBodies, occlusionBodies), null, 1)}\n`);
    } else {
      const large = (await largePngs(4)).map((png, i) => multipart(png, `large-${i}.png`, LARGE_FIELDS));
      const hostile = (await hostileInputs()).map((h) => ({ name: h.name, body: multipart(h.bytes, h.name, { methods: 'gradcam', heatmap: 'png', showRejected: 'true' }) }));
      const tunables = option('tunables') ?? MALLOC.serving;
      const extra = option('extra')?.split(' ') ?? [];
      process.stdout.write(`${JSON.stringify(await memoryCase(model, tunables, extra, large, normalBodies, hostile), null, 1)}\n`);
    }
    return;
  }
  const reference = await inProcessReference(model);
  process.stdout.write(`in process: decode + predict ${round(reference.predictMs, 1)} ms, + Grad-CAM heatmaps ${round(reference.explainMs)} ms\n`);

  const below = await startServer(model, 16);
  const runs: Record<string, LoadResult> = {};
  try {
    await load(below, 2, 32, { heatmap: 'none' }, 30); // warm-up
    runs.concurrency_1 = await load(below, 1, 150, { heatmap: 'none' }, 30);
    runs.concurrency_4 = await load(below, 4, 400, { heatmap: 'none' }, 30);
    runs.heatmaps_concurrency_2 = await load(below, 2, 16, { heatmap: 'png', methods: 'gradcam' }, 120);
  } finally {
    await stopServer(below);
  }
  const above = await startServer(model, 4);
  try {
    runs.overload_32_clients_queue_4 = await load(above, 32, 3000, { heatmap: 'none' }, 30);
  } finally {
    await stopServer(above);
  }
  for (const [name, r] of Object.entries(runs)) process.stdout.write(`${name}: ${JSON.stringify(r)}\n`);

  const body = (file: Uint8Array, name: string, fields: Record<string, string>) => multipart(file, name, fields);
  const nihFiles = IMAGES.map((name) => new Uint8Array(readFileSync(join(DATA, 'nih-cxr14-subset', 'images', name))));
  const normalBodies = nihFiles.map((f, i) => body(f, IMAGES[i], { heatmap: 'none' }));
  const occlusionBodies = nihFiles.slice(0, 4).map((f, i) => body(f, IMAGES[i], { methods: 'occlusion', heatmap: 'png' }));
  const load2 = await loadCases(model, normalBodies, occlusionBodies);
  const L = load2 as unknown as Record<'clients_16' | 'clients_64' | 'clients_64_honouring_retry_after' | 'clients_64_without_admission_wait' | 'normal_2_clients_alone', ClientsResult> & Record<'abandoned_clients' | 'occlusion_flood', { normal: ClientsResult }>;
  process.stdout.write(`load: ${JSON.stringify(load2)}\n`);

  const large = (await largePngs(4)).map((png, i) => body(png, `large-${i}.png`, LARGE_FIELDS));
  const hostile = (await hostileInputs()).map((h) => ({ name: h.name, body: body(h.bytes, h.name, { methods: 'gradcam', heatmap: 'png', showRejected: 'true' }) }));
  const memory = {
    training_malloc: await memoryCase(model, MALLOC.training, [], large, normalBodies, hostile),
    serving_malloc: await memoryCase(model, MALLOC.serving, [], large, normalBodies, hostile),
    serving_malloc_worker_max_rss: await memoryCase(model, MALLOC.serving, ['--worker-max-rss', String(WORKER_MAX_RSS_MB)], large, normalBodies, hostile),
  };
  process.stdout.write(`memory: ${JSON.stringify(memory)}\n`);

  const overload = runs.overload_32_clients_queue_4;
  const answered = Object.values(overload.statuses).reduce((a, b) => a + b, 0);
  const referenceText = 'the same work in process without HTTP: decode + Predictor.predict, 1 thread (speedup < 1 = HTTP + queueing overhead)';
  const path = writeResults('serve', {
    headline: {
      analyze_concurrency_1: headlineCase(runs.concurrency_1.latency_ms.p50, reference.predictMs, referenceText),
      analyze_concurrency_4: headlineCase(runs.concurrency_4.latency_ms.p50, reference.predictMs, referenceText),
      analyze_heatmaps_concurrency_2: headlineCase(runs.heatmaps_concurrency_2.latency_ms.p50, reference.explainMs, 'in process without HTTP: decode + Grad-CAM for 14 findings + 14 overlay PNGs, 1 thread'),
      // Not against another program: each against the same server without the attack (speedup < 1: what it costs).
      overload_64_clients_ms_per_success: headlineCase(1000 / L.clients_64.ok_per_s, 1000 / L.clients_16.ok_per_s, 'ms per successful analysis (1000 / throughput) at saturation: 16 clients, same server, queue 16 (speedup < 1: overload lost throughput); 64 clients retrying 50 ms after a 503'),
      overload_64_clients_honouring_retry_after_ms_per_success: headlineCase(1000 / L.clients_64_honouring_retry_after.ok_per_s, 1000 / L.clients_16.ok_per_s, 'ms per successful analysis at saturation (16 clients), as above; 64 clients waiting as Retry-After says after a 503'),
      overload_64_clients_without_admission_wait_ms_per_success: headlineCase(1000 / L.clients_64_without_admission_wait.ok_per_s, 1000 / L.clients_16.ok_per_s, 'ms per successful analysis at saturation (16 clients), as above; 64 impatient clients against a server started with --admission-wait 0 (every refusal at once)'),
      normal_p99_with_abandoning_clients: headlineCase(L.abandoned_clients.normal.ok_latency_ms.p99, L.normal_2_clients_alone.ok_latency_ms.p99, 'p99 of the same 2 normal clients with no other load (speedup < 1: slowed by the 8 abandoning clients)'),
      normal_p99_during_occlusion_flood: headlineCase(L.occlusion_flood.normal.ok_latency_ms.p99, L.normal_2_clients_alone.ok_latency_ms.p99, 'p99 of the same 2 normal clients with no other load (speedup < 1: slowed by the flood of 8 occlusion clients)'),
    },
    setup: { server: `cxr serve, ${WORKERS} workers x 1 thread, MobileNetV2 224 px (new head)`, server_malloc: `bin/cxr.js's serving settings (${MALLOC.serving}) except where a memory case says otherwise; the machine line is this benchmark's own process`, images: `${IMAGES.length} NIH PNGs 512x512, cycled`, client: 'autocannon (runs), closed-loop node:http clients (load, memory); loopback, same machine' },
    in_process_ms: { predict: round(reference.predictMs), predict_with_heatmaps: round(reference.explainMs) },
    runs,
    load: load2,
    memory,
    overload: {
      rate_503: round((overload.statuses[503] ?? 0) / answered, 3),
      only_200_or_503: Object.keys(overload.statuses).every((s) => s === '200' || s === '503'),
      every_503_has_retry_after: overload.retry_after_missing === 0,
    },
  });
  process.stdout.write(`wrote ${path}\n`);
}

await main();
