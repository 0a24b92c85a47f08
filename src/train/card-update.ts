/**
 * A trained model's card brought up to date after `cxr calibrate --card`: the calibration, thresholds, operating
 * points and input checks are the new ones, and the validation and test metrics are evaluated again on the data
 * the calibration used (its own patient split), at the new thresholds; the split's counts follow. The training record
 * (datasets, recipe, epochs) stays as it was; a limitation line says what changed and on which data.
 */
import { evaluate } from '../eval/index.js';
import type { CalibrateResult } from '../safety/calibrate.js';
import { type ModelCard, THIN_CLASSES, type splitCounts, thinClassesNote } from './finish.js';

export function recalibratedCard(
  card: ModelCard,
  result: CalibrateResult,
  data: { validation: string; test?: string; file: string; counts?: ReturnType<typeof splitCounts> },
): ModelCard {
  const fixed = (source: string) => ({ kind: 'fixed' as const, values: result.thresholds.values, source });
  const validation = evaluate(result.validation.calibrated, {
    thresholds: fixed(`${result.thresholds.rule}, chosen on this same ${data.validation} (optimistic here)`),
    bootstrap: { resamples: 1000, byCluster: true },
  });
  const test = result.test
    ? evaluate(result.test.calibrated, { thresholds: fixed(`${result.thresholds.rule}, chosen on the ${data.validation}`), bootstrap: { resamples: 1000, byCluster: true } })
    : card.metrics.test;
  const note =
    `Calibration, thresholds and input checks were refitted after training by \`cxr calibrate\` on the ${data.validation}` +
    (data.test ? `; the metrics above are measured on the ${data.test} at the new thresholds` : '') +
    '. The training split, recipe and weights are unchanged.';
  return {
    ...card,
    model: { ...card.model, file: data.file },
    // The calibration's split may keep some test patients apart that the training run scored: the counts follow it.
    trainingData: data.counts ? { ...card.trainingData, ...data.counts } : card.trainingData,
    limitations: [
      ...card.limitations.filter((l) => !l.startsWith('Calibration, thresholds and input checks were refitted') && !l.startsWith(THIN_CLASSES)),
      ...thinClassesNote(test ?? null),
      note,
    ],
    thresholds: result.thresholds,
    operatingPoints: result.operatingPoints,
    calibration: result.calibration,
    inputChecks: result.safety,
    metrics: { validation, test },
  };
}
