/**
 * The colour maps equal matplotlib's: every table entry, and the entry a value between entries picks
 * (test/imaging/fixtures/colormaps.json, written by scripts/fixtures/make_colormap_reference.py from Debian's matplotlib).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLORMAP_NAMES, colormap, colormapFloats, colormapTable } from '../../src/imaging/colormap.js';
import { fixture } from './util.js';

interface Reference {
  matplotlib: string;
  points: number[];
  maps: Record<string, { table: number[][]; atPoints: number[][] }>;
}

const reference = JSON.parse(new TextDecoder().decode(fixture('colormaps.json'))) as Reference;

describe('colour maps', () => {
  it('the reference covers every colour map offered', () => {
    assert.deepEqual(Object.keys(reference.maps).sort(), [...COLORMAP_NAMES].sort());
  });

  for (const name of COLORMAP_NAMES) {
    it(`${name}: the 256 entries are bit-identical to matplotlib's floats, and the 8-bit table is their rounding`, () => {
      const ours = colormapFloats(name);
      const theirs = reference.maps[name].table;
      assert.equal(ours.length, 256 * 3);
      let worst = 0;
      theirs.forEach((rgb, i) => rgb.forEach((v, k) => (worst = Math.max(worst, Math.abs(ours[3 * i + k] - v)))));
      assert.equal(worst, 0, `${name}: largest difference from matplotlib ${reference.matplotlib} is ${worst}`);
      assert.deepEqual([...colormapTable(name)], theirs.flat().map((v) => Math.round(255 * v)));
    });

    it(`${name}: a value between entries, on a boundary or out of range picks matplotlib's entry`, () => {
      reference.points.forEach((t, j) => {
        assert.deepEqual(colormap(name, t), reference.maps[name].atPoints[j].map((v) => Math.round(255 * v)), `${name} at ${t}`);
      });
    });
  }
});
