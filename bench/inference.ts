/**
 * Inference throughput: DenseNet-121, MobileNetV2 and Swin-T at 224 px, batch 1 and 16, ONNX Runtime (our zoo
 * graphs, the Predictor's session settings) against PyTorch CPU (torchvision), 2 threads each, run in alternating
 * rounds in one process tree; medians of the rounds.
 *
 * The reference runs in its fastest documented configuration, chosen per case: memory format (NCHW or
 * channels-last), eager `inference_mode` or TorchScript (trace + freeze + optimize_for_inference), and GNU OpenMP's
 * wait policy (the default spin-then-sleep, or OMP_WAIT_POLICY=PASSIVE). After one warm-up request each, the
 * candidates within PRUNE_FACTOR of the best warm-up run in SELECT_ROUNDS alternating rounds; the fastest median is then measured against ours in ROUNDS
 * alternating rounds. The results file names the winner and keeps every candidate's time.
 *
 * Neither side runs while the other's threads are still busy: ONNX Runtime's intra-op workers and PyTorch's OpenMP
 * workers spin for a while after each run, so each side's block of runs starts SETTLE_MS after the other's ended.
 * Ours is measured with the production session settings (spinning on), unchanged; the same settings with spinning
 * off are measured in the same rounds and reported beside it (details, not the headline).
 *
 * Run: npm run build && node bin/../dist/bench/inference.js   (set GLIBC_TUNABLES as bin/cxr.js does)
 * BENCH_ONLY=swin_t (or densenet121,mobilenet_v2) measures only the cases whose name starts so and keeps the
 * others' results from the last run; kept results measured before the reference's configuration was chosen per case
 * are marked stale.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildModel } from '../src/models/zoo/index.js';
import { encodeModel, float32 } from '../src/onnx/index.js';
import ort from '../src/runtime/ort.js';
import { OrtSession } from '../src/runtime/session.js';
import {
  BENCH_DIR,
  type HeadlineCase,
  OMP_WAIT_POLICIES,
  type OmpWaitPolicy,
  PythonWorker,
  REFERENCE_ENV,
  headlineCase,
  machine,
  median,
  ompPolicyName,
  ompReferenceEnv,
  round,
  writeResults,
} from './lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const SELECT_ROUNDS = Number(process.env.BENCH_SELECT_ROUNDS ?? 3);
const SETTLE_MS = 100;
/** Candidates whose warm-up median is over this many times the best warm-up's are not measured further. */
const PRUNE_FACTOR = 2;
const CASES = [
  { arch: 'densenet121', batch: 1, runs: 10 },
  { arch: 'densenet121', batch: 16, runs: 2 },
  { arch: 'mobilenet_v2', batch: 1, runs: 20 },
  { arch: 'mobilenet_v2', batch: 16, runs: 3 },
  { arch: 'swin_t', batch: 1, runs: 5 },
  { arch: 'swin_t', batch: 16, runs: 1 },
] as const;
/** Comma-separated name prefixes; empty: every case. */
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const SIZE = 224;
const THREADS = 2;

const LAYOUTS = ['nchw', 'channels_last'] as const;
const MODES = ['eager', 'jit'] as const;
interface Config {
  omp_wait_policy: OmpWaitPolicy;
  layout: (typeof LAYOUTS)[number];
  mode: (typeof MODES)[number];
}
const CONFIGS: Config[] = OMP_WAIT_POLICIES.flatMap((omp_wait_policy) => LAYOUTS.flatMap((layout) => MODES.map((mode) => ({ omp_wait_policy, layout, mode }))));

function configName(c: Config): string {
  return `${c.layout}, ${c.mode === 'jit' ? 'TorchScript trace+freeze+optimize_for_inference' : 'eager inference_mode'}, ${ompPolicyName(c.omp_wait_policy)}`;
}

/** A reference process started with OMP_WAIT_POLICY set or not. */
function referenceWorker(policy: Config['omp_wait_policy']): PythonWorker {
  return new PythonWorker('torch_inference.py', [], ompReferenceEnv(policy));
}

