/**
 * CheXpert reader and uncertainty policies. CheXpert itself is not on this machine: these tests write small CSVs
 * with CheXpert's real column names and layout (train.csv) and place real NIH 64 px PNGs at their paths.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CHEXPERT_COMPETITION_TASKS,
  CHEXPERT_OBSERVATIONS,
  LSR_ONES_RANGE,
  LSR_ZEROS_RANGE,
  LabelState,
  THREE_STATE,
  applyUncertaintyPolicy,
  classStatistics,
  readChexpertDataset,
  relabelUncertain,
  threeStateTargets,
  toTargets,
  type Dataset,
} from '../../src/data/index.js';
import { float32 } from '../../src/onnx/tensor.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { copyInto, tempFolder, writeText } from './fixtures.js';

export const CHEXPERT_HEADER = ['Path', 'Sex', 'Age', 'Frontal/Lateral', 'AP/PA', ...CHEXPERT_OBSERVATIONS].join(',');

/** Rows as CheXpert writes them: "1.0", "0.0", "-1.0" or empty. */
const ROWS = [
  // path, sex, age, view, projection, 14 observations
  ['CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg', 'Female', '68', 'Frontal', 'AP', '1.0', '', '', '', '', '', '', '', '', '0.0', '', '', '', '1.0'],
  ['CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg', 'Female', '87', 'Frontal', 'AP', '', '', '-1.0', '1.0', '', '-1.0', '-1.0', '', '-1.0', '', '-1.0', '', '1.0', ''],
  ['CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg', 'Female', '83', 'Frontal', 'AP', '', '', '', '1.0', '', '', '-1.0', '', '', '', '', '', '1.0', ''],
  ['CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg', 'Female', '83', 'Lateral', '', '', '', '', '1.0', '', '', '-1.0', '', '', '', '', '', '1.0', ''],
  ['CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg', 'Male', '41', 'Frontal', 'AP', '', '', '', '', '', '1.0', '', '', '', '0.0', '', '', '', ''],
  ['CheXpert-v1.0-small/train/patient00004/study1/view1_frontal.jpg', 'Female', '20', 'Frontal', 'PA', '1.0', '0.0', '', '', '', '', '', '', '', '0.0', '', '', '', ''],
  ['CheXpert-v1.0-small/train/patient00004/study1/view2_lateral.jpg', 'Female', '20', 'Lateral', '', '1.0', '0.0', '', '', '', '', '', '', '', '0.0', '', '', '', ''],
  ['CheXpert-v1.0-small/train/patient00005/study1/view1_frontal.jpg', 'Male', '33', 'Frontal', 'PA', '1.0', '', '', '', '', '', '0.0', '', '', '', '0.0', '', '', '1.0'],
  ['CheXpert-v1.0-small/train/patient00005/study2/view1_frontal.jpg', 'Male', '33', 'Frontal', 'AP', '', '', '1.0', '-1.0', '', '', '', '', '', '', '-1', '', '', '1'],
];

/** A CheXpert-like folder: CheXpert-v1.0-small/train.csv and real PNG pixels at the listed paths. */
export function writeChexpertFixture(rows: string[][] = ROWS): string {
  const root = tempFolder('cxr-chexpert-');
  const pngs = readdirSync(sharedDataPath('nih-cxr14-64px', 'images'));
  rows.forEach((row, i) => copyInto(sharedDataPath('nih-cxr14-64px', 'images', pngs[i]), join(root, row[0])));
  return writeText(join(root, 'CheXpert-v1.0-small', 'train.csv'), [CHEXPERT_HEADER, ...rows.map((r) => r.join(','))].join('\n') + '\n');
}

const col = (name: string) => CHEXPERT_OBSERVATIONS.indexOf(name as never);

