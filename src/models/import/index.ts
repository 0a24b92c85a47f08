/**
 * Weight import: turns weights made elsewhere into a clean cxr-lens model of a zoo architecture.
 * - PyTorch checkpoints (.pth/.pt/.pth.tar, zip or legacy format, state dicts or whole pickled modules of known
 *   classes): state dict keys are torchvision's names, after removing DataParallel's `module.`, legacy DenseNet names
 *   and wrapper prefixes such as CheXNet's `densenet121.`. The file's layout picks the pixel contract (presets.ts):
 *   torchxrayvision's files also get its output names (NIH's 14 first) and its operating points as thresholds.
 * - ONNX files exported from PyTorch: initializers mapped by name (through PyTorch's Identity aliases); when the
 *   exporter folded BatchNorms and dropped the names, the layers are paired by structure instead. Swin exports
 *   (MatMul linears, folded attention biases) are paired by structure in swin-export.ts.
 * - Quantised ONNX (QOperator or QDQ, e.g. the model zoo's int8 MobileNetV2): weights dequantised to float32, paired
 *   by structure.
 */
import { NIH_FINDINGS } from '../../data/labels.js';
import type { PreprocessingSpec } from '../../imaging/spec.js';
import { type HostTensor, type Model, decodeModel, float32 } from '../../onnx/index.js';
import { type Thresholds, setThresholds, setWeightsDescription } from '../metadata.js';
import { parameterInputs, parameterSlots } from '../parameters.js';
import { ARCHITECTURE_NAMES, type ArchitectureName, type BuildOptions, buildModel, isArchitecture } from '../zoo/index.js';
import { zeroInit } from '../init.js';
import { alignByStructure } from './align.js';
import { architectureFromLayers, architectureFromNames } from './detect.js';
import { extractForeignLayers, resolveConstants } from './foreign-layers.js';
import { type Rename, alignKeyNames, summariseRenames } from './keys.js';
import { type PixelContract, type PresetName, XRV_RELEASES, nihFirstOrder, operatingPointThresholds, presetContract, recognisePreset, xrvSourceLabels } from './presets.js';
import { isPickle } from './pytorch/legacy-format.js';
import { readPytorchCheckpointWithReport } from './pytorch/index.js';
import { isZip } from './pytorch/zip-format.js';
import { describeNonCheckpoint, looksLikeOnnx } from './sniff.js';
import { type ImportReport, type StateDict, applyStateDict } from './state-dict.js';
import { alignSwinExport, readSwinExport, swinArchitecture, swinHeadSize } from './swin-export.js';

export type { ImportReport, StateDict } from './state-dict.js';
export { applyStateDict } from './state-dict.js';

export interface ImportOptions extends Pick<BuildOptions, 'channels' | 'height' | 'width' | 'preprocessing' | 'metadata'> {
  /**
   * The pixel contract to start from (size, channels, mean/std, resize); recognised from the file when omitted. The
   * other options override single parts of it; a one-value mean or std applies to every channel.
   */
  preset?: PresetName;
  /** The zoo architecture; detected from the weights when omitted. */
  architecture?: string;
  /** Output labels; default NIH's 14 findings (required when the file's classifier has another size, unless newHead). */
  labels?: readonly string[];
  /** Where the file's classifier does not fit the labels, start a fresh one (transfer learning) instead of failing. */
  newHead?: boolean;
}

export interface ImportResult {
  model: Model;
  architecture: ArchitectureName;
  /** How the file's tensors were matched to the model's parameters. */
  method: 'names' | 'structure';
  /** The file's format in words. */
  format: string;
  report: ImportReport;
  /** The pixel contract the model was given, and why. */
  preset: { name: PresetName; reason: string };
  /** Operating points taken from the file (torchxrayvision's op_threshs), stored as the model's thresholds. */
  thresholds?: Thresholds;
  /** Renames (one line per kind, with a count and an example), BatchNorms folded, outputs reordered and similar. */
  notes: string[];
}

/** What the file says about the model beyond its weights. */
interface Plan {
  architecture: ArchitectureName;
  dict: StateDict;
  method: ImportResult['method'];
  format: string;
  notes: string[];
  preset: ImportResult['preset'];
  labels?: readonly string[];
  thresholds?: Thresholds;
}

export function importWeights(bytes: Uint8Array, fileName: string, options: ImportOptions = {}): ImportResult {
  if (isZip(bytes) || isPickle(bytes)) return importCheckpoint(bytes, fileName, options);
  if (looksLikeOnnx(bytes)) return importOnnx(decodeModel(bytes, { name: fileName }), fileName, options);
  throw new Error(`${fileName}: not an ONNX model or a PyTorch checkpoint; it looks like ${describeNonCheckpoint(bytes)}`);
}

