/**
 * Bad input: each case gives an error naming the file, row (and line), column and value, or with onBadRow 'skip'
 * a report of exactly what was skipped. Fixtures are real rows of the NIH subset's Data_Entry.csv, edited.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DatasetError, readChexpertDataset, readCsvDataset, readNihBoxes, readNihDataset, readNihOfficialLists } from '../../src/data/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { CHEXPERT_HEADER, writeChexpertFixture } from './chexpert.test.js';
import { NIH_SUBSET_CSV, tempFolder, writeText } from './fixtures.js';

const SUBSET_LINES = readFileSync(NIH_SUBSET_CSV, 'utf8').trim().split(/\r?\n/);
const HEADER = SUBSET_LINES[0];
const IMAGES = sharedDataPath('nih-cxr14-subset', 'images');

/** A Data_Entry-style CSV: the real header and the first `count` real rows, with edits applied. */
function nihCsv(edit: (rows: string[]) => string[], header = HEADER, count = 5): string {
  return writeText(join(tempFolder(), 'Data_Entry.csv'), [header, ...edit(SUBSET_LINES.slice(1, count + 1))].join('\n') + '\n');
}
const setField = (line: string, index: number, value: string) => line.split(',').map((f, i) => (i === index ? value : f)).join(',');
/** A row for an image that is not on disk (patient 9999999, consistent with its Patient ID). */
const absentImage = (line: string) => setField(setField(line, 0, '09999999_000.png'), 3, '9999999');

