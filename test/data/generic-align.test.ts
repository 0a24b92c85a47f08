/** The generic CSV reader and moving labels between NIH and CheXpert through the alignment table. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CHEXPERT_LABEL_SET,
  CHEXPERT_OBSERVATIONS,
  LabelState,
  NIH_CHEXPERT_ALIGNMENT,
  NIH_FINDINGS,
  NIH_LABEL_SET,
  alignDataset,
  classStatistics,
  labelCorrespondence,
  readChexpertDataset,
  readCsvDataset,
  readNihDataset,
  relation,
} from '../../src/data/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { writeChexpertFixture } from './chexpert.test.js';
import { NIH_64_CSV, NIH_SUBSET_CSV, tempFolder, writeText } from './fixtures.js';

describe('generic CSV + image folder', () => {
  it('reads a label-list column (NIH 64 px labels.csv under other names) like the NIH reader does', async () => {
    const folder = tempFolder();
    const lines = readFileSync(NIH_64_CSV, 'utf8').trim().split(/\r?\n/).slice(1);
    const csv = writeText(
      join(folder, 'my.csv'),
      ['file,findings,patient', ...lines.map((l) => l.split(',')).map(([name, findings, , patient]) => `images/${name},${findings},p${patient}`)].join('\n'),
    );
    const generic = await readCsvDataset({
      csvPath: csv,
      imageRoot: sharedDataPath('nih-cxr14-64px'),
      imageColumn: 'file',
      patientColumn: 'patient',
      labels: { column: 'findings', names: NIH_FINDINGS, none: 'No Finding' },
      labelSetName: 'nih-like',
    });
    const nih = await readNihDataset({ csvPath: NIH_64_CSV });
    assert.equal(generic.records.length, 1000);
    assert.equal(new Set(generic.records.map((r) => r.patientId)).size, 264);
    generic.records.forEach((r, i) => {
      assert.equal(r.imagePath, nih.records[i].imagePath);
      assert.deepEqual([...r.labels], [...nih.records[i].labels]);
    });
    assert.deepEqual(generic.report.warnings, []);
  });

  it('reads one column per label with 1/0/-1/blank, and warns when there is no patient column', async () => {
    const folder = tempFolder();
    const csv = writeText(
      join(folder, 'labels.csv'),
      ['image,Effusion,Mass,age,sex', '00000001_000.png,1,0,58,M', '00000001_001.png,-1,,61,Female', '00000002_000.png,0.0,1.0,,'].join('\n'),
    );
    const dataset = await readCsvDataset({
      csvPath: csv,
      imageRoot: sharedDataPath('nih-cxr14-64px', 'images'),
      imageColumn: 'image',
      labels: { columns: ['Effusion', 'Mass'] },
      ageColumn: 'age',
      sexColumn: 'sex',
      policy: 'U-Ones',
    });
    assert.deepEqual(dataset.records.map((r) => [...r.states]), [[1, 0], [-1, -2], [0, 1]]);
    assert.deepEqual(dataset.records.map((r) => [...r.labels]), [[1, 0], [1, 0], [0, 1]]);
    assert.deepEqual(dataset.records.map((r) => r.metadata), [{ age: 58, sex: 'M' }, { age: 61, sex: 'F' }, {}]);
    assert.deepEqual(dataset.records.map((r) => r.patientId), dataset.records.map((r) => r.id));
    assert.match(dataset.report.warnings[0], /no patient column given; each image is treated as its own patient/);
  });
});

describe('NIH <-> CheXpert alignment', () => {
  it('the table pairs real names of both sets, and "same" pairs are exactly the seven shared findings', () => {
    for (const entry of NIH_CHEXPERT_ALIGNMENT) {
      assert.ok(NIH_FINDINGS.includes(entry.nih));
      assert.ok(CHEXPERT_OBSERVATIONS.includes(entry.chexpert));
    }
    const same = labelCorrespondence(NIH_LABEL_SET, CHEXPERT_LABEL_SET);
    assert.deepEqual(
      same.map((p) => `${p.from}->${p.to}`),
      ['Atelectasis->Atelectasis', 'Cardiomegaly->Cardiomegaly', 'Effusion->Pleural Effusion', 'Pneumonia->Pneumonia', 'Pneumothorax->Pneumothorax', 'Consolidation->Consolidation', 'Edema->Edema'],
    );
    assert.deepEqual(same[2], { from: 'Effusion', to: 'Pleural Effusion', fromIndex: 2, toIndex: 10, kind: 'same' });
    const reverse = labelCorrespondence(CHEXPERT_LABEL_SET, NIH_LABEL_SET, 'approximate');
    assert.equal(reverse.length, 11);
    assert.equal(relation('Lung Lesion', 'Mass'), 'broader');
    assert.equal(relation('Mass', 'Lung Lesion'), 'narrower');
    assert.equal(relation('Hernia', 'Fracture'), undefined);
  });

  it('NIH subset labels moved onto CheXpert: shared findings keep their counts, the rest is masked', async () => {
    const nih = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const onChexpert = alignDataset(nih, CHEXPERT_LABEL_SET);
    const stats = Object.fromEntries(classStatistics(onChexpert).map((s) => [s.label, s]));
    assert.equal(stats['Pleural Effusion'].positives, 47);
    assert.equal(stats.Atelectasis.positives, 52);
    assert.equal(stats.Edema.positives, 12);
    for (const masked of ['No Finding', 'Enlarged Cardiomediastinum', 'Lung Opacity', 'Lung Lesion', 'Pleural Other', 'Fracture', 'Support Devices']) {
      assert.equal(stats[masked].ignored, 400, masked);
    }
    const approximate = alignDataset(nih, CHEXPERT_LABEL_SET, { include: 'approximate' });
    const approx = Object.fromEntries(classStatistics(approximate).map((s) => [s.label, s]));
    const noFindingRows = readFileSync(NIH_SUBSET_CSV, 'utf8').split(/\r?\n/).filter((l) => l.includes(',No Finding,')).length;
    assert.equal(approx['No Finding'].positives, noFindingRows);
    const massOrNodule = nih.records.filter((r) => r.labels[4] === 1 || r.labels[5] === 1).length;
    assert.equal(approx['Lung Lesion'].positives, massOrNodule);
    assert.equal(approx['Lung Lesion'].ignored, 0);
    assert.equal(approx.Fracture.ignored, 400);
  });

  it('CheXpert labels moved onto NIH keep uncertainty for the policy, and broader labels give only negatives', async () => {
    const chexpert = await readChexpertDataset({ csvPath: writeChexpertFixture(), policy: 'U-Ones' });
    const onNih = alignDataset(chexpert, NIH_LABEL_SET, { include: 'approximate' });
    const nihIndex = (name: string) => NIH_FINDINGS.indexOf(name as never);
    const second = onNih.records[1];
    assert.equal(second.states[nihIndex('Effusion')], LabelState.uncertain);
    assert.equal(second.labels[nihIndex('Effusion')], 1, 'U-Ones applied after alignment');
    assert.equal(second.states[nihIndex('Infiltration')], LabelState.unavailable, 'Lung Opacity positive says nothing about infiltration');
    assert.equal(second.mask[nihIndex('Infiltration')], 0);
    assert.equal(second.mask[nihIndex('Hernia')], 0);
    // patient00004 has No Finding = 1: findings without counterpart become negatives.
    const noFinding = onNih.records[5];
    assert.equal(noFinding.states[nihIndex('Hernia')], LabelState.negative);
    assert.equal(noFinding.mask[nihIndex('Hernia')], 1);
    const strict = alignDataset(chexpert, NIH_LABEL_SET);
    assert.equal(strict.records[5].mask[nihIndex('Hernia')], 0);
  });
});
