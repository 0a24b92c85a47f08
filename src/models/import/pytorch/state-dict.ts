/** Finding the state dict inside what a checkpoint pickles, and normalising its key names. */
import { PickledObject } from './pickle.js';
import { PickledModule, TensorRef } from './torch-globals.js';

/**
 * Keys under which training scripts store the weights, in the order they are tried. `model` may also hold a whole
 * nn.Module (read when its classes are known) or a name such as 'densenet121' (skipped).
 */
export const WEIGHT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'network', 'module'] as const;

export interface Selection {
  weights: Map<string, TensorRef>;
  /** Key of the entry holding the weights; empty when the checkpoint is the state dict itself. */
  entryPath: string[];
  /** Top-level entries that were not used (training state such as epoch or optimizer, other models). */
  ignoredEntries: string[];
  /** The class of the whole pickled module the weights were read from, if they were. */
  moduleClass?: string;
  /** That module's own attributes that describe its outputs (torchxrayvision keeps these). */
  moduleAttributes?: ModuleAttributes;
}

export interface ModuleAttributes {
  /** `targets` or `pathologies`: the name of each output ('' for an output that was not trained). */
  labels?: string[];
  /** `op_threshs` kept as a plain list rather than a buffer (torchxrayvision before it registered one). */
  operatingPoints?: number[];
}

/**
 * What model.state_dict() would return, read from a pickled module's state: each module's `_parameters`, then its
 * persistent `_buffers`, then its `_modules` in order, names joined with dots; None entries skipped.
 */
export function moduleStateDict(module: PickledModule): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const visit = (m: PickledModule, prefix: string) => {
    const nonPersistent = m.state.get('_non_persistent_buffers_set');
    for (const [field, skip] of [['_parameters', undefined], ['_buffers', nonPersistent]] as const) {
      const entries = m.state.get(field);
      if (!(entries instanceof Map)) continue;
      for (const [name, value] of entries) {
        if (value instanceof TensorRef && !(skip instanceof Set && skip.has(name))) out.set(`${prefix}${String(name)}`, value);
      }
    }
    const children = m.state.get('_modules');
    if (children instanceof Map) for (const [name, child] of children) if (child instanceof PickledModule) visit(child, `${prefix}${String(name)}.`);
  };
  visit(module, '');
  return out;
}

function moduleAttributes(module: PickledModule): ModuleAttributes {
  const attributes: ModuleAttributes = {};
  const labels = module.state.get('targets') ?? module.state.get('pathologies');
  if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) attributes.labels = labels;
  const points = module.state.get('op_threshs');
  if (Array.isArray(points) && points.every((p) => typeof p === 'number')) attributes.operatingPoints = points;
  return attributes;
}

function fromModule(module: PickledModule, entryPath: string[], ignoredEntries: string[]): Selection {
  const weights = moduleStateDict(module);
  if (weights.size === 0) throw new Error(`the pickled ${module.className}${entryPath.length ? ` in entry '${entryPath[0]}'` : ''} holds no tensors`);
  return { weights, entryPath, ignoredEntries, moduleClass: module.className, moduleAttributes: moduleAttributes(module) };
}

/** A dict with string keys whose values are all tensors: what model.state_dict() returns. */
function isStateDict(value: unknown): value is Map<string, TensorRef> {
  if (!(value instanceof Map) || value.size === 0) return false;
  for (const [key, item] of value) if (typeof key !== 'string' || !(item instanceof TensorRef)) return false;
  return true;
}

function tensorElements(dict: Map<string, TensorRef>): number {
  let total = 0;
  for (const tensor of dict.values()) total += tensor.size.reduce((a, b) => a * b, 1);
  return total;
}

/** A few words on what a pickled value is, for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof TensorRef) return `a tensor of shape [${value.size.join(', ')}]`;
  if (value instanceof PickledObject) return `an instance of ${value.cls.qualifiedName}`;
  if (value instanceof PickledModule) return `a pickled ${value.className} module`;
  if (value instanceof Map) {
    const tensors = [...value.values()].filter((item) => item instanceof TensorRef).length;
    return `a dict of ${value.size} entries${tensors ? ` (${tensors} of them tensors)` : ''}`;
  }
  if (Array.isArray(value)) return `a list or tuple of ${value.length} items`;
  if (value instanceof Set) return `a set of ${value.size} items`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

/** Why `value` is not a state dict, or undefined when it is one. */
function stateDictProblem(value: unknown): string | undefined {
  if (isStateDict(value)) return undefined;
  if (!(value instanceof Map)) return `it is ${describeValue(value)}`;
  if (value.size === 0) return 'it is an empty dict';
  const others = [...value].filter(([key, item]) => typeof key !== 'string' || !(item instanceof TensorRef));
  const listed = others.slice(0, 3).map(([key, item]) => `${String(key)} (${describeValue(item)})`);
  return `not all of its entries are tensors: ${listed.join(', ')}${others.length > 3 ? ', ...' : ''}`;
}

