/** Test inputs generated from a seed, bit-identical to scripts/fixtures/make_autodiff_*.py's `generated`. */
import { lowbias32 } from '../helpers/numeric.js';

export type InputKind = 'uniform' | 'positive' | 'offset';

/** Uniform(-2, 2) in float32-exact steps; 'positive' maps to |u| + 0.5, 'offset' to u / 2 + 30 (then float32). */
export function generated(count: number, seed: number, kind: InputKind = 'uniform'): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = ((lowbias32((i + seed) >>> 0) >>> 8) / 2 ** 24) * 4 - 2;
    out[i] = kind === 'positive' ? Math.abs(u) + 0.5 : kind === 'offset' ? u / 2 + 30 : u;
  }
  return out;
}

/** max |a - b| / max |b|, as the parity tests state tolerances. */
export { relativeError } from '../helpers/numeric.js';
