/** Encoding pixels to PNG (Node, through sharp). */
import sharp from 'sharp';

export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Uint8Array> {
  if (pixels.length !== width * height * channels) throw new Error(`${pixels.length} values for a ${width}x${height}x${channels} image`);
  return new Uint8Array(await sharp(pixels, { raw: { width, height, channels } }).png().toBuffer());
}
