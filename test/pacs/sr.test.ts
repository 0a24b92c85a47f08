/**
 * The SR and Secondary Capture writers on real DICOM files analysed by the real default model: dicom3tools'
 * dciodvfy finds no error in either, dcmtk's dsrdump reads the SR, and every value in the SR is the Prediction's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../../src/api.js';
import { type Analysis, Analyser } from '../../src/pacs/analyse.js';
import { readHeader, writePart10 } from '../../src/pacs/part10.js';
import { buildHeatmapSc, SECONDARY_CAPTURE } from '../../src/pacs/sc.js';
import { buildResultSr, decimalString, DISCLAIMER, srUids } from '../../src/pacs/sr.js';
import { sourceInstance, type SourceInstance } from '../../src/pacs/source.js';
import { DICOM_DIR } from './orthanc.js';
import { dicom3tools, readDataset, readSr } from './sr-read.js';

const FILES = {
  // DX, accepted by the input checks, with positive findings under the default model
  chest: 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm',
  // CR of a hip: refused by the input checks
  hip: 'neg2_CR_hip_MONO2_10bit_JPEGExtended_RG2.dcm',
  // a real chest film with a hashed birth date and name from its anonymiser
  j2k: 'cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm',
};

describe('DICOM SR and Secondary Capture of real analyses', () => {
  let analyser: Analyser;
  const bytes: Record<string, Uint8Array> = {};
  const analyses: Record<string, Analysis> = {};
  const sources: Record<string, SourceInstance> = {};
  before(async () => {
    analyser = await Analyser.create(loadModel(), { heatmapSide: 256 });
    for (const [key, name] of Object.entries(FILES)) bytes[key] = new Uint8Array(readFileSync(join(DICOM_DIR, name)));
    // The chest film with its pixel data cut off: undecodable, but its header is intact.
    bytes.cut = bytes.chest.subarray(0, bytes.chest.length - 500_000);
    const keys = Object.keys(bytes);
    const results = await analyser.analyse(keys.map((k) => ({ bytes: bytes[k], label: `test ${k}` })));
    keys.forEach((k, i) => {
      analyses[k] = results[i];
      const header = readHeader(bytes[k]) as Record<string, string>;
      sources[k] = sourceInstance({ study: header.StudyInstanceUID, series: header.SeriesInstanceUID, sop: header.SOPInstanceUID }, {}, bytes[k]);
    });
  });
  after(async () => analyser?.close());

  test('the outcomes are what the input checks and the decoder say', () => {
    assert.equal(analyses.chest.outcome.kind, 'prediction');
    assert.equal(analyses.hip.outcome.kind === 'prediction' && analyses.hip.outcome.prediction.verdict, 'rejected');
    assert.equal(analyses.cut.outcome.kind, 'undecodable');
    assert.ok(analyses.chest.heatmaps.length > 0, 'the chest film has positive findings, each with a heatmap');
    assert.equal(analyses.hip.heatmaps.length, 0);
  });

  test('an accepted film: SR valid (dciodvfy, dsrdump), every value the Prediction\'s, heatmaps valid Secondary Captures', async () => {
    const { outcome, heatmaps } = analyses.chest;
    assert.ok(outcome.kind === 'prediction');
    const source = sources.chest;
    const scs = heatmaps.map((h, i) => ({ finding: h.finding, ...buildHeatmapSc(source, h, analyser.model, i + 1) }));
    for (const sc of scs) {
      const checked = await dicom3tools(sc.file, false);
      assert.deepEqual(checked.errors, [], `dciodvfy on the ${sc.finding} heatmap`);
      const ds = readDataset(sc.file);
      assert.equal(ds.SOPClassUID, SECONDARY_CAPTURE);
      assert.equal(ds.StudyInstanceUID, source.study);
      assert.notEqual(ds.SeriesInstanceUID, source.series);
      assert.equal(ds.SourceImageSequence[0]?.ReferencedSOPInstanceUID ?? ds.SourceImageSequence.ReferencedSOPInstanceUID, source.sop);
      assert.equal(ds.Rows * ds.Columns * 3, heatmaps.find((h) => h.finding === sc.finding)!.rgb.length);
    }
    const sr = buildResultSr(source, outcome, analyser.model, scs);
    const checked = await dicom3tools(sr.file, true);
    assert.deepEqual(checked.errors, [], 'dciodvfy on the SR');
    assert.match(checked.dump, /Comprehensive SR Document/);
    assert.match(checked.dump, /Input check verdict"\)="accepted"/);

    const values = readSr(sr.file);
    assert.equal(values.dataset.StudyInstanceUID, source.study);
    assert.notEqual(values.dataset.SeriesInstanceUID, source.series, 'a series of its own');
    assert.equal(values.dataset.Modality, 'SR');
    assert.equal(values.dataset.PatientID, readDataset(bytes.chest).PatientID, 'filed under the same patient');
    assert.deepEqual(values.source, { sopClass: source.sopClass, sop: source.sop });
    const evidence = values.dataset.CurrentRequestedProcedureEvidenceSequence;
    const evidenceSeries = [evidence].flat()[0].ReferencedSeriesSequence;
    assert.deepEqual([evidenceSeries].flat().map((s: { SeriesInstanceUID: string }) => s.SeriesInstanceUID).sort(), [source.series, scs[0].series].sort());
    assert.equal(values.disclaimer, DISCLAIMER);
    assert.match(values.disclaimer!, /not for clinical use/);
    assert.equal(values.algorithmName, analyser.model.name);
    assert.equal(values.algorithmVersion, analyser.model.version);
    assert.match(values.modelSha256!, /^[0-9a-f]{64}$/);
    assert.equal(values.verdict, outcome.prediction.verdict);
    assert.deepEqual(values.flags, outcome.prediction.inputFlags.map((f) => `${f.severity} ${f.code}: ${f.message}`));
    assert.equal(values.findings.size, outcome.prediction.findings.length);
    for (const f of outcome.prediction.findings) {
      const got = values.findings.get(f.name)!;
      assert.ok(got, f.name);
      assert.equal(got.probability, f.probability, `${f.name} probability, exactly`);
      assert.equal(got.probabilityText, decimalString(f.probability));
      assert.equal(got.calibrated, f.calibrated);
      assert.equal(got.threshold, f.threshold);
      assert.equal(got.thresholdRule, f.thresholdRule);
      assert.equal(got.decision, f.decision);
      assert.equal(got.decisionNote, f.decisionNote);
      assert.deepEqual(got.heatmaps, scs.filter((s) => s.finding === f.name).map((s) => s.sop));
      if (f.decision === 'positive') assert.equal(got.heatmaps.length, 1, `${f.name} is positive: one heatmap`);
    }
    // dsrdump shows the values as DS too.
    for (const f of outcome.prediction.findings) assert.ok(checked.dump.includes(`"${decimalString(f.probability)}"`), `${f.name} in dsrdump`);
  });

  test('a film the input checks refuse: an SR that says so and why, no findings', async () => {
    const { outcome } = analyses.hip;
    assert.ok(outcome.kind === 'prediction');
    const sr = buildResultSr(sources.hip, outcome, analyser.model);
    const checked = await dicom3tools(sr.file, true);
    assert.deepEqual(checked.errors, []);
    const values = readSr(sr.file);
    assert.equal(values.verdict, 'rejected');
    assert.equal(values.findings.size, 0);
    const reasons = outcome.prediction.inputFlags.filter((f) => f.severity === 'reject');
    assert.ok(reasons.length > 0);
    for (const r of reasons) assert.ok(values.refused?.includes(r.message), r.message);
    assert.match(checked.dump, /Analysis refused"\)="The input checks refused/);
  });

  test('an undecodable instance: an SR with the decoder\'s reason', async () => {
    const { outcome } = analyses.cut;
    assert.ok(outcome.kind === 'undecodable');
    const sr = buildResultSr(sources.cut, outcome, analyser.model);
    assert.deepEqual((await dicom3tools(sr.file, true)).errors, []);
    const values = readSr(sr.file);
    assert.equal(values.verdict, 'undecodable');
    assert.equal(values.refused, `The image could not be decoded: ${outcome.reason}`);
    assert.doesNotMatch(outcome.reason, /cxr08|\.dcm/, 'the reason names the instance by its label, not a file name');
  });

  test('invalid source values (a hashed birth date) are left empty, not copied; UIDs are fixed by source and model', async () => {
    const { outcome } = analyses.j2k;
    assert.ok(outcome.kind === 'prediction');
    const sr = buildResultSr(sources.j2k, outcome, analyser.model);
    assert.deepEqual((await dicom3tools(sr.file, true)).errors, []);
    assert.equal(readDataset(sr.file).PatientBirthDate ?? '', '');
    assert.deepEqual(srUids(sources.j2k, analyser.model.sha256), { series: sr.series, sop: sr.sop });
    assert.equal(buildResultSr(sources.j2k, outcome, analyser.model).sop, sr.sop, 'the same SR UID when written again');
    assert.notEqual(srUids(sources.j2k, '0'.repeat(64)).sop, sr.sop, 'another model file: another SR');
    assert.match(sr.sop, /^2\.25\.\d{1,39}$/);
  });

  test('an instance whose header dcmjs cannot read takes its patient and study attributes from the search result', () => {
    const searched = {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Searched^Name' }] },
      '00100020': { vr: 'LO', Value: ['ID-1'] },
      '00080020': { vr: 'DA', Value: ['not a date'] },
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.1'] },
    };
    const source = sourceInstance({ study: '1.2.3', series: '1.2.3.4', sop: '1.2.3.4.5' }, searched, new Uint8Array(300).fill(1));
    assert.deepEqual(source.patientStudy.PatientName, [{ Alphabetic: 'Searched^Name' }]);
    assert.equal(source.patientStudy.PatientID, 'ID-1');
    assert.equal(source.patientStudy.StudyDate, '', 'an invalid date is left empty');
    assert.equal(source.patientStudy.StudyInstanceUID, '1.2.3');
    assert.equal(source.sopClass, '1.2.840.10008.5.1.4.1.1.1');
    assert.throws(() => sourceInstance({ study: '1', series: '2', sop: '3' }, {}), /no SOP Class UID/);
  });

  test("dcmjs's errors are passed on naming the VR, never the value; over-long names are not copied", () => {
    const write = (extra: Record<string, unknown>) => () => writePart10({ SOPClassUID: '1.2', SOPInstanceUID: '1.3', ...extra });
    assert.throws(write({ PatientBirthDate: 'secret0123456789abcdef0123456789' }), (e: Error) => e.message === 'cannot write the DICOM object: a value is not valid for its VR (DA)');
    assert.throws(write({ PatientName: 'Secret'.repeat(20) }), (e: Error) => /\(PN\)$/.test(e.message) && !e.message.includes('Secret'));
    const long = sourceInstance({ study: '1', series: '2', sop: '3', sopClass: '1.2' }, { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'A'.repeat(65) }] } }, new Uint8Array(8));
    assert.equal(long.patientStudy.PatientName, '');
  });

  test('DS values fit 16 characters and stay close', () => {
    for (const v of [0.123456789012345678, 1e-12, 0.99999999999999, 1, 0, 5.5e-7]) {
      const ds = decimalString(v);
      assert.ok(ds.length <= 16, ds);
      assert.ok(Math.abs(Number(ds) - v) <= Math.abs(v) * 1e-9, `${v} -> ${ds}`);
    }
  });
});
