/**
 * DenseNet-121 and Swin-T training steps and DenseNet-121's explanation pass: ONNX Runtime (our training-step and
 * gradient graphs) against PyTorch 1.13 CPU (Debian), steps alternated in one run (2 threads each; PyTorch NCHW and,
 * for DenseNet, channels-last in their own processes; Swin keeps channels last inside whatever its input's layout),
 * medians of the measured steps, peak RSS of each process. Writes bench/results/train-step.json.
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
import { fileURLToPath } from 'node:url';
import { buildGradientGraph } from '../src/explain/gradient-graph.js';
import { buildModel } from '../src/models/zoo/index.js';
import { float32 } from '../src/onnx/index.js';
import { OrtSession } from '../src/runtime/session.js';
import { TrainingSession } from '../src/train/step/session.js';
import { countOption, median, option, round } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const REFERENCE = join(ROOT, 'bench', 'train_step_reference.py');
const THREADS = 2;
const BATCH = 16;

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

/** PyTorch's channels-last input format changes DenseNet's kernels; Swin's stages are channels last already. */
const hasChannelsLastReference = (spec: CaseSpec) => spec.architecture === 'densenet121';

interface CaseResult {
  ours_ms: number[];
  nchw_ms: number[];
  channels_last_ms?: number[];
  rss_mib: { ours: number; nchw: number; channels_last?: number };
  build_ms: number;
}

class Reference {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(spec: CaseSpec, layout: string): Promise<Reference> {
    const child = spawn('/usr/bin/python3', [REFERENCE, spec.mode, String(spec.size), String(BATCH), layout, spec.architecture], { stdio: ['pipe', 'pipe', 'inherit'] });
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
    const session = await TrainingSession.create(model, { loss: { kind: 'bce' }, optimizer: { kind: 'adamw' }, learningRate: 1e-4, threads: THREADS });
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
  const nchw = await Reference.start(spec, 'nchw');
  const channelsLast = hasChannelsLastReference(spec) ? await Reference.start(spec, 'channels_last') : undefined;
  const result: CaseResult = { ours_ms: [], nchw_ms: [], ...(channelsLast ? { channels_last_ms: [] } : {}), rss_mib: { ours: 0, nchw: 0 }, build_ms: buildMs };
  // One warm-up step each, then alternate.
  await oursStep();
  await nchw.ask('step');
  await channelsLast?.ask('step');
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await oursStep();
    result.ours_ms.push(performance.now() - t);
    result.nchw_ms.push(await nchw.ask('step'));
    if (channelsLast) result.channels_last_ms?.push(await channelsLast.ask('step'));
  }
  result.rss_mib = { ours: process.resourceUsage().maxRSS / 1024, nchw: await nchw.ask('rss'), ...(channelsLast ? { channels_last: await channelsLast.ask('rss') } : {}) };
  nchw.quit();
  channelsLast?.quit();
  await release();
  return result;
}


async function main(): Promise<void> {
  const steps = countOption('steps', 6);
  const only = option('case');
  if (only && option('child')) {
    process.stdout.write(`${JSON.stringify(await runCase(only, steps))}\n`);
    return;
  }
  const tunables = process.env.GLIBC_TUNABLES?.includes('mmap_max=0') ? 'set' : 'unset';
  const machine = `2 cores, GLIBC_TUNABLES ${tunables}`;
  const file = join(ROOT, 'bench', 'results', 'train-step.json');
  // One case measured: the others keep the last run's results (and their load averages and date).
  const kept = only && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { headline: Record<string, unknown>; details: Record<string, unknown>; load_average: Record<string, number>; date: string; dates?: Record<string, string> }) : undefined;
  const headline: Record<string, unknown> = { ...kept?.headline };
  const details: Record<string, unknown> = { ...kept?.details };
  // The machine is shared: the 1-minute load average before each case tells how busy it was.
  const load: Record<string, number> = { ...kept?.load_average };
  const dates: Record<string, string> = kept ? { ...Object.fromEntries(Object.keys(kept.headline).map((name) => [name, kept.date])), ...kept.dates } : {};
  for (const name of only ? [only] : Object.keys(CASES)) {
    load[`${name}_before`] = round(loadavg()[0], 2);
    const output = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--case', name, '--child', '1', '--steps', String(steps)], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(output.toString().trim().split('\n').at(-1) as string) as CaseResult;
    const ours = median(r.ours_ms);
    const reference = median(r.nchw_ms);
    const channelsLast = r.channels_last_ms && median(r.channels_last_ms);
    headline[name] = {
      ours_ms: round(ours, 1),
      reference_ms: round(reference, 1),
      speedup: round(reference / ours),
      reference: `PyTorch ${CASES[name].architecture} ${CASES[name].mode === 'train' ? 'train step (forward, BCE, backward, AdamW)' : 'explanation pass (logits, input and feature-map gradients)'}, NCHW, 2 threads, alternated`,
      machine,
      ...(channelsLast ? { channels_last_ms: round(channelsLast, 1), speedup_vs_channels_last: round(channelsLast / ours) } : {}),
      peak_rss_mib: { ours: round(r.rss_mib.ours, 1), pytorch_nchw: round(r.rss_mib.nchw, 1), ...(r.rss_mib.channels_last ? { pytorch_channels_last: round(r.rss_mib.channels_last, 1) } : {}) },
    };
    details[name] = { ...r, steps, batch: BATCH, size: CASES[name].size };
    dates[name] = new Date().toISOString();
    load[`${name}_after`] = round(loadavg()[0], 2);
  }
  mkdirSync(dirname(file), { recursive: true });
  if (!only) load.after = round(loadavg()[0], 2);
  writeFileSync(file, `${JSON.stringify({ headline, details, load_average: load, date: new Date().toISOString(), dates }, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(headline, null, 2)}\n`);
}

await main();