function importCheckpoint(bytes: Uint8Array, fileName: string, options: ImportOptions): ImportResult {
  const { stateDict, report } = readPytorchCheckpointWithReport(bytes, fileName);
  const { dict: weights, points } = takeOperatingPoints(stateDict, report.moduleAttributes?.operatingPoints);
  const architecture = checkedArchitecture(options.architecture ?? architectureFromNames(weights.keys()), fileName);
  const model = buildFor(architecture, options, 14);
  const expected = new Set(parameterSlots(model).map((s) => s.name));
  const aligned = alignKeyNames(weights, expected);
  const [headWeight, headBias] = headNames(model);
  const head = aligned.dict.get(headWeight);
  const firstConv = aligned.dict.get(parameterSlots(model).find((s) => s.role === 'conv.weight')?.name ?? '');
  const preset = options.preset
    ? { name: options.preset, reason: 'chosen with the preset option' }
    : recognisePreset({
        architecture,
        moduleClass: report.moduleClass,
        hasOperatingPoints: points !== undefined,
        wrapperPrefix: aligned.prefix,
        sequentialHead: aligned.sequentialHead,
        firstConvChannels: firstConv?.dims.length === 4 ? firstConv.dims[1] : undefined,
        headClasses: head?.dims[0],
      });

  const notes = [...summariseRenames(composeRenames(report.renamedKeys, aligned.renamed), aligned.prefix), ...conversionNotes(report.convertedToFloat32)];
  if (report.moduleClass) notes.unshift(`read the parameters and buffers of a pickled ${report.moduleClass} (nothing of it was run)`);
  if (report.entryPath.length > 0) notes.unshift(`weights read from the checkpoint's "${report.entryPath.join('.')}" entry`);
  const plan: Plan = { architecture, dict: aligned.dict, method: 'names', format: `PyTorch checkpoint (${report.format} format)`, notes, preset };
  if (options.newHead || !head) return finish(plan, fileName, options);

  const classes = head.dims[0];
  // torchxrayvision's releases carry no operating points: its models.py adds them by weights, i.e. by file name.
  const release = preset.name === 'xrv' && !points ? XRV_RELEASES[basename(fileName)] : undefined;
  const operatingPoints = points ?? release?.opThreshs;
  const xrv = preset.name === 'xrv' ? xrvSourceLabels(classes, report.moduleAttributes?.labels ?? release?.labels) : undefined;
  const source = options.labels ?? xrv?.labels;
  if (source && source.length === classes) {
    // Given labels name the file's outputs as they are; torchxrayvision's are reordered so that NIH's come first.
    const order = options.labels ? source.map((_, i) => i) : nihFirstOrder(source);
    if (order.some((from, to) => from !== to)) {
      permuteRows(aligned.dict, [headWeight, headBias], order);
      const rest = source.filter((name) => !(NIH_FINDINGS as readonly string[]).includes(name));
      notes.push(`outputs reordered: NIH's findings first in NIH's order${rest.length ? `, then ${rest.join(', ')}` : ''}`);
    }
    plan.labels = order.map((i) => source[i]);
    const untrained = options.labels ? [] : (xrv?.untrained ?? []);
    if (untrained.length) notes.push(`torchxrayvision marks ${untrained.length} outputs as not trained for these weights (${untrained.join(', ')}): kept, without thresholds`);
    if (operatingPoints?.length === classes) {
      const where = release ? `op_threshs of torchxrayvision's "${release.weights}" weights (its models.py), matched by the file name ${basename(fileName)}` : `op_threshs stored in ${basename(fileName)}`;
      plan.thresholds = operatingPointThresholds(plan.labels, order.map((i) => operatingPoints[i]), where, untrained);
    } else if (operatingPoints) notes.push(`op_threshs has ${operatingPoints.length} values for ${classes} outputs: not used as thresholds`);
    else if (preset.name === 'xrv') notes.push("no operating points: the file holds no op_threshs and its name is not one of torchxrayvision's published weights");
  } else if (operatingPoints) {
    notes.push('op_threshs not used as thresholds: the outputs have no names (give the labels)');
  }
  return finish(plan, fileName, options);
}

/** torchxrayvision's `op_threshs` (a buffer, or a plain attribute of a pickled module) is not a weight. */
function takeOperatingPoints(dict: StateDict, attribute: number[] | undefined): { dict: StateDict; points?: number[] } {
  let points = attribute;
  const rest: StateDict = new Map();
  for (const [key, t] of dict) {
    if (key === 'op_threshs' || key.endsWith('.op_threshs')) points = Array.from(t.data as Float32Array);
    else rest.set(key, t);
  }
  return { dict: rest, points };
}

