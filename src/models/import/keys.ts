/**
 * Lining up a state dict's key names with the model's, for checkpoints whose model was wrapped: CheXNet
 * re-implementations keep torchvision's DenseNet as `self.densenet121` and replace its classifier with
 * `nn.Sequential(nn.Linear(...), nn.Sigmoid())`, so their keys read `densenet121.classifier.0.weight`.
 */
import type { StateDict } from './state-dict.js';

export interface KeyAlignment {
  dict: StateDict;
  /** "old -> new" for every renamed key. */
  renamed: string[];
}

export function alignKeyNames(dict: StateDict, expected: ReadonlySet<string>): KeyAlignment {
  const prefix = commonWrapperPrefix([...dict.keys()], expected);
  const renamed: string[] = [];
  const out: StateDict = new Map();
  for (const [key, t] of dict) {
    let name = prefix && key.startsWith(prefix) ? key.slice(prefix.length) : key;
    if (!expected.has(name)) {
      // A head wrapped in nn.Sequential(Linear, activation): `<head>.0.weight` -> `<head>.weight`.
      const unwrapped = name.replace(/^([A-Za-z_]\w*)\.0\.(weight|bias)$/, '$1.$2');
      if (expected.has(unwrapped) && !dict.has(unwrapped)) name = unwrapped;
    }
    if (name !== key) renamed.push(`${key} -> ${name}`);
    out.set(name, t);
  }
  return { dict: out, renamed };
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
