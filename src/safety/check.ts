/**
 * The input-validity check run before every prediction: image checks (size, blank), DICOM tags (modality, body
 * part, view) and, where the model has them, its safety outputs (out-of-distribution score, rotation and inversion
 * heads) against the thresholds stored in the model. Pure and browser-safe: the caller runs the model and passes
 * the scores, so the server, the CLI and private mode raise identical flags.
 */
import type { DecodedImage } from '../imaging/image.js';
import type { SafetyCheckSpec, SafetyInfo } from '../models/metadata.js';
import type { GaussianModel } from './detector.js';
import { type InputCheck, type InputFlag, isFlagged } from './flags.js';
import { decodeGaussian, layoutScore } from './layout.js';
import { type OrientationNet, type OrientationScores, decodeOrientationNet, orientationScores, symmetryProbabilities, thumbnail } from './orientation.js';
import { DEFAULT_IMAGE_THRESHOLDS, type ImageCheckThresholds, type ImageStatistics, dicomFlags, imageFlags, imageStatistics } from './image-checks.js';

/** What the model's safety outputs gave for one image. */
export interface SafetyScores {
  ood?: number;
  /** One probability per head, in the order of SafetyInfo.heads. */
  heads?: ArrayLike<number>;
  /** The picture's own scores, when the caller has computed them already (pictureScores). */
  picture?: PictureScores;
}

export interface CheckResult {
  flags: InputFlag[];
  /** Every thresholded measurement, raised or not. */
  checks: InputCheck[];
}

/** The image-check thresholds a model stores, or the defaults. */
export function imageThresholds(safety: SafetyInfo | undefined): ImageCheckThresholds {
  const find = (score: string) => safety?.checks.find((c) => c.score === score && c.severity === 'reject');
  const small = find('shorterSide');
  const blank = find('spread');
  const smooth = find('smoothness');
  const colour = find('colourfulness');
  const d = DEFAULT_IMAGE_THRESHOLDS;
  return {
    minSide: small?.threshold ?? d.minSide,
    minSpread: blank?.threshold ?? d.minSpread,
    minSmoothness: smooth?.threshold ?? d.minSmoothness,
    maxColourfulness: colour?.threshold ?? d.maxColourfulness,
    rule: {
      minSide: small?.rule ?? d.rule.minSide,
      minSpread: blank?.rule ?? d.rule.minSpread,
      minSmoothness: smooth?.rule ?? d.rule.minSmoothness,
      maxColourfulness: colour?.rule ?? d.rule.maxColourfulness,
    },
  };
}

export function checkInput(image: DecodedImage, scores: SafetyScores, safety: SafetyInfo | undefined, stats: ImageStatistics = imageStatistics(image)): CheckResult {
  const thresholds = imageThresholds(safety);
  const colourfulness = image.metadata.colourfulness ?? 0;
  const flags = [...imageFlags(stats, thresholds, colourfulness), ...dicomFlags(image)];
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
    { code: 'not-chest-xray', score: colourfulness, threshold: thresholds.maxColourfulness, direction: 'above', flagged: colourfulness > thresholds.maxColourfulness },
  ];
  // A model without safety metadata gets the image and DICOM-tag checks only (its card says so).
  const specs = safety?.checks ?? [];
  const computed = scores.picture ?? (safety ? pictureScores(image, safety) : {});
  const scored = new Map<SafetyCheckSpec, number>();
  for (const spec of specs) {
    if (spec.score === DOUBTS) continue;
    const score = modelScore(spec, scores, computed, stats, colourfulness);
    if (score === undefined) continue;
    scored.set(spec, score);
    const flagged = isFlagged(score, spec.threshold, spec.direction);
    checks.push({ code: spec.code, score, threshold: spec.threshold, direction: spec.direction, flagged });
    // A score that warns at one threshold and rejects at another raises only its most severe flag.
    const rejectedToo = spec.severity !== 'reject' && specs.some((s) => s !== spec && s.score === spec.score && s.severity === 'reject' && isFlagged(score, s.threshold, s.direction));
    if (flagged && !rejectedToo) flags.push({ code: spec.code, severity: spec.severity, message: messageOf(spec, score, image), score, threshold: spec.threshold, rule: spec.rule });
  }
  const combined = specs.find((s) => s.score === DOUBTS);
  if (combined) {
    const doubts = doubtfulScores(specs, (spec) => scored.get(spec));
    const flagged = isFlagged(doubts.size, combined.threshold, combined.direction);
    checks.push({ code: combined.code, score: doubts.size, threshold: combined.threshold, direction: combined.direction, flagged });
    if (flagged) {
      const message = `the image does not look like a frontal chest X-ray: ${doubts.size} independent signs agree (${[...doubts].map(describeScore).join('; ')}), each of which alone only warns`;
      flags.push({ code: combined.code, severity: combined.severity, message, score: doubts.size, threshold: combined.threshold, rule: combined.rule });
    }
  }
  return { flags, checks };
}

