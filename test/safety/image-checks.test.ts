/**
 * The checks that need only the decoded image, on real files: image statistics of NIH radiographs against noise and
 * blank images made from them, the size check, the DICOM-tag checks on the real non-chest DICOMs and on a lateral
 * view written from real pixels (no real lateral human chest DICOM exists in ../shared/data), and the corruptions.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type DecodedImage, decodeImage, decodeImageFile } from '../../src/imaging/index.js';
import { blank, corrupt, crop, invert, noise, rotate } from '../../src/safety/corrupt.js';
import { DEFAULT_IMAGE_THRESHOLDS, dicomFlags, imageFlags, imageStatistics } from '../../src/safety/image-checks.js';
import { el, grayImage, writeDicom } from '../imaging/dicom-writer.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const nih = (name: string) => decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', name));
const dicomFile = (prefix: string) => {
  const name = readdirSync(sharedDataPath('dicom')).find((f) => f.startsWith(prefix));
  assert.ok(name, `no DICOM starting with ${prefix}`);
  return decodeImageFile(sharedDataPath('dicom', name));
};
const FIRST_NIH = readdirSync(sharedDataPath('nih-cxr14-subset', 'images')).sort().slice(0, 12);

describe('image statistics', () => {
  it('real NIH radiographs are smooth and spread; noise is not smooth (flagged), blank has no spread (flagged)', async () => {
    for (const name of FIRST_NIH) {
      const image = await nih(name);
      const stats = imageStatistics(image);
      assert.ok(stats.spread > 0.3, `${name}: spread ${stats.spread}`);
      assert.ok(stats.smoothness > 0.9, `${name}: smoothness ${stats.smoothness}`);
      assert.deepEqual(imageFlags(stats, DEFAULT_IMAGE_THRESHOLDS), [], name);
      const noisy = imageStatistics(noise(image, 1));
      assert.ok(noisy.smoothness < 0.3, `${name} noise: smoothness ${noisy.smoothness}`);
      assert.ok(noisy.spread > 0.9, `${name} noise: spread ${noisy.spread}`);
      const noiseFlags = imageFlags(noisy, DEFAULT_IMAGE_THRESHOLDS);
      assert.deepEqual(noiseFlags.map((f) => [f.code, f.severity]), [['not-chest-xray', 'reject']], name);
      assert.match(noiseFlags[0].message, /looks like noise/);
      const flat = imageStatistics(blank(image, 0.4));
      assert.equal(flat.spread, 0);
      assert.deepEqual(imageFlags(flat, DEFAULT_IMAGE_THRESHOLDS).map((f) => f.code), ['blank']);
    }
  });

  it('percentiles and spread are those of the pixel values', async () => {
    const image = await nih(FIRST_NIH[0]);
    const sorted = Float64Array.from(image.pixels).sort();
    const at = (q: number) => sorted[Math.floor(q * (sorted.length - 1)) + (Number.isInteger(q * (sorted.length - 1)) ? 0 : 1)] / image.maxValue;
    const stats = imageStatistics(image);
    assert.equal(stats.p1, at(0.01));
    assert.equal(stats.p99, at(0.99));
    assert.equal(stats.spread, stats.p99 - stats.p1);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length / image.maxValue;
    assert.ok(Math.abs(stats.mean - mean) < 1e-12);
  });

  it('flags an image whose shorter side is below the threshold, naming both sizes', async () => {
    const small = crop(await decodeImageFile(sharedDataPath('nih-cxr14-64px', 'images', readdirSync(sharedDataPath('nih-cxr14-64px', 'images')).sort()[0])), 0.3, 3);
    assert.equal(small.width, 19);
    const flags = imageFlags(imageStatistics(small), { ...DEFAULT_IMAGE_THRESHOLDS, minSide: 64 });
    assert.deepEqual(flags.map((f) => [f.code, f.severity, f.score, f.threshold]), [['too-small', 'reject', 19, 64]]);
    assert.match(flags[0].message, /19 pixels, fewer than the 64/);
  });
});

describe('DICOM tags', () => {
  it('rejects the real non-chest DICOMs that say so: tibia (EXTREMITY), hip (HIP), CT slice (Modality CT)', async () => {
    const codes = async (prefix: string) => dicomFlags(await dicomFile(prefix)).map((f) => `${f.code}: ${f.rule}`);
    assert.deepEqual(await codes('neg1'), ['not-chest-xray: DICOM tag BodyPartExamined (0018,0015) = "EXTREMITY"']);
    assert.deepEqual(await codes('neg2'), ['not-chest-xray: DICOM tag BodyPartExamined (0018,0015) = "HIP"']);
    assert.deepEqual(await codes('neg4'), ['not-chest-xray: DICOM tag Modality (0008,0060) = "CT"']);
    // The dental panoramic has no Body Part Examined: only the model's detector can refuse it.
    assert.deepEqual(await codes('neg3'), []);
  });

  it('raises nothing for the real chest DICOMs (CR and DX, PA, with and without tags) nor the dog (THORAX, no view)', async () => {
    for (const prefix of ['cxr01', 'cxr02', 'cxr04', 'cxr06', 'cxr07', 'cxr08', 'cxr10']) {
      assert.deepEqual(dicomFlags(await dicomFile(prefix)), [], prefix);
    }
  });

  it('rejects a lateral View Position (a file written from real NIH pixels) and ignores PNGs', async () => {
    const image = await nih(FIRST_NIH[1]);
    const write = (view: string) =>
      writeDicom(grayImage({ rows: image.height, columns: image.width, bitsAllocated: 8, bitsStored: 8, samples: image.pixels as Uint8Array }, [el(0x00185101, 'CS', view), el(0x00180015, 'CS', 'CHEST')]));
    for (const view of ['LL', 'RL', 'LATERAL']) {
      const flags = dicomFlags(await decodeImage(write(view), `${view}.dcm`));
      assert.deepEqual(flags.map((f) => [f.code, f.severity, f.score]), [['lateral-view', 'reject', null]], view);
      assert.match(flags[0].message, new RegExp(`View Position ${view}`));
    }
    assert.deepEqual(dicomFlags(await decodeImage(write('PA'), 'pa.dcm')), []);
    assert.deepEqual(dicomFlags({ ...image, metadata: { ...image.metadata, viewPosition: 'LL' } }), [], 'a PNG has no tags to read');
  });
});

describe('corruptions of real images', () => {
  const pixel = (image: DecodedImage, x: number, y: number) => image.pixels[y * image.width + x];

  it('rotations turn clockwise and four quarter turns give the image back', async () => {
    const image = crop(await nih(FIRST_NIH[2]), 0.5, 9);
    const quarter = rotate(image, 90);
    assert.deepEqual([quarter.width, quarter.height], [image.height, image.width]);
    // Clockwise: the top-left corner goes to the top-right, the bottom-left to the top-left.
    assert.equal(pixel(quarter, quarter.width - 1, 0), pixel(image, 0, 0));
    assert.equal(pixel(quarter, 0, 0), pixel(image, 0, image.height - 1));
    assert.deepEqual(rotate(rotate(image, 180), 180).pixels, image.pixels);
    assert.deepEqual(rotate(rotate(rotate(quarter, 90), 90), 90).pixels, image.pixels);
    assert.deepEqual(rotate(quarter, 270).pixels, image.pixels);
  });

  it('inversion keeps the value range of 16-bit DICOMs and undoes itself', async () => {
    const image = await dicomFile('cxr01');
    assert.ok(image.pixels instanceof Uint16Array);
    const inverted = invert(image);
    assert.ok(inverted.pixels instanceof Uint16Array);
    assert.equal(pixel(inverted, 10, 20), image.maxValue - pixel(image, 10, 20));
    assert.deepEqual(invert(inverted).pixels, image.pixels);
    assert.match(inverted.source, /\[inverted\]$/);
  });

  it('crops, blanks and noise are reproducible from their seed', async () => {
    const image = await nih(FIRST_NIH[3]);
    for (const kind of ['crop', 'blank', 'noise'] as const) {
      assert.deepEqual(corrupt(image, kind, 5).pixels, corrupt(image, kind, 5).pixels, kind);
      assert.notDeepEqual(corrupt(image, kind, 5).pixels, corrupt(image, kind, 6).pixels, kind);
    }
    assert.throws(() => crop(image, 0, 1), /crop fraction must be in \(0, 1\]/);
  });
});
