/** Comparing numeric arrays the way the parity proofs state their tolerances. */

/** max |a - b| / max |b|: error relative to the reference's scale (robust where single values cross zero). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} differs from the expected ${expected.length}`);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale === 0 ? maxDiff : maxDiff / scale;
}

/** Chris Wellons' lowbias32 hash, the generator of the parity fixtures' inputs (scripts/fixtures/make_zoo_parity.py). */
export function lowbias32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Uniform(-2, 2) values, bit-identical to the fixture generator's `test_input`. */
export function parityInput(count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = ((lowbias32((i + 0x1234567) >>> 0) >>> 8) / 2 ** 24) * 4 - 2;
  return out;
}
