/**
 * `cxr calibrate --card`: the shipped model's card brought up to date on another split keeps its training record but
 * takes the new split's counts, its kept-apart images and a thin-class note computed from the new test metrics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { EvaluationInput } from '../../src/eval/index.js';
import type { CalibrateResult } from '../../src/safety/calibrate.js';
import { recalibratedCard } from '../../src/train/card-update.js';
import { type ModelCard, THIN_CLASSES, cardMarkdown } from '../../src/train/finish.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const card = JSON.parse(readFileSync(join(REPO_ROOT, 'models', 'default.card.json'), 'utf8')) as ModelCard;
const labels = card.model.labels;

/** n images where label j has `positives(j)` positives, scored by a fixed pseudo-random sequence. */
function scored(n: number, positives: (j: number) => number): EvaluationInput {
  const c = labels.length;
  const probabilities = Array.from({ length: n * c }, (_, k) => ((k * 7919) % 1000) / 1000);
  const targets = Array.from({ length: n * c }, (_, k) => (Math.floor(k / c) < positives(k % c) ? 1 : 0));
  return { labels, probabilities, targets, clusters: Array.from({ length: n }, (_, i) => `p${i}`) };
}

describe('a recalibrated model card', () => {
  const validation = scored(60, () => 20);
  // Every finding has 12 test positives but the last, which has 3: the thin-class note must name that one only.
  const test = scored(50, (j) => (j === labels.length - 1 ? 3 : 12));
  const result = {
    calibration: card.calibration,
    thresholds: card.thresholds,
    operatingPoints: card.operatingPoints,
    safety: card.inputChecks,
    validation: { uncalibrated: validation, calibrated: validation },
    test: { uncalibrated: test, calibrated: test },
  } as unknown as CalibrateResult;
  const counts = {
    images: { train: 1656, validation: 356, test: 50 },
    patients: { train: 932, validation: 197, test: 50 },
    positives: card.trainingData.positives,
    apart: { images: 165, patients: 40, sets: ['nih-cxr14-64px'] },
  };
  const updated = recalibratedCard(card, result, { validation: 'validation split', test: 'test split', file: 'x.onnx', counts });

  it("takes the calibration split's counts and the images it kept apart, and says so in the card", () => {
    assert.deepEqual(updated.trainingData.images, counts.images);
    assert.deepEqual(updated.trainingData.apart, counts.apart);
    assert.deepEqual(updated.trainingData.datasets, card.trainingData.datasets, 'the training record is kept');
    assert.match(cardMarkdown(updated), /\| Data \| 1656 train \/ 356 validation \/ 50 test images;.*; 165 more test images \(40 patients\) of nih-cxr14-64px kept apart: in no metric/);
  });

  it('notes the thin classes of the new test metrics, once', () => {
    const notes = updated.limitations.filter((l) => l.startsWith(THIN_CLASSES));
    assert.deepEqual(notes, [`${THIN_CLASSES} have very wide intervals: ${labels[labels.length - 1]} (3).`]);
  });
});
