/**
 * DICOM features no real sample here has (VOI LUT Sequence, SIGMOID and LINEAR_EXACT windows, AP and lateral
 * views, signed pixels, rescale, high-bit garbage, big endian, deflate, HTJ2K, JPEG XL): these tests WRITE their
 * own DICOM files with test/imaging/dicom-writer.ts, using the real stored pixels of the 440x440 CR chest (cxr01),
 * and compare the decoder against values computed here from the DICOM formulas (PS3.3 C.11).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dcmjsCodecs from 'dcmjs-codecs';
import { deflateSync } from 'fflate';
import { decodeImage, parseAgeString, type DecodedImage } from '../../src/imaging/index.js';
import { EXPLICIT_BE, IMPLICIT_LE, el, grayImage, withElements, writeDicom, type Element } from './dicom-writer.js';
import { CXR01, storedSamples16 } from './util.js';

const { rows, columns, samples } = storedSamples16(CXR01);
const base = (extra: Element[] = [], photometric = 'MONOCHROME2') =>
  grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, photometric, samples }, extra);
const decode = (bytes: Uint8Array, name = 'written.dcm') => decodeImage(bytes, name);

/** Asserts every pixel equals expected(stored value of that pixel). */
function assertPerPixel(image: DecodedImage, expected: (stored: number) => number): void {
  assert.equal(image.pixels.length, samples.length);
  for (let i = 0; i < samples.length; i++) {
    const want = expected(samples[i]);
    if (image.pixels[i] !== want) assert.fail(`pixel ${i} (stored ${samples[i]}): got ${image.pixels[i]}, expected ${want}`);
  }
}

const WINDOW = (c: number, w: number, fn?: string) => [
  el(0x00281050, 'DS', String(c)),
  el(0x00281051, 'DS', String(w)),
  ...(fn ? [el(0x00281056, 'CS', fn)] : []),
];