function headNames(model: Model): [string, string] {
  const weight = parameterSlots(model).filter((s) => s.role === 'linear.weight').at(-1)?.name ?? '';
  return [weight, weight.replace(/weight$/, 'bias')];
}

/** Output `to` takes the file's output `order[to]`: rows of the head's weight and bias. */
function permuteRows(dict: StateDict, names: string[], order: number[]): void {
  for (const name of names) {
    const t = dict.get(name);
    if (!t) continue;
    const row = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const src = t.data as Float32Array;
    const out = new Float32Array(src.length);
    order.forEach((from, to) => out.set(src.subarray(from * row, (from + 1) * row), to * row));
    dict.set(name, float32(t.dims, out) as HostTensor);
  }
}

/** The two renaming stages (checkpoint reader, then key alignment) as one rename per original key. */
function composeRenames(first: readonly Rename[], second: readonly Rename[]): Rename[] {
  const original = new Map(first.map((r) => [r.to, r.from]));
  const seen = new Set<string>();
  const out: Rename[] = [];
  for (const r of second) {
    const from = original.get(r.from) ?? r.from;
    out.push({ from, to: r.to });
    seen.add(from);
  }
  for (const r of first) if (!seen.has(r.from)) out.push(r);
  return out;
}

function conversionNotes(converted: { name: string; from: string }[]): string[] {
  const byType = new Map<string, string[]>();
  for (const c of converted) byType.set(c.from, [...(byType.get(c.from) ?? []), c.name]);
  return [...byType].map(([from, names]) => `${names.length} tensor${names.length === 1 ? '' : 's'} converted from ${from} to float32 (e.g. ${names[0]})`);
}

function importOnnx(foreign: Model, fileName: string, options: ImportOptions): ImportResult {
  const quantized = foreign.graph.nodes.some((n) => n.opType.startsWith('QLinear') || n.opType === 'DequantizeLinear');
  const format = quantized ? 'quantised ONNX (dequantised to float32)' : 'ONNX';
  const named = weightTensors(foreign);
  const detected = options.architecture ?? architectureFromNames(named.keys());
  let byName: { architecture: ArchitectureName; aligned: ReturnType<typeof alignKeyNames>; missing: number } | undefined;
  if (detected) {
    const architecture = checkedArchitecture(detected, fileName);
    const expected = new Set(parameterSlots(buildFor(architecture, options, 14)).map((s) => s.name));
    const aligned = alignKeyNames(named, expected);
    const missing = [...expected].filter((n) => !aligned.dict.has(n)).length;
    const notes = summariseRenames(aligned.renamed, aligned.prefix);
    if (missing === 0) return finish({ architecture, dict: aligned.dict, method: 'names', format, notes, preset: onnxPreset(options) }, fileName, options);
    byName = { architecture, aligned, missing };
  }
  // A Swin exported by torch.onnx.export: LayerNorms, MatMul linears and folded attention biases (swin-export.ts).
  const swin = readSwinExport(foreign.graph, fileName);
  if (swin) {
    const architecture = checkedArchitecture(options.architecture ?? swinArchitecture(swin), fileName);
    const { dict, notes } = alignSwinExport(buildFor(architecture, options, swinHeadSize(swin) ?? 14), swin, fileName);
    return finish({ architecture, dict, method: 'structure', format, notes, preset: onnxPreset(options) }, fileName, options);
  }
  // Names are incomplete (folded or quantised export): pair the layers by structure. If that fails too and most
  // names did match, the name report says more about what is wrong with the file.
  try {
    const layers = extractForeignLayers(foreign.graph);
    const architecture = checkedArchitecture(detected ?? architectureFromLayers(layers), fileName);
    const { dict, folded } = alignByStructure(buildFor(architecture, options, headSize(layers) ?? 14).graph, layers, fileName);
    const notes = folded.length > 0 ? [`${folded.length} BatchNorm layers were folded into their convolutions in the file; they are set to the identity`] : [];
    return finish({ architecture, dict, method: 'structure', format, notes, preset: onnxPreset(options) }, fileName, options);
  } catch (error) {
    if (byName && byName.aligned.dict.size > 2 * byName.missing) {
      const notes = summariseRenames(byName.aligned.renamed, byName.aligned.prefix);
      return finish({ architecture: byName.architecture, dict: byName.aligned.dict, method: 'names', format, notes, preset: onnxPreset(options) }, fileName, options);
    }
    throw error;
  }
}

