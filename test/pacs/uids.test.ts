/**
 * Results that can be tied back to the PACS: `cxr predict --json`, its CSV and the HTTP API carry a DICOM input's
 * Study, Series and SOP Instance UIDs (checked against dcmtk's dcmdump on the same real files); PNG results and
 * PNG-only CSVs are unchanged, and `cxr eval` still reads a CSV with the UID columns.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Papa from 'papaparse';
import { after, before, describe, test } from 'node:test';
import { readPredictionTable } from '../../src/eval/predictions.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { postForm, startServer } from '../serve/helpers.js';
import { cxr } from './cli.js';
import { DICOM_DIR } from './orthanc.js';

const run = promisify(execFile);
const DICOMS = ['cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm', 'neg2_CR_hip_MONO2_10bit_JPEGExtended_RG2.dcm'].map((f) => join(DICOM_DIR, f));
const PNG = sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png');

async function uidsOf(file: string): Promise<{ studyInstanceUid: string; seriesInstanceUid: string; sopInstanceUid: string }> {
  const { stdout } = await run('dcmdump', ['-q', '+P', '0020,000d', '+P', '0020,000e', '+P', '0008,0018', file]);
  const [study, series, sop] = [...stdout.matchAll(/\[([\d.]+)\]/g)].map((m) => m[1]);
  return { studyInstanceUid: study, seriesInstanceUid: series, sopInstanceUid: sop };
}

describe('source UIDs in results', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cxr-uids-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('cxr predict --json and --csv carry the UIDs of DICOM inputs, accepted or refused', async () => {
    const csvPath = join(dir, 'p.csv');
    const { stdout } = await cxr(['predict', '--json', '--csv', csvPath, ...DICOMS, PNG]);
    const images = JSON.parse(stdout).images as { file: string; verdict: string; image: { metadata: Record<string, unknown> } }[];
    for (const file of DICOMS) {
      const { metadata } = images.find((i) => i.file === file)!.image;
      assert.deepEqual({ studyInstanceUid: metadata.studyInstanceUid, seriesInstanceUid: metadata.seriesInstanceUid, sopInstanceUid: metadata.sopInstanceUid }, await uidsOf(file));
    }
    assert.equal(images.find((i) => i.file.endsWith('.dcm') && i.verdict === 'rejected')?.file, DICOMS[1], 'the hip is refused and still tied back');
    assert.equal(images.find((i) => i.file === PNG)!.image.metadata.sopInstanceUid, undefined);

    const text = readFileSync(csvPath, 'utf8');
    const lines = text.trim().split('\n');
    assert.match(lines[0], /,verdict,flags,error,study_instance_uid,series_instance_uid,sop_instance_uid$/);
    for (const [i, file] of DICOMS.entries()) {
      const u = await uidsOf(file);
      assert.ok(lines[i + 1].endsWith(`,${u.studyInstanceUid},${u.seriesInstanceUid},${u.sopInstanceUid}`), lines[i + 1].slice(-200));
    }
    assert.ok(lines[3].endsWith(',,,'), 'a PNG row has empty UIDs');
    const [header, ...rows] = Papa.parse<string[]>(text.trim()).data;
    const table = readPredictionTable({ file: csvPath, header, rows });
    assert.equal(table.labels.length, 14, 'cxr eval reads the CSV: UID columns are not labels');
  });

  test('a PNG-only CSV keeps its columns', async () => {
    const csvPath = join(dir, 'png.csv');
    await cxr(['predict', '--csv', csvPath, PNG]);
    assert.match(readFileSync(csvPath, 'utf8').split('\n')[0], /,verdict,flags,error$/);
  });

  test('the HTTP API answers with the UIDs of an uploaded DICOM', async () => {
    const server = await startServer({ workers: 1 });
    try {
      const answer = await postForm(server.url, [{ name: 'image', value: new Uint8Array(readFileSync(DICOMS[0])), filename: 'x.dcm' }, { name: 'heatmap', value: 'none' }]);
      assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
      const metadata = answer.body.image?.metadata ?? answer.body.images?.[0]?.metadata;
      const u = await uidsOf(DICOMS[0]);
      assert.deepEqual({ studyInstanceUid: metadata.studyInstanceUid, seriesInstanceUid: metadata.seriesInstanceUid, sopInstanceUid: metadata.sopInstanceUid }, u);
    } finally {
      await server.app.close();
    }
  });
});
