/** Resampling, geometry, normalisation and the full preprocess pipeline against independent expectations and PIL. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  boxToModel,
  computeGeometry,
  decodeImageFile,
  heatmapToSource,
  imagenetPreprocessing,
  modelToSource,
  normalize,
  preprocess,
  resample,
  sourceToModel,
  toModelPixels,
  type DecodedImage,
  type PreprocessingSpec,
} from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { CXR01, diff, fixture, readCsv } from './util.js';

const gray = (width: number, height: number, f: (x: number, y: number) => number, maxValue = 255): DecodedImage => {
  const pixels = maxValue > 255 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels[y * width + x] = f(x, y);
  return { width, height, pixels, maxValue, format: 'png', source: 'synthetic', metadata: {}, notes: [] };
};
const spec = (width: number, height: number, resize: PreprocessingSpec['resize'], channels: 1 | 3 = 1): PreprocessingSpec => ({
  width,
  height,
  channels,
  mean: channels === 1 ? [0] : [0, 0, 0],
  std: channels === 1 ? [1] : [1, 1, 1],
  resize,
});

describe('resample', () => {
  test('a constant image stays constant, shrinking and enlarging, with and without a box', () => {
    const src = new Float32Array(300 * 200).fill(77);
    for (const [w, h, box] of [
      [64, 64, undefined],
      [1000, 50, undefined],
      [37, 91, { x0: 10.3, y0: 20.7, x1: 250.2, y1: 190 }],
    ] as const) {
      const out = resample(src, 300, 200, w, h, box);
      for (const v of out) assert.ok(Math.abs(v - 77) < 1e-3, `${w}x${h}: ${v}`);
    }
  });

  test('a one-pixel checkerboard halved is the box average 127.5 away from the border', () => {
    const src = new Uint8Array(64 * 64).map((_, i) => (((i % 64) + Math.floor(i / 64)) % 2 ? 255 : 0));
    const out = resample(src, 64, 64, 32, 32);
    for (let y = 1; y < 31; y++) for (let x = 1; x < 31; x++) assert.ok(Math.abs(out[y * 32 + x] - 127.5) < 1e-3);
  });

  test('a linear ramp stays exactly linear inside the image (shrink by 4, enlarge by 2.5)', () => {
    const width = 200;
    const height = 120;
    const ramp = new Float32Array(width * height).map((_, i) => (i % width) + 2 * Math.floor(i / width));
    // Output pixel o samples around the source centre (o + 0.5) * scale, i.e. ramp value at centre - 0.5.
    for (const [ow, oh, margin] of [
      [50, 30, 2],
      [500, 300, 3],
    ]) {
      const sx = width / ow;
      const sy = height / oh;
      const out = resample(ramp, width, height, ow, oh);
      for (let y = margin; y < oh - margin; y++) {
        for (let x = margin; x < ow - margin; x++) {
          const expected = (x + 0.5) * sx - 0.5 + 2 * ((y + 0.5) * sy - 0.5);
          assert.ok(Math.abs(out[y * ow + x] - expected) < 1e-3, `(${x}, ${y}) ${out[y * ow + x]} vs ${expected}`);
        }
      }
    }
  });

  test('rejects sizes that do not match', () => {
    assert.throws(() => resample(new Uint8Array(10), 4, 4, 2, 2), /resample: 10 values for a 4x4 image/);
    assert.throws(() => resample(new Uint8Array(16), 4, 4, 0, 2), /invalid output size 0x2/);
  });
});

describe('model pixels against PIL (fixtures from scripts/fixtures/imaging_pil_reference.py)', () => {
  const reference = JSON.parse(new TextDecoder().decode(fixture('pil-reference.json'))).cases;
  const cases: [string, PreprocessingSpec['resize'], number][] = [
    ['down', 'stretch', 0.1],
    ['crop', 'crop', 0.1],
    ['up', 'stretch', 0.3],
  ];
  for (const [name, resize, maxMean] of cases) {
    test(`${name}: ${reference[name].op} within 1 gray level, mean difference < ${maxMean}`, async () => {
      const c = reference[name];
      const image = await decodeImageFile(sharedDataPath(c.source));
      const { pixels } = toModelPixels(image, spec(c.width, c.height, resize));
      // PIL rounds to uint8 after each separable pass in fixed point; we keep floats until the end.
      const d = diff(pixels, fixture(c.file));
      assert.ok(d.max <= 1 && d.mean < maxMean, `mean ${d.mean}, max ${d.max}`);
    });
  }
});

describe('toModelPixels and geometry', () => {
  test('same size is an exact copy; 16-bit sources are scaled by maxValue', async () => {
    const image = gray(40, 30, (x, y) => (x * 7 + y * 13) % 256);
    assert.deepEqual(toModelPixels(image, spec(40, 30, 'stretch')).pixels, image.pixels);
    const cxr = await decodeImageFile(CXR01);
    const { pixels } = toModelPixels(cxr, spec(440, 440, 'pad'));
    for (let i = 0; i < pixels.length; i++) assert.equal(pixels[i], Math.round((cxr.pixels[i] / 1023) * 255));
  });

  test("'pad' letterboxes a landscape image: black bands above and below, the content a plain resize", () => {
    const image = gray(100, 50, (x, y) => 40 + ((x + 3 * y) % 200));
    const { pixels, geometry } = toModelPixels(image, spec(64, 64, 'pad'));
    assert.deepEqual(geometry, { sourceWidth: 100, sourceHeight: 50, width: 64, height: 64, scaleX: 0.64, scaleY: 0.64, offsetX: 0, offsetY: 16, resize: 'pad' });
    const content = toModelPixels(image, spec(64, 32, 'stretch')).pixels;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const expected = y < 16 || y >= 48 ? 0 : content[(y - 16) * 64 + x];
        assert.equal(pixels[y * 64 + x], expected, `(${x}, ${y})`);
      }
    }
  });

  test("'pad' on a portrait image with an odd margin puts the extra column on the right", () => {
    const image = gray(45, 100, () => 200);
    const { pixels, geometry } = toModelPixels(image, spec(64, 64, 'pad'));
    assert.equal(geometry.offsetX, 17); // content 29 px wide (45 * 0.64 = 28.8), 35 px of padding: 17 left, 18 right
    assert.equal(geometry.scaleX, 29 / 45);
    for (let x = 0; x < 64; x++) assert.equal(pixels[32 * 64 + x], x >= 17 && x < 46 ? 200 : 0, `x ${x}`);
  });

  test("'crop' keeps the centre: a stripe at the source centre lands at the model centre", () => {
    const image = gray(100, 50, (x) => (x >= 45 && x < 55 ? 255 : 0));
    const { pixels, geometry } = toModelPixels(image, spec(64, 64, 'crop'));
    assert.equal(geometry.scaleX, 1.28);
    assert.equal(geometry.offsetX, -32);
    assert.equal(geometry.offsetY, 0);
    // Stripe [45, 55) maps to [25.6, 38.4): fully bright well inside, dark well outside.
    for (let x = 0; x < 64; x++) {
      if (x >= 27 && x <= 36) assert.equal(pixels[32 * 64 + x], 255, `x ${x}`);
      if (x <= 23 || x >= 40) assert.equal(pixels[32 * 64 + x], 0, `x ${x}`);
    }
  });

  test('geometry round trips for every mode', () => {
    for (const resize of ['pad', 'crop', 'stretch'] as const) {
      for (const [w, h] of [
        [1024, 1024],
        [2000, 1500],
        [333, 901],
      ]) {
        const g = computeGeometry(w, h, { width: 224, height: 192, resize });
        for (const p of [
          { x: 0, y: 0 },
          { x: w, y: h },
          { x: w * 0.3, y: h * 0.8 },
        ]) {
          const back = modelToSource(g, sourceToModel(g, p));
          assert.ok(Math.abs(back.x - p.x) < 1e-9 && Math.abs(back.y - p.y) < 1e-9, `${resize} ${w}x${h}`);
        }
        // The whole source maps inside (pad), onto (stretch) or around (crop) the model input.
        const corner = sourceToModel(g, { x: w, y: h });
        if (resize === 'stretch') assert.ok(Math.abs(corner.x - 224) < 1e-9 && Math.abs(corner.y - 192) < 1e-9);
        if (resize === 'pad') assert.ok(corner.x <= 224 + 1e-9 && corner.y <= 192 + 1e-9 && (Math.abs(corner.x - 224) < 1 || Math.abs(corner.y - 192) < 1));
        if (resize === 'crop') assert.ok(corner.x >= 224 - 1e-9 && corner.y >= 192 - 1e-9);
      }
    }
  });

  test("NIH boxes (1024 px space) map into a 512 px image's model input, and mark the right pixels", async () => {
    const boxes = readCsv(sharedDataPath('nih-meta/BBox_List_2017.csv'));
    const subset = new Set(readCsv(sharedDataPath('nih-cxr14-subset/Data_Entry.csv')).map((r) => r['Image Index']));
    const row = boxes.find((r) => subset.has(r['Image Index']))!;
    assert.ok(row, 'one of the subset images has an official box');
    const [x, y, w, h] = ['Bbox [x', 'y', 'w', 'h]'].map((k) => Number(row[k]));
    const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset/images', row['Image Index']));
    assert.equal(image.width, 512);
    const g = computeGeometry(512, 512, { width: 224, height: 224, resize: 'pad' });
    const mapped = boxToModel(g, { x, y, width: w, height: h }, { width: 1024, height: 1024 });
    const f = 224 / 1024;
    for (const [got, want] of [
      [mapped.x, x * f],
      [mapped.y, y * f],
      [mapped.width, Math.min(w * f, 224 - x * f)],
      [mapped.height, Math.min(h * f, 224 - y * f)],
    ]) {
      assert.ok(Math.abs(got - want) < 1e-9, `${got} vs ${want}`);
    }
    // Paint the box white in the source and check the model pixels inside the mapped box are white.
    const painted = { ...image, pixels: image.pixels.slice() };
    for (let py = Math.floor(y / 2); py < Math.ceil((y + h) / 2); py++) {
      for (let px = Math.floor(x / 2); px < Math.ceil((x + w) / 2); px++) painted.pixels[py * 512 + px] = 255;
    }
    const { pixels } = toModelPixels(painted, spec(224, 224, 'pad'));
    for (let my = Math.ceil(mapped.y) + 1; my < mapped.y + mapped.height - 1; my++) {
      for (let mx = Math.ceil(mapped.x) + 1; mx < mapped.x + mapped.width - 1; mx++) assert.equal(pixels[my * 224 + mx], 255);
    }
  });

  test('boxes outside a crop come back empty', () => {
    const g = computeGeometry(100, 50, { width: 64, height: 64, resize: 'crop' });
    assert.equal(boxToModel(g, { x: 0, y: 0, width: 10, height: 10 }).width, 0);
  });

  test('heatmapToSource: a constant map stays constant; a hot cell lands where its model area came from', () => {
    const g = computeGeometry(300, 200, { width: 224, height: 224, resize: 'pad' });
    const flat = heatmapToSource(new Float32Array(49).fill(0.25), 7, 7, g);
    assert.equal(flat.length, 300 * 200);
    for (const v of flat) assert.ok(Math.abs(v - 0.25) < 1e-6);
    const hot = new Float32Array(49);
    hot[3 * 7 + 5] = 1; // cell (5, 3) covers model x in [160, 192), y in [96, 128)
    const back = heatmapToSource(hot, 7, 7, g);
    let best = 0;
    for (let i = 1; i < back.length; i++) if (back[i] > back[best]) best = i;
    const peak = sourceToModel(g, { x: (best % 300) + 0.5, y: Math.floor(best / 300) + 0.5 });
    assert.ok(peak.x >= 160 && peak.x < 192 && peak.y >= 96 && peak.y < 128, JSON.stringify(peak));
  });
});

describe('normalize and preprocess', () => {
  test('normalize maps model pixels to (p / 255 - mean) / std per channel, gray replicated', () => {
    const s = imagenetPreprocessing(2, 2, 3);
    const out = normalize(new Uint8Array([0, 64, 128, 255]), s);
    assert.equal(out.length, 12);
    for (let c = 0; c < 3; c++) {
      [0, 64, 128, 255].forEach((p, i) => assert.ok(Math.abs(out[c * 4 + i] - (p / 255 - s.mean[c]) / s.std[c]) < 1e-6));
    }
    assert.throws(() => normalize(new Uint8Array(5), s), /normalize: 5 pixels, expected 2x2/);
    assert.throws(() => normalize(new Uint8Array(4), { ...s, std: [1, 0, 1] }), /"std" must be positive/);
  });

  test('normalize is exactly the float32 of (p / 255 - mean) / std at any alignment, shared or separate channel statistics', () => {
    // 4225 pixels: whole 32-bit words plus a tail; the second channel starts at an odd index (not 8-byte aligned).
    const [h, w] = [65, 65];
    const bytes = Uint8Array.from({ length: 3 + h * w }, (_, i) => (i * 37 + 11) & 0xff);
    const specs = [
      imagenetPreprocessing(h, w, 3),
      { ...imagenetPreprocessing(h, w, 3), mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
      { ...imagenetPreprocessing(h, w, 3), mean: [0.5, 0.4, 0.5], std: [0.25, 0.2, 0.25] },
      imagenetPreprocessing(h, w, 1),
    ];
    for (const s of specs) {
      for (let offset = 0; offset < 4; offset++) {
        const pixels = bytes.subarray(offset, offset + h * w);
        const out = normalize(pixels, s);
        assert.equal(out.length, s.channels * h * w);
        for (let c = 0; c < s.channels; c++) {
          for (let i = 0; i < h * w; i++) {
            if (out[c * h * w + i] !== Math.fround((pixels[i] / 255 - s.mean[c]) / s.std[c])) assert.fail(`${JSON.stringify(s.mean)} offset ${offset} channel ${c} pixel ${i}`);
          }
        }
      }
    }
  });

  test('preprocess = toModelPixels then normalize, as a CHW float32 tensor', async () => {
    const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset/images-1024/00000001_000.png'));
    const s = imagenetPreprocessing(224, 224, 3);
    const { tensor, geometry, pixels } = preprocess(image, s);
    assert.deepEqual(tensor.dims, [3, 224, 224]);
    assert.equal(tensor.dtype, 'float32');
    assert.deepEqual(pixels, toModelPixels(image, s).pixels);
    assert.deepEqual(tensor.data, normalize(pixels, s));
    assert.equal(geometry.scaleX, 224 / 1024);
    const single = preprocess(image, imagenetPreprocessing(224, 224, 1)).tensor;
    assert.deepEqual(single.dims, [1, 224, 224]);
  });

  test('a malformed spec is rejected before any work', () => {
    const image = gray(10, 10, () => 1);
    assert.throws(() => toModelPixels(image, { ...spec(8, 8, 'pad'), resize: 'zoom' as 'pad' }), /"resize" must be one of "pad", "crop", "stretch", got "zoom"/);
    assert.throws(() => toModelPixels(image, { ...spec(8, 8, 'pad'), width: 0 }), /"width" must be a positive integer/);
  });
});
