/** The option parsers shared by several commands: values they take, and errors that name the option. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolve } from 'node:path';
import { collect, datasetFlag, nonNegativeInt } from '../../src/cli/options.js';

describe('shared option parsers', () => {
  it('nonNegativeInt takes 0 and whole numbers, and refuses negatives, fractions, blanks and words by name', () => {
    const seed = nonNegativeInt('seed');
    assert.equal(seed('0'), 0);
    assert.equal(seed('42'), 42);
    for (const bad of ['-1', '1.5', '', ' ', 'abc']) assert.throws(() => seed(bad), new RegExp(`^InvalidArgumentError: seed must be a whole number >= 0, got "${bad}"$`));
  });

  it('datasetFlag reads format:labels.csv[:images] into a recipe entry with absolute paths, and names --data when wrong', () => {
    assert.deepEqual(datasetFlag('nih:Data_Entry.csv:images'), { format: 'nih', csv: resolve('Data_Entry.csv'), images: resolve('images') });
    assert.deepEqual(datasetFlag('chexpert:/data/train.csv'), { format: 'chexpert', csv: '/data/train.csv' });
    for (const bad of ['nih', 'dicom:labels.csv', ':labels.csv']) {
      assert.throws(() => datasetFlag(bad), new RegExp(`--data expects format:labels.csv\\[:images\\] with format nih, chexpert or csv, got "${bad}"`));
    }
  });

  it('collect keeps every value of a repeated option, in order', () => {
    assert.deepEqual(['a', 'b', 'c'].reduce((all, v) => collect(v, all), [] as string[]), ['a', 'b', 'c']);
  });
});
