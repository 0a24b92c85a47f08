/**
 * The registries behind the recipe schema and the CLI: every dataset format, architecture and resize rule the
 * code knows is accepted by a recipe, anything else is refused naming the known ones, and a format read through
 * the registry gives the same dataset as its reader (real NIH labels).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DATASET_FORMAT_NAMES, DATASET_FORMATS, NIH_LABEL_SET } from '../../src/data/index.js';
import { RESIZE_RULES } from '../../src/imaging/spec.js';
import { ARCHITECTURE_NAMES } from '../../src/models/zoo/index.js';
import { datasetFlag } from '../../src/cli/options.js';
import { resolveConfig } from '../../src/train/config.js';
import { sharedDataPath } from '../helpers/fixtures.js';

describe('registries', () => {
  it('a recipe accepts every registered format, architecture and resize rule, and refuses others by listing them', () => {
    for (const format of DATASET_FORMAT_NAMES) assert.equal(resolveConfig({ datasets: [{ format, csv: 'a.csv', imageColumn: 'file' }] }).datasets[0].format, format);
    for (const architecture of ARCHITECTURE_NAMES) assert.equal(resolveConfig({ datasets: [{ format: 'nih', csv: 'a.csv' }], model: { architecture } }).model.architecture, architecture);
    for (const resize of RESIZE_RULES) assert.equal(resolveConfig({ datasets: [{ format: 'nih', csv: 'a.csv' }], model: { resize } }).model.resize, resize);
    assert.throws(() => resolveConfig({ datasets: [{ format: 'dicomdir', csv: 'a.csv' }] }), new RegExp(DATASET_FORMAT_NAMES.join('.*')));
    assert.throws(() => resolveConfig({ datasets: [{ format: 'nih', csv: 'a.csv' }], model: { architecture: 'vgg16' } }), /architecture/);
    assert.deepEqual(datasetFlag('chexpert:train.csv:root').format, 'chexpert');
    assert.throws(() => datasetFlag('dicomdir:x.csv'), new RegExp(`with format ${DATASET_FORMAT_NAMES.slice(0, -1).join(', ')} or ${DATASET_FORMAT_NAMES.at(-1)}`));
  });

  it("reading NIH's labels through the registry gives the 400 real records of nih-cxr14-subset", async () => {
    const dataset = await DATASET_FORMATS.nih.read({ csv: sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv'), images: sharedDataPath('nih-cxr14-subset') }, NIH_LABEL_SET);
    assert.equal(dataset.records.length, 400);
    assert.deepEqual(dataset.labelSet.labels, NIH_LABEL_SET.labels);
    const effusion = NIH_LABEL_SET.labels.indexOf('Effusion');
    assert.equal(dataset.records.filter((r) => r.labels[effusion] === 1).length, 47, 'Effusion count in the data README');
  });

  it('a generic CSV without an image column is refused naming the setting', async () => {
    await assert.rejects(DATASET_FORMATS.csv.read({ csv: 'labels.csv' }, NIH_LABEL_SET), /needs "imageColumn"/);
  });
});