describe('CheXpert reader', () => {
  it('reads paths, patients, studies, metadata and the four label states', async () => {
    const csv = writeChexpertFixture();
    const dataset = await readChexpertDataset({ csvPath: csv });
    assert.equal(dataset.records.length, 9);
    assert.deepEqual(dataset.labelSet.labels, CHEXPERT_OBSERVATIONS);
    const second = dataset.records[1];
    assert.equal(second.patientId, 'patient00002');
    assert.equal(second.metadata.study, 'patient00002/study2');
    assert.deepEqual({ ...second.metadata, study: undefined }, { age: 87, sex: 'F', view: 'Frontal', projection: 'AP', study: undefined });
    assert.equal(second.imagePath, join(csv, '..', '..', ROWS[1][0]));
    assert.equal(second.states[col('Cardiomegaly')], LabelState.uncertain);
    assert.equal(second.states[col('Lung Opacity')], LabelState.positive);
    assert.equal(second.states[col('No Finding')], LabelState.blank);
    assert.equal(dataset.records[0].states[col('Pneumothorax')], LabelState.negative);
    // "-1" and "1" without decimals are read too.
    assert.equal(dataset.records[8].states[col('Pleural Effusion')], LabelState.uncertain);
    assert.equal(dataset.records[8].states[col('Support Devices')], LabelState.positive);
    assert.equal(new Set(dataset.records.map((r) => r.patientId)).size, 5);
  });

  it('filters views and projections on request and counts what it left out', async () => {
    const csv = writeChexpertFixture();
    const frontal = await readChexpertDataset({ csvPath: csv, views: ['Frontal'] });
    assert.equal(frontal.records.length, 7);
    assert.deepEqual(frontal.report.filtered, { 'view Lateral': 2 });
    const pa = await readChexpertDataset({ csvPath: csv, views: ['Frontal'], projections: ['PA'] });
    assert.deepEqual(pa.records.map((r) => r.id), [ROWS[5][0], ROWS[7][0]]);
    assert.deepEqual(pa.report.filtered, { 'view Lateral': 2, 'projection AP': 5 });
    const lateralAndAp = await readChexpertDataset({ csvPath: csv, projections: ['AP'] });
    assert.equal(lateralAndAp.records.length, 7);
    assert.deepEqual(lateralAndAp.report.filtered, { 'projection PA': 2 });
  });

  it('reads a subset of observations in the order asked (the competition tasks)', async () => {
    const dataset = await readChexpertDataset({ csvPath: writeChexpertFixture(), observations: CHEXPERT_COMPETITION_TASKS });
    assert.deepEqual(dataset.labelSet.labels, ['Atelectasis', 'Cardiomegaly', 'Consolidation', 'Edema', 'Pleural Effusion']);
    assert.deepEqual([...dataset.records[1].states], [-1, -1, -1, -1, -1]);
  });
});

