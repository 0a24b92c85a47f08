/** The PNG encoder: lossless round trips through sharp (libspng) for every layout it writes, and clear refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { encodePng } from '../../src/imaging/encode.js';

function pattern(count: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: count }, (_, i) => (Math.imul(i + seed, 2654435761) >>> 24) ^ (i & 0x0f));
}

/** The IDAT payload inflated: each row's filter byte followed by its filtered bytes. */
function scanlines(png: Uint8Array): Uint8Array {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    if (type === 'IDAT') return new Uint8Array(inflateSync(png.subarray(at + 8, at + 8 + length)));
    at += 12 + length;
  }
  throw new Error('no IDAT chunk');
}

describe('encodePng', () => {
  // 16 x 3 bytes per row is whole 32-bit words (the word-wise filter); 7 and 13 px rows are not.
  for (const [width, channels] of [[16, 3], [7, 3], [13, 1], [5, 4], [32, 1]] as const) {
    for (const level of [0, 1, 9]) {
      it(`${width} px wide, ${channels} channel(s), level ${level}: sharp decodes exactly the pixels`, async () => {
        const height = 9;
        const pixels = pattern(width * height * channels, width * 10 + channels);
        const png = await encodePng(pixels, width, height, channels, { level });
        const { data, info } = await sharp(png).raw().toColourspace(channels === 1 ? 'b-w' : 'srgb').toBuffer({ resolveWithObject: true });
        assert.deepEqual([info.width, info.height, info.channels], [width, height, channels]);
        assert.deepEqual(new Uint8Array(data), pixels);
        const lines = scanlines(png);
        for (let y = 0; y < height; y++) assert.equal(lines[y * (width * channels + 1)], 2, `row ${y} uses the Up filter`);
      });
    }
  }

  it('reads pixels from a view that does not start on a 4-byte boundary', async () => {
    const backing = pattern(1 + 8 * 4 * 3, 5);
    const pixels = backing.subarray(1);
    const png = await encodePng(pixels, 8, 4, 3, { level: 1 });
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual(new Uint8Array(data), pixels);
  });

  it('refuses a pixel count that does not match, an unknown channel count, an empty size and a bad level', async () => {
    await assert.rejects(encodePng(new Uint8Array(10), 2, 2, 3), /10 values for a 2x2x3 image/);
    await assert.rejects(encodePng(new Uint8Array(8), 2, 2, 2 as 3), /channels must be 1, 3 or 4, got 2/);
    await assert.rejects(encodePng(new Uint8Array(0), 0, 2, 1), /positive whole numbers, got 0x2/);
    await assert.rejects(encodePng(new Uint8Array(4), 2, 2, 1, { level: 10 }), /compression level must be a whole number 0-9, got 10/);
  });
});
