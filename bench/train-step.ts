/**
 * DenseNet-121 and Swin-T training steps and DenseNet-121's explanation pass: ONNX Runtime (our training-step and
 * gradient graphs) against PyTorch 1.13 CPU (Debian), 2 threads each, steps alternated in one run; medians of the
 * measured steps, peak RSS of each process. Writes bench/results/train-step.json.
 *
 * The reference runs in its fastest documented configuration, chosen per case: memory format (NCHW or
 * channels-last; DenseNet only, Swin keeps channels last inside whatever its input's layout) and GNU OpenMP's wait
 * policy (unset or PASSIVE), each candidate a process of its own started without our GLIBC_TUNABLES. After one
 * warm-up step each, the candidates run SELECT_ROUNDS alternating rounds of one step; the fastest median is then
 * measured against ours in --steps alternating rounds. Each side's step starts SETTLE_MS after the other's ended,
 * so neither side's spinning worker threads (ORT's intra-op pool, GNU OpenMP's) take cores from the other.
 *
 * Run: npx tsc -p . && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
 *        node dist/bench/train-step.js [--steps 6] [--case NAME]
 * Each case runs in a child process of its own so that peak RSS is per case; --case NAME measures that case only
 * and keeps the other cases' results from the last run.
 */
import { type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { buildGradientGraph } from '../src/explain/gradient-graph.js';
import { buildModel } from '../src/models/zoo/index.js';
import { float32 } from '../src/onnx/index.js';
import { OrtSession } from '../src/runtime/session.js';
import { TrainingSession } from '../src/train/step/session.js';
import {
  OMP_WAIT_POLICIES,
  type OmpWaitPolicy,
  PYTHON,
  REFERENCE_ENV,
  countOption,
  headlineCase,
  machine,
  median,
  ompPolicyName,
  ompReferenceEnv,
  option,
  round,
} from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const REFERENCE = join(ROOT, 'bench', 'train_step_reference.py');
const THREADS = 2;
const BATCH = 16;
const SELECT_ROUNDS = Number(process.env.BENCH_SELECT_ROUNDS ?? 2);
const SETTLE_MS = 100;

interface CaseSpec {
  mode: 'train' | 'explain';
  size: number;
  architecture: 'densenet121' | 'swin_t';
}
const CASES: Record<string, CaseSpec> = {
  train_step_b16_224: { mode: 'train', size: 224, architecture: 'densenet121' },
  train_step_b16_128: { mode: 'train', size: 128, architecture: 'densenet121' },
  explain_b16_224: { mode: 'explain', size: 224, architecture: 'densenet121' },
  train_step_swin_t_b16_224: { mode: 'train', size: 224, architecture: 'swin_t' },
};

interface ReferenceConfig {
  layout: 'nchw' | 'channels_last';
  omp_wait_policy: OmpWaitPolicy;
}

/** PyTorch's channels-last input format changes DenseNet's kernels; Swin's stages are channels last already. */
function referenceConfigs(spec: CaseSpec): ReferenceConfig[] {
  const layouts = spec.architecture === 'densenet121' ? (['nchw', 'channels_last'] as const) : (['nchw'] as const);
  return OMP_WAIT_POLICIES.flatMap((omp_wait_policy) => layouts.map((layout) => ({ layout, omp_wait_policy })));
}

function configName(c: ReferenceConfig): string {
  return `${c.layout === 'channels_last' ? 'channels-last' : 'NCHW'}, ${ompPolicyName(c.omp_wait_policy)}`;
}

interface CaseResult {
  ours_ms: number[];
  reference_ms: number[];
  reference_config: ReferenceConfig;
  /** Every candidate's selection steps and peak RSS. */
  candidates: { config: ReferenceConfig; warmup_ms: number; select_ms: number[]; rss_mib: number }[];
  rss_mib: { ours: number; reference: number };
  build_ms: number;
}

class Reference {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(spec: CaseSpec, config: ReferenceConfig): Promise<Reference> {
    const args = [REFERENCE, spec.mode, String(spec.size), String(BATCH), config.layout, spec.architecture];
    const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'inherit'], env: ompReferenceEnv(config.omp_wait_policy) });
    const ref = new Reference(child);
    const first = await ref.next();
    if (first !== 'ready') throw new Error(`PyTorch reference did not start: ${first}`);
    return ref;
  }
  private async next(): Promise<string> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error('PyTorch reference ended early');
    return value;
  }
  async ask(command: 'step' | 'rss'): Promise<number> {
    this.child.stdin.write(`${command}\n`);
    return Number(await this.next());
  }
  quit(): void {
    this.child.stdin.end('quit\n');
  }
}

