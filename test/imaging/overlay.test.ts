/** The overlay's scale follows the map's own range: cut-off and contour levels are fractions of min..max. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeImageFile, normalizeMap, overlayHeatmap } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

describe('overlay levels relative to the map\'s range', async () => {
  const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
  const { width, height } = image;
  // A broad bump whose minimum is 60% of its maximum, like an upsampled CAM map with no zeros.
  const bump = Float32Array.from({ length: width * height }, (_, i) => {
    const x = (i % width) / width - 0.5;
    const y = Math.floor(i / width) / height - 0.5;
    return 0.6 + 0.4 * Math.exp(-(x * x + y * y) / 0.02);
  });
  const white = (rgb: Uint8Array, i: number) => rgb[3 * i] === 255 && rgb[3 * i + 1] === 255 && rgb[3 * i + 2] === 255 && image.pixels[i] !== image.maxValue;

  it('a contour at 0.5 follows half the range around the bump, never the image border', () => {
    const rgb = overlayHeatmap(image, bump, { contour: 0.5, cutoff: 0 });
    const levels = normalizeMap(bump);
    let onContour = 0;
    for (let i = 0; i < levels.length; i++) {
      if (!white(rgb, i)) continue;
      onContour++;
      assert.ok(Math.abs(levels[i] - 0.5) < 0.02, `contour pixel ${i} at level ${levels[i]}`);
    }
    assert.ok(onContour > 100, `${onContour} contour pixels`);
    for (let x = 0; x < width; x++) assert.ok(!white(rgb, x) && !white(rgb, (height - 1) * width + x), `border pixel ${x} is white`);
  });

  it('the bump\'s minimum is the bottom of the scale: below the cut-off the film is untouched, above it coloured', () => {
    const rgb = overlayHeatmap(image, bump, { cutoff: 0.3, opacity: 0.8 });
    const levels = normalizeMap(bump);
    let coloured = 0;
    for (let i = 0; i < levels.length; i++) {
      const gray = Math.floor((image.pixels[i] * 255) / image.maxValue);
      const same = rgb[3 * i] === gray && rgb[3 * i + 1] === gray && rgb[3 * i + 2] === gray;
      if (levels[i] < 0.3) assert.ok(same, `pixel ${i} below the cut-off changed`);
      else if (!same) coloured++;
    }
    assert.ok(coloured > 0.9 * levels.filter((v) => v >= 0.3).length, `${coloured} pixels coloured above the cut-off`);
  });

  it('a flat map draws nothing; bad levels are refused by name', () => {
    const rgb = overlayHeatmap(image, new Float32Array(width * height).fill(3), { cutoff: 0 });
    for (let i = 0; i < width * height; i += 997) assert.equal(rgb[3 * i], Math.floor((image.pixels[i] * 255) / image.maxValue));
    assert.throws(() => overlayHeatmap(image, bump, { cutoff: 1.5 }), /the cut-off must be between 0 and 1, got 1.5/);
    assert.throws(() => overlayHeatmap(image, bump, { contour: -1 }), /the contour level must be between 0 and 1, got -1/);
  });
});