describe('windowing and LUTs on written files', () => {
  test('LINEAR window (the default function) follows C.11.2.1.2.1', async () => {
    const [c, w] = [550, 1024];
    const image = await decode(writeDicom(base(WINDOW(c, w))));
    assert.deepEqual(image.metadata.window, { kind: 'window', center: c, width: w, function: 'LINEAR' });
    assertPerPixel(image, (x) => {
      if (x <= c - 0.5 - (w - 1) / 2) return 0;
      if (x > c - 0.5 + (w - 1) / 2) return 1023;
      return Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 1023);
    });
  });

  test('LINEAR_EXACT window follows C.11.2.1.3.2', async () => {
    const [c, w] = [400.5, 301];
    const image = await decode(writeDicom(base(WINDOW(c, w, 'LINEAR_EXACT'))));
    assertPerPixel(image, (x) => (x <= c - w / 2 ? 0 : x > c + w / 2 ? 1023 : Math.round(((x - c) / w + 0.5) * 1023)));
  });

  test('SIGMOID window follows C.11.2.1.3.1', async () => {
    const [c, w] = [500, 400];
    const image = await decode(writeDicom(base(WINDOW(c, w, 'SIGMOID'))));
    assert.equal(image.metadata.window?.kind === 'window' && image.metadata.window.function, 'SIGMOID');
    assertPerPixel(image, (x) => Math.round(1023 / (1 + Math.exp((-4 * (x - c)) / w))));
  });

  test('a VOI LUT Sequence is applied and preferred over Window Center/Width', async () => {
    // A 12-bit square-root LUT over stored values 100..1123, written as US data with first mapped value 100.
    const first = 100;
    const lut = Array.from({ length: 1024 }, (_, i) => Math.round(4095 * Math.sqrt(i / 1023)));
    const voi = el(0x00283010, 'SQ', [[el(0x00283002, 'US', [1024, first, 12]), el(0x00283006, 'OW', new Uint8Array(new Uint16Array(lut).buffer))]]);
    const image = await decode(writeDicom(base([voi, ...WINDOW(550, 1024)])));
    assert.deepEqual(image.metadata.window, { kind: 'voi-lut', entries: 1024, firstMapped: first, bits: 12 });
    assert.ok(image.notes.some((n) => n.includes('VOI LUT Sequence applied (preferred over Window Center/Width)')));
    assertPerPixel(image, (x) => Math.round((lut[Math.min(1023, Math.max(0, x - first))] / 4095) * 1023));
  });

  test('a VOI LUT on unsigned 16-bit data may start above 32767 (first mapped value read as US)', async () => {
    const high = Uint16Array.from(samples, (v) => v + 40000);
    const lut = Array.from({ length: 1024 }, (_, i) => 1023 - i);
    const voi = el(0x00283010, 'SQ', [[el(0x00283002, 'US', [1024, 40000, 10]), el(0x00283006, 'US', lut)]]);
    const image = await decode(writeDicom(grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 16, samples: high }, [voi])));
    assert.equal(image.maxValue, 65535);
    assertPerPixel(image, (x) => Math.round(((1023 - x) / 1023) * 65535));
  });

  test('a Modality LUT Sequence feeds the window; without VOI the output spans the LUT range', async () => {
    // Modality LUT: value -> 3 * value + 7 (16-bit entries); no window, MONOCHROME2.
    const lut = Array.from({ length: 1024 }, (_, i) => 3 * i + 7);
    const modality = el(0x00283000, 'SQ', [[el(0x00283002, 'US', [1024, 0, 16]), el(0x00283006, 'US', lut)]]);
    const image = await decode(writeDicom(base([modality])));
    assert.deepEqual(image.metadata.window, { kind: 'stored-range', min: 7, max: 3 * 1023 + 7 });
    assertPerPixel(image, (x) => Math.round(((3 * x + 7 - 7) / (3 * 1023)) * 1023));
  });

  test('Rescale Slope/Intercept are applied before the window', async () => {
    const [slope, intercept, c, w] = [2, -100, 900, 1500];
    const image = await decode(writeDicom(base([el(0x00281053, 'DS', String(slope)), el(0x00281052, 'DS', String(intercept)), ...WINDOW(c, w)])));
    assertPerPixel(image, (s) => {
      const x = s * slope + intercept;
      if (x <= c - 0.5 - (w - 1) / 2) return 0;
      if (x > c - 0.5 + (w - 1) / 2) return 1023;
      return Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 1023);
    });
  });

  test('no window: the stored range (0 .. 2^BitsStored - 1) maps linearly onto the output', async () => {
    const image = await decode(writeDicom(base()));
    assert.deepEqual(image.metadata.window, { kind: 'stored-range', min: 0, max: 1023 });
    assertPerPixel(image, (x) => x);
  });

  test('signed pixels (Pixel Representation 1) decode like the unsigned image shifted by the same amount', async () => {
    const signedSamples = Int16Array.from(samples, (v) => v - 512);
    const signed = grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, signed: true, samples: signedSamples }, WINDOW(550 - 512, 1024));
    const image = await decode(writeDicom(signed));
    const unsigned = await decode(writeDicom(base(WINDOW(550, 1024))));
    assert.ok(Buffer.from(image.pixels.buffer).equals(Buffer.from(unsigned.pixels.buffer)));
    // And with no window the signed stored range -512..511 is used.
    const noWindow = await decode(writeDicom(grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, signed: true, samples: signedSamples })));
    assert.deepEqual(noWindow.metadata.window, { kind: 'stored-range', min: -512, max: 511 });
    assertPerPixel(noWindow, (x) => x);
  });

  test('bits above Bits Stored are masked off, and a High Bit above BitsStored - 1 is honoured', async () => {
    const clean = await decode(writeDicom(base(WINDOW(550, 1024))));
    const garbage = Uint16Array.from(samples, (v, i) => v | ((i * 2654435761) & 0xfc00));
    const noisy = await decode(writeDicom(withElements(base(WINDOW(550, 1024)), grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, samples: garbage }).slice(-1))));
    assert.ok(Buffer.from(noisy.pixels.buffer).equals(Buffer.from(clean.pixels.buffer)));
    const shifted = Uint16Array.from(samples, (v) => (v << 2) | 0x3);
    const highBit = withElements(base(WINDOW(550, 1024)), [
      el(0x00280102, 'US', [11]),
      grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, samples: shifted }).at(-1)!,
    ]);
    const image = await decode(writeDicom(highBit));
    assert.ok(Buffer.from(image.pixels.buffer).equals(Buffer.from(clean.pixels.buffer)));
  });

  test('inversion: MONOCHROME1 complements MONOCHROME2; INVERSE inverts MONOCHROME2; MONOCHROME1 + INVERSE inverts once', async () => {
    const mono2 = await decode(writeDicom(base(WINDOW(550, 1024))));
    const mono1 = await decode(writeDicom(base(WINDOW(550, 1024), 'MONOCHROME1')));
    const inverse2 = await decode(writeDicom(base([...WINDOW(550, 1024), el(0x20500020, 'CS', 'INVERSE')])));
    const inverse1 = await decode(writeDicom(base([...WINDOW(550, 1024), el(0x20500020, 'CS', 'INVERSE')], 'MONOCHROME1')));
    for (let i = 0; i < samples.length; i++) {
      if (mono1.pixels[i] !== 1023 - mono2.pixels[i]) assert.fail(`MONOCHROME1 pixel ${i}`);
    }
    assert.deepEqual(inverse2.pixels, mono1.pixels);
    assert.deepEqual(inverse1.pixels, mono1.pixels);
    assert.ok(inverse2.notes.includes('Presentation LUT Shape INVERSE applied'));
  });

  test('8-bit data with a full-range window comes out unchanged', async () => {
    const bytes8 = Uint8Array.from(samples, (v) => v >> 2);
    const image = await decode(writeDicom(grayImage({ rows, columns, bitsAllocated: 8, bitsStored: 8, samples: bytes8 }, WINDOW(128, 256))));
    assert.ok(image.pixels instanceof Uint8Array);
    assert.equal(image.maxValue, 255);
    assert.deepEqual(image.pixels, bytes8);
  });

  test('an invalid window width falls back to the stored range, with a note', async () => {
    const image = await decode(writeDicom(base(WINDOW(550, 0))));
    assert.equal(image.metadata.window?.kind, 'stored-range');
    assert.ok(image.notes.some((n) => n.includes('invalid for LINEAR')));
  });
});

