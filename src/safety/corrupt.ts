/**
 * Real images made invalid: turned, inverted, cropped, blanked or replaced by noise. They train the rotation and
 * inversion heads of the safety check and make up the synthetic part of the negative set that measures it. Pure
 * pixel operations on decoded images (browser-safe); each result keeps the source's metadata and says what was done.
 */
import type { DecodedImage } from '../imaging/image.js';
import { createRng } from '../imaging/augment.js';

export type Corruption = 'rotate90' | 'rotate180' | 'rotate270' | 'mirror' | 'invert' | 'crop' | 'blank' | 'noise';
export const CORRUPTIONS: readonly Corruption[] = ['rotate90', 'rotate180', 'rotate270', 'mirror', 'invert', 'crop', 'blank', 'noise'];

function derived(image: DecodedImage, width: number, height: number, pixels: Uint8Array | Uint16Array, note: string): DecodedImage {
  return { ...image, width, height, pixels, metadata: { ...image.metadata }, notes: [...image.notes, note], source: `${image.source} [${note}]` };
}

function like(image: DecodedImage, length: number): Uint8Array | Uint16Array {
  return image.pixels instanceof Uint16Array ? new Uint16Array(length) : new Uint8Array(length);
}

/** Turned clockwise on screen by 90, 180 or 270 degrees. */
export function rotate(image: DecodedImage, degrees: 90 | 180 | 270): DecodedImage {
  const { width: w, height: h, pixels } = image;
  const out = like(image, pixels.length);
  const [ow, oh] = degrees === 180 ? [w, h] : [h, w];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let ox: number;
      let oy: number;
      if (degrees === 90) [ox, oy] = [h - 1 - y, x];
      else if (degrees === 180) [ox, oy] = [w - 1 - x, h - 1 - y];
      else [ox, oy] = [y, w - 1 - x];
      out[oy * ow + ox] = pixels[y * w + x];
    }
  }
  return derived(image, ow, oh, out, `rotated ${degrees} degrees`);
}

/** Mirrored left-right: the heart on the right, as a flipped film (or dextrocardia) shows it. */
export function mirror(image: DecodedImage): DecodedImage {
  const { width: w, height: h } = image;
  const out = like(image, image.pixels.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = image.pixels[y * w + (w - 1 - x)];
  return derived(image, w, h, out, 'mirrored');
}

/** Black for white: what a MONOCHROME1 image looks like when its photometric interpretation is ignored. */
export function invert(image: DecodedImage): DecodedImage {
  const out = like(image, image.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = image.maxValue - image.pixels[i];
  return derived(image, image.width, image.height, out, 'inverted');
}

/** A window of `fraction` of each side, at a position drawn from `seed`: a small piece of the image blown up. */
export function crop(image: DecodedImage, fraction: number, seed: number): DecodedImage {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`crop fraction must be in (0, 1], got ${fraction}`);
  const rng = createRng(seed);
  const cw = Math.max(1, Math.round(image.width * fraction));
  const ch = Math.max(1, Math.round(image.height * fraction));
  const x0 = Math.floor(rng.next() * (image.width - cw + 1));
  const y0 = Math.floor(rng.next() * (image.height - ch + 1));
  const out = like(image, cw * ch);
  for (let y = 0; y < ch; y++) out.set(image.pixels.subarray((y0 + y) * image.width + x0, (y0 + y) * image.width + x0 + cw), y * cw);
  return derived(image, cw, ch, out, `cropped to ${cw}x${ch} at (${x0}, ${y0})`);
}

/** One gray level everywhere (`level` in [0, 1]), with the source's size. */
export function blank(image: DecodedImage, level: number): DecodedImage {
  const out = like(image, image.pixels.length).fill(Math.round(level * image.maxValue));
  return derived(image, image.width, image.height, out, `blank at ${level}`);
}

/** Independent uniform noise over the full range, with the source's size. */
export function noise(image: DecodedImage, seed: number): DecodedImage {
  const rng = createRng(seed);
  const out = like(image, image.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.next() * (image.maxValue + 1));
  return derived(image, image.width, image.height, out, 'uniform noise');
}

/** One corruption of an image; `seed` varies crops, blank levels and noise between images. */
export function corrupt(image: DecodedImage, kind: Corruption, seed: number): DecodedImage {
  switch (kind) {
    case 'rotate90':
      return rotate(image, 90);
    case 'rotate180':
      return rotate(image, 180);
    case 'rotate270':
      return rotate(image, 270);
    case 'mirror':
      return mirror(image);
    case 'invert':
      return invert(image);
    case 'crop':
      return crop(image, 0.3, seed);
    case 'blank':
      return blank(image, createRng(seed).next());
    case 'noise':
      return noise(image, seed);
  }
}
