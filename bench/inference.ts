/**
 * Inference throughput: DenseNet-121, MobileNetV2 and Swin-T at 224 px, batch 1 and 16, ONNX Runtime (our zoo
 * graphs, the Predictor's session settings) against PyTorch CPU (torchvision, inference mode), 2 threads each, run
 * in alternating rounds in one process tree; medians of the rounds.
 *
 * Run: npm run build && node bin/../dist/bench/inference.js   (set GLIBC_TUNABLES as bin/cxr.js does)
 * BENCH_ONLY=swin_t measures only the cases whose name starts so and keeps the others' results from the last run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel } from '../src/models/zoo/index.js';
import { float32 } from '../src/onnx/index.js';
import { OrtSession } from '../src/runtime/session.js';
import { BENCH_DIR, type HeadlineCase, PythonWorker, headlineCase, machine, median, round, writeResults } from './lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CASES = [
  { arch: 'densenet121', batch: 1, runs: 10 },
  { arch: 'densenet121', batch: 16, runs: 2 },
  { arch: 'mobilenet_v2', batch: 1, runs: 20 },
  { arch: 'mobilenet_v2', batch: 16, runs: 3 },
  { arch: 'swin_t', batch: 1, runs: 5 },
  { arch: 'swin_t', batch: 16, runs: 1 },
] as const;
const ONLY = process.env.BENCH_ONLY ?? '';
const SIZE = 224;
const THREADS = 2;

async function main(): Promise<void> {
  const torch = new PythonWorker('torch_inference.py');
  const kept = ONLY ? keptResults() : { headline: {}, details: {} };
  const headline: Record<string, HeadlineCase> = kept.headline;
  const details: Record<string, unknown> = kept.details;
  try {
    for (const c of CASES.filter((c) => caseName(c).startsWith(ONLY))) {
      const session = await OrtSession.create(buildModel(c.arch, { height: SIZE }), { threads: THREADS });
      const input = float32([c.batch, 3, SIZE, SIZE], Float32Array.from({ length: c.batch * 3 * SIZE * SIZE }, () => Math.random() * 2 - 1));
      const ours = async () => {
        const times: number[] = [];
        for (let i = 0; i < c.runs; i++) {
          const start = performance.now();
          await session.run({ image: input }, ['logits']);
          times.push(performance.now() - start);
        }
        return median(times);
      };
      const reference = async () => median((await torch.request<{ ms: number[] }>({ arch: c.arch, batch: c.batch, size: SIZE, runs: c.runs })).ms);
      await ours();
      await reference();
      const oursRounds: number[] = [];
      const referenceRounds: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        oursRounds.push(await ours());
        referenceRounds.push(await reference());
      }
      await session.release();
      const name = caseName(c);
      const oursMs = median(oursRounds);
      const referenceMs = median(referenceRounds);
      headline[name] = headlineCase(oursMs, referenceMs, `PyTorch ${THREADS} threads, torchvision ${c.arch}, inference_mode (same run, alternating)`);
      details[name] = {
        images_per_s: { ours: round((1000 * c.batch) / oursMs, 1), reference: round((1000 * c.batch) / referenceMs, 1) },
        rounds_ms: { ours: oursRounds.map((v) => round(v)), reference: referenceRounds.map((v) => round(v)) },
        date: new Date().toISOString(),
      };
      process.stdout.write(`${name}: ours ${round(oursMs, 1)} ms, PyTorch ${round(referenceMs, 1)} ms, speedup ${round(referenceMs / oursMs, 2)}x\n`);
    }
  } finally {
    torch.close();
  }
  const path = writeResults('inference', { headline, details, settings: { threads: THREADS, rounds: ROUNDS, size: SIZE, machine: machine() } });
  process.stdout.write(`wrote ${path}\n`);
}

function caseName(c: (typeof CASES)[number]): string {
  return `${c.arch}_b${c.batch}_${SIZE}`;
}

/** The last run's results, for the cases BENCH_ONLY leaves out. */
function keptResults(): { headline: Record<string, HeadlineCase>; details: Record<string, unknown> } {
  const path = join(BENCH_DIR, 'results', 'inference.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { headline: Record<string, HeadlineCase>; details: Record<string, unknown> }) : { headline: {}, details: {} };
}

await main();
