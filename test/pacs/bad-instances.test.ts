/**
 * Instances no one can analyse, stored in a real Orthanc: a multi-frame object whose header declares 200 frames of
 * 8192 x 8192 pixels, a single 30000 x 30000 frame (both with 64 bytes of pixel data), and a film whose pixel data is cut short. Each gets an SR saying it could not be decoded
 * and why (the decoder's own reason, which names the instance by a hash, not a file), and the big ones are refused
 * from their headers, without allocating their pixels.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../../src/api.js';
import { Analyser } from '../../src/pacs/analyse.js';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { writePart10 } from '../../src/pacs/part10.js';
import { PacsProcessor, type PacsEvent } from '../../src/pacs/processor.js';
import { derivedUid } from '../../src/pacs/uid.js';
import { type RunningOrthanc, startOrthanc } from './orthanc.js';
import { readAllSrs } from './cli.js';

const DX_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.1';

function dxInstance(name: string, image: { rows: number; columns: number; frames?: number; bits: 8 | 16; pixelBytes: number }): Uint8Array {
  return writePart10({
    SOPClassUID: DX_FOR_PRESENTATION,
    SOPInstanceUID: derivedUid('test instance', name),
    StudyInstanceUID: derivedUid('test study', name),
    SeriesInstanceUID: derivedUid('test series', name),
    PatientName: 'Test^Bad',
    PatientID: `TEST-${name}`,
    Modality: 'DX',
    BodyPartExamined: 'CHEST',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: image.rows,
    Columns: image.columns,
    ...(image.frames ? { NumberOfFrames: String(image.frames) } : {}),
    BitsAllocated: image.bits,
    BitsStored: image.bits,
    HighBit: image.bits - 1,
    PixelRepresentation: 0,
    PixelData: [new Uint8Array(image.pixelBytes).fill(7).buffer],
    _vrMap: { PixelData: image.bits === 8 ? 'OB' : 'OW' },
  });
}

describe('instances that cannot be decoded get an SR that says so', () => {
  let orthanc: RunningOrthanc;
  let analyser: Analyser;
  before(async () => {
    orthanc = await startOrthanc();
    analyser = await Analyser.create(loadModel(), { heatmaps: 'none' });
  });
  after(async () => {
    await analyser?.close();
    await orthanc?.stop();
  });

  test('a huge multi-frame header and a cut-short film: undecodable SRs with the reasons', async () => {
    const client = new DicomWebClient(orthanc.dicomweb);
    await client.store([
      dxInstance('huge', { rows: 8192, columns: 8192, frames: 200, bits: 16, pixelBytes: 64 }),
      dxInstance('cut', { rows: 512, columns: 512, bits: 8, pixelBytes: 1000 }),
      dxInstance('large', { rows: 30000, columns: 30000, bits: 16, pixelBytes: 64 }),
    ]);
    const events: PacsEvent[] = [];
    const started = Date.now();
    const summary = await new PacsProcessor(client, analyser, { onEvent: (e) => events.push(e) }).processPending();
    assert.ok(Date.now() - started < 20_000);
    assert.equal(summary.undecodable, 3);
    const srs = await readAllSrs(client);
    assert.equal(srs.length, 3);
    const bySop = new Map(srs.map((s) => [s.source?.sop, s]));
    const huge = bySop.get(derivedUid('test instance', 'huge'))!;
    const cut = bySop.get(derivedUid('test instance', 'cut'))!;
    const large = bySop.get(derivedUid('test instance', 'large'))!;
    for (const sr of [huge, cut, large]) {
      assert.equal(sr.verdict, 'undecodable');
      assert.match(sr.refused!, /^The image could not be decoded: instance [0-9a-f]{10}: /);
      assert.equal(sr.findings.size, 0);
    }
    assert.match(huge.refused!, /multi-frame DICOM \(200 frames\) is not supported/);
    assert.match(large.refused!, /30000x30000, more than \d+ pixels \(the decode budget\); refused before decoding/);
    assert.match(cut.refused!, /truncated pixel data: 1000 bytes, 262144 needed/);
    assert.doesNotMatch(JSON.stringify(events), /TEST-|Test\^Bad|2\.25\./, 'events carry hashes, not IDs or UIDs');
    // Done is done: a second pass finds nothing to do.
    assert.equal((await new PacsProcessor(client, analyser).processPending()).alreadyDone, 3);
  });
});