function pseudoRandom(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

async function runCase(name: string, steps: number): Promise<CaseResult> {
  const spec = CASES[name];
  const model = buildModel(spec.architecture, { height: spec.size, width: spec.size });
  const images = float32([BATCH, 3, spec.size, spec.size], pseudoRandom(BATCH * 3 * spec.size * spec.size, 1));
  const start = performance.now();
  let oursStep: () => Promise<unknown>;
  let release: () => Promise<void>;
  if (spec.mode === 'train') {
    const session = await TrainingSession.create(model, { loss: { kind: 'bce' }, optimizer: { kind: 'adamw' }, learningRate: 1e-4, threads: THREADS, batchSize: BATCH });
    const targets = float32([BATCH, 14], Array.from({ length: BATCH * 14 }, (_, i) => (i % 3 === 0 ? 1 : 0)));
    oursStep = () => session.step({ images, targets });
    release = () => session.release();
  } else {
    const graph = buildGradientGraph(model, { sources: ['image', 'features'], classes: [3] });
    const session = await OrtSession.create(graph.model, { threads: THREADS });
    oursStep = () => session.run({ image: images });
    release = () => session.release();
  }
  const buildMs = performance.now() - start;
  const timedOurs = async () => {
    await sleep(SETTLE_MS);
    const t = performance.now();
    await oursStep();
    return performance.now() - t;
  };
  const timedReference = async (reference: Reference) => {
    await sleep(SETTLE_MS);
    return reference.ask('step');
  };

  const candidates: { config: ReferenceConfig; reference: Reference; warmup_ms: number; select_ms: number[] }[] = [];
  for (const config of referenceConfigs(spec)) candidates.push({ config, reference: await Reference.start(spec, config), warmup_ms: Number.NaN, select_ms: [] });
  await oursStep();
  for (const k of candidates) k.warmup_ms = await timedReference(k.reference);
  for (let r = 0; r < SELECT_ROUNDS; r++) for (const k of candidates) k.select_ms.push(await timedReference(k.reference));
  const best = candidates.reduce((a, b) => (median(b.select_ms) < median(a.select_ms) ? b : a));
  process.stderr.write(`${name}: reference candidates ${candidates.map((k) => `${configName(k.config)} ${round(median(k.select_ms), 1)} ms`).join(' | ')}\n`);
  const candidateRss = new Map<Reference, number>();
  for (const k of candidates) {
    if (k === best) continue;
    candidateRss.set(k.reference, await k.reference.ask('rss'));
    k.reference.quit();
  }

  const ours: number[] = [];
  const reference: number[] = [];
  for (let i = 0; i < steps; i++) {
    ours.push(await timedOurs());
    reference.push(await timedReference(best.reference));
  }
  candidateRss.set(best.reference, await best.reference.ask('rss'));
  best.reference.quit();
  await release();
  return {
    ours_ms: ours,
    reference_ms: reference,
    reference_config: best.config,
    candidates: candidates.map((k) => ({ config: k.config, warmup_ms: k.warmup_ms, select_ms: k.select_ms, rss_mib: candidateRss.get(k.reference) as number })),
    rss_mib: { ours: process.resourceUsage().maxRSS / 1024, reference: candidateRss.get(best.reference) as number },
    build_ms: buildMs,
  };
}

async function main(): Promise<void> {
  const steps = countOption('steps', 6);
  const only = option('case');
  if (only && option('child')) {
    process.stdout.write(`${JSON.stringify(await runCase(only, steps))}\n`);
    return;
  }
  const file = join(ROOT, 'bench', 'results', 'train-step.json');
  // One case measured: the others keep the last run's results (and their load averages and date).
  const kept = only && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as KeptResults) : undefined;
  const headline: Record<string, Record<string, unknown>> = { ...kept?.headline };
  const details: Record<string, unknown> = { ...kept?.details };
  // The machine is shared: the 1-minute load average before and after each case tells how busy it was.
  const load: Record<string, number> = { ...(kept?.setup?.load_average ?? kept?.load_average) };
  const dates: Record<string, string> = kept ? { ...Object.fromEntries(Object.keys(kept.headline).map((name) => [name, kept.date])), ...kept.dates } : {};
  for (const name of only ? [only] : Object.keys(CASES)) {
    load[`${name}_before`] = round(loadavg()[0], 2);
    const output = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--case', name, '--child', '1', '--steps', String(steps)], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    load[`${name}_after`] = round(loadavg()[0], 2);
    const r = JSON.parse(output.toString().trim().split('\n').at(-1) as string) as CaseResult;
    const spec = CASES[name];
    const work = spec.mode === 'train' ? 'train step (forward, BCE, backward, AdamW)' : 'explanation pass (logits, input and feature-map gradients)';
    headline[name] = {
      ...headlineCase(
        median(r.ours_ms),
        median(r.reference_ms),
        `PyTorch ${spec.architecture} ${work}, ${THREADS} threads, fastest of ${r.candidates.length} documented configurations: ${configName(r.reference_config)} (same run, alternating)`,
      ),
      peak_rss_mib: { ours: round(r.rss_mib.ours, 1), reference: round(r.rss_mib.reference, 1) },
    };
    details[name] = {
      ours_ms: r.ours_ms.map((v) => round(v)),
      reference_ms: r.reference_ms.map((v) => round(v)),
      reference_config: r.reference_config,
      reference_candidates: r.candidates.map((k) => ({
        ...k.config,
        warmup_ms: round(k.warmup_ms),
        median_ms: round(median(k.select_ms)),
        select_ms: k.select_ms.map((v) => round(v)),
        peak_rss_mib: round(k.rss_mib, 1),
      })),
      build_ms: round(r.build_ms),
      steps,
      batch: BATCH,
      size: spec.size,
    };
    dates[name] = new Date().toISOString();
  }
  for (const [name, kept] of Object.entries(headline)) {
    if (!(details[name] as { reference_config?: ReferenceConfig } | undefined)?.reference_config) {
      Object.assign(kept, { stale: true, stale_reason: `measured before the reference ran in its fastest configuration, with our GLIBC_TUNABLES: rerun with --case ${name}` });
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  const setup = {
    threads: THREADS,
    batch: BATCH,
    select_rounds: SELECT_ROUNDS,
    settle_ms: SETTLE_MS,
    machine: machine(),
    ours_config: 'TrainingSession built for the batch size (intra-op threads 2, inter-op 1, sequential, all graph optimisations, ORT intra-op spinning off); explain: OrtSession',
    reference_env: `${REFERENCE_ENV}; OMP_WAIT_POLICY as the winning configuration says`,
    reference_selection: `per case: the memory formats (DenseNet: NCHW, channels-last) x OpenMP wait policies (unset, PASSIVE), one process each, one warm-up step each, then ${SELECT_ROUNDS} alternating rounds; the fastest median is measured against ours`,
    settle: `each side's step starts ${SETTLE_MS} ms after the other's ended`,
    load_average: load,
  };
  writeFileSync(file, `${JSON.stringify({ headline, details, setup, date: new Date().toISOString(), dates }, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(headline, null, 2)}\n`);
}

interface KeptResults {
  headline: Record<string, Record<string, unknown>>;
  details: Record<string, unknown>;
  setup?: { load_average: Record<string, number> };
  /** Where results files before the reference selection kept the load averages. */
  load_average?: Record<string, number>;
  date: string;
  dates?: Record<string, string>;
}

await main();
