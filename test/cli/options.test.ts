/** The option parsers shared by several commands: values they take, and errors that name the option. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collect, nonNegativeInt } from '../../src/cli/options.js';

describe('shared option parsers', () => {
  it('nonNegativeInt takes 0 and whole numbers, and refuses negatives, fractions, blanks and words by name', () => {
    const seed = nonNegativeInt('seed');
    assert.equal(seed('0'), 0);
    assert.equal(seed('42'), 42);
    for (const bad of ['-1', '1.5', '', ' ', 'abc']) assert.throws(() => seed(bad), new RegExp(`^InvalidArgumentError: seed must be a whole number >= 0, got "${bad}"$`));
  });

  it('collect keeps every value of a repeated option, in order', () => {
    assert.deepEqual(['a', 'b', 'c'].reduce((all, v) => collect(v, all), [] as string[]), ['a', 'b', 'c']);
  });
});
