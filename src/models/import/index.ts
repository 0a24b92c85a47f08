/**
 * Weight import: turns weights made elsewhere into a clean cxr-lens model of a zoo architecture.
 * - PyTorch checkpoints (.pth/.pt/.pth.tar, zip or legacy format): state dict keys are torchvision's names, after
 *   removing DataParallel's `module.`, legacy DenseNet names and wrapper prefixes such as CheXNet's `densenet121.`.
 * - ONNX files exported from PyTorch: initializers mapped by name (through PyTorch's Identity aliases); when the
 *   exporter folded BatchNorms and dropped the names, the layers are paired by structure instead.
 * - Quantised ONNX (QOperator or QDQ, e.g. the model zoo's int8 MobileNetV2): weights dequantised to float32, paired
 *   by structure.
 */
import { NIH_FINDINGS } from '../../data/labels.js';
import { type Model, decodeModel } from '../../onnx/index.js';
import { setWeightsDescription } from '../metadata.js';
import { parameterInputs, parameterSlots } from '../parameters.js';
import { ARCHITECTURE_NAMES, type ArchitectureName, type BuildOptions, buildModel, isArchitecture } from '../zoo/index.js';
import { zeroInit } from '../init.js';
import { alignByStructure } from './align.js';
import { architectureFromLayers, architectureFromNames } from './detect.js';
import { extractForeignLayers, resolveConstants } from './foreign-layers.js';
import { alignKeyNames } from './keys.js';
import { isPickle } from './pytorch/legacy-format.js';
import { readPytorchCheckpointWithReport } from './pytorch/index.js';
import { isZip } from './pytorch/zip-format.js';
import { describeNonCheckpoint, looksLikeOnnx } from './sniff.js';
import { type ImportReport, type StateDict, applyStateDict } from './state-dict.js';

export type { ImportReport, StateDict } from './state-dict.js';
export { applyStateDict } from './state-dict.js';

export interface ImportOptions extends Pick<BuildOptions, 'channels' | 'height' | 'width' | 'preprocessing'> {
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
  /** Renamed keys, BatchNorms folded into convolutions, and similar notes. */
  notes: string[];
}

export function importWeights(bytes: Uint8Array, fileName: string, options: ImportOptions = {}): ImportResult {
  if (isZip(bytes) || isPickle(bytes)) return importCheckpoint(bytes, fileName, options);
  if (looksLikeOnnx(bytes)) return importOnnx(decodeModel(bytes, { name: fileName }), fileName, options);
  throw new Error(`${fileName}: not an ONNX model or a PyTorch checkpoint; it looks like ${describeNonCheckpoint(bytes)}`);
}

function importCheckpoint(bytes: Uint8Array, fileName: string, options: ImportOptions): ImportResult {
  const { stateDict, report } = readPytorchCheckpointWithReport(bytes, fileName);
  const architecture = checkedArchitecture(options.architecture ?? architectureFromNames(stateDict.keys()), fileName);
  const expected = new Set(parameterSlots(buildFor(architecture, options, 14).graph).map((s) => s.name));
  const aligned = alignKeyNames(stateDict, expected);
  const notes = [
    ...report.renamedKeys.map((r) => `${r.from} -> ${r.to}`),
    ...aligned.renamed,
    ...report.convertedToFloat32.map((c) => `${c.name}: ${c.from} converted to float32`),
  ];
  if (report.entryPath.length > 0) notes.unshift(`weights read from the checkpoint's "${report.entryPath.join('.')}" entry`);
  const format = `PyTorch checkpoint (${report.format} format)`;
  return finish(architecture, aligned.dict, 'names', format, notes, fileName, options);
}

function importOnnx(foreign: Model, fileName: string, options: ImportOptions): ImportResult {
  const quantized = foreign.graph.nodes.some((n) => n.opType.startsWith('QLinear') || n.opType === 'DequantizeLinear');
  const format = quantized ? 'quantised ONNX (dequantised to float32)' : 'ONNX';
  const named = weightTensors(foreign);
  const detected = options.architecture ?? architectureFromNames(named.keys());
  let byName: { architecture: ArchitectureName; aligned: ReturnType<typeof alignKeyNames>; missing: number } | undefined;
  if (detected) {
    const architecture = checkedArchitecture(detected, fileName);
    const expected = new Set(parameterSlots(buildFor(architecture, options, 14).graph).map((s) => s.name));
    const aligned = alignKeyNames(named, expected);
    const missing = [...expected].filter((n) => !aligned.dict.has(n)).length;
    if (missing === 0) return finish(architecture, aligned.dict, 'names', format, aligned.renamed, fileName, options);
    byName = { architecture, aligned, missing };
  }
  // Names are incomplete (folded or quantised export): pair the layers by structure. If that fails too and most
  // names did match, the name report says more about what is wrong with the file.
  try {
    const layers = extractForeignLayers(foreign.graph);
    const architecture = checkedArchitecture(detected ?? architectureFromLayers(layers), fileName);
    const { dict, folded } = alignByStructure(buildFor(architecture, options, headSize(layers) ?? 14).graph, layers, fileName);
    const notes = folded.length > 0 ? [`${folded.length} BatchNorm layers were folded into their convolutions in the file; they are set to the identity`] : [];
    return finish(architecture, dict, 'structure', format, notes, fileName, options);
  } catch (error) {
    if (byName && byName.aligned.dict.size > 2 * byName.missing) {
      return finish(byName.architecture, byName.aligned.dict, 'names', format, byName.aligned.renamed, fileName, options);
    }
    throw error;
  }
}

function finish(
  architecture: ArchitectureName,
  dict: StateDict,
  method: ImportResult['method'],
  format: string,
  notes: string[],
  fileName: string,
  options: ImportOptions,
): ImportResult {
  const headWeight = dict.get(parameterSlots(buildFor(architecture, options, 14).graph).filter((s) => s.role === 'linear.weight').at(-1)?.name ?? '');
  const fileClasses = headWeight?.dims[0];
  const fitsNih = fileClasses === undefined || fileClasses === NIH_FINDINGS.length;
  const labels = options.labels ?? (options.newHead || fitsNih ? NIH_FINDINGS : Array.from({ length: fileClasses }, (_, i) => `class_${i}`));
  const model = buildModel(architecture, {
    ...options,
    labels,
    init: options.newHead ? undefined : zeroInit,
  });
  // Fit first: a file of another architecture should hear about its tensors, not about label names.
  const report = applyStateDict(model, dict, { source: fileName, newHead: options.newHead });
  const newHead = report.reinitialized.length > 0 ? ', new classifier head' : '';
  setWeightsDescription(model, `imported from ${basename(fileName)} (${format}, matched by ${method})${newHead}`);
  if (!options.labels && !options.newHead && !fitsNih) {
    throw new Error(
      `${fileName}: its classifier has ${fileClasses} outputs, not the 14 NIH findings; give ${fileClasses} label names, ` +
        'or start a fresh 14-finding classifier with the new-head option (--new-head) to fine-tune it',
    );
  }
  return { model, architecture, method, format, report, notes };
}

function buildFor(architecture: ArchitectureName, options: ImportOptions, classes: number): Model {
  const labels = options.labels ?? Array.from({ length: classes }, (_, i) => `class_${i}`);
  return buildModel(architecture, { ...options, labels, init: zeroInit });
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