async function main(): Promise<void> {
  const workers = { default: referenceWorker('default'), passive: referenceWorker('passive') };
  const kept = ONLY.length ? keptResults() : { headline: {}, details: {} };
  const headline: Record<string, HeadlineCase> = kept.headline;
  const details: Record<string, unknown> = kept.details;
  try {
    for (const c of CASES.filter((c) => !ONLY.length || ONLY.some((prefix) => caseName(c).startsWith(prefix)))) {
      const name = caseName(c);
      const session = await OrtSession.create(buildModel(c.arch, { height: SIZE }), { threads: THREADS });
      const input = float32([c.batch, 3, SIZE, SIZE], Float32Array.from({ length: c.batch * 3 * SIZE * SIZE }, () => Math.random() * 2 - 1));
      // Not the headline: the same session settings with ORT's intra-op spinning off, to show what spinning costs
      // or gains on this machine (OrtSession has no option for it).
      const noSpin = await ort.InferenceSession.create(encodeModel(buildModel(c.arch, { height: SIZE })), {
        intraOpNumThreads: THREADS,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      const noSpinInput = new ort.Tensor('float32', input.data as Float32Array, [...input.dims]);
      const timed = async (run: () => Promise<unknown>) => {
        await sleep(SETTLE_MS);
        const times: number[] = [];
        for (let i = 0; i < c.runs; i++) {
          const start = performance.now();
          await run();
          times.push(performance.now() - start);
        }
        return median(times);
      };
      const ours = () => timed(() => session.run({ image: input }, ['logits']));
      const oursNoSpin = () => timed(() => noSpin.run({ image: noSpinInput }, ['logits']));
      const reference = async (config: Config, runs: number = c.runs) => {
        await sleep(SETTLE_MS);
        const request = { arch: c.arch, batch: c.batch, size: SIZE, runs, threads: THREADS, layout: config.layout, mode: config.mode };
        return median((await workers[config.omp_wait_policy].request<{ ms: number[] }>(request)).ms);
      };

      // Warm-up (builds, traces and optimises each candidate, then one timed request), then the candidates alternate.
      await ours();
      await oursNoSpin();
      const candidates: { config: Config; warmup: number; rounds: number[]; error?: string; pruned?: boolean }[] = [];
      for (const config of CONFIGS) {
        try {
          await reference(config, 2); // builds the model; TorchScript's first two runs profile and optimise the graph
          candidates.push({ config, warmup: await reference(config), rounds: [] });
        } catch (error) {
          candidates.push({ config, warmup: Number.NaN, rounds: [], error: (error as Error).message });
        }
      }
      const ran = candidates.filter((k) => !k.error);
      if (!ran.length) throw new Error(`${name}: no reference configuration ran: ${candidates.map((k) => k.error).join('; ')}`);
      const bestWarmup = Math.min(...ran.map((k) => k.warmup));
      for (const k of ran) k.pruned = k.warmup > PRUNE_FACTOR * bestWarmup;
      const usable = ran.filter((k) => !k.pruned);
      for (let r = 0; r < SELECT_ROUNDS; r++) for (const k of usable) k.rounds.push(await reference(k.config));
      const best = usable.reduce((a, b) => (median(b.rounds) < median(a.rounds) ? b : a));
      process.stdout.write(`${name}: reference candidates ${usable.map((k) => `${configName(k.config)} ${round(median(k.rounds), 1)} ms`).join(' | ')}\n`);

      const oursRounds: number[] = [];
      const noSpinRounds: number[] = [];
      const referenceRounds: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        oursRounds.push(await ours());
        referenceRounds.push(await reference(best.config));
        noSpinRounds.push(await oursNoSpin());
      }
      await session.release();
      await noSpin.release();
      const oursMs = median(oursRounds);
      const referenceMs = median(referenceRounds);
      headline[name] = headlineCase(
        oursMs,
        referenceMs,
        `PyTorch ${THREADS} threads, torchvision ${c.arch}, fastest of ${usable.length} documented configurations: ${configName(best.config)} (same run, alternating)`,
      );
      details[name] = {
        images_per_s: { ours: round((1000 * c.batch) / oursMs, 1), reference: round((1000 * c.batch) / referenceMs, 1) },
        rounds_ms: { ours: oursRounds.map((v) => round(v)), reference: referenceRounds.map((v) => round(v)) },
        ours_without_spinning: {
          note: 'not the headline: our session settings with session.intra_op.allow_spinning=0, measured in the same rounds',
          median_ms: round(median(noSpinRounds)),
          rounds_ms: noSpinRounds.map((v) => round(v)),
        },
        reference_config: best.config,
        reference_candidates_ms: candidates.map((k) => ({
          ...k.config,
          ...(k.error
            ? { error: k.error }
            : k.pruned
              ? { warmup_ms: round(k.warmup), pruned: `warm-up over ${PRUNE_FACTOR}x the best warm-up` }
              : { warmup_ms: round(k.warmup), median_ms: round(median(k.rounds)), rounds_ms: k.rounds.map((v) => round(v)) }),
        })),
        date: new Date().toISOString(),
      };
      process.stdout.write(`${name}: ours ${round(oursMs, 1)} ms (without spinning ${round(median(noSpinRounds), 1)} ms), PyTorch ${round(referenceMs, 1)} ms (${configName(best.config)}), speedup ${round(referenceMs / oursMs, 2)}x\n`);
    }
  } finally {
    workers.default.close();
    workers.passive.close();
  }
  for (const [name, kept] of Object.entries(headline)) {
    const detail = details[name] as { reference_config?: Config } | undefined;
    if (!detail?.reference_config) {
      Object.assign(kept, {
        stale: true,
        stale_reason: 'measured before the reference ran in its fastest configuration (NCHW eager, OpenMP wait policy unset, no settle pause between sides): rerun with BENCH_ONLY=' + name,
      });
    }
  }
  const path = writeResults('inference', {
    headline,
    details,
    settings: {
      threads: THREADS,
      rounds: ROUNDS,
      select_rounds: SELECT_ROUNDS,
      settle_ms: SETTLE_MS,
      size: SIZE,
      machine: machine(),
      ours_config: 'production OrtSession settings (intra-op threads 2, inter-op 1, sequential, all graph optimisations, ORT thread spinning on)',
      reference_env: `${REFERENCE_ENV}; OMP_WAIT_POLICY as the winning configuration says`,
      reference_selection: `per case: ${CONFIGS.length} configurations (layout x eager/TorchScript x OpenMP wait policy), one warm-up request each; those within ${PRUNE_FACTOR}x of the best warm-up run ${SELECT_ROUNDS} alternating rounds; the fastest median is measured against ours`,
      settle: `each side's block of runs starts ${SETTLE_MS} ms after the other's ended, so neither side's spinning worker threads (ORT intra-op pool, GNU OpenMP) take cores from the other`,
    },
  });
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
