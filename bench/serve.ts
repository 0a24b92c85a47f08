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
 * Run: npm run build && GLIBC_TUNABLES=... node dist/bench/serve.js
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
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
import { BENCH_DIR, headlineCase, median, round, writeResults } from './lib.js';

const DATA = join(BENCH_DIR, '..', '..', 'shared', 'data');
const IMAGES = readdirSync(join(DATA, 'nih-cxr14-subset', 'images')).sort().slice(0, 16);
const WORKERS = 2;
const BOUNDARY = 'cxr-bench-boundary';

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

async function startServer(model: string, queue: number): Promise<Running> {
  const child = spawn(process.execPath, [join(BENCH_DIR, '..', 'bin', 'cxr.js'), 'serve', '--model', model, '--port', '0', '--workers', String(WORKERS), '--threads', '1', '--queue', String(queue), '--log-level', 'warn'], {
    env: { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736' },
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

  const overload = runs.overload_32_clients_queue_4;
  const answered = Object.values(overload.statuses).reduce((a, b) => a + b, 0);
  const referenceText = 'the same work in process without HTTP: decode + Predictor.predict, 1 thread (speedup < 1 = HTTP + queueing overhead)';
  const path = writeResults('serve', {
    headline: {
      analyze_concurrency_1: headlineCase(runs.concurrency_1.latency_ms.p50, reference.predictMs, referenceText),
      analyze_concurrency_4: headlineCase(runs.concurrency_4.latency_ms.p50, reference.predictMs, referenceText),
      analyze_heatmaps_concurrency_2: headlineCase(runs.heatmaps_concurrency_2.latency_ms.p50, reference.explainMs, 'in process without HTTP: decode + Grad-CAM for 14 findings + 14 overlay PNGs, 1 thread'),
    },
    setup: { server: `cxr serve, ${WORKERS} workers x 1 thread, MobileNetV2 224 px (new head)`, images: `${IMAGES.length} NIH PNGs 512x512, cycled`, client: 'autocannon, loopback, same machine' },
    in_process_ms: { predict: round(reference.predictMs), predict_with_heatmaps: round(reference.explainMs) },
    runs,
    overload: {
      rate_503: round((overload.statuses[503] ?? 0) / answered, 3),
      only_200_or_503: Object.keys(overload.statuses).every((s) => s === '200' || s === '503'),
      every_503_has_retry_after: overload.retry_after_missing === 0,
    },
  });
  process.stdout.write(`wrote ${path}\n`);
}

await main();