function onnxPreset(options: ImportOptions): ImportResult['preset'] {
  return options.preset ? { name: options.preset, reason: 'chosen with the preset option' } : { name: 'imagenet', reason: "an ONNX file carries no pixel contract: torchvision's ImageNet statistics" };
}

function finish(plan: Plan, fileName: string, options: ImportOptions): ImportResult {
  const { architecture, dict, method, format, notes } = plan;
  const headWeight = dict.get(headNames(buildFor(architecture, options, 14))[0]);
  const fileClasses = headWeight?.dims[0];
  const fitsNih = fileClasses === undefined || fileClasses === NIH_FINDINGS.length;
  const labels = options.labels ?? plan.labels ?? (options.newHead || fitsNih ? NIH_FINDINGS : Array.from({ length: fileClasses }, (_, i) => `class_${i}`));
  const contract = pixelContract(presetContract(plan.preset.name, architecture), options);
  const model = buildModel(architecture, {
    channels: contract.channels,
    height: options.height ?? contract.size,
    width: options.width ?? options.height ?? contract.size,
    preprocessing: { mean: contract.mean, std: contract.std, resize: contract.resize },
    labels,
    init: options.newHead ? undefined : zeroInit,
    metadata: options.metadata,
  });
  // Fit first: a file of another architecture should hear about its tensors, not about label names.
  const report = applyStateDict(model, dict, { source: fileName, newHead: options.newHead });
  const newHead = report.reinitialized.length > 0 ? ', new classifier head' : '';
  setWeightsDescription(model, `imported from ${basename(fileName)} (${format}, matched by ${method}, ${plan.preset.name} pixel contract)${newHead}`);
  if (!options.labels && !plan.labels && !options.newHead && !fitsNih) {
    throw new Error(
      `${fileName}: its classifier has ${fileClasses} outputs, not the 14 NIH findings; give ${fileClasses} label names, ` +
        'or start a fresh 14-finding classifier with the new-head option (--new-head) to fine-tune it',
    );
  }
  if (plan.thresholds) setThresholds(model, plan.thresholds);
  return { model, architecture, method, format, report, preset: plan.preset, thresholds: plan.thresholds, notes };
}

/** The preset's contract with the caller's overrides; a one-value mean or std is every channel's. */
function pixelContract(base: PixelContract, options: ImportOptions): PixelContract {
  const channels = options.channels ?? base.channels;
  // The preset's values follow a change of channels (gray from RGB: their average); the caller's are taken as given.
  const spread = (values: number[]) => (values.length === 1 ? Array<number>(channels).fill(values[0]) : values);
  const fit = (values: number[]) => (values.length === channels ? values : channels === 1 ? [values.reduce((a, b) => a + b, 0) / values.length] : spread(values));
  const mean = options.preprocessing?.mean ? spread(options.preprocessing.mean) : fit(base.mean);
  const std = options.preprocessing?.std ? spread(options.preprocessing.std) : fit(base.std);
  const resize: PreprocessingSpec['resize'] = options.preprocessing?.resize ?? base.resize;
  return { channels, size: base.size, mean, std, resize };
}

/** A model whose parameter names and layers are what the file is matched against (pixels do not matter yet). */
function buildFor(architecture: ArchitectureName, options: ImportOptions, classes: number): Model {
  const labels = options.labels ?? Array.from({ length: classes }, (_, i) => `class_${i}`);
  return buildModel(architecture, { height: options.height, width: options.width ?? options.height, labels, init: zeroInit });
}

function headSize(layers: ReturnType<typeof extractForeignLayers>): number | undefined {
  const head = layers.filter((l) => l.kind === 'linear').at(-1);
  return head?.weight.dims[0];
}

function checkedArchitecture(name: string | undefined, fileName: string): ArchitectureName {
  if (!name) throw new Error(`${fileName}: cannot tell which architecture these weights belong to; name it (one of ${ARCHITECTURE_NAMES.join(', ')})`);
  if (!isArchitecture(name)) throw new Error(`unknown architecture "${name}"; choose one of ${ARCHITECTURE_NAMES.join(', ')}`);
  return name;
}

/** The constant tensors a file's layers read as weights, under the names the layers read them by. */
function weightTensors(foreign: Model): StateDict {
  const constants = resolveConstants(foreign.graph);
  const dict: StateDict = new Map();
  for (const { name } of parameterInputs(foreign.graph)) {
    const t = constants.get(name);
    if (t) dict.set(name, t);
  }
  return dict;
}

function basename(path: string): string {
  return path.split(/[\\/]/).at(-1) ?? path;
}