/**
 * Chooses the state dict:
 * 1. the checkpoint itself when it is a dict of tensors;
 * 2. else the entry named by `entry`, when given;
 * 3. else the first of WEIGHT_KEYS whose entry is a dict of tensors;
 * 4. else, of the entries that are dicts of tensors, the one with the most tensor elements (the earliest on a tie).
 * Throws a message (without the file name) when there is none.
 */
export function selectStateDict(root: unknown, entry?: string): Selection {
  if (isStateDict(root)) return { weights: root, entryPath: [], ignoredEntries: [] };
  if (root instanceof PickledModule) return fromModule(root, [], []);
  if (!(root instanceof Map)) throw new Error(`the checkpoint is ${describeValue(root)}, not a dict of tensors`);
  if (root.size === 0) throw new Error('the checkpoint is an empty dict: it holds no weights');
  const keys = [...root.keys()];
  const select = (key: string): Selection => {
    const value = root.get(key);
    const ignoredEntries = keys.filter((other) => other !== key).map(String);
    if (value instanceof PickledModule) return fromModule(value, [key], ignoredEntries);
    return { weights: value as Map<string, TensorRef>, entryPath: [key], ignoredEntries };
  };
  const holdsWeights = (value: unknown) => isStateDict(value) || value instanceof PickledModule;

  if (entry !== undefined) {
    if (!root.has(entry)) throw new Error(`the checkpoint has no entry '${entry}' (it has: ${keys.map(String).join(', ')})`);
    const problem = root.get(entry) instanceof PickledModule ? undefined : stateDictProblem(root.get(entry));
    if (problem) throw new Error(`entry '${entry}' is not a state dict: ${problem}`);
    return select(entry);
  }
  for (const key of WEIGHT_KEYS) if (holdsWeights(root.get(key))) return select(key);

  let best: string | undefined;
  let bestElements = -1;
  for (const [key, value] of root) {
    if (typeof key !== 'string' || !holdsWeights(value)) continue;
    const elements = tensorElements(value instanceof PickledModule ? moduleStateDict(value) : (value as Map<string, TensorRef>));
    if (elements > bestElements) [best, bestElements] = [key, elements];
  }
  if (best !== undefined) return select(best);

  const named = WEIGHT_KEYS.find((key) => root.has(key));
  if (named) throw new Error(`entry '${named}' is not a state dict: ${stateDictProblem(root.get(named))}`);
  const listed = keys.slice(0, 8).map((key) => `${String(key)} (${describeValue(root.get(key))})`);
  throw new Error(`no state dict found: the checkpoint is a dict of ${listed.join(', ')}${keys.length > 8 ? ', ...' : ''}`);
}

/**
 * The first whole nn.Module of a class this reader does not know, pickled at the top of the checkpoint or in one of
 * its entries, with where it is.
 */
export function findUnknownModule(root: unknown): { className: string; entry?: string } | undefined {
  if (isModule(root)) return { className: root.cls.qualifiedName };
  if (!(root instanceof Map)) return undefined;
  for (const [key, value] of root) if (isModule(value)) return { className: value.cls.qualifiedName, entry: String(key) };
  return undefined;
}

/** nn.Module pickles as an object whose state holds its `_modules` and `_parameters`. */
function isModule(value: unknown): value is PickledObject {
  return value instanceof PickledObject && value.state instanceof Map && (value.state.has('_modules') || value.state.has('_parameters'));
}

export interface KeyRename {
  from: string;
  to: string;
}

/** Wrappers that prefix every key: nn.DataParallel / DistributedDataParallel and torch.compile. */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

/** torchvision's DenseNet `_load_state_dict` pattern: `denselayer1.norm.1.weight` was renamed `denselayer1.norm1.weight`. */
const LEGACY_DENSENET_KEY = /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$/;

/**
 * Strips wrapper prefixes (`module.` of DataParallel, `_orig_mod.` of torch.compile) from every key that has them, as
 * torch's consume_prefix_in_state_dict_if_present does, and renames the DenseNet keys of torchvision before 0.3
 * (still used by CheXNet re-implementations) exactly as torchvision's DenseNet loader does. Order is kept.
 */
export function normalizeStateDictKeys<T>(stateDict: ReadonlyMap<string, T>): {
  stateDict: Map<string, T>;
  renamed: KeyRename[];
} {
  const normalized = new Map<string, T>();
  const sources = new Map<string, string>();
  const renamed: KeyRename[] = [];
  for (const [key, value] of stateDict) {
    let name = key;
    let prefix: string | undefined;
    while ((prefix = WRAPPER_PREFIXES.find((p) => name.startsWith(p)))) name = name.slice(prefix.length);
    const legacy = LEGACY_DENSENET_KEY.exec(name);
    if (legacy) name = legacy[1] + legacy[2];
    const clash = sources.get(name);
    if (clash !== undefined) throw new Error(`keys '${clash}' and '${key}' both become '${name}' once normalised`);
    sources.set(name, key);
    normalized.set(name, value);
    if (name !== key) renamed.push({ from: key, to: name });
  }
  return { stateDict: normalized, renamed };
}

/** BatchNorm's `num_batches_tracked` counts training steps; it is kept in the state dict but holds no weights. */
export function isBookkeepingKey(name: string): boolean {
  return name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');
}
