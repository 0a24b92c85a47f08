/**
 * Loading a state dict (parameter name -> tensor, torchvision's names) into a cxr-lens model, with a report of
 * everything that did not map one-to-one.
 */
import { type HostTensor, type Model, float32, shapeToString } from '../../onnx/index.js';
import { readModelInfo } from '../metadata.js';
import { isMetadataHead } from '../zoo/index.js';
import { parameterSlots } from '../parameters.js';

export type StateDict = Map<string, HostTensor>;

export interface ApplyOptions {
  /** Names the weights' source in messages. */
  source: string;
  /**
   * Keep the model's freshly initialised classifier where the source's has another shape (transfer learning to a
   * new label set). Without it, a head mismatch is an error.
   */
  newHead?: boolean;
}

export interface ShapeMismatch {
  name: string;
  expected: readonly number[];
  found: readonly number[];
}

export interface ImportReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  mismatched: ShapeMismatch[];
  /** Entries that carry no weights for inference (BatchNorm's num_batches_tracked, Swin's relative_position_index). */
  ignored: string[];
  /** Tensors converted to fit, each with what was done. */
  adapted: string[];
  /** Head parameters left at their initial values (with `newHead`). */
  reinitialized: string[];
}

const IGNORED_SUFFIX = '.num_batches_tracked';

/** Copies matching tensors into the model's initializers; throws an Error naming every problem. */
export function applyStateDict(model: Model, dict: StateDict, options: ApplyOptions): ImportReport {
  const info = readModelInfo(model);
  const headPrefixes = (info.blocks.at(-1) ?? '').split('|').filter(Boolean);
  const isHead = (name: string) => headPrefixes.some((p) => name === p || name.startsWith(`${p}.`));
  const report: ImportReport = { loaded: [], missing: [], unexpected: [], mismatched: [], ignored: [], adapted: [], reinitialized: [] };
  const slots = parameterSlots(model);
  const expected = new Set(slots.map((s) => s.name));
  for (const [key, t] of dict) {
    if (key.endsWith(IGNORED_SUFFIX) || isFixedBuffer(model, key, t)) report.ignored.push(key);
    else if (!expected.has(key)) report.unexpected.push(key);
  }
  const updates = new Map<string, HostTensor>();
  for (const slot of slots) {
    const target = model.graph.initializers.get(slot.name) as HostTensor;
    const source = dict.get(slot.name);
    if (!source) {
      // The metadata head is an addition of ours: weights from elsewhere never have it, so it starts fresh.
      if ((options.newHead && isHead(slot.name)) || isMetadataHead(slot.name)) report.reinitialized.push(slot.name);
      else report.missing.push(slot.name);
      continue;
    }
    const fitted = fitTensor(slot.name, source, target.dims, report);
    if (fitted) updates.set(slot.name, fitted);
    else if (options.newHead && isHead(slot.name)) report.reinitialized.push(slot.name);
    else report.mismatched.push({ name: slot.name, expected: target.dims, found: source.dims });
  }
  const problems = describeProblems(report);
  if (problems) {
    const hint = report.mismatched.some((m) => isHead(m.name)) && !options.newHead
      ? `\nThe classifier does not match ${info.labels.length} labels; pass --new-head to start a fresh classifier (transfer learning), or give labels matching the file.`
      : '';
    throw new Error(`${options.source}: the weights do not fit the ${info.architecture} model:\n${problems}${hint}`);
  }
  for (const [name, t] of updates) {
    model.graph.initializers.set(name, t);
    report.loaded.push(name);
  }
  return report;
}

/**
 * A buffer the architecture computes rather than learns (Swin's relative_position_index), which the model holds
 * as a constant under the same name: nothing to load, but a file whose copy differs is not this architecture.
 */
function isFixedBuffer(model: Model, key: string, t: HostTensor): boolean {
  const own = model.graph.initializers.get(key);
  if (!own || own.dtype === 'float32') return false;
  const same = own.data.length === t.data.length && Array.from(own.data as ArrayLike<number | bigint>).every((v, i) => BigInt(v) === BigInt((t.data as ArrayLike<number | bigint>)[i]));
  if (!same) throw new Error(`"${key}" in the file differs from the ${readModelInfo(model).architecture} model's own, which the architecture fixes`);
  return true;
}

/** The source tensor in the target's shape and float32, or undefined when it cannot fit. */
function fitTensor(name: string, source: HostTensor, dims: readonly number[], report: ImportReport): HostTensor | undefined {
  const values = source.dtype === 'float32' ? (source.data as Float32Array) : Float32Array.from(source.data as ArrayLike<number>, Number);
  if (source.dtype !== 'float32') report.adapted.push(`${name}: converted from ${source.dtype} to float32`);
  const same = source.dims.length === dims.length && source.dims.every((d, i) => d === dims[i]);
  if (same) return float32(dims, values);
  // A gray (1-channel) model from RGB weights: a gray image replicated to RGB gives the same first-layer output
  // as the summed kernel on the gray image.
  const [out, inChannels, ...kernel] = source.dims;
  if (dims.length === 4 && source.dims.length === 4 && dims[1] === 1 && inChannels === 3 && out === dims[0] && kernel.every((k, i) => k === dims[i + 2])) {
    const area = kernel[0] * kernel[1];
    const summed = new Float32Array(out * area);
    for (let o = 0; o < out; o++) for (let c = 0; c < 3; c++) for (let k = 0; k < area; k++) summed[o * area + k] += values[(o * 3 + c) * area + k];
    report.adapted.push(`${name}: summed over 3 input channels for a 1-channel model`);
    return float32(dims, summed);
  }
  return undefined;
}

function describeProblems(report: ImportReport): string {
  const lines: string[] = [];
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    const shown = items.slice(0, 12).join(', ');
    lines.push(`  ${title} (${items.length}): ${shown}${items.length > 12 ? ', ...' : ''}`);
  };
  list('missing from the file', report.missing);
  list('in the file but not in the model', report.unexpected);
  list(
    'wrong shape',
    report.mismatched.map((m) => `${m.name} (model ${shapeToString(m.expected)}, file ${shapeToString(m.found)})`),
  );
  return lines.join('\n');
}
