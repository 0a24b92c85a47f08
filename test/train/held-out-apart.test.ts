/**
 * `heldOut: apart` on the default recipe's real datasets: the 64 px thumbnails' test patients leave the test metrics
 * and are kept on their own, while the split itself (who trains, who validates, who is held out) does not move.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DatasetRecord } from '../../src/data/dataset.js';
import { readConfigFile, resolveConfig } from '../../src/train/config.js';
import { readDatasets, splitData } from '../../src/train/data.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const RECIPE = join(REPO_ROOT, 'configs', 'default-model.yaml');
const names = (records: readonly DatasetRecord[]) => records.map((r) => r.imagePath).sort();
const thumbnail = (r: DatasetRecord) => r.imagePath.includes('/nih-cxr14-64px/');

describe('held-out patients kept apart', () => {
  it('takes the thumbnails out of the test split into `apart`, and leaves every other part of the split as it was', async () => {
    const raw = readConfigFile(RECIPE);
    const config = resolveConfig(raw, RECIPE);
    assert.equal(config.datasets.filter((d) => d.heldOut === 'apart').length, 1, 'the recipe keeps one set apart');
    const withoutOption = resolveConfig({ ...raw, datasets: config.datasets.map(({ heldOut: _, ...d }) => d) }, RECIPE);

    const kept = await splitData(await readDatasets(config), config);
    const plain = await splitData(await readDatasets(withoutOption), withoutOption);

    assert.ok(kept.apart.records.length > 0 && kept.apart.records.every(thumbnail), 'apart holds thumbnails only');
    assert.ok(kept.test.records.length > 0 && !kept.test.records.some(thumbnail), 'the test split holds no thumbnail');
    assert.deepEqual(names([...kept.test.records, ...kept.apart.records]), names(plain.test.records), 'test and apart together are the held-out images');
    assert.deepEqual(names(kept.train.records), names(plain.train.records));
    assert.deepEqual(names(kept.validation.records), names(plain.validation.records));
    // A patient may have a full-size film in the test split and thumbnails apart: both held out, never trained on.
    const trained = new Set([...kept.train.records, ...kept.validation.records].map((r) => r.patientId));
    assert.ok(!kept.apart.records.some((r) => trained.has(r.patientId)), 'no patient kept apart is trained or validated on');
  });

  it('refuses another value, naming the field', () => {
    assert.throws(() => resolveConfig({ datasets: [{ format: 'nih', csv: 'x.csv', heldOut: 'ignore' }] }), /heldOut/);
  });
});
