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
import { type HostTensor, type Model, decodeModel } from '../../onnx/index.js';
import { parameterSlots } from '../parameters.js';
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
  /** Start a fresh classifier for the labels instead of the file's (transfer learning). */
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
  if (detected) {
    const architecture = checkedArchitecture(detected, fileName);
    const probe = buildFor(architecture, options, 14);
    const expected = new Set(parameterSlots(probe.graph).map((s) => s.name));
    const aligned = alignKeyNames(named, expected);
    const coverage = [...expected].filter((n) => aligned.dict.has(n)).length / expected.size;
    if (coverage > 0.5) return finish(architecture, aligned.dict, 'names', format, aligned.renamed, fileName, options);
  }
  const layers = extractForeignLayers(foreign.graph);
  const architecture = checkedArchitecture(detected ?? architectureFromLayers(layers), fileName);
  const probe = buildFor(architecture, options, headSize(layers) ?? 14);
  const { dict, folded } = alignByStructure(probe.graph, layers, fileName);
  const notes = folded.length > 0 ? [`${folded.length} BatchNorm layers were folded into their convolutions in the file; they are set to the identity`] : [];
  return finish(architecture, dict, 'structure', format, notes, fileName, options);
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
  const probe = buildFor(architecture, options, 14);
  const headWeight = dict.get(parameterSlots(probe.graph).filter((s) => s.role === 'linear.weight').at(-1)?.name ?? '');
  const labels = chooseLabels(headWeight?.dims[0], fileName, options);
  const model = buildModel(architecture, {
    ...options,
    labels,
    init: options.newHead ? undefined : zeroInit,
    weights: `imported from ${basename(fileName)} (${format}, matched by ${method})${options.newHead ? ', new classifier head' : ''}`,
  });
  const report = applyStateDict(model, dict, { source: fileName, newHead: options.newHead });
  return { model, architecture, method, format, report, notes };
}

function chooseLabels(fileClasses: number | undefined, fileName: string, options: ImportOptions): readonly string[] {
  if (options.labels) return options.labels;
  if (options.newHead || fileClasses === undefined || fileClasses === NIH_FINDINGS.length) return NIH_FINDINGS;
  throw new Error(
    `${fileName}: its classifier has ${fileClasses} outputs, not the 14 NIH findings; give ${fileClasses} label names, ` +
      'or start a fresh 14-finding classifier with the new-head option (--new-head) to fine-tune it',
  );
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

/** Float tensors stored as weights (initializers and their aliases), not the graph's Constant nodes such as Clip bounds. */
function weightTensors(foreign: Model): StateDict {
  const constantNodes = new Set(foreign.graph.nodes.filter((n) => n.opType === 'Constant').flatMap((n) => n.outputs));
  const isFloat = (t: HostTensor) => t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64';
  return new Map([...resolveConstants(foreign.graph)].filter(([name, t]) => isFloat(t) && !constantNodes.has(name)));
}

function basename(path: string): string {
  return path.split(/[\\/]/).at(-1) ?? path;
}
