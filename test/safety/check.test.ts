/**
 * checkInput's own rules on real images: a score that warns at one threshold and refuses at a higher one raises
 * only its most severe flag, warnings of two different scores together refuse, and the colour check needs no model (a colour photograph is refused by the default
 * threshold while gray NIH films, and a gray film saved as a colour PNG, pass it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeImageFile } from '../../src/imaging/index.js';
import type { SafetyInfo } from '../../src/models/metadata.js';
import { DOUBTS, checkInput } from '../../src/safety/check.js';
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

  it('refuses when two different scores warn, while each warning alone shows the findings', async () => {
    const film = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png'));
    const smoothness = checkInput(film, { ood: 1 }, undefined).checks.find((c) => c.code === 'not-chest-xray' && c.direction === 'below')!.score;
    // A smoothness warning just above this film's own value, so the film raises it.
    const lowSmoothness = { code: 'not-chest-xray' as const, score: 'smoothness', threshold: smoothness + 0.001, direction: 'below' as const, rule: 'test smoothness', severity: 'warning' as const };
    const doubts = { code: 'not-chest-xray' as const, score: DOUBTS, threshold: 1, direction: 'above' as const, rule: 'test doubts', severity: 'reject' as const };
    const combined: SafetyInfo = { ...safety, checks: [...safety.checks, lowSmoothness, doubts] };
    const verdict = (ood: number) => checkInput(film, { ood }, combined);
    assert.deepEqual(verdict(1).flags.map((f) => f.severity), ['warning'], 'smoothness alone warns');
    const both = verdict(3);
    assert.deepEqual(both.flags.map((f) => `${f.severity} ${f.score}`), ['warning 3', `warning ${smoothness}`, 'reject 2']);
    assert.match(both.flags[2].message, /2 independent signs agree \(the model's features are unlike its training films; the picture is less smooth than any real film seen\)/);
    assert.deepEqual(both.checks.at(-1), { code: 'not-chest-xray', score: 2, threshold: 1, direction: 'above', flagged: true });
    // One score past both its thresholds is still one doubt.
    const oodOnly = checkInput(film, { ood: 5 }, { ...safety, checks: [...safety.checks, doubts] });
    assert.deepEqual(oodOnly.flags.map((f) => f.severity), ['reject']);
    assert.equal(oodOnly.checks.at(-1)?.score, 1);
  });
});
