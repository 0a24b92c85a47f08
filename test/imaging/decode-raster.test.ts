/** PNG and JPEG decoding on the real NIH images and photos, plus written PNGs for 16-bit and alpha layouts. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeImageFile, toModelPixels } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { writePng } from './png-writer.js';
import { fixture, readCsv, stats } from './util.js';

const pngs = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.png')).sort();

describe('NIH PNGs', () => {
  const sets: [string, number, number][] = [
    ['nih-cxr14-subset/images', 512, 400],
    ['nih-cxr14-subset/images-1024', 1024, 24],
    ['nih-cxr14-64px/images', 64, 1000],
  ];
  for (const [folder, size, count] of sets) {
    test(`${folder}: all ${count} decode to ${size}x${size} 8-bit gray`, async () => {
      const dir = sharedDataPath(folder);
      const files = pngs(dir);
      assert.equal(files.length, count);
      for (const file of files) {
        const image = await decodeImageFile(join(dir, file));
        assert.equal(image.format, 'png');
        assert.equal(image.width, size);
        assert.equal(image.height, size);
        assert.ok(image.pixels instanceof Uint8Array);
        assert.equal(image.pixels.length, size * size);
        assert.equal(image.maxValue, 255);
        if (file !== '00000004_000.png') assert.deepEqual(image.notes, [], file);
        const s = stats(image.pixels);
        assert.ok(s.std > 15, `${file}: std ${s.std}`);
      }
    });
  }

  test('the RGBA original (00000004_000.png) becomes gray equal to its (identical) colour channels, with notes', async () => {
    const path = sharedDataPath('nih-cxr14-subset/images-1024/00000004_000.png');
    const image = await decodeImageFile(path);
    assert.deepEqual(image.notes, ["RGBA converted to gray (ITU-R 601 luma, as PIL's convert('L'))", 'alpha channel (fully opaque) dropped']);
    const rgba = await sharp(path).raw().toBuffer();
    for (let i = 0; i < image.pixels.length; i++) {
      assert.equal(rgba[4 * i], rgba[4 * i + 1]);
      if (image.pixels[i] !== rgba[4 * i]) assert.fail(`pixel ${i}: ${image.pixels[i]} vs R ${rgba[4 * i]}`);
    }
  });
});

describe('natural photos', () => {
  const dir = sharedDataPath('natural-photos');
  const manifest = readCsv(join(dir, 'manifest.csv'));

  for (const row of manifest) {
    test(`${row.filename} decodes to gray at ${row.width}x${row.height}`, async () => {
      const image = await decodeImageFile(join(dir, row.filename));
      assert.equal(image.format, row.filename.endsWith('.jpg') ? 'jpeg' : 'png');
      assert.equal(image.width, Number(row.width));
      assert.equal(image.height, Number(row.height));
      assert.equal(image.notes.some((n) => n.includes('converted to gray')), row.mode !== 'L');
    });
  }

  test("RGB -> gray matches PIL's convert('L') exactly (astronaut crop fixture)", async () => {
    const image = await decodeImageFile(join(dir, 'astronaut.png'));
    const reference = fixture('pil-gray-astronaut.u8');
    const [x0, y0] = [200, 40];
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const got = image.pixels[(y0 + y) * image.width + x0 + x];
        if (got !== reference[y * 64 + x]) assert.fail(`(${x0 + x}, ${y0 + y}): ${got} vs PIL ${reference[y * 64 + x]}`);
      }
    }
  });

  test('a transparent RGBA drawing (horse.png) says its alpha was ignored', async () => {
    const image = await decodeImageFile(join(dir, 'horse.png'));
    assert.ok(image.notes.includes('alpha channel is not opaque; ignored (transparent pixels keep their colour)'));
  });
});

describe('written PNGs and JPEGs', () => {
  const width = 40;
  const height = 24;
  const ramp16 = Array.from({ length: width * height }, (_, i) => (i * 68) % 65536);

  test('16-bit gray keeps all 16 bits', async () => {
    const image = await decodeImage(writePng(width, height, 16, 0, ramp16), 'ramp16.png');
    assert.ok(image.pixels instanceof Uint16Array);
    assert.equal(image.maxValue, 65535);
    assert.deepEqual(Array.from(image.pixels), ramp16);
  });

  test('16-bit RGB uses the same luma weights at 16 bits', async () => {
    const rgb = ramp16.flatMap((v, i) => [v, (v * 3 + i) % 65536, 65535 - v]);
    const image = await decodeImage(writePng(width, height, 16, 2, rgb), 'rgb16.png');
    assert.equal(image.maxValue, 65535);
    for (let i = 0; i < width * height; i++) {
      const [r, g, b] = rgb.slice(3 * i, 3 * i + 3);
      assert.equal(image.pixels[i], Math.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536));
    }
  });

  test('gray + alpha (8 and 16 bit) keeps the gray channel and reports the alpha', async () => {
    const gray = Array.from({ length: width * height }, (_, i) => i % 256);
    const opaque = await decodeImage(writePng(width, height, 8, 4, gray.flatMap((v) => [v, 255])), 'ga.png');
    assert.deepEqual(Array.from(opaque.pixels), gray);
    assert.deepEqual(opaque.notes, ['alpha channel (fully opaque) dropped']);
    const translucent = await decodeImage(writePng(width, height, 16, 4, ramp16.flatMap((v, i) => [v, i % 2 ? 65535 : 1000])), 'ga16.png');
    assert.deepEqual(Array.from(translucent.pixels), ramp16);
    assert.deepEqual(translucent.notes, ['alpha channel is not opaque; ignored (transparent pixels keep their colour)']);
  });

  test('16-bit RGBA drops the alpha and converts the colour', async () => {
    const rgba = ramp16.flatMap((v) => [v, v, v, 65535]);
    const image = await decodeImage(writePng(width, height, 16, 6, rgba), 'rgba16.png');
    assert.deepEqual(Array.from(image.pixels), ramp16);
    assert.equal(image.notes.length, 2);
  });

  test('the same picture at 8 and 16 bits gives identical model pixels', async () => {
    const nih = await decodeImageFile(sharedDataPath('nih-cxr14-64px/images/00000001_000.png'));
    const as16 = await decodeImage(writePng(64, 64, 16, 0, Array.from(nih.pixels, (v) => v * 257)), 'nih16.png');
    const spec = { width: 37, height: 29, channels: 1 as const, mean: [0], std: [1], resize: 'pad' as const };
    assert.deepEqual(toModelPixels(as16, spec).pixels, toModelPixels(nih, spec).pixels);
  });

  test('JPEG EXIF orientation is applied (rotated 90 degrees -> width and height swap)', async () => {
    const source = await decodeImageFile(sharedDataPath('nih-cxr14-64px/images/00000001_000.png'));
    const wide = await sharp(Buffer.from(source.pixels), { raw: { width: 64, height: 64, channels: 1 } })
      .extract({ left: 0, top: 0, width: 64, height: 40 })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const image = await decodeImage(wide, 'rotated.jpg');
    assert.equal(image.format, 'jpeg');
    assert.equal(image.width, 40);
    assert.equal(image.height, 64);
    assert.ok(image.notes.includes('EXIF orientation 6 applied'));
  });
});
