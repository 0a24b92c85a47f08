/**
 * The orientation network's parts on real NIH films: the 16 thumbnail symmetries match turning, mirroring and
 * inverting the real pixels, the grouped scores partition the probabilities, stored weights read back exactly, and
 * a small network fitted on 60 upright films tells held-out films from the same films turned by 180 degrees.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { invert, mirror, rotate } from '../../src/safety/corrupt.js';
import {
  SYMMETRIES,
  applySymmetry,
  decodeOrientationNet,
  encodeOrientationNet,
  fitOrientation,
  orientationScores,
  rawThumbnail,
  standardise,
  symmetryProbabilities,
  thumbnail,
} from '../../src/safety/orientation.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const NAMES = readdirSync(sharedDataPath('nih-cxr14-subset', 'images')).sort();
const film = (name: string) => decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', name));

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('thumbnail symmetries', () => {
  it('equal the thumbnails of the real film turned, mirrored and inverted pixel by pixel', async () => {
    const image = await film(NAMES[0]);
    const t = thumbnail(image);
    // The resampling filter is symmetric, so a square film's thumbnail commutes with turns and mirrors up to rounding.
    const cases: [number, typeof image][] = [
      [1, rotate(image, 90)],
      [2, rotate(image, 180)],
      [3, rotate(image, 270)],
      [4, mirror(image)],
      [8, invert(image)],
    ];
    for (const [g, changed] of cases) {
      // The thumbnail of the changed film, brought back by the symmetry that undoes it, is the original's.
      const undo = g === 1 ? 3 : g === 3 ? 1 : g;
      assert.ok(maxDifference(applySymmetry(thumbnail(changed), undo), t) < 1e-3, `symmetry ${g}`);
    }
  });

  it('form a group: four quarter turns, two mirrors and two inversions are the identity', async () => {
    const t = thumbnail(await film(NAMES[1]));
    let turned = t;
    for (let i = 0; i < 4; i++) turned = applySymmetry(turned, 1);
    assert.deepEqual(turned, t);
    assert.deepEqual(applySymmetry(applySymmetry(t, 4), 4), t);
    assert.deepEqual(applySymmetry(applySymmetry(t, 8), 8), t);
    assert.notDeepEqual(applySymmetry(t, 2), t);
  });
});

describe('orientation network', () => {
  it('fitted on 60 upright films, calls held-out films upright and the same films turned by 180 degrees rotated', async () => {
    const train = await Promise.all(NAMES.slice(0, 60).map(async (n) => rawThumbnail(await film(n))));
    const net = fitOrientation(train, { hidden: 8, epochs: 8, seed: 1 });
    const heldOut = await Promise.all(NAMES.slice(100, 130).map(film));
    let upright = 0;
    let caught = 0;
    for (const image of heldOut) {
      const p = symmetryProbabilities(net, thumbnail(image));
      const s = orientationScores(p);
      // The groups partition the 16 probabilities: upright, mirrored, turned, and the two inverted untuned ones.
      assert.ok(Math.abs(s.upright + s.mirrored + s.rotated + p[8] + p[12] - 1) < 1e-9);
      if (s.rotated < 0.5 && s.inverted < 0.5) upright++;
      if (orientationScores(symmetryProbabilities(net, thumbnail(rotate(image, 180)))).rotated > 0.5) caught++;
    }
    // A small network on little data: most, not all; the shipped checks are measured in shipped-checks.long.test.ts.
    assert.ok(upright >= 24, `${upright} of 30 held-out films upright`);
    assert.ok(caught >= 24, `${caught} of 30 turned films called rotated`);

    const stored = encodeOrientationNet(net);
    const back = decodeOrientationNet(JSON.parse(JSON.stringify(stored)));
    assert.deepEqual(back.w1, net.w1);
    assert.deepEqual(back.w2, net.w2);
    assert.equal(SYMMETRIES, 16);
    assert.throws(() => decodeOrientationNet({ ...stored, hidden: 9 }), /bytes stored/);
    assert.throws(() => fitOrientation(train.slice(0, 5)), /at least 20 upright films/);
  });

  it('standardises away exposure: a brighter copy of a film has the same thumbnail', async () => {
    const image = await film(NAMES[2]);
    const raw = rawThumbnail(image);
    const brighter = Float32Array.from(raw, (v) => 0.5 * v + 0.3);
    assert.ok(maxDifference(standardise(brighter), standardise(raw)) < 1e-4);
  });
});
