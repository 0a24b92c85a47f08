/**
 * checkInput's own rules on real images: a score that warns at one threshold and refuses at a higher one raises
 * only its most severe flag, and the colour check needs no model (a colour photograph is refused by the default
 * threshold while gray NIH films, and a gray film saved as a colour PNG, pass it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeImageFile } from '../../src/imaging/index.js';
import type { SafetyInfo } from '../../src/models/metadata.js';
import { checkInput } from '../../src/safety/check.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const spec = (threshold: number, severity: 'warning' | 'reject') => ({ code: 'not-chest-xray' as const, score: 'ood', threshold, direction: 'above' as const, rule: `test ${severity}`, severity });
const safety: SafetyInfo = { outputs: { ood: 'safety.ood', heads: 'safety.heads' }, heads: [], detector: 'test', source: 'test', checks: [spec(2, 'warning'), spec(4, 'reject')] };

describe('checkInput', () => {
  it('raises a warning between the two thresholds of a score, and only the refusal beyond the higher one', async () => {
    const film = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png'));
    assert.deepEqual(checkInput(film, { ood: 1 }, safety).flags, []);
    const warned = checkInput(film, { ood: 3 }, safety).flags;
    assert.deepEqual(warned.map((f) => f.severity), ['warning']);
    assert.match(warned[0].message, /^possibly: /);
    const refused = checkInput(film, { ood: 5 }, safety);
    assert.deepEqual(refused.flags.map((f) => f.severity), ['reject']);
    // Both measurements are still reported.
    assert.deepEqual(refused.checks.filter((c) => c.threshold === 2 || c.threshold === 4).map((c) => c.flagged), [true, true]);
  });

  it('refuses a colour photograph without any model, and passes a gray film saved in colour', async () => {
    const photo = await decodeImageFile(sharedDataPath('natural-photos', 'astronaut.png'));
    assert.ok((photo.metadata.colourfulness ?? 0) > 0.1, `astronaut chroma ${photo.metadata.colourfulness}`);
    const flags = checkInput(photo, {}, undefined).flags;
    assert.ok(flags.some((f) => f.code === 'not-chest-xray' && f.severity === 'reject' && /in colour/.test(f.message)), JSON.stringify(flags));
    const path = sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png');
    const rgb = await sharp(path).toColourspace('srgb').png().toBuffer();
    const film = await decodeImage(new Uint8Array(rgb), 'film-as-rgb.png');
    assert.equal(film.metadata.colourfulness, 0);
    assert.deepEqual(checkInput(film, {}, undefined).flags, []);
  });
});