/** The scores computed here from the picture itself (thumbnail layout, orientation), where the model stores their fits. */
export interface PictureScores {
  layout?: number;
  orientation?: OrientationScores;
}

const decoded = new WeakMap<SafetyInfo, { layout?: GaussianModel; orientation?: OrientationNet }>();

export function pictureScores(image: DecodedImage, safety: SafetyInfo): PictureScores {
  if (!safety.layout && !safety.orientation) return {};
  let fits = decoded.get(safety);
  if (!fits) {
    fits = { layout: safety.layout && decodeGaussian(safety.layout), orientation: safety.orientation && decodeOrientationNet(safety.orientation) };
    decoded.set(safety, fits);
  }
  const t = thumbnail(image);
  return {
    ...(fits.layout ? { layout: layoutScore(fits.layout, t) } : {}),
    ...(fits.orientation ? { orientation: orientationScores(symmetryProbabilities(fits.orientation, t)) } : {}),
  };
}

/**
 * The score of the check that combines warnings: how many different scores raised a not-chest-xray warning. Each
 * such warning fires on at most about 1% of real films; two of different kinds on one real film are far rarer, so together
 * they refuse where either alone only warns.
 */
export const DOUBTS = 'doubts';

/** A warning that counts towards DOUBTS. */
export function isDoubt(spec: SafetyCheckSpec): boolean {
  return spec.code === 'not-chest-xray' && spec.severity === 'warning';
}

/** The different scores whose not-chest-xray warning fires on one image (DOUBTS is their count), given each check's score there. */
export function doubtfulScores(specs: readonly SafetyCheckSpec[], scoreOf: (spec: SafetyCheckSpec) => number | undefined): Set<string> {
  const doubts = new Set<string>();
  for (const spec of specs) {
    const score = isDoubt(spec) ? scoreOf(spec) : undefined;
    if (score !== undefined && isFlagged(score, spec.threshold, spec.direction)) doubts.add(spec.score);
  }
  return doubts;
}

const IMAGE_SCORES = new Set(['spread', 'smoothness', 'shorterSide', 'colourfulness']);

/**
 * The score a check reads. The image statistics' refusals are raised by imageFlags (the same for models without
 * safety metadata), so only their warnings are read here.
 */
function modelScore(spec: SafetyCheckSpec, scores: SafetyScores, computed: PictureScores, stats: ImageStatistics, colourfulness: number): number | undefined {
  if (IMAGE_SCORES.has(spec.score)) {
    if (spec.severity === 'reject') return undefined;
    return spec.score === 'colourfulness' ? colourfulness : stats[spec.score as 'spread' | 'smoothness' | 'shorterSide'];
  }
  if (spec.score === 'ood') return scores.ood;
  if (spec.score === 'layout') return computed.layout;
  const orientation = /^orientation:(rotated|inverted|mirrored)$/.exec(spec.score);
  if (orientation) return computed.orientation?.[orientation[1] as 'rotated' | 'inverted' | 'mirrored'];
  const head = /^head:(\d+)$/.exec(spec.score);
  return head ? scores.heads?.[Number(head[1])] : undefined;
}

function describeScore(score: string): string {
  switch (score) {
    case 'ood':
      return "the model's features are unlike its training films";
    case 'layout':
      return 'light and dark are laid out unlike a chest film';
    case 'spread':
      return 'the contrast is narrower than on any real film seen';
    case 'smoothness':
      return 'the picture is less smooth than any real film seen';
    default:
      return score;
  }
}

function messageOf(spec: SafetyCheckSpec, score: number, image: DecodedImage): string {
  const measured = `(score ${score.toFixed(3)}, threshold ${spec.threshold.toFixed(3)})`;
  const unsure = spec.severity === 'warning' ? 'possibly: ' : '';
  switch (spec.code) {
    case 'not-chest-xray':
      if (spec.score === 'layout') {
        return `${unsure}the picture is not laid out like a frontal chest X-ray ${measured}: light and dark sit where no chest film of the fitting data has them (a photograph, a document, another body part, or a heavily cropped film)`;
      }
      if (spec.score === 'spread' || spec.score === 'smoothness') return `${unsure}${describeScore(spec.score)} ${measured}`;
      return `${unsure}the image does not look like the frontal chest X-rays this model was trained on ${measured}: it may be another body part, another kind of image, or a chest X-ray unlike the training data`;
    case 'rotated':
      return `${unsure}the image looks turned by 90, 180 or 270 degrees ${measured}: turn it upright and try again`;
    case 'mirrored':
      return `${unsure}the film looks mirrored left-right (heart on the right) ${measured}: a flipped image, or dextrocardia; findings are shown, check the side markers`;
    case 'inverted': {
      const header = image.metadata.photometric === 'MONOCHROME1' && image.metadata.inverted ? '; its header says MONOCHROME1 and was inverted for display, but the pixels may already be MONOCHROME2' : '';
      return `${unsure}the image looks inverted, bones dark and air bright ${measured}${header}`;
    }
    default:
      return `${spec.code} ${measured}`;
  }
}