describe('bad NIH input', () => {
  it('a missing image file names the file, row, line, column and value', async () => {
    const csv = nihCsv((rows) => [...rows.slice(0, 2), absentImage(rows[2]), ...rows.slice(3)]);
    await assert.rejects(
      readNihDataset({ csvPath: csv, imageRoot: IMAGES }),
      (e: DatasetError) =>
        e instanceof DatasetError &&
        e.message === `${csv}, row 3 (line 4), column "Image Index", value "09999999_000.png": image file not found under ${IMAGES}` &&
        e.row === 3 &&
        e.column === 'Image Index',
    );
  });

  it('a missing column lists the columns found; a renamed one is pointed out and can be named', async () => {
    const withoutFindings = nihCsv((rows) => rows.map((r) => r.split(',').filter((_, i) => i !== 1).join(',')), HEADER.replace('Finding Labels,', ''));
    await assert.rejects(readNihDataset({ csvPath: withoutFindings, imageRoot: IMAGES }), /line 1\): missing column "Finding Labels"; columns found: "Image Index", "Follow-up #"/);
    const renamed = nihCsv((rows) => rows, HEADER.replace('Finding Labels', 'Finding_Label'));
    await assert.rejects(readNihDataset({ csvPath: renamed, imageRoot: IMAGES }), /missing column "Finding Labels" \(is "Finding_Label" a renamed "Finding Labels"\? name it in the column options\)/);
    const dataset = await readNihDataset({ csvPath: renamed, imageRoot: IMAGES, columns: { findings: 'Finding_Label' } });
    assert.equal(dataset.records.length, 5);
    await assert.rejects(readNihDataset({ csvPath: renamed, imageRoot: IMAGES, columns: { findings: 'Labels' } }), /missing column "Labels"/);
  });

  it('an unknown finding name is an error naming it', async () => {
    const csv = nihCsv((rows) => [rows[0], setField(rows[1], 1, 'Atelectasis|Pneumonitis'), ...rows.slice(2)]);
    await assert.rejects(
      readNihDataset({ csvPath: csv, imageRoot: IMAGES }),
      /row 2 \(line 3\), column "Finding Labels", value "Atelectasis\|Pneumonitis": unknown finding "Pneumonitis"; NIH's findings are Atelectasis, Cardiomegaly/,
    );
    const mixed = nihCsv((rows) => [setField(rows[0], 1, 'No Finding|Mass'), ...rows.slice(1)]);
    await assert.rejects(readNihDataset({ csvPath: mixed, imageRoot: IMAGES }), /row 1 \(line 2\).*"No Finding" together with findings/);
  });

  it('a duplicate row names the row it repeats', async () => {
    const csv = nihCsv((rows) => [...rows, rows[1]]);
    await assert.rejects(readNihDataset({ csvPath: csv, imageRoot: IMAGES }), /row 6 \(line 7\), column "Image Index", value "00000100_000.png": duplicate: the same image is already on row 2/);
  });

  it('an empty dataset is an error: empty file, header only, every row skipped', async () => {
    const folder = tempFolder();
    await assert.rejects(readNihDataset({ csvPath: writeText(join(folder, 'a.csv'), ''), imageRoot: IMAGES }), /a.csv: empty file: no header row/);
    await assert.rejects(readNihDataset({ csvPath: writeText(join(folder, 'b.csv'), `${HEADER}\n`), imageRoot: IMAGES }), /b.csv: empty dataset: the file has a header but no rows/);
    const allBad = nihCsv((rows) => rows.map((r) => setField(r, 1, 'Flu')));
    await assert.rejects(readNihDataset({ csvPath: allBad, imageRoot: IMAGES, onBadRow: 'skip' }), /empty dataset: all 5 rows were skipped/);
  });

  it('malformed CSV, short rows, mismatched patient, bad age and sex name what is wrong', async () => {
    const quote = nihCsv((rows) => [rows[0], rows[1].replace(',Atelectasis', ',"Atelectasis'), ...rows.slice(2)]);
    await assert.rejects(readNihDataset({ csvPath: quote, imageRoot: IMAGES }), /Data_Entry.csv, row 2 \(line 3\): malformed CSV: Quoted field unterminated/);
    const short = nihCsv((rows) => [rows[0], rows[1].split(',').slice(0, 4).join(','), ...rows.slice(2)]);
    await assert.rejects(readNihDataset({ csvPath: short, imageRoot: IMAGES }), /row 2 \(line 3\): has 4 fields, the header has 11/);
    const patient = nihCsv((rows) => [setField(rows[0], 3, '76'), ...rows.slice(1)]);
    await assert.rejects(readNihDataset({ csvPath: patient, imageRoot: IMAGES }), /column "Patient ID", value "76": Patient ID "76" does not match the patient 00000075 in the file name "00000075_000.png"/);
    const age = nihCsv((rows) => [setField(rows[0], 4, '58 years'), ...rows.slice(1)]);
    await assert.rejects(readNihDataset({ csvPath: age, imageRoot: IMAGES }), /column "Patient Age", value "58 years": age must look like "58", "058Y", "013M" or "001D"/);
    const sex = nihCsv((rows) => [setField(rows[0], 5, 'X'), ...rows.slice(1)]);
    await assert.rejects(readNihDataset({ csvPath: sex, imageRoot: IMAGES }), /column "Patient Gender", value "X": sex must be M or F/);
  });

  it('with onBadRow "skip", the report lists exactly what was skipped and why; the rest is read', async () => {
    const csv = nihCsv(
      (rows) => [
        rows[0],
        setField(rows[1], 1, 'Pneumonitis'),
        absentImage(rows[2]),
        rows[3],
        rows[0],
        setField(rows[5], 4, 'old'),
        '"unclosed',
        ...rows.slice(6),
      ],
      HEADER,
      10,
    );
    // An unclosed quote makes the rest of the file one field: that is a malformed file, not a bad row.
    await assert.rejects(readNihDataset({ csvPath: csv, imageRoot: IMAGES, onBadRow: 'skip' }), /malformed CSV/);
    const fixed = nihCsv(
      (rows) => [rows[0], setField(rows[1], 1, 'Pneumonitis'), absentImage(rows[2]), rows[3], rows[0], setField(rows[5], 4, 'old'), ...rows.slice(6)],
      HEADER,
      10,
    );
    const dataset = await readNihDataset({ csvPath: fixed, imageRoot: IMAGES, onBadRow: 'skip' });
    assert.deepEqual(
      dataset.report.skipped.map(({ row, line, column, value, reason }) => ({ row, line, column, value, reason: reason.split(';')[0] })),
      [
        { row: 2, line: 3, column: 'Finding Labels', value: 'Pneumonitis', reason: 'unknown finding "Pneumonitis"' },
        { row: 3, line: 4, column: 'Image Index', value: '09999999_000.png', reason: `image file not found under ${IMAGES}` },
        { row: 5, line: 6, column: 'Image Index', value: '00000075_000.png', reason: 'duplicate: the same image is already on row 1' },
        { row: 6, line: 7, column: 'Patient Age', value: 'old', reason: 'age must look like "58", "058Y", "013M" or "001D"' },
      ],
    );
    assert.ok(dataset.report.skipped.every((s) => s.file === fixed));
    assert.deepEqual(
      dataset.records.map((r) => r.id),
      [1, 4, 7, 8, 9, 10].map((i) => SUBSET_LINES[i].split(',')[0]),
    );
    // Labels of the rows after a skipped one are their own (no shifted label storage).
    const expectedNames = SUBSET_LINES[4].split(',')[1].split('|').sort();
    assert.deepEqual(
      dataset.records[1].labels.reduce<string[]>((names, v, j) => (v ? [...names, dataset.labelSet.labels[j]] : names), []).sort(),
      expectedNames,
    );
  });

  it('bad boxes and bad list lines are named', async () => {
    const folder = tempFolder();
    const boxes = writeText(join(folder, 'BBox_List_2017.csv'), 'Image Index,Finding Label,Bbox [x,y,w,h]\n00013118_008.png,Atelectasis,225,547,86,79\n00014716_007.png,Atelectasis,686,131,-5,313\n');
    await assert.rejects(readNihBoxes(boxes), /row 2 \(line 3\), column "w", value "-5": must be a positive number/);
    const unknown = writeText(join(folder, 'b2.csv'), 'Image Index,Finding Label,Bbox [x,y,w,h]\n00013118_008.png,Opacity,225,547,86,79\n');
    await assert.rejects(readNihBoxes(unknown), /column "Finding Label", value "Opacity": unknown finding/);
    const trainVal = writeText(join(folder, 'train_val_list.txt'), '00000001_000.png\n00000001_001.png\n00000001_000.png\n');
    const test = writeText(join(folder, 'test_list.txt'), '00000003_000.png\n');
    await assert.rejects(readNihOfficialLists(folder), /train_val_list.txt \(line 3\), value "00000001_000.png": listed twice \(also on line 1\)/);
    writeText(trainVal, '00000001_000.png\nimage.png\n');
    await assert.rejects(readNihOfficialLists(folder), /\(line 2\), value "image.png": not an NIH image name/);
    writeText(trainVal, '00000001_000.png\n00000003_000.png\n');
    await assert.rejects(readNihOfficialLists({ trainValPath: trainVal, testPath: test }), /both list 1 image\(s\): 00000003_000.png/);
  });
});

