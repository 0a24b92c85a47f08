/**
 * Our DICOM decoding and windowing against independent renderings of every real file (DCMTK's dcmj2pnm and
 * dcml2pnm; OpenJPEG's opj_decompress for JPEG 2000), summarised in fixtures/dicom-reference.json by
 * scripts/fixtures/imaging_dicom_reference.py.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { DICOM_DIR, fixture } from './util.js';

interface Reference {
  reference: string;
  bits: number;
  width: number;
  height: number;
  blockMeans: number[];
  samples: [number, number][];
}

const { grid, files } = JSON.parse(new TextDecoder().decode(fixture('dicom-reference.json'))) as { grid: number; files: Record<string, Reference> };

describe('real DICOMs against DCMTK / OpenJPEG renderings', () => {
  for (const [name, ref] of Object.entries(files)) {
    test(`${name} matches ${ref.reference}`, async () => {
      const image = await decodeImageFile(join(DICOM_DIR, name));
      assert.equal(image.maxValue, 2 ** ref.bits - 1);
      assert.deepEqual([image.width, image.height], [ref.width, ref.height]);
      let worstBlock = 0;
      for (let by = 0; by < grid; by++) {
        for (let bx = 0; bx < grid; bx++) {
          const [y0, y1] = [Math.floor((by * ref.height) / grid), Math.floor(((by + 1) * ref.height) / grid)];
          const [x0, x1] = [Math.floor((bx * ref.width) / grid), Math.floor(((bx + 1) * ref.width) / grid)];
          let sum = 0;
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += image.pixels[y * ref.width + x];
          const mean = sum / ((y1 - y0) * (x1 - x0)) / image.maxValue;
          worstBlock = Math.max(worstBlock, Math.abs(mean - ref.blockMeans[by * grid + bx]));
        }
      }
      let worstPixel = 0;
      for (const [index, level] of ref.samples) worstPixel = Math.max(worstPixel, Math.abs(image.pixels[index] - level));
      // One output level of slack: DCMTK's MONOCHROME1 inversion of 8-bit data without a window gives 256 - x for
      // stored x >= 128 where the exact complement (ours) is 255 - x (cxr07). Every other file agrees within 1e-4.
      assert.ok(worstBlock < Math.max(1e-4, 1.001 / image.maxValue), `block mean off by ${worstBlock}`);
      assert.ok(worstPixel <= 1, `a sampled pixel is off by ${worstPixel} levels`);
    });
  }
});
