/** Shared pieces of the eval tests: the scikit-learn fixtures and comparisons that treat null as NaN. */
import assert from 'node:assert/strict';
import { readFixture } from '../helpers/fixtures.js';

export function evalFixture<T>(name: string): T {
  return JSON.parse(new TextDecoder().decode(readFixture('eval', name))) as T;
}

/** |actual - expected| <= tolerance, where an expected null (NaN in the generator) requires NaN. */
export function assertClose(actual: number, expected: number | null, tolerance: number, what: string): void {
  if (expected === null) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
    return;
  }
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} differs from ${expected} by ${Math.abs(actual - expected)} (> ${tolerance})`);
}

export function assertAllClose(actual: ArrayLike<number>, expected: readonly (number | null)[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) assertClose(actual[i], expected[i], tolerance, `${what}[${i}]`);
}
