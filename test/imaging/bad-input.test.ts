/** Every kind of bad input gives an Error whose message names the file and the problem. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { assertDecodedImage, decodeImage, decodeImageFile, type DecodedImage } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { el, grayImage, withElements, writeDicom } from './dicom-writer.js';
import { writePng } from './png-writer.js';
import { CXR01, readBytes, storedSamples16 } from './util.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-imaging-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `bytes` to a temporary file and expects decodeImageFile to reject with the file name and `problem`. */
async function rejects(name: string, bytes: Uint8Array, problem: RegExp): Promise<void> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  await assert.rejects(decodeImageFile(path), (e: Error) => {
    assert.ok(e instanceof Error);
    assert.ok(e.message.startsWith(`${path}: `), `message does not name the file: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

const { rows, columns, samples } = storedSamples16(CXR01);
const chest = (extra: Parameters<typeof grayImage>[1] = []) => grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, samples }, extra);

describe('bad input: files', () => {
  test('a file that does not exist', async () => {
    const path = join(dir, 'missing.png');
    await assert.rejects(decodeImageFile(path), { message: `${path}: file not found` });
  });

  test('a directory', async () => {
    await assert.rejects(decodeImageFile(dir), { message: `${dir}: is a directory, not an image file` });
  });

  test('an empty file', () => rejects('empty.dcm', new Uint8Array(0), /file is empty/));

  test('garbage bytes', () =>
    rejects('garbage.png', Uint8Array.from({ length: 4096 }, (_, i) => (i * 193 + 71) & 0xff), /unrecognised image format \(not PNG, JPEG or DICOM; first bytes 47 08 c9 8a 4b 0c cd 8e\)/));

  test('a buffer without a file name is called <buffer>', async () => {
    await assert.rejects(decodeImage(new Uint8Array([1, 2, 3])), /^Error: <buffer>: unrecognised image format/);
  });
});

describe('bad input: PNG and JPEG', () => {
  test('a truncated PNG (a real NIH image cut in half)', () => {
    const png = readBytes(sharedDataPath('nih-cxr14-subset/images/00000075_000.png'));
    return rejects('truncated.png', png.subarray(0, png.length >> 1), /cannot decode PNG/);
  });

  test('a PNG with a corrupt compressed stream', () => {
    const png = readBytes(sharedDataPath('nih-cxr14-subset/images/00000075_000.png')).slice();
    for (let i = 2000; i < 6000; i++) png[i] ^= 0x5a;
    return rejects('corrupt.png', png, /cannot decode PNG/);
  });

  test('a truncated JPEG (a real photo cut in half)', () => {
    const jpeg = readBytes(sharedDataPath('natural-photos/rocket.jpg'));
    return rejects('truncated.jpg', jpeg.subarray(0, jpeg.length >> 1), /cannot decode JPEG/);
  });

  test('a PNG header claiming zero width', () => rejects('zero.png', writePng(0, 5, 8, 0, []), /cannot decode PNG/));

  test('a 1x1 PNG', () => rejects('dot.png', writePng(1, 1, 8, 0, [128]), /image is 1x1, smaller than 8 pixels on a side/));

  test('a 1x1 image is accepted when the caller lowers minSide', async () => {
    const image = await decodeImage(writePng(1, 1, 8, 0, [128]), 'dot.png', { minSide: 1 });
    assert.deepEqual(Array.from(image.pixels), [128]);
  });
});

describe('bad input: DICOM', () => {
  test('a truncated DICOM (native pixel data cut short)', () => {
    const bytes = readBytes(CXR01);
    return rejects('truncated-native.dcm', bytes.subarray(0, Math.floor(bytes.length * 0.7)), /truncated pixel data: \d+ bytes, 387200 needed/);
  });

  test('a truncated compressed DICOM', () => {
    const bytes = readBytes(sharedDataPath('dicom/derived/drv02_CR_chest_PA_MONO1_RLE_from_cxr01.dcm'));
    return rejects('truncated-rle.dcm', bytes.subarray(0, Math.floor(bytes.length * 0.7)), /corrupt or truncated DICOM: .*buffer overrun/);
  });

  test('corrupt compressed pixel data (RLE and JPEG-LS streams overwritten)', async () => {
    for (const name of ['drv02_CR_chest_PA_MONO1_RLE_from_cxr01.dcm', 'drv04_CR_chest_PA_MONO1_JPEGLSLossless_from_cxr01.dcm']) {
      const bytes = readBytes(sharedDataPath('dicom/derived', name)).slice();
      const start = Math.floor(bytes.length * 0.6);
      for (let i = start; i < start + 2000; i++) bytes[i] = (i * 7919) & 0xff;
      await rejects(`corrupt-${name}`, bytes, /cannot decode (RLE Lossless|JPEG-LS Lossless) pixel data/);
    }
  });

  test('a DICOM header cut inside the file meta', () => rejects('header.dcm', readBytes(sharedDataPath('dicom/cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm')).subarray(0, 200), /corrupt or truncated DICOM/));

  test('a DICOM without pixel data (e.g. a structured report)', () =>
    rejects('no-pixels.dcm', writeDicom([el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.88.11'), el(0x00080060, 'CS', 'SR')]), /no Pixel Data \(7FE0,0010\): not an image \(SOP Class UID 1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.11\)/));

  test('a multi-frame DICOM', () => {
    const twoFrames = new Uint16Array(samples.length * 2);
    twoFrames.set(samples);
    twoFrames.set(samples, samples.length);
    const elements = grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, samples: twoFrames }, [el(0x00280008, 'IS', '2')]);
    return rejects('multiframe.dcm', writeDicom(elements), /multi-frame DICOM \(2 frames\) is not supported/);
  });

  test('a colour (RGB) DICOM', () => {
    const rgb = new Uint8Array(rows * columns * 3).map((_, i) => samples[Math.floor(i / 3)] >> 2);
    const elements = withElements(grayImage({ rows, columns, bitsAllocated: 8, bitsStored: 8, samples: rgb }), [
      el(0x00280002, 'US', [3]),
      el(0x00280004, 'CS', 'RGB'),
      el(0x00280006, 'US', [0]),
    ]);
    return rejects('rgb.dcm', writeDicom(elements), /colour DICOM \(RGB, 3 samples per pixel\) is not supported/);
  });

  test('a YBR_FULL_422 JPEG DICOM is rejected as colour before decoding', () =>
    rejects('ybr.dcm', writeDicom(withElements(chest(), [el(0x00280004, 'CS', 'YBR_FULL_422'), el(0x00280002, 'US', [3])])), /colour DICOM \(YBR_FULL_422/));

  test('a zero-size DICOM', () => rejects('zero.dcm', writeDicom(withElements(chest(), [el(0x00280010, 'US', [0])])), /image has zero size \(440x0\)/));

  test('a 1x1 DICOM', () =>
    rejects('dot.dcm', writeDicom(grayImage({ rows: 1, columns: 1, bitsAllocated: 16, bitsStored: 10, samples: new Uint16Array([5]) })), /image is 1x1, smaller than 8 pixels/));

  test('an unsupported transfer syntax (MPEG-2)', () =>
    rejects('mpeg.dcm', writeDicom(chest(), { transferSyntax: '1.2.840.10008.1.2.4.100' }), /unsupported transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100/));

  test('32-bit pixels', () => rejects('32bit.dcm', writeDicom(withElements(chest(), [el(0x00280100, 'US', [32])])), /Bits Allocated 32 is not supported/));

  test('Bits Stored above Bits Allocated', () => rejects('bits.dcm', writeDicom(withElements(chest(), [el(0x00280101, 'US', [17])])), /Bits Stored 17 is not in \[1, Bits Allocated 16\]/));

  test('float pixel data', () => {
    const elements = withElements(chest(), []).filter((e) => e.tag !== 0x7fe00010);
    elements.push(el(0x7fe00008, 'OF', new Uint8Array(rows * columns * 4)));
    return rejects('float.dcm', writeDicom(elements), /float pixel data \(7FE0,0008\/0009\) is not supported/);
  });

  test('an unknown VOI LUT Function', () =>
    rejects('fn.dcm', writeDicom(chest([el(0x00281050, 'DS', '500'), el(0x00281051, 'DS', '400'), el(0x00281056, 'CS', 'LOG')])), /unknown VOI LUT Function 'LOG'/));

  test('a VOI LUT Sequence item without LUT Data', () =>
    rejects('voi.dcm', writeDicom(chest([el(0x00283010, 'SQ', [[el(0x00283002, 'US', [1024, 0, 12])]])])), /VOI LUT Sequence lacks LUT Descriptor or LUT Data/));

  test('a header claiming an enormous image', () =>
    rejects('huge.dcm', writeDicom(withElements(chest(), [el(0x00280010, 'US', [65535]), el(0x00280011, 'US', [65535])])), /image is 65535x65535, more than 33554432 pixels \(the decode budget\); refused before decoding/));

  test('an enormous PNG', () => rejects('huge.png', writePng(8, 8, 8, 0, new Uint8Array(64), { width: 20000, height: 20000 }), /huge\.png: image is 20000x20000, more than 33554432 pixels \(the decode budget\)/));

  test('native pixel data that is too short for Rows x Columns', () =>
    rejects('short.dcm', writeDicom(withElements(chest(), [el(0x00280010, 'US', [441])])), /truncated pixel data: 387200 bytes, 388080 needed/));
});

describe('bad input: DecodedImage contract', () => {
  const good: DecodedImage = { width: 2, height: 2, pixels: new Uint16Array([0, 1, 2, 1023]), maxValue: 1023, format: 'dicom', source: 'x.dcm', metadata: {}, notes: [] };
  test('a consistent image passes', () => assertDecodedImage(good));
  test('wrong pixel count, values above maxValue, impossible maxValue and size are named', () => {
    assert.throws(() => assertDecodedImage({ ...good, pixels: new Uint16Array(3) }), /^Error: x\.dcm: 3 pixels for a 2x2 image \(expected 4\)$/);
    assert.throws(() => assertDecodedImage({ ...good, pixels: new Uint16Array([0, 1, 1024, 0]) }), /x\.dcm: pixel 2 is 1024, above maxValue 1023/);
    assert.throws(() => assertDecodedImage({ ...good, pixels: new Uint8Array(4), maxValue: 1023 }), /maxValue 1023 is not in \[1, 255\] for Uint8Array/);
    assert.throws(() => assertDecodedImage({ ...good, width: 0 }), /x\.dcm: invalid image size 0x2/);
  });
});
