/**
 * Lining up a state dict's key names with the model's, for checkpoints whose model was wrapped: CheXNet
 * re-implementations keep torchvision's DenseNet as `self.densenet121` and replace its classifier with
 * `nn.Sequential(nn.Linear(...), nn.Sigmoid())`, so their keys read `densenet121.classifier.0.weight`;
 * torchxrayvision's ResNet keeps torchvision's as `self.model`.
 */
import type { StateDict } from './state-dict.js';

export interface Rename {
  from: string;
  to: string;
}

export interface KeyAlignment {
  dict: StateDict;
  /** Every renamed key. */
  renamed: Rename[];
  /** The wrapper prefix removed from the keys, '' when none. */
  prefix: string;
  /** A Sequential(Linear, activation) head was unwrapped. */
  sequentialHead: boolean;
}

const SEQUENTIAL_HEAD = /^([A-Za-z_]\w*)\.0\.(weight|bias)$/;

export function alignKeyNames(dict: StateDict, expected: ReadonlySet<string>): KeyAlignment {
  const prefix = commonWrapperPrefix([...dict.keys()], expected);
  const renamed: Rename[] = [];
  const out: StateDict = new Map();
  let sequentialHead = false;
  for (const [key, t] of dict) {
    let name = prefix && key.startsWith(prefix) ? key.slice(prefix.length) : key;
    if (!expected.has(name)) {
      // A head wrapped in nn.Sequential(Linear, activation): `<head>.0.weight` -> `<head>.weight`.
      const unwrapped = name.replace(SEQUENTIAL_HEAD, '$1.$2');
      if (expected.has(unwrapped) && !dict.has(unwrapped)) {
        name = unwrapped;
        sequentialHead = true;
      }
    }
    if (name !== key) renamed.push({ from: key, to: name });
    out.set(name, t);
  }
  return { dict: out, renamed, prefix, sequentialHead };
}

/** The prefix (such as `densenet121.`) that, removed from the keys, makes the most of them match the model. */
function commonWrapperPrefix(keys: string[], expected: ReadonlySet<string>): string {
  const direct = keys.filter((k) => expected.has(k)).length;
  const votes = new Map<string, number>();
  for (const key of keys) {
    for (let i = key.indexOf('.'); i > 0; i = key.indexOf('.', i + 1)) {
      if (expected.has(key.slice(i + 1))) {
        const p = key.slice(0, i + 1);
        votes.set(p, (votes.get(p) ?? 0) + 1);
      }
    }
  }
  let best = '';
  let bestVotes = direct;
  for (const [p, v] of votes) {
    if (v > bestVotes) {
      best = p;
      bestVotes = v;
    }
  }
  return best;
}

const LEGACY_DENSENET_PART = /\.(?:norm|relu|conv)\.[12]\./;

/** Why a key was renamed, in words; one rename can have several reasons. */
function renameReasons({ from, to }: Rename, wrapperPrefix: string): string[] {
  const reasons: string[] = [];
  if (from.startsWith('module.') && !to.startsWith('module.')) reasons.push('DataParallel\'s "module." prefix removed');
  if (from.includes('_orig_mod.') && !to.includes('_orig_mod.')) reasons.push('torch.compile\'s "_orig_mod." prefix removed');
  if (wrapperPrefix && from.includes(wrapperPrefix) && !to.startsWith(wrapperPrefix)) reasons.push(`wrapper prefix "${wrapperPrefix}" removed`);
  if (LEGACY_DENSENET_PART.test(from) && !LEGACY_DENSENET_PART.test(to)) reasons.push('pre-0.4 torchvision DenseNet names (norm.1 -> norm1, conv.2 -> conv2)');
  const zeros = (name: string) => name.split('.').filter((part) => part === '0').length;
  if (zeros(to) < zeros(from) && SEQUENTIAL_HEAD.test(from.split('.').slice(-3).join('.'))) reasons.push('Sequential(Linear, ...) classifier unwrapped (classifier.0 -> classifier)');
  return reasons.length ? reasons : ['renamed'];
}

/** One line per kind of rename, with its count and the first example, instead of one line per key. */
export function summariseRenames(renames: readonly Rename[], wrapperPrefix: string): string[] {
  const groups = new Map<string, Rename[]>();
  for (const r of renames) for (const reason of renameReasons(r, wrapperPrefix)) groups.set(reason, [...(groups.get(reason) ?? []), r]);
  return [...groups].map(([reason, items]) => `${reason}: ${items.length} key${items.length === 1 ? '' : 's'} (e.g. ${items[0].from} -> ${items[0].to})`);
}