describe('views and metadata on written files', () => {
  const views: [string, string, string, number][] = [
    ['AP', '058Y', 'F', 58],
    ['LL', '006M', 'M', 0.5],
    ['LATERAL', '010W', 'O', 70 / 365.25],
  ];
  for (const [view, age, sex, years] of views) {
    test(`View Position ${view}, age ${age}, sex ${sex}`, async () => {
      const extra = [
        el(0x00185101, 'CS', view),
        el(0x00101010, 'AS', age),
        el(0x00100040, 'CS', sex),
        el(0x00180015, 'CS', 'CHEST'),
        el(0x00181164, 'DS', '0.143\\0.145'),
      ];
      const image = await decode(writeDicom(base(extra)));
      assert.equal(image.metadata.viewPosition, view);
      assert.ok(Math.abs(image.metadata.patientAge! - years) < 1e-12);
      assert.equal(image.metadata.patientSex, sex);
      assert.equal(image.metadata.bodyPart, 'CHEST');
      assert.deepEqual(image.metadata.pixelSpacing, [0.143, 0.145]);
      assert.equal(image.metadata.pixelSpacingSource, 'ImagerPixelSpacing');
    });
  }

  test('age strings', () => {
    assert.equal(parseAgeString('058Y'), 58);
    assert.equal(parseAgeString('018M'), 1.5);
    assert.equal(parseAgeString('58'), undefined);
    assert.equal(parseAgeString('058X'), undefined);
  });

  test('a malformed age is ignored with a note', async () => {
    const image = await decode(writeDicom(base([el(0x00101010, 'AS', 'ABCD')])));
    assert.equal(image.metadata.patientAge, undefined);
    assert.ok(image.notes.some((n) => n.includes("'ABCD' is not a DICOM age string")));
  });
});