describe('bad CheXpert and generic input', () => {
  const row = ['CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg', 'Female', '68', 'Frontal', 'AP', '1.0', '', '', '', '', '', '', '', '', '0.0', '', '', '', '1.0'];

  it('a label outside 1, 0, -1 and blank names the row and the observation', async () => {
    const bad = [...row];
    bad[5 + 2] = '2.0';
    const csv = writeChexpertFixture([row, [...bad.slice(0, 0), 'CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg', ...bad.slice(1)]]);
    await assert.rejects(
      readChexpertDataset({ csvPath: csv }),
      /train.csv, row 2 \(line 3\), column "Cardiomegaly", value "2.0": label must be 1, 0, -1 or blank/,
    );
    const skipped = await readChexpertDataset({ csvPath: csv, onBadRow: 'skip' });
    assert.equal(skipped.records.length, 1);
    assert.deepEqual(skipped.report.skipped.map((s) => [s.row, s.column, s.value]), [[2, 'Cardiomegaly', '2.0']]);
    const folder = tempFolder();
    const generic = writeText(join(folder, 'g.csv'), 'image,Mass\na.png,yes\n');
    await assert.rejects(readCsvDataset({ csvPath: generic, imageColumn: 'image', labels: { columns: ['Mass'] }, checkImages: false }), /g.csv, row 1 \(line 2\), column "Mass", value "yes": label must be 1, 0, -1 or blank/);
    const list = writeText(join(folder, 'l.csv'), 'image,labels\na.png,Mass|Tumour\n');
    await assert.rejects(
      readCsvDataset({ csvPath: list, imageColumn: 'image', labels: { column: 'labels', names: ['Mass', 'Nodule'] }, checkImages: false }),
      /column "labels", value "Mass\|Tumour": unknown label "Tumour"; known labels: Mass, Nodule/,
    );
  });

  it('missing CheXpert columns, a missing image, bad view, a path without a patient, and an all-filtered file', async () => {
    const folder = tempFolder();
    const noEdema = writeText(join(folder, 'train.csv'), `${CHEXPERT_HEADER.replace(',Edema', ',Oedema')}\n`);
    await assert.rejects(readChexpertDataset({ csvPath: noEdema }), /missing column "Edema" \(is "Oedema" a renamed "Edema"\?/);
    const csv = writeChexpertFixture([row]);
    writeText(csv, `${CHEXPERT_HEADER}\n${row.join(',')}\n${row.join(',').replace('patient00001', 'patient00009')}\n`);
    await assert.rejects(readChexpertDataset({ csvPath: csv }), /row 2 \(line 3\), column "Path", value "CheXpert-v1.0-small\/train\/patient00009\/study1\/view1_frontal.jpg": image file not found/);
    writeText(csv, `${CHEXPERT_HEADER}\n${row.join(',').replace('Frontal', 'Oblique')}\n`);
    await assert.rejects(readChexpertDataset({ csvPath: csv }), /column "Frontal\/Lateral", value "Oblique": must be Frontal or Lateral/);
    writeText(csv, `${CHEXPERT_HEADER}\n${row.join(',').replace('patient00001/study1/', '')}\n`);
    await assert.rejects(readChexpertDataset({ csvPath: csv, checkImages: false }), /column "Path".*no "patientNNNNN\/studyN\/" in the path/);
    writeText(csv, `${CHEXPERT_HEADER}\n${row.join(',')}\n`);
    await assert.rejects(readChexpertDataset({ csvPath: csv, views: ['Lateral'] }), /empty dataset: of 1 rows, 0 were skipped as bad and 1 filtered out \(\{"view Frontal":1\}\)/);
    await assert.rejects(readChexpertDataset({ csvPath: csv, policy: 'U-Maybe' as never }), /unknown uncertainty policy "U-Maybe"/);
  });
});
