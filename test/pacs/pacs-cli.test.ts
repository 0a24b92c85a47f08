/**
 * End to end, as a department would run it: the real DICOM files are sent to a real Orthanc with dcmtk's storescu
 * (DIMSE C-STORE), `cxr pacs --once` analyses them over DICOMweb and stores SRs and heatmaps back, and every value
 * read back from the PACS is checked against `cxr predict --json` on the same files. Non-chest films get an SR
 * saying they were refused and why; a second run finds nothing to do; a CT (another modality) is left alone unless
 * asked for; no log line carries patient data.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { decimalString, DISCLAIMER } from '../../src/pacs/sr.js';
import { type RunningOrthanc, startOrthanc, storescu } from './orthanc.js';
import { type PredictedImage, assertNoSecrets, cxr, dicomFiles, predictJson, readAllSrs, sopInstanceUid } from './cli.js';
import { dicom3tools } from './sr-read.js';

const run = promisify(execFile);

describe('cxr pacs --once against a real Orthanc fed by storescu', () => {
  let orthanc: RunningOrthanc;
  let client: DicomWebClient;
  const files = dicomFiles();
  const ct = files.find((f) => basename(f).startsWith('neg4_CT'))!;
  // The CR and DX files as the PACS holds them: cxr07 is cxr06 with an edited header and the same SOP Instance UID,
  // and a PACS keeps one instance per UID (the first sent, cxr06).
  let projections: string[] = [];
  const sopOf = new Map<string, string>();
  let predicted = new Map<string, PredictedImage>();
  let logs = '';
  let fhirDir = '';

  before(async () => {
    orthanc = await startOrthanc();
    client = new DicomWebClient(orthanc.dicomweb);
    await storescu(orthanc, files);
    for (const file of files) sopOf.set(file, await sopInstanceUid(file));
    projections = files.filter((f, i) => f !== ct && files.findIndex((g) => sopOf.get(g) === sopOf.get(f)) === i);
    assert.equal(projections.length, files.length - 2);
    predicted = await predictJson(files);
    fhirDir = mkdtempSync(join(tmpdir(), 'cxr-fhir-'));
    const first = await cxr(['pacs', '--url', orthanc.url, '--once', '--fhir', fhirDir]);
    logs += first.stdout + first.stderr;
    assert.match(first.stdout, new RegExp(`analysed ${projections.length} of ${projections.length} instances \\(0 were done before\\)`));
  });
  after(async () => {
    await orthanc?.stop();
    if (fhirDir) rmSync(fhirDir, { recursive: true, force: true });
  });

  test('every CR/DX instance has exactly one SR, with every value cxr predict gives for its file', async () => {
    const srs = await readAllSrs(client);
    assert.equal(srs.length, projections.length);
    for (const file of projections) {
      const name = basename(file);
      const mine = srs.filter((sr) => sr.source?.sop === sopOf.get(file));
      assert.equal(mine.length, 1, `${name}: one SR`);
      const [sr] = mine;
      const expected = predicted.get(file)!;
      assert.ok(expected, `${name} predicted`);
      assert.equal(sr.disclaimer, DISCLAIMER);
      assert.match(sr.algorithmName!, /^default\.onnx \(/);
      assert.equal(sr.verdict, expected.verdict, `${name} verdict`);
      assert.deepEqual(sr.flags, expected.inputFlags.map((f) => `${f.severity} ${f.code}: ${f.message}`), `${name} flags`);
      assert.equal(sr.findings.size, expected.findings.length, `${name} findings`);
      for (const f of expected.findings) {
        const got = sr.findings.get(f.name)!;
        assert.equal(got.probability, f.probability, `${name} ${f.name} probability`);
        assert.equal(got.probabilityText, decimalString(f.probability));
        assert.equal(got.calibrated, f.calibrated);
        assert.equal(got.threshold, f.threshold);
        assert.equal(got.thresholdRule, f.thresholdRule);
        assert.equal(got.decision, f.decision, `${name} ${f.name} decision`);
        assert.equal(got.decisionNote, f.decisionNote);
        assert.equal(got.heatmaps.length, f.decision === 'positive' ? 1 : 0, `${name} ${f.name} heatmaps`);
      }
      assert.equal(sr.dataset.StudyInstanceUID, (await client.searchInstances({ SOPInstanceUID: sopOf.get(file)! })).map((d) => DicomWebClient.refs([d])[0].study)[0], `${name} same study`);
    }
  });

  test('films that are not human chest films get an SR saying they were refused and why', async () => {
    const srs = await readAllSrs(client);
    const refused = projections.filter((f) => /^(neg|cxr10_)/.test(basename(f)));
    assert.equal(refused.length, 4);
    for (const file of refused) {
      const sr = srs.find((s) => s.source?.sop === sopOf.get(file))!;
      assert.equal(sr.verdict, 'rejected', basename(file));
      assert.match(sr.refused!, /^The input checks refused this image: ./);
      assert.equal(sr.findings.size, 0);
    }
  });

  test('the heatmaps of positive findings are in the PACS as valid Secondary Captures, one per positive finding', async () => {
    const positives = projections.map((f) => predicted.get(f)!).flatMap((p) => p.findings.filter((f) => f.decision === 'positive'));
    assert.ok(positives.length > 0);
    const scs = DicomWebClient.refs(await client.searchInstances({ Modality: 'OT' }));
    assert.equal(scs.length, positives.length);
    const checked = await dicom3tools(await client.retrieveInstance(scs[0]), false);
    assert.deepEqual(checked.errors, []);
  });

  test('an SR stored in and read back from the PACS passes dciodvfy and dsrdump', async () => {
    const [ref] = DicomWebClient.refs(await client.searchInstances({ Modality: 'SR' }));
    const checked = await dicom3tools(await client.retrieveInstance(ref), true);
    assert.deepEqual(checked.errors, []);
    assert.match(checked.dump, /Research use only: not for clinical use/);
  });

  test('a second run finds everything done and writes nothing', async () => {
    const before = (await client.searchInstances({})).length;
    const again = await cxr(['pacs', '--url', orthanc.url, '--once']);
    logs += again.stdout + again.stderr;
    assert.match(again.stdout, new RegExp(`analysed 0 of ${projections.length} instances \\(${projections.length} were done before\\)`));
    assert.equal((await client.searchInstances({})).length, before);
  });

  test('a CT is left alone by default; asked for, it gets an SR refusing it', async () => {
    const srs = await readAllSrs(client);
    assert.equal(srs.filter((s) => s.source?.sop === sopOf.get(ct)).length, 0);
    const ctRun = await cxr(['pacs', '--url', orthanc.url, '--once', '--modalities', 'CT']);
    logs += ctRun.stdout + ctRun.stderr;
    const [sr] = (await readAllSrs(client)).filter((s) => s.source?.sop === sopOf.get(ct));
    assert.equal(sr.verdict, predicted.get(ct)!.verdict);
    assert.equal(sr.verdict, 'rejected');
    assert.match(sr.refused!, /refused/);
  });

  test('--fhir: a DiagnosticReport per SR with the same values, and no patient identifiers', async () => {
    const srs = await readAllSrs(client);
    // The run with --fhir: every CR/DX instance (the CT was analysed later, without --fhir).
    const mine = srs.filter((sr) => projections.some((f) => sopOf.get(f) === sr.source?.sop));
    assert.deepEqual(readdirSync(fhirDir).sort(), mine.map((sr) => `${sr.dataset.SOPInstanceUID}.json`).sort());
    for (const file of projections) {
      const sr = srs.find((s) => s.source?.sop === sopOf.get(file))!;
      const text = readFileSync(join(fhirDir, `${sr.dataset.SOPInstanceUID}.json`), 'utf8');
      const report = JSON.parse(text);
      const expected = predicted.get(file)!;
      assert.equal(report.resourceType, 'DiagnosticReport');
      assert.equal(report.status, 'preliminary');
      assert.match(report.conclusion, /not for clinical use/);
      assert.match(report.conclusion, new RegExp(`Input checks: ${expected.verdict}`));
      assert.equal(report.imagingStudy[0].identifier.value, `urn:oid:${sr.dataset.StudyInstanceUID}`);
      assert.equal(report.contained.length, expected.findings.length);
      for (const [i, f] of expected.findings.entries()) {
        const o = report.contained[i];
        assert.equal(o.code.text, f.name);
        assert.equal(o.valueQuantity.value, f.probability);
        assert.equal(o.interpretation?.[0].coding[0].code, f.decision === null ? undefined : f.decision === 'positive' ? 'POS' : 'NEG');
        assert.equal(o.derivedFrom[0].identifier.value, `urn:oid:${sopOf.get(file)}`);
      }
      assert.equal(report.subject, undefined, 'the patient is not named');
      const { stdout } = await run('dcmdump', ['-q', '+P', '0010,0010', '+P', '0010,0020', '+P', '0010,0030', '+P', '0008,0050', file]);
      for (const m of stdout.matchAll(/\[([^\]]+)\]/g)) if (m[1].trim().length >= 4) assert.ok(!text.includes(m[1].trim()), `${basename(file)}: "${m[1].trim()}" in its FHIR report`);
    }
  });

  test('no log line carries patient data, file names or UIDs in clear', async () => {
    const secrets = new Set<string>();
    for (const file of files) {
      secrets.add(basename(file));
      secrets.add(sopOf.get(file)!);
      const { stdout } = await run('dcmdump', ['-q', '+P', '0010,0010', '+P', '0010,0020', '+P', '0010,0030', '+P', '0008,0050', '+P', '0020,000d', '+P', '0020,000e', '+P', '0008,1030', file]);
      for (const match of stdout.matchAll(/\[([^\]]+)\]/g)) if (match[1].trim().length >= 4) secrets.add(match[1].trim());
    }
    assert.ok(secrets.size > 30);
    assert.ok(logs.length > 0);
    assertNoSecrets(logs, secrets);
  });
});
