/** A test-only PNG encoder (filter 0) for bit depths and layouts that no real file here has, and for wrong headers. */
import { deflateSync } from 'node:zlib';
import { pngFile } from '../../src/imaging/encode.js';

/**
 * colorType: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA. `samples` are interleaved, one number per channel sample.
 * `declared` writes another size into the header than the data has (for oversized-header tests).
 */
export function writePng(
  width: number,
  height: number,
  bitDepth: 8 | 16,
  colorType: 0 | 2 | 4 | 6,
  samples: ArrayLike<number>,
  declared = { width, height },
): Uint8Array {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  const bytesPerSample = bitDepth / 8;
  const stride = width * channels * bytesPerSample;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const v = samples[y * width * channels + i];
      const at = y * (stride + 1) + 1 + i * bytesPerSample;
      if (bitDepth === 16) {
        raw[at] = v >> 8;
        raw[at + 1] = v & 0xff;
      } else raw[at] = v;
    }
  }
  return pngFile({ ...declared, bitDepth, colorType }, new Uint8Array(deflateSync(raw)));
}
