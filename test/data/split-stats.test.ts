/** Patient-level splits, the leakage check, class statistics and the class-balanced sampler on real NIH data. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ClassBalancedSampler,
  LabelState,
  NIH_FINDINGS,
  PatientLeakageError,
  checkNoLeakage,
  classStatistics,
  findLeakage,
  nihListMembers,
  officialNihSplit,
  positiveWeights,
  readNihDataset,
  readNihOfficialLists,
  splitByPatient,
  subsetOf,
  type Dataset,
} from '../../src/data/index.js';
import { NIH_64_CSV, NIH_META, NIH_SUBSET_CSV } from './fixtures.js';

const patients = (d: Dataset) => new Set(d.records.map((r) => r.patientId));

describe('patient-level splits', () => {
  it('keeps every patient of the 64 px set (several images each) on one side, covering all records once', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    const splits = splitByPatient(dataset, { fractions: { train: 0.7, validation: 0.1, test: 0.2 }, seed: 42 });
    assert.deepEqual(findLeakage(splits), []);
    const ids = Object.values(splits).flatMap((s) => s.records.map((r) => r.id));
    assert.equal(ids.length, 1000);
    assert.equal(new Set(ids).size, 1000);
    const [train, validation, test] = [splits.train, splits.validation, splits.test].map((s) => s.records.length);
    assert.ok(Math.abs(train - 700) <= 40 && Math.abs(validation - 100) <= 40 && Math.abs(test - 200) <= 40, `${train}/${validation}/${test}`);
    for (const [name, split] of Object.entries(splits)) {
      for (const p of patients(split)) {
        const all = dataset.records.filter((r) => r.patientId === p).length;
        assert.equal(split.records.filter((r) => r.patientId === p).length, all, `${name}: patient ${p} is whole`);
      }
    }
  });

  it('is reproducible with a seed and differs across seeds', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    const fractions = { train: 0.8, test: 0.2 };
    const a = splitByPatient(dataset, { fractions, seed: 1 });
    const b = splitByPatient(dataset, { fractions, seed: 1 });
    const c = splitByPatient(dataset, { fractions, seed: 2 });
    assert.deepEqual(a.test.records.map((r) => r.id), b.test.records.map((r) => r.id));
    assert.notDeepEqual(a.test.records.map((r) => r.id), c.test.records.map((r) => r.id));
  });

  it('keeps positives of every finding on every side where the finding has enough patients (both real sets, 10 seeds)', async () => {
    for (const csv of [NIH_64_CSV, NIH_SUBSET_CSV]) {
      const dataset = await readNihDataset({ csvPath: csv });
      const positivePatients = NIH_FINDINGS.map((_, j) => new Set(dataset.records.filter((r) => r.states[j] === LabelState.positive).map((r) => r.patientId)).size);
      for (let seed = 0; seed < 10; seed++) {
        const splits = splitByPatient(dataset, { fractions: { train: 0.8, validation: 0.1, test: 0.1 }, seed });
        for (const [name, split] of Object.entries(splits)) {
          classStatistics(split).forEach((s, j) => {
            if (positivePatients[j] >= 3) assert.ok(s.positives > 0, `${csv} seed ${seed}: ${name} has no ${s.label}`);
          });
        }
      }
    }
  });

  it('refuses shares that leave a split without patients, and bad shares', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const few = subsetOf(dataset, dataset.records.slice(0, 2));
    assert.throws(() => splitByPatient(few, { fractions: { train: 0.6, validation: 0.2, test: 0.2 }, seed: 0 }), /split "(validation|test)" .* got no patient: 2 patient\(s\) are too few/);
    assert.throws(() => splitByPatient(dataset, { fractions: { train: -1, test: 2 }, seed: 0 }), /share of "train" must be a number >= 0/);
    assert.throws(() => splitByPatient(dataset, { fractions: {}, seed: 0 }), /no splits named/);
  });
});

describe('leakage check', () => {
  it("NIH's official lists share no patient", async () => {
    const lists = await readNihOfficialLists(NIH_META);
    assert.doesNotThrow(() => checkNoLeakage({ train_val: nihListMembers(lists.trainVal), test: nihListMembers(lists.test) }));
  });

  it('throws with the offending patient IDs when a patient is on both sides', async () => {
    const lists = await readNihOfficialLists(NIH_META);
    // Move two test images (of two different patients) to train_val, as an image-level split would.
    const moved = ['00000003_000.png', lists.test.find((n) => n.startsWith('00030792'))!];
    const trainVal = [...lists.trainVal, ...moved];
    const test = lists.test.filter((n) => !moved.includes(n));
    const error = (() => {
      try {
        checkNoLeakage({ train_val: nihListMembers(trainVal), test: nihListMembers(test) });
      } catch (e) {
        return e;
      }
      assert.fail('no error');
    })();
    assert.ok(error instanceof PatientLeakageError);
    assert.deepEqual(error.patients, [
      { patientId: '00000003', splits: ['train_val', 'test'] },
      { patientId: '00030792', splits: ['train_val', 'test'] },
    ]);
    assert.match(error.message, /2 patient\(s\) appear in more than one split: 00000003 \(train_val, test\); 00030792 \(train_val, test\)/);
  });

  it('an image-level split of the 64 px set leaks, and the check names those patients', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    const byImage = { train: subsetOf(dataset, dataset.records.filter((_, i) => i % 2 === 0)), test: subsetOf(dataset, dataset.records.filter((_, i) => i % 2 === 1)) };
    const leaked = findLeakage(byImage);
    const expected = [...patients(byImage.train)].filter((p) => patients(byImage.test).has(p));
    assert.ok(expected.length > 10);
    assert.deepEqual(leaked.map((l) => l.patientId), expected);
    assert.throws(() => checkNoLeakage(byImage), PatientLeakageError);
  });
});

describe("NIH's official split with validation carved out by patient", () => {
  it('puts test_list images in test and splits train_val by patient (64 px set)', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    const lists = await readNihOfficialLists(NIH_META);
    const { train, validation, test } = officialNihSplit(dataset, lists, { seed: 3, validationFraction: 0.15 });
    const inTest = new Set(lists.test);
    assert.ok(test.records.every((r) => inTest.has(r.id)));
    assert.ok([...train.records, ...validation.records].every((r) => !inTest.has(r.id)));
    assert.equal(train.records.length + validation.records.length + test.records.length, 1000);
    assert.equal(test.records.length, dataset.records.filter((r) => inTest.has(r.id)).length);
    assert.ok(validation.records.length > 0 && test.records.length > 0);
    assert.deepEqual(findLeakage({ train, validation, test }), []);
  });

  it('refuses records that are in neither list', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_64_CSV });
    const lists = await readNihOfficialLists(NIH_META);
    const trainVal = lists.trainVal.filter((n) => n !== '00000001_000.png');
    assert.throws(() => officialNihSplit(dataset, { trainVal, test: lists.test }, { seed: 0 }), /1 record\(s\) are in neither official list: "00000001_000.png" \(.*labels.csv row 1\)/);
  });
});

describe('class statistics', () => {
  it('prevalence and positive weights on the subset follow the README counts', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const stats = classStatistics(dataset);
    const atelectasis = stats[0];
    assert.deepEqual({ ...atelectasis }, { label: 'Atelectasis', positives: 52, negatives: 348, ignored: 0, uncertain: 0, prevalence: 52 / 400 });
    const weights = positiveWeights(dataset);
    assert.equal(weights.length, 14);
    assert.equal(weights[0], Math.fround(348 / 52));
    assert.equal(weights[13], Math.fround(386 / 14));
  });

  it('a class without positives is an error naming it, or weight 1 when asked', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const noHernia = subsetOf(dataset, dataset.records.filter((r) => r.labels[13] === 0));
    assert.throws(() => positiveWeights(noHernia), /no positives for "Hernia" among 386 records/);
    assert.equal(positiveWeights(noHernia, { ifNoPositives: 'unweighted' })[13], 1);
  });

  it('the class-balanced sampler is seeded and brings every class near an equal share', async () => {
    const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV });
    const sampler = new ClassBalancedSampler(dataset, { seed: 5 });
    assert.equal(sampler.classes.length, 15);
    const epoch = sampler.epoch(0, 15000);
    assert.deepEqual(epoch, sampler.epoch(0, 15000));
    assert.notDeepEqual(epoch, sampler.epoch(1, 15000));
    assert.deepEqual(new ClassBalancedSampler(dataset, { seed: 5 }).epoch(0, 100), epoch.subarray(0, 100));
    assert.equal(sampler.epoch(2).length, 400);
    const hernia = [...epoch].filter((i) => dataset.records[i].labels[13] === 1).length / epoch.length;
    const noFinding = [...epoch].filter((i) => dataset.records[i].labels.every((v) => v === 0)).length / epoch.length;
    // Naturally 14/400 = 3.5% Hernia; chosen as a class 1/15 of the time, plus co-occurrences.
    assert.ok(hernia > 1 / 15 - 0.01, `Hernia share ${hernia}`);
    assert.ok(Math.abs(noFinding - 1 / 15) < 0.01, `no-finding share ${noFinding}`);
    const withoutNone = new ClassBalancedSampler(dataset, { seed: 5, includeNoFinding: false });
    assert.ok([...withoutNone.epoch(0, 2000)].every((i) => dataset.records[i].labels.some((v) => v === 1)));
  });
});