describe('uncertainty policies', () => {
  const uncertainEntries = (d: Dataset) => d.records.flatMap((r, i) => [...r.states].flatMap((s, j) => (s === LabelState.uncertain ? [[i, j]] : [])));

  it('U-Ignore masks uncertain entries; U-Zeros and U-Ones map them to 0 and 1; blanks are negatives', async () => {
    const csv = writeChexpertFixture();
    const ignore = await readChexpertDataset({ csvPath: csv });
    const zeros = await readChexpertDataset({ csvPath: csv, policy: 'U-Zeros' });
    const ones = await readChexpertDataset({ csvPath: csv, policy: 'U-Ones' });
    const uncertain = uncertainEntries(ignore);
    assert.equal(uncertain.length, 9);
    for (const [i, j] of uncertain) {
      assert.equal(ignore.records[i].mask[j], 0);
      assert.equal(zeros.records[i].mask[j], 1);
      assert.equal(zeros.records[i].labels[j], 0);
      assert.equal(ones.records[i].mask[j], 1);
      assert.equal(ones.records[i].labels[j], 1);
    }
    const blank = ignore.records[1];
    assert.equal(blank.mask[col('No Finding')], 1);
    assert.equal(blank.labels[col('No Finding')], 0);
    const stats = classStatistics(ignore).find((s) => s.label === 'Consolidation')!;
    assert.deepEqual({ ...stats }, { label: 'Consolidation', positives: 0, negatives: 6, ignored: 3, uncertain: 3, prevalence: 0 });
    const blanksIgnored = await readChexpertDataset({ csvPath: csv, blank: 'ignore' });
    assert.equal(blanksIgnored.records[1].mask[col('No Finding')], 0);
    assert.equal(blanksIgnored.records[0].mask[col('Pneumothorax')], 1);
  });

  it('LSR-Ones and LSR-Zeros draw uncertain targets in [0.55, 0.85] and [0, 0.3], the same for the same seed', async () => {
    const csv = writeChexpertFixture();
    const lsrOnes = await readChexpertDataset({ csvPath: csv, policy: 'LSR-Ones', seed: 7 });
    const again = await readChexpertDataset({ csvPath: csv, policy: 'LSR-Ones', seed: 7 });
    const other = await readChexpertDataset({ csvPath: csv, policy: 'LSR-Ones', seed: 8 });
    const lsrZeros = applyUncertaintyPolicy(lsrOnes, 'LSR-Zeros', { seed: 7 });
    const values = (d: Dataset) => uncertainEntries(d).map(([i, j]) => d.records[i].labels[j]);
    assert.ok(values(lsrOnes).every((v) => v >= LSR_ONES_RANGE[0] && v <= LSR_ONES_RANGE[1]));
    assert.ok(values(lsrZeros).every((v) => v >= LSR_ZEROS_RANGE[0] && v <= LSR_ZEROS_RANGE[1]));
    assert.deepEqual(values(lsrOnes), values(again));
    assert.notDeepEqual(values(lsrOnes), values(other));
    assert.equal(new Set(values(lsrOnes)).size, 9, 'each uncertain entry gets its own draw');
    assert.ok(uncertainEntries(lsrOnes).every(([i, j]) => lsrOnes.records[i].mask[j] === 1));
    // Certain entries are untouched by smoothing.
    assert.equal(lsrOnes.records[0].labels[col('No Finding')], 1);
    assert.equal(lsrOnes.records[0].labels[col('Pneumothorax')], 0);
  });

  it('U-MultiClass gives a three-state target per label and U-Ignore as its binary view', async () => {
    const dataset = await readChexpertDataset({ csvPath: writeChexpertFixture(), policy: 'U-MultiClass' });
    const { classes, mask } = threeStateTargets(dataset);
    assert.equal(classes.dtype, 'int64');
    assert.deepEqual(classes.dims, [9, 14]);
    const c = CHEXPERT_OBSERVATIONS.length;
    dataset.records.forEach((record, i) =>
      record.states.forEach((state, j) => {
        const expected = state === LabelState.positive ? THREE_STATE.positive : state === LabelState.uncertain ? THREE_STATE.uncertain : THREE_STATE.negative;
        assert.equal(classes.data[i * c + j], BigInt(expected));
        assert.equal(mask.data[i * c + j], 1);
        assert.equal(record.mask[j], state === LabelState.uncertain ? 0 : 1);
      }),
    );
    const ignoringBlanks = threeStateTargets(dataset, { blank: 'ignore' });
    assert.equal(ignoringBlanks.mask.data[1 * c + col('No Finding')], 0);
  });

  it('U-SelfTrained: relabelUncertain puts a model\'s probabilities on the uncertain entries only', async () => {
    const dataset = await readChexpertDataset({ csvPath: writeChexpertFixture() });
    const n = dataset.records.length;
    const c = CHEXPERT_OBSERVATIONS.length;
    const probabilities = float32([n, c], Array.from({ length: n * c }, (_, k) => ((k * 37) % 101) / 100));
    const soft = relabelUncertain(dataset, probabilities);
    const hard = relabelUncertain(dataset, probabilities.data, { mode: 'hard', threshold: 0.5 });
    assert.equal(soft.policy, 'U-SelfTrained');
    const before = toTargets(dataset);
    const after = toTargets(soft);
    for (let k = 0; k < n * c; k++) {
      const state = dataset.records[Math.floor(k / c)].states[k % c];
      if (state === LabelState.uncertain) {
        assert.equal(after.targets.data[k], probabilities.data[k]);
        assert.equal(after.mask.data[k], 1);
        assert.equal(toTargets(hard).targets.data[k], probabilities.data[k] >= 0.5 ? 1 : 0);
      } else {
        assert.equal(after.targets.data[k], before.targets.data[k]);
        assert.equal(after.mask.data[k], before.mask.data[k]);
      }
    }
    assert.throws(() => relabelUncertain(dataset, float32([n, c - 1])), /shape \[9, 13\], the dataset needs \[9, 14\]/);
    const broken = Float32Array.from(probabilities.data);
    broken[1 * c + col('Cardiomegaly')] = 1.5;
    assert.throws(() => relabelUncertain(dataset, broken), /record 1 \("CheXpert-v1.0-small\/train\/patient00002\/study2\/view1_frontal.jpg"\), label "Cardiomegaly" is 1.5/);
    assert.throws(() => applyUncertaintyPolicy(dataset, 'U-SelfTrained'), /read the dataset with U-Ignore, train, then call relabelUncertain/);
  });
});
