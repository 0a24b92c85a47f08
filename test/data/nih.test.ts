/** NIH ChestX-ray14 readers on the real files in ../shared/data. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  NIH_FINDINGS,
  classStatistics,
  indexImageFolder,
  nihPatientId,
  readNihBoxes,
  readNihDataset,
  readNihOfficialLists,
  scaleBox,
  toTargets,
} from '../../src/data/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { BBOX_CSV, NIH_1024_DIR, NIH_64_CSV, NIH_META, NIH_SUBSET_CSV, SAMPLE_LABELS_CSV, copyInto, tempFolder, writeText } from './fixtures.js';

describe('NIH Data_Entry reader on the real subset (400 images at 512 px)', () => {
  it('reads every row with the label counts the data README gives, and finds every image', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    assert.equal(dataset.records.length, 400);
    assert.deepEqual(dataset.report.skipped, []);
    const counts = Object.fromEntries(classStatistics(dataset).map((s) => [s.label, s.positives]));
    assert.deepEqual(counts, {
      Atelectasis: 52, Cardiomegaly: 41, Effusion: 47, Infiltration: 75, Mass: 48, Nodule: 61, Pneumonia: 15,
      Pneumothorax: 29, Consolidation: 52, Edema: 12, Emphysema: 31, Fibrosis: 30, Pleural_Thickening: 46, Hernia: 14,
    });
    const onDisk = new Set(readdirSync(sharedDataPath('nih-cxr14-subset', 'images')));
    for (const record of dataset.records) {
      assert.ok(onDisk.has(record.id));
      assert.equal(record.imagePath, sharedDataPath('nih-cxr14-subset', 'images', record.id));
      assert.equal(record.patientId, record.id.slice(0, 8));
    }
    assert.equal(new Set(dataset.records.map((r) => r.patientId)).size, 400);
  });

  it('matches the CSV text row by row: labels, "No Finding" as all zeros, metadata only where present', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const lines = readFileSync(NIH_SUBSET_CSV, 'utf8').trim().split(/\r?\n/).slice(1);
    lines.forEach((line, i) => {
      const [name, findings, , , age, sex, view] = line.split(',');
      const record = dataset.records[i];
      assert.equal(record.id, name);
      assert.equal(record.source.row, i + 1);
      const expected = NIH_FINDINGS.map((f) => (findings.split('|').includes(f) ? 1 : 0));
      assert.deepEqual([...record.labels], expected, name);
      assert.ok(record.mask.every((m) => m === 1));
      assert.equal(record.metadata.age, age === '' ? undefined : Number(age.replace('Y', '')));
      assert.equal(record.metadata.sex, sex === '' ? undefined : sex);
      assert.equal(record.metadata.view, view === '' ? undefined : view);
    });
    assert.equal(dataset.records.filter((r) => r.metadata.age !== undefined).length, 13);
    const { targets, mask } = toTargets(dataset);
    assert.deepEqual(targets.dims, [400, 14]);
    assert.equal(targets.data.reduce((a, b) => a + b, 0), 52 + 41 + 47 + 75 + 48 + 61 + 15 + 29 + 52 + 12 + 31 + 30 + 46 + 14);
    assert.equal(mask.data.reduce((a, b) => a + b, 0), 400 * 14);
  });

  it('attaches the official boxes: six images of the subset have them, in 1024 space, scaled to 512', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV, boxesPath: BBOX_CSV });
    const boxed = dataset.records.filter((r) => r.boxes !== undefined);
    assert.equal(boxed.length, 6);
    const bboxLines = readFileSync(BBOX_CSV, 'utf8').trim().split(/\r?\n/).slice(1);
    for (const record of boxed) {
      const expected = bboxLines.filter((line) => line.startsWith(`${record.id},`));
      assert.equal(record.boxes!.length, expected.length);
      const [, finding, x, y, w, h] = expected[0].split(',');
      const box = record.boxes![0];
      assert.equal(box.finding, finding === 'Infiltrate' ? 'Infiltration' : finding);
      assert.equal(record.states[NIH_FINDINGS.indexOf(box.finding as never)], 1, `${record.id}: boxed finding is labelled`);
      assert.deepEqual([box.x, box.y, box.width, box.height], [Number(x), Number(y), Number(w), Number(h)]);
      assert.deepEqual(box.space, { width: 1024, height: 1024 });
      const half = scaleBox(box, 512, 512);
      assert.deepEqual([half.x, half.y, half.width, half.height], [box.x / 2, box.y / 2, box.width / 2, box.height / 2]);
    }
    assert.match(dataset.report.warnings.join('\n'), /978 box\(es\) belong to images that are not in/);
  });
});

describe("NIH's sample_labels.csv (5,606 rows, Data_Entry layout with plain size column names)", () => {
  it('reads all rows with ages in years, months and days, sex, view, size and spacing', async () => {
    const dataset = await readNihDataset({ csvPath: SAMPLE_LABELS_CSV, checkImages: false });
    assert.equal(dataset.records.length, 5606);
    const first = dataset.records[0];
    assert.equal(first.id, '00000013_005.png');
    assert.equal(first.patientId, '00000013');
    assert.deepEqual(first.metadata, {
      age: 60, sex: 'M', view: 'AP', followUp: 5, originalSize: { width: 3056, height: 2544 }, pixelSpacing: { x: 0.139, y: 0.139 },
    });
    assert.deepEqual(
      [...first.labels].map((v, j) => (v ? NIH_FINDINGS[j] : '')).filter(Boolean).sort(),
      ['Emphysema', 'Infiltration', 'Pleural_Thickening', 'Pneumothorax'],
    );
    const byView = new Map<string, number>();
    for (const r of dataset.records) byView.set(r.metadata.view!, (byView.get(r.metadata.view!) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(byView), { AP: 2213, PA: 3393 });
    const months = dataset.records.find((r) => r.source.row === lineIndexOf(SAMPLE_LABELS_CSV, ',013M,'))!;
    assert.equal(months.metadata.age, 13 / 12);
    const days = dataset.records.find((r) => r.source.row === lineIndexOf(SAMPLE_LABELS_CSV, ',001D,'))!;
    assert.equal(days.metadata.age, 1 / 365);
    const noFinding = dataset.records.filter((r) => r.labels.every((v) => v === 0)).length;
    assert.equal(noFinding, 3044);
    const stats = Object.fromEntries(classStatistics(dataset).map((s) => [s.label, s.positives]));
    assert.equal(stats.Infiltration, 967);
    assert.equal(stats.Hernia, 13);
    // Without images, paths point where NIH's layout would put them.
    assert.equal(first.imagePath, join(NIH_META, 'images', '00000013_005.png'));
  });

  it('reads the same rows written as Data_Entry_2017.csv (bracketed header, trailing comma, "058Y") and as v2020 ("58")', async () => {
    const folder = tempFolder();
    const sample = readFileSync(SAMPLE_LABELS_CSV, 'utf8').trim().split(/\r?\n/).slice(1);
    const header2017 = 'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],';
    const v2017 = writeText(join(folder, 'Data_Entry_2017.csv'), [header2017, ...sample.map((l) => `${l},`)].join('\n') + '\n');
    const header2020 = header2017.slice(0, -1);
    const rows2020 = sample.map((l) => l.split(',').map((f, i) => (i === 4 ? String(parseInt(f, 10)) : f)).join(','));
    const v2020 = writeText(join(folder, 'Data_Entry_2017_v2020.csv'), [header2020, ...rows2020].join('\r\n'));
    const original = await readNihDataset({ csvPath: SAMPLE_LABELS_CSV, checkImages: false });
    const a = await readNihDataset({ csvPath: v2017, checkImages: false });
    const b = await readNihDataset({ csvPath: v2020, checkImages: false });
    assert.equal(a.records.length, 5606);
    assert.equal(b.records.length, 5606);
    original.records.forEach((r, i) => {
      assert.deepEqual(a.records[i].metadata, r.metadata);
      assert.deepEqual([...a.records[i].labels], [...r.labels]);
      const written = sample[i].split(',')[4];
      assert.equal(b.records[i].metadata.age, written.endsWith('Y') ? r.metadata.age : parseInt(written, 10));
      assert.deepEqual(b.records[i].metadata.originalSize, r.metadata.originalSize);
      assert.deepEqual([...b.records[i].states], [...r.states]);
    });
  });
});

describe('NIH 64 px set and the 1024 px originals', () => {
  it('reads 1000 images of 264 patients (Patient ID column checked against the file name)', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    assert.equal(dataset.records.length, 1000);
    assert.equal(new Set(dataset.records.map((r) => r.patientId)).size, 264);
    assert.equal(dataset.records.filter((r) => r.labels.every((v) => v === 0)).length, 500);
  });

  it('with the 1024 px folder and skipping, lists exactly the 976 rows whose image is not there', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV, imageRoot: NIH_1024_DIR, onBadRow: 'skip' });
    const present = readdirSync(NIH_1024_DIR).sort();
    assert.deepEqual(dataset.records.map((r) => r.id).sort(), present);
    assert.equal(present.length, 24);
    assert.equal(dataset.report.skipped.length, 976);
    const csvNames = readFileSync(NIH_64_CSV, 'utf8').trim().split(/\r?\n/).slice(1).map((l) => l.split(',')[0]);
    const missing = csvNames.filter((name) => !present.includes(name));
    assert.deepEqual(dataset.report.skipped.map((s) => s.value), missing);
    const first = dataset.report.skipped[0];
    assert.equal(first.column, 'Image Index');
    assert.equal(first.file, NIH_64_CSV);
    assert.equal(first.line, first.row! + 1);
    assert.match(first.reason, /image file not found under .*images-1024/);
  });

  it("finds images in NIH's archive layout: images_001/images/, images_002/, images/", async () => {
    const root = tempFolder();
    const names = readdirSync(NIH_1024_DIR).slice(0, 6);
    copyInto(join(NIH_1024_DIR, names[0]), join(root, 'images_001', 'images', names[0]));
    copyInto(join(NIH_1024_DIR, names[1]), join(root, 'images_001', 'images', names[1]));
    copyInto(join(NIH_1024_DIR, names[2]), join(root, 'images_002', names[2]));
    copyInto(join(NIH_1024_DIR, names[3]), join(root, 'images_012', 'images', names[3]));
    copyInto(join(NIH_1024_DIR, names[4]), join(root, 'images', names[4]));
    copyInto(join(NIH_1024_DIR, names[5]), join(root, names[5]));
    const index = indexImageFolder(root);
    assert.equal(index.get(names[0]), join(root, 'images_001', 'images', names[0]));
    assert.equal(index.get(names[2]), join(root, 'images_002', names[2]));
    assert.equal(index.get(names[3]), join(root, 'images_012', 'images', names[3]));
    assert.equal(index.get(names[4]), join(root, 'images', names[4]));
    assert.equal(index.get(names[5]), join(root, names[5]));
    const lines = readFileSync(NIH_64_CSV, 'utf8').trim().split(/\r?\n/);
    const csv = writeText(join(root, 'Data_Entry_2017.csv'), [lines[0], ...lines.slice(1).filter((l) => names.includes(l.split(',')[0]))].join('\n'));
    const dataset = await readNihDataset({ csvPath: csv });
    assert.deepEqual(dataset.records.map((r) => r.imagePath).sort(), [...index.values()].sort());
    copyInto(join(NIH_1024_DIR, names[0]), join(root, 'images_003', names[0]));
    assert.throws(() => indexImageFolder(root), new RegExp(`image "${names[0]}" is in two places`));
  });
});

describe('BBox_List_2017.csv and the official lists', () => {
  it('reads 984 boxes on 880 images over 8 findings', async () => {
    const boxes = await readNihBoxes(BBOX_CSV);
    assert.equal(boxes.size, 880);
    const all = [...boxes.values()].flat();
    assert.equal(all.length, 984);
    const byFinding = new Map<string, number>();
    for (const b of all) byFinding.set(b.finding, (byFinding.get(b.finding) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries([...byFinding].sort()), {
      Atelectasis: 180, Cardiomegaly: 146, Effusion: 153, Infiltration: 123, Mass: 85, Nodule: 79, Pneumonia: 120, Pneumothorax: 98,
    });
    assert.deepEqual(boxes.get('00013118_008.png')![0], {
      finding: 'Atelectasis', x: 225.0847458, y: 547.0192168, width: 86.77966102, height: 79.18644068, space: { width: 1024, height: 1024 },
    });
  });

  it('reads 86,524 + 25,596 = 112,120 names', async () => {
    const lists = await readNihOfficialLists(NIH_META);
    assert.equal(lists.trainVal.length, 86524);
    assert.equal(lists.test.length, 25596);
    assert.equal(new Set([...lists.trainVal, ...lists.test]).size, 112120);
    assert.equal(lists.trainVal[0], '00000001_000.png');
    assert.equal(nihPatientId(lists.test[0]), '00000003');
  });
});

function lineIndexOf(path: string, needle: string): number {
  return readFileSync(path, 'utf8').split(/\r?\n/).findIndex((line) => line.includes(needle));
}

describe("NIH's complete metadata file as a join", () => {
  const complete = join(NIH_META, 'Data_Entry_2017_v2020.csv.gz');

  it('gives every image of nih-cxr14-subset its age, sex and view, keeping what the labels file says', async () => {
    const plain = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const joined = await readNihDataset({ csvPath: NIH_SUBSET_CSV, metadataPath: complete });
    assert.equal(plain.records.filter((r) => r.metadata.view !== undefined).length, 13);
    assert.equal(joined.records.length, 400);
    for (const record of joined.records) {
      assert.ok(record.metadata.view === 'PA' || record.metadata.view === 'AP', `${record.id}: view ${record.metadata.view}`);
      assert.ok(record.metadata.sex === 'M' || record.metadata.sex === 'F');
      assert.ok(record.metadata.age! > 0 && record.metadata.age! < 100);
    }
    // The labels file's own values win over the join.
    for (const before of plain.records.filter((r) => r.metadata.age !== undefined)) {
      assert.equal(joined.records.find((r) => r.id === before.id)!.metadata.age, before.metadata.age);
    }
    assert.deepEqual(joined.records.map((r) => r.states.join()), plain.records.map((r) => r.states.join()), 'the join reads no labels');
    assert.deepEqual(joined.report.warnings, []);
  });

  it('says how many images a smaller metadata file does not list', async () => {
    const joined = await readNihDataset({ csvPath: NIH_SUBSET_CSV, metadataPath: SAMPLE_LABELS_CSV });
    const listed = joined.records.filter((r) => r.metadata.view !== undefined).length;
    // The 13 images whose labels file row has metadata are the ones NIH's sample file lists.
    assert.equal(listed, 13);
    assert.match(joined.report.warnings.join('\n'), /sample_labels\.csv has no row for 387 of the 400 images/);
  });
});

describe("NIH's metadata join on bad input", () => {
  it('names a metadata file that is missing or not gzip', async () => {
    const dir = tempFolder();
    await assert.rejects(readNihDataset({ csvPath: NIH_SUBSET_CSV, metadataPath: join(dir, 'absent.csv.gz') }), /absent\.csv\.gz: cannot read CSV file/);
    const fake = writeText(join(dir, 'fake.csv.gz'), 'Image Index,Patient Age\n');
    await assert.rejects(readNihDataset({ csvPath: NIH_SUBSET_CSV, metadataPath: fake }), /fake\.csv\.gz: cannot read CSV file: incorrect header check/);
  });
});