describe('encodings on written files', () => {
  test('implicit VR, explicit VR big endian, deflated, and a bare data set all give the same pixels', async () => {
    const reference = await decode(writeDicom(base(WINDOW(550, 1024))));
    const implicit = await decode(writeDicom(base(WINDOW(550, 1024)), { transferSyntax: IMPLICIT_LE }));
    const bigEndian = await decode(
      writeDicom(grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 10, samples }, WINDOW(550, 1024), true), { transferSyntax: EXPLICIT_BE }),
    );
    const bareExplicit = await decode(writeDicom(base(WINDOW(550, 1024)), { part10: false }));
    const bareImplicit = await decode(writeDicom(base(WINDOW(550, 1024)), { part10: false, transferSyntax: IMPLICIT_LE }));
    // Deflated: the data set after the file meta is raw-deflated.
    const plain = writeDicom(base(WINDOW(550, 1024)), { transferSyntax: '1.2.840.10008.1.2.1.99' });
    const metaEnd = 132 + 12 + new DataView(plain.buffer, plain.byteOffset).getUint32(140, true);
    const deflated = new Uint8Array([...plain.subarray(0, metaEnd), ...deflateSync(plain.subarray(metaEnd))]);
    const inflated = await decode(deflated);
    for (const [name, image] of Object.entries({ implicit, bigEndian, bareExplicit, bareImplicit, inflated })) {
      assert.ok(Buffer.from(image.pixels.buffer).equals(Buffer.from(reference.pixels.buffer)), name);
    }
    assert.ok(bareExplicit.notes.some((n) => n.includes('no DICOM file-meta header; read as explicit VR')));
  });

  // Encoded here with dcmjs-codecs' own encoders (no real file uses these syntaxes): checks that each transfer
  // syntax reaches its decoder and that lossless round trips are exact.
  const { NativeCodecs, Context } = dcmjsCodecs;
  const encoders: [string, string, (c: InstanceType<typeof Context>) => InstanceType<typeof Context>][] = [
    ['1.2.840.10008.1.2.4.201', 'HTJ2K lossless', (c) => NativeCodecs.encodeHtJpeg2000(c, { lossy: false })],
    ['1.2.840.10008.1.2.4.110', 'JPEG XL lossless', (c) => NativeCodecs.encodeJpegXl(c, { lossy: false })],
    ['1.2.840.10008.1.2.4.90', 'JPEG 2000 lossless', (c) => NativeCodecs.encodeJpeg2000(c, { lossy: false })],
    ['1.2.840.10008.1.2.4.57', 'JPEG lossless process 14', (c) => NativeCodecs.encodeJpeg(c, { lossy: false, predictor: 6 })],
  ];
  for (const [uid, name, encode] of encoders) {
    test(`${name} (${uid}) round-trips the real pixels exactly`, async () => {
      await NativeCodecs.initializeAsync();
      const context = new Context({
        width: columns,
        height: rows,
        bitsAllocated: 16,
        bitsStored: 10,
        samplesPerPixel: 1,
        pixelRepresentation: 0,
        planarConfiguration: 0,
        photometricInterpretation: 'MONOCHROME2',
        decodedBuffer: new Uint8Array(samples.buffer.slice(0)),
      });
      const encoded = encode(context).getEncodedBuffer()!;
      assert.ok(encoded.length > 1000 && encoded.length < samples.length * 2, `${name} produced ${encoded.length} bytes`);
      const image = await decode(writeDicom(base(WINDOW(550, 1024)), { transferSyntax: uid, fragments: [encoded] }));
      const reference = await decode(writeDicom(base(WINDOW(550, 1024))));
      assert.equal(image.metadata.transferSyntaxUid, uid);
      assert.ok(Buffer.from(image.pixels.buffer).equals(Buffer.from(reference.pixels.buffer)));
    });
  }
});
