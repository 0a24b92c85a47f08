/** Decoding every real DICOM in shared/data/dicom (and dicom/derived) and checking it against known facts. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { decodeImage, decodeImageFile, type DecodedImage } from '../../src/imaging/index.js';
import { CXR01, DICOM_DIR, diff, pearson, readBytes, readCsv, stats } from './util.js';

const manifest = readCsv(join(DICOM_DIR, 'manifest.csv'));
const decoded = new Map<string, DecodedImage>();
async function decodeReal(name: string): Promise<DecodedImage> {
  let image = decoded.get(name);
  if (!image) {
    image = await decodeImageFile(join(DICOM_DIR, name));
    decoded.set(name, image);
  }
  return image;
}

describe('real DICOM files', () => {
  test('the manifest lists every file in the folder', () => {
    const files = readdirSync(DICOM_DIR).filter((f) => f.endsWith('.dcm')).sort();
    assert.deepEqual(manifest.map((r) => r.filename).sort(), files);
  });

  for (const row of manifest) {
    test(`${row.filename} decodes as its manifest says`, async () => {
      const image = await decodeReal(row.filename);
      const [rows, columns] = row.RowsxColumns.split('x').map(Number);
      const bitsStored = Number(row.BitsStored);
      assert.equal(image.format, 'dicom');
      assert.equal(image.height, rows);
      assert.equal(image.width, columns);
      assert.equal(image.pixels.length, rows * columns);
      assert.equal(image.maxValue, 2 ** Math.max(8, bitsStored) - 1);
      assert.equal(image.pixels instanceof Uint8Array, bitsStored <= 8);
      assert.equal(image.metadata.bitsStored, bitsStored);
      assert.equal(image.metadata.photometric, row.PhotometricInterpretation);
      assert.equal(image.metadata.modality, row.Modality);
      assert.equal(image.metadata.bodyPart, row.BodyPartExamined || undefined);
      assert.equal(image.metadata.viewPosition, row.ViewPosition || undefined);
      assert.equal(image.metadata.transferSyntaxUid, row.TransferSyntaxUID || '1.2.840.10008.1.2');
      assert.equal(image.metadata.presentationLutShape, row.PresentationLUTShape || undefined);
      assert.equal(image.metadata.inverted, row.PhotometricInterpretation === 'MONOCHROME1' || row.PresentationLUTShape === 'INVERSE');
      const window = image.metadata.window!;
      if (row.WindowCenter.startsWith('yes:')) {
        assert.equal(window.kind, 'window');
        assert.equal(window.kind === 'window' && window.center, Number(row.WindowCenter.slice(4)));
      } else {
        assert.equal(window.kind, 'stored-range');
      }
      const s = stats(image.pixels);
      assert.ok(s.max <= image.maxValue);
      // A real radiograph spans a good part of the output range; a constant or near-black image would not.
      assert.ok(s.std > 0.08 * image.maxValue, `std ${s.std} of ${image.maxValue}`);
      assert.ok(s.max - s.min > 0.5 * image.maxValue, `range ${s.min}..${s.max}`);
    });
  }

  test('all five encodings of the 440x440 CR chest decode to identical pixels', async () => {
    const original = await decodeImageFile(CXR01);
    const derivedDir = join(DICOM_DIR, 'derived');
    const derived = readCsv(join(derivedDir, 'manifest.csv'));
    assert.equal(derived.length, 4);
    const syntaxes = new Set<string>();
    for (const row of derived) {
      const image = await decodeImageFile(join(derivedDir, row.filename));
      assert.equal(image.metadata.transferSyntaxUid, row.TransferSyntaxUID);
      syntaxes.add(row.TransferSyntaxUID);
      assert.deepEqual(image.metadata.window, original.metadata.window);
      assert.equal(image.width, original.width);
      assert.ok(Buffer.from(image.pixels.buffer).equals(Buffer.from(original.pixels.buffer)), `${row.filename} differs from cxr01`);
    }
    assert.deepEqual([...syntaxes].sort(), ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.5']);
  });

  test('the header-only MONOCHROME1 file (cxr07) is the exact complement of its MONOCHROME2 twin (cxr06)', async () => {
    const mono2 = await decodeReal('cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');
    const mono1 = await decodeReal('cxr07_CR_chest_PA_header_MONO1_pixels_MONO2_JPEGBaseline_FakeMONO1.dcm');
    assert.equal(mono1.metadata.inverted, true);
    assert.equal(mono2.metadata.inverted, false);
    for (let i = 0; i < mono2.pixels.length; i++) {
      if (mono1.pixels[i] !== 255 - mono2.pixels[i]) assert.fail(`pixel ${i}: ${mono1.pixels[i]} vs 255 - ${mono2.pixels[i]}`);
    }
  });

  test('MONOCHROME1 renders lungs dark: the lung fields are darker than the mediastinum, as on NIH PNGs', async () => {
    // cxr01 (MONO1, no file meta), cxr04 (MONO1 + Presentation LUT INVERSE: one inversion, not two), cxr08 (MONO2).
    for (const name of [
      'cxr01_CR_chest_PA_MONO1_10bit_ImplicitLE_nometa.dcm',
      'cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm',
      'cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm',
      'cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm',
      'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm',
    ]) {
      const image = await decodeReal(name);
      const region = (fx0: number, fx1: number) => {
        const values: number[] = [];
        for (let y = Math.floor(image.height * 0.3); y < image.height * 0.6; y++) {
          for (let x = Math.floor(image.width * fx0); x < image.width * fx1; x++) values.push(image.pixels[y * image.width + x]);
        }
        return stats(values).mean;
      };
      const lungs = (region(0.2, 0.35) + region(0.65, 0.8)) / 2;
      const mediastinum = region(0.45, 0.55);
      assert.ok(lungs < mediastinum, `${name}: lungs ${lungs.toFixed(0)} not darker than mediastinum ${mediastinum.toFixed(0)}`);
    }
  });

  test('the same RG1 chest as JPEG 2000 lossy (cxr02) and JPEG-LS near-lossless (cxr03) agree closely', async () => {
    const j2k = await decodeReal('cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm');
    const jls = await decodeReal('cxr03_CR_chest_PA_MONO1_15bit_JPEGLS_nearlossless_RG1.dcm');
    const d = diff(j2k.pixels, jls.pixels);
    assert.ok(d.mean < 0.005 * j2k.maxValue, `mean difference ${d.mean}`);
    assert.ok(pearson(j2k.pixels, jls.pixels) > 0.999);
  });

  test('JPEG baseline pixels (cxr06) match an independent decode of the same JPEG stream by sharp/libjpeg-turbo', async () => {
    const path = join(DICOM_DIR, 'cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');
    const ds = dicomParser.parseDicom(readBytes(path));
    const pd = ds.elements.x7fe00010;
    const jpeg = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pd, 0, pd.fragments!.length);
    const reference = await sharp(jpeg).toColourspace('b-w').raw().toBuffer();
    const image = await decodeReal('cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');
    assert.equal(image.metadata.window?.kind, 'stored-range'); // 8-bit, no window: identity
    const d = diff(image.pixels, reference);
    assert.ok(d.max <= 1 && d.mean < 0.01, `mean ${d.mean}, max ${d.max}`);
  });

  test('the NIH image in DICOM (cxr08, 8-bit, no window) keeps its stored values unchanged', async () => {
    const path = join(DICOM_DIR, 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm');
    const ds = dicomParser.parseDicom(readBytes(path));
    const pd = ds.elements.x7fe00010;
    const stored = ds.byteArray.subarray(pd.dataOffset, pd.dataOffset + 1024 * 1024);
    const image = await decodeReal('cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm');
    assert.ok(Buffer.from(image.pixels).equals(Buffer.from(stored)));
  });

  test('metadata: age, sex, spacing and its source, laterality, presentation intent', async () => {
    const dog = await decodeReal('cxr10_DX_CANINE_lateral_thorax_MONO1_8bit_ExplicitLE_highdicom.dcm');
    assert.equal(dog.metadata.patientAge, 5);
    assert.equal(dog.metadata.patientSex, 'F');
    assert.deepEqual(dog.metadata.pixelSpacing, [1.2, 1.201199999999]);
    assert.equal(dog.metadata.pixelSpacingSource, 'PixelSpacing');
    assert.equal(dog.metadata.presentationIntent, 'FOR PRESENTATION');
    const dx = await decodeReal('cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm');
    assert.equal(dx.metadata.imageLaterality, 'R');
    assert.deepEqual(dx.metadata.pixelSpacing, [0.16, 0.16]);
    // RG1 stores PixelSpacing 0.000\0.000: not a spacing, so none is reported.
    const rg1 = await decodeReal('cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm');
    assert.equal(rg1.metadata.pixelSpacing, undefined);
    // SIIM writes '62' without a unit: read as years, with a note.
    const siim = await decodeReal('cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');
    assert.equal(siim.metadata.patientAge, 62);
    assert.ok(siim.notes.some((n) => n.includes("'62' has no unit")));
    const dental = await decodeReal('neg3_CR_dental_panoramic_MONO1_JPEGLossless_ModalityLUTSeq.dcm');
    assert.ok(dental.notes.includes('Modality LUT Sequence applied'));
    const cxr01 = await decodeImageFile(CXR01);
    assert.ok(cxr01.notes.some((n) => n.startsWith('no DICOM file-meta header')));
    assert.ok(cxr01.notes.includes('MONOCHROME1 inverted'));
  });

  test('format is detected by content: a DICOM renamed .png still decodes as DICOM', async () => {
    const bytes = readBytes(CXR01);
    const image = await decodeImage(bytes, 'chest.png');
    assert.equal(image.format, 'dicom');
  });
});
