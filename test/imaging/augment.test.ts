/** Seeded augmentation on real model pixels: determinism, exact geometric cases, intensity changes, bad specs. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  applyAugmentation,
  augment,
  createRng,
  DEFAULT_AUGMENTATION,
  decodeImageFile,
  mixSeed,
  toModelPixels,
  type AppliedAugmentation,
} from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { diff, stats } from './util.js';

const SIZE = 96;
let chest: Uint8Array;
before(async () => {
  const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset/images/00000075_000.png'));
  chest = toModelPixels(image, { width: SIZE, height: SIZE, channels: 1, mean: [0], std: [1], resize: 'pad' }).pixels;
});

const NONE: AppliedAugmentation = { rotationDeg: 0, translateX: 0, translateY: 0, scale: 1, flip: false, brightness: 1, contrast: 1 };

describe('seeded PRNG', () => {
  test('the same seed gives the same sequence; different seeds differ; values lie in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
    assert.notDeepEqual(xs, Array.from({ length: 1000 }, () => c.next()));
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const s = stats(xs);
    assert.ok(Math.abs(s.mean - 0.5) < 0.03 && Math.abs(s.std - Math.sqrt(1 / 12)) < 0.02);
  });

  test('mixSeed separates (epoch, index) pairs', () => {
    const seeds = new Set<number>();
    for (let epoch = 0; epoch < 20; epoch++) for (let index = 0; index < 500; index++) seeds.add(mixSeed(7, epoch, index));
    assert.equal(seeds.size, 10000);
    assert.equal(mixSeed(7, 1, 2), mixSeed(7, 1, 2));
  });
});

describe('augment', () => {
  test('same seed -> identical output; another seed -> different output', () => {
    const first = augment(chest, SIZE, SIZE, DEFAULT_AUGMENTATION, 1234);
    const again = augment(chest, SIZE, SIZE, DEFAULT_AUGMENTATION, 1234);
    const other = augment(chest, SIZE, SIZE, DEFAULT_AUGMENTATION, 1235);
    assert.deepEqual(again.pixels, first.pixels);
    assert.deepEqual(again.applied, first.applied);
    assert.notDeepEqual(other.pixels, first.pixels);
    assert.ok(first.pixels instanceof Uint8Array && first.pixels.length === SIZE * SIZE);
  });

  test('drawn parameters stay within the spec', () => {
    for (let seed = 0; seed < 200; seed++) {
      const { applied } = augment(chest, SIZE, SIZE, DEFAULT_AUGMENTATION, seed);
      assert.ok(Math.abs(applied.rotationDeg) <= DEFAULT_AUGMENTATION.rotationDeg);
      assert.ok(Math.abs(applied.translateX) <= DEFAULT_AUGMENTATION.translate && Math.abs(applied.translateY) <= DEFAULT_AUGMENTATION.translate);
      assert.ok(Math.abs(applied.scale - 1) <= DEFAULT_AUGMENTATION.scale);
      assert.equal(applied.flip, false);
    }
  });

  test('the identity transform returns the input unchanged', () => {
    assert.deepEqual(applyAugmentation(chest, SIZE, SIZE, NONE), chest);
  });

  test('a flip mirrors rows exactly', () => {
    const out = applyAugmentation(chest, SIZE, SIZE, { ...NONE, flip: true });
    for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) assert.equal(out[y * SIZE + x], chest[y * SIZE + SIZE - 1 - x]);
  });

  test('a whole-pixel translation shifts exactly and fills with black', () => {
    const out = applyAugmentation(chest, SIZE, SIZE, { ...NONE, translateX: 5 / SIZE, translateY: -3 / SIZE });
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const sx = x - 5;
        const sy = y + 3;
        const expected = sx >= 0 && sy < SIZE ? chest[sy * SIZE + sx] : 0;
        assert.equal(out[y * SIZE + x], expected, `(${x}, ${y})`);
      }
    }
  });

  test('a 90 degree rotation about the centre turns the image (up to float rounding)', () => {
    const out = applyAugmentation(chest, SIZE, SIZE, { ...NONE, rotationDeg: 90 });
    // Forward rotation by +90 degrees in image coordinates (y down): source (x, y) -> (SIZE - 1 - y, x).
    const expected = new Uint8Array(SIZE * SIZE);
    for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) expected[x * SIZE + (SIZE - 1 - y)] = chest[y * SIZE + x];
    const d = diff(out, expected);
    assert.ok(d.max <= 1, `max ${d.max}`);
  });

  test('zooming in by 2 magnifies the centre', () => {
    const out = applyAugmentation(chest, SIZE, SIZE, { ...NONE, scale: 2 });
    // Output pixel centre (x + 0.5) samples source (x + 0.5 - 48) / 2 + 48 - 0.5: for even x that is a pixel
    // centre plus a quarter; compare with the bilinear value computed here.
    for (const [x, y] of [
      [40, 40],
      [50, 60],
      [10, 80],
    ]) {
      const sx = (x + 0.5 - 48) / 2 + 48 - 0.5;
      const sy = (y + 0.5 - 48) / 2 + 48 - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const at = (a: number, b: number) => chest[b * SIZE + a];
      const v = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
      assert.ok(Math.abs(out[y * SIZE + x] - v) <= 0.5 + 1e-9, `(${x}, ${y}) ${out[y * SIZE + x]} vs ${v}`);
    }
  });

  test('brightness multiplies; contrast scales deviations from the mean', () => {
    const brighter = applyAugmentation(chest, SIZE, SIZE, { ...NONE, brightness: 1.2 });
    for (let i = 0; i < chest.length; i++) assert.equal(brighter[i], Math.min(255, Math.round(chest[i] * 1.2)));
    const flat = applyAugmentation(chest, SIZE, SIZE, { ...NONE, contrast: 0.5 });
    const before = stats(chest);
    const after = stats(flat);
    assert.ok(Math.abs(after.mean - before.mean) < 0.6);
    assert.ok(Math.abs(after.std - before.std / 2) < 0.6);
  });

  test('a bad spec or a wrong size is an error', () => {
    assert.throws(() => augment(chest, SIZE, SIZE, { ...DEFAULT_AUGMENTATION, rotationDeg: -1 }, 1), /"rotationDeg" must be a number in \[0, 180\], got -1/);
    assert.throws(() => augment(chest, SIZE, SIZE, { ...DEFAULT_AUGMENTATION, scale: 1 }, 1), /"scale" must be a number in \[0, 0\.9\]/);
    assert.throws(() => augment(chest, SIZE, SIZE - 1, DEFAULT_AUGMENTATION, 1), /augment: 9216 pixels for 96x95/);
  });
});
