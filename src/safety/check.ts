/**
 * The input-validity check run before every prediction: image checks (size, blank), DICOM tags (modality, body
 * part, view) and, where the model has them, its safety outputs (out-of-distribution score, rotation and inversion
 * heads) against the thresholds stored in the model. Pure and browser-safe: the caller runs the model and passes
 * the scores, so the server, the CLI and private mode raise identical flags.
 */
import type { DecodedImage } from '../imaging/image.js';
import type { SafetyCheckSpec, SafetyInfo } from '../models/metadata.js';
import { type InputCheck, type InputFlag, isFlagged } from './flags.js';
import { DEFAULT_IMAGE_THRESHOLDS, type ImageCheckThresholds, type ImageStatistics, dicomFlags, imageFlags, imageStatistics } from './image-checks.js';

/** What the model's safety outputs gave for one image. */
export interface SafetyScores {
  ood?: number;
  /** One probability per head, in the order of SafetyInfo.heads. */
  heads?: ArrayLike<number>;
}

export interface CheckResult {
  flags: InputFlag[];
  /** Every thresholded measurement, raised or not. */
  checks: InputCheck[];
}

/** The image-check thresholds a model stores, or the defaults. */
export function imageThresholds(safety: SafetyInfo | undefined): ImageCheckThresholds {
  const find = (score: string) => safety?.checks.find((c) => c.score === score);
  const small = find('shorterSide');
  const blank = find('spread');
  const smooth = find('smoothness');
  const d = DEFAULT_IMAGE_THRESHOLDS;
  return {
    minSide: small?.threshold ?? d.minSide,
    minSpread: blank?.threshold ?? d.minSpread,
    minSmoothness: smooth?.threshold ?? d.minSmoothness,
    rule: { minSide: small?.rule ?? d.rule.minSide, minSpread: blank?.rule ?? d.rule.minSpread, minSmoothness: smooth?.rule ?? d.rule.minSmoothness },
  };
}

export function checkInput(image: DecodedImage, scores: SafetyScores, safety: SafetyInfo | undefined, stats: ImageStatistics = imageStatistics(image)): CheckResult {
  const thresholds = imageThresholds(safety);
  const flags = [...imageFlags(stats, thresholds), ...dicomFlags(image)];
  const checks: InputCheck[] = [
    { code: 'too-small', score: stats.shorterSide, threshold: thresholds.minSide, direction: 'below', flagged: stats.shorterSide < thresholds.minSide },
    { code: 'blank', score: stats.spread, threshold: thresholds.minSpread, direction: 'below', flagged: stats.spread < thresholds.minSpread },
    {
      code: 'not-chest-xray',
      score: stats.smoothness,
      threshold: thresholds.minSmoothness,
      direction: 'below',
      flagged: stats.spread >= thresholds.minSpread && stats.smoothness < thresholds.minSmoothness,
    },
  ];
  // A model without safety metadata gets the image and DICOM-tag checks only (its card says so).
  for (const spec of safety?.checks ?? []) {
    const score = modelScore(spec, scores);
    if (score === undefined) continue;
    const flagged = isFlagged(score, spec.threshold, spec.direction);
    checks.push({ code: spec.code, score, threshold: spec.threshold, direction: spec.direction, flagged });
    if (flagged) flags.push({ code: spec.code, severity: spec.severity, message: messageOf(spec, score, image), score, threshold: spec.threshold, rule: spec.rule });
  }
  return { flags, checks };
}

/** The score a model check reads; undefined for the image checks (spread, shorterSide, smoothness), handled above. */
function modelScore(spec: SafetyCheckSpec, scores: SafetyScores): number | undefined {
  if (spec.score === 'ood') return scores.ood;
  const head = /^head:(\d+)$/.exec(spec.score);
  return head ? scores.heads?.[Number(head[1])] : undefined;
}

function messageOf(spec: SafetyCheckSpec, score: number, image: DecodedImage): string {
  const measured = `(score ${score.toFixed(3)}, threshold ${spec.threshold.toFixed(3)})`;
  switch (spec.code) {
    case 'not-chest-xray':
      return `the image does not look like the frontal chest X-rays this model was trained on ${measured}: it may be another body part, another kind of image, or a chest X-ray unlike the training data`;
    case 'rotated':
      return `the image looks rotated by 90 or 180 degrees ${measured}: turn it upright and try again`;
    case 'inverted': {
      const header = image.metadata.photometric === 'MONOCHROME1' && image.metadata.inverted ? '; its header says MONOCHROME1 and was inverted for display, but the pixels may already be MONOCHROME2' : '';
      return `the image looks inverted, bones dark and air bright ${measured}${header}`;
    }
    default:
      return `${spec.code} ${measured}`;
  }
}
