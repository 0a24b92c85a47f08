/**
 * Shared pieces of the benchmarks: medians, the machine line, a persistent Python reference process that runs
 * when told (so ours and the reference alternate in one run), and the results file with its headline.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Debian's Python, which has torch, torchvision and PIL (not the pyenv python3 first on PATH). */
export const PYTHON = '/usr/bin/python3';
export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');

/**
 * The environment Python references run in: ours without GLIBC_TUNABLES, so the allocator settings our process is
 * run with (see package.json) do not slow or speed up the reference; glibc's malloc runs with its defaults there.
 * `overrides` sets variables, or removes those given as undefined.
 */
export function referenceEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/**
 * GNU OpenMP's wait policies a PyTorch reference is tried with: its default (spin, then sleep) or PASSIVE (sleep at
 * once). On a shared 2-core machine the spinning can cost PyTorch more than it gains; each benchmark takes the
 * faster. OpenMP reads the variable at start-up, so each policy needs a process of its own.
 */
export const OMP_WAIT_POLICIES = ['default', 'passive'] as const;
export type OmpWaitPolicy = (typeof OMP_WAIT_POLICIES)[number];

/** The reference environment for one OpenMP wait policy (default: OMP_WAIT_POLICY unset). */
export function ompReferenceEnv(policy: OmpWaitPolicy): NodeJS.ProcessEnv {
  return referenceEnv({ OMP_WAIT_POLICY: policy === 'passive' ? 'PASSIVE' : undefined });
}

export function ompPolicyName(policy: OmpWaitPolicy): string {
  return `OMP_WAIT_POLICY ${policy === 'passive' ? 'PASSIVE' : 'unset'}`;
}

/** What results files say about the reference's environment. */
export const REFERENCE_ENV = "Python started without GLIBC_TUNABLES (glibc malloc defaults); otherwise our process's environment";

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The value after `--name` on the command line, or undefined when the flag is absent. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A positive whole number given as `--name N`, or `fallback` when the flag is absent; anything else is an error. */
export function countOption(name: string, fallback: number): number {
  const given = option(name);
  const value = given === undefined ? fallback : Number(given);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number, got "${given}"`);
  return value;
}

export function machine(): string {
  return `${availableParallelism()} cores, GLIBC_TUNABLES ${process.env.GLIBC_TUNABLES ? 'set' : 'unset'}`;
}

export interface HeadlineCase {
  ours_ms: number;
  reference_ms: number;
  /** reference_ms / ours_ms: above 1 means we are faster. */
  speedup: number;
  reference: string;
  machine: string;
}

export function headlineCase(oursMs: number, referenceMs: number, reference: string): HeadlineCase {
  return { ours_ms: round(oursMs), reference_ms: round(referenceMs), speedup: round(referenceMs / oursMs), reference, machine: machine() };
}

export function writeResults(name: string, results: { headline: Record<string, HeadlineCase> } & Record<string, unknown>): string {
  const path = join(BENCH_DIR, 'results', `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ ...results, date: new Date().toISOString() }, null, 2)}\n`);
  return path;
}

/**
 * A Python script kept running beside the benchmark: each request is one JSON line on its stdin, each reply one
 * JSON line on its stdout. Loading torch once keeps its start-up out of the timings.
 */
export class PythonWorker {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly replies: AsyncIterator<string>;

  constructor(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = referenceEnv()) {
    this.child = spawn(PYTHON, [join(BENCH_DIR, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    this.replies = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async request<T>(message: unknown): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
    const { value, done } = await this.replies.next();
    if (done) throw new Error(`the Python reference (${this.child.spawnargs.join(' ')}) stopped`);
    const reply = JSON.parse(value) as T & { error?: string };
    if (reply.error) throw new Error(`Python reference: ${reply.error}`);
    return reply;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** Peak resident memory of this process so far, in MB. */
export function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}
