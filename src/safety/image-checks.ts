/**
 * Checks that need only the decoded image: its size, its intensity spread (blank images), and what a DICOM header
 * says about modality, body part and view. Pure TypeScript without Node imports, so the browser's private mode
 * runs exactly these. The thresholds come from the model (see models/metadata SafetyInfo) or the defaults here.
 */
import type { DecodedImage } from '../imaging/image.js';
import { resample } from '../imaging/resample.js';
import type { InputFlag } from './flags.js';

/** Intensity statistics of an image, on [0, 1] (value / maxValue). */
export interface ImageStatistics {
  shorterSide: number;
  /** 99th minus 1st percentile of the intensities: near 0 for a blank image. */
  spread: number;
  mean: number;
  std: number;
  p1: number;
  p50: number;
  p99: number;
  /** Correlation of horizontally adjacent pixels on a 128 x 128 resampling: near 1 for radiographs, near 0 for noise. */
  smoothness: number;
  /** Mean of the outer tenth of the image minus the mean of its central half. */
  borderContrast: number;
  /** Entropy of a 32-bin intensity histogram, divided by log(32). */
  entropy: number;
}

const GRID = 128;

export function imageStatistics(image: DecodedImage): ImageStatistics {
  const { width, height, pixels, maxValue } = image;
  const histogram = new Float64Array(maxValue + 1);
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    histogram[v]++;
    sum += v;
    sumSquares += v * v;
  }
  const n = pixels.length;
  const mean = sum / n;
  const std = Math.sqrt(Math.max(0, sumSquares / n - mean * mean));
  const percentile = (q: number) => {
    const target = q * (n - 1);
    let seen = 0;
    for (let v = 0; v <= maxValue; v++) {
      seen += histogram[v];
      if (seen > target) return v / maxValue;
    }
    return 1;
  };
  const p1 = percentile(0.01);
  const p99 = percentile(0.99);
  const bins = new Float64Array(32);
  for (let v = 0; v <= maxValue; v++) bins[Math.min(31, Math.floor((v / (maxValue + 1)) * 32))] += histogram[v];
  let entropy = 0;
  for (const count of bins) if (count > 0) entropy -= (count / n) * Math.log(count / n);

  const grid = resample(pixels, width, height, GRID, GRID);
  return {
    shorterSide: Math.min(width, height),
    spread: p99 - p1,
    mean: mean / maxValue,
    std: std / maxValue,
    p1,
    p50: percentile(0.5),
    p99,
    smoothness: neighbourCorrelation(grid),
    borderContrast: (borderMean(grid) - centreMean(grid)) / maxValue,
    entropy: entropy / Math.log(32),
  };
}

function neighbourCorrelation(grid: Float32Array): number {
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  let count = 0;
  for (let y = 0; y < GRID; y++) {
    for (let x = 0; x + 1 < GRID; x++) {
      const a = grid[y * GRID + x];
      const b = grid[y * GRID + x + 1];
      sa += a;
      sb += b;
      saa += a * a;
      sbb += b * b;
      sab += a * b;
      count++;
    }
  }
  const cov = sab / count - (sa / count) * (sb / count);
  const va = saa / count - (sa / count) ** 2;
  const vb = sbb / count - (sb / count) ** 2;
  // A constant image has no correlation to speak of; call it perfectly smooth.
  return va <= 1e-12 || vb <= 1e-12 ? 1 : cov / Math.sqrt(va * vb);
}

function borderMean(grid: Float32Array): number {
  const edge = GRID / 10;
  let sum = 0;
  let count = 0;
  for (let y = 0; y < GRID; y++) {
    for (let x = 0; x < GRID; x++) {
      if (x < edge || y < edge || x >= GRID - edge || y >= GRID - edge) {
        sum += grid[y * GRID + x];
        count++;
      }
    }
  }
  return sum / count;
}

function centreMean(grid: Float32Array): number {
  let sum = 0;
  let count = 0;
  for (let y = GRID / 4; y < (3 * GRID) / 4; y++) {
    for (let x = GRID / 4; x < (3 * GRID) / 4; x++) {
      sum += grid[y * GRID + x];
      count++;
    }
  }
  return sum / count;
}

/** Thresholds of the image checks; a model stores its own (models/metadata SafetyInfo.image). */
export interface ImageCheckThresholds {
  /** Flagged `too-small` when the shorter side has fewer pixels. */
  minSide: number;
  /** Flagged `blank` when the 1st-99th percentile spread is below this. */
  minSpread: number;
  /** Flagged `not-chest-xray` (noise-like) when the neighbour correlation is below this. */
  minSmoothness: number;
  /** Flagged `not-chest-xray` when the file's mean chroma (ImageMetadata.colourfulness) is above this. */
  maxColourfulness: number;
  /** How they were chosen, in words. */
  rule: { minSide: string; minSpread: string; minSmoothness: string; maxColourfulness: string };
}

/**
 * For models that store none: a blank image has less than 5% of the range between its 1st and 99th percentile; a
 * noise-like one has neighbouring pixels correlated below 0.3 (radiographs: above 0.9).
 */
export const DEFAULT_IMAGE_THRESHOLDS: ImageCheckThresholds = {
  minSide: 32,
  minSpread: 0.05,
  minSmoothness: 0.3,
  maxColourfulness: 0.05,
  rule: {
    minSide: 'default: 32 px',
    minSpread: 'default: 0.05 of the intensity range',
    minSmoothness: 'default: 0.3',
    maxColourfulness: 'default: 0.05 of the range (a gray film saved in colour scores near 0; a tinted photo of a film on a light box can pass)',
  },
};

/** Size, blank, noise and colour checks: the flags raised. */
export function imageFlags(stats: ImageStatistics, thresholds: ImageCheckThresholds, colourfulness = 0): InputFlag[] {
  const flags: InputFlag[] = [];
  if (colourfulness > thresholds.maxColourfulness) {
    flags.push({
      code: 'not-chest-xray',
      severity: 'reject',
      message: `the image is in colour (mean chroma ${(colourfulness * 100).toFixed(1)}% of the range); radiographs are gray, so this looks like a photograph, a drawing or a screenshot`,
      score: colourfulness,
      threshold: thresholds.maxColourfulness,
      rule: thresholds.rule.maxColourfulness,
    });
  }
  if (stats.shorterSide < thresholds.minSide) {
    flags.push({
      code: 'too-small',
      severity: 'reject',
      message: `the image is too small: its shorter side has ${stats.shorterSide} pixels, fewer than the ${thresholds.minSide} this model accepts`,
      score: stats.shorterSide,
      threshold: thresholds.minSide,
      rule: thresholds.rule.minSide,
    });
  }
  if (stats.spread < thresholds.minSpread) {
    flags.push({
      code: 'blank',
      severity: 'reject',
      message: `the image is blank or nearly so: 98% of its pixels lie within ${(stats.spread * 100).toFixed(1)}% of the intensity range`,
      score: stats.spread,
      threshold: thresholds.minSpread,
      rule: thresholds.rule.minSpread,
    });
  }
  // A blank image has no texture to judge; it is flagged above.
  if (stats.spread >= thresholds.minSpread && stats.smoothness < thresholds.minSmoothness) {
    flags.push({
      code: 'not-chest-xray',
      severity: 'reject',
      message: `the image looks like noise, not a radiograph: neighbouring pixels are almost unrelated (correlation ${stats.smoothness.toFixed(3)}, threshold ${thresholds.minSmoothness.toFixed(3)})`,
      score: stats.smoothness,
      threshold: thresholds.minSmoothness,
      rule: thresholds.rule.minSmoothness,
    });
  }
  return flags;
}

/** Radiograph modalities: computed and digital radiography (and the retired codes for them). */
const RADIOGRAPHY = new Set(['CR', 'DX', 'DR', 'RG']);
/** Modalities that say nothing either way (other, secondary capture). */
const UNSPECIFIC = new Set(['', 'OT', 'SC']);
const LATERAL_VIEWS = new Set(['LL', 'RL', 'LLD', 'RLD', 'LATERAL', 'LAT', 'LEFT LATERAL', 'RIGHT LATERAL']);

/**
 * What a DICOM header says against a frontal chest radiograph: another modality (CT, MR, ...), a body part that is
 * not the chest, or a lateral view. PNG and JPEG carry none of these tags and raise nothing here.
 */
export function dicomFlags(image: Pick<DecodedImage, 'format' | 'metadata'>): InputFlag[] {
  if (image.format !== 'dicom') return [];
  const flags: InputFlag[] = [];
  const { modality, bodyPart, viewPosition } = image.metadata;
  const tag = (name: string, value: string) => ({ score: null, threshold: null, rule: `DICOM tag ${name} = "${value}"` });
  const m = (modality ?? '').trim().toUpperCase();
  if (!RADIOGRAPHY.has(m) && !UNSPECIFIC.has(m)) {
    flags.push({ code: 'not-chest-xray', severity: 'reject', message: `the DICOM file is a ${m} image, not a radiograph (Modality ${m})`, ...tag('Modality (0008,0060)', m) });
  }
  const part = (bodyPart ?? '').trim().toUpperCase();
  if (part !== '' && !/CHEST|THORAX|LUNG/.test(part)) {
    flags.push({
      code: 'not-chest-xray',
      severity: 'reject',
      message: `the DICOM file shows the ${part.toLowerCase()}, not the chest (Body Part Examined ${part})`,
      ...tag('BodyPartExamined (0018,0015)', part),
    });
  }
  const view = (viewPosition ?? '').trim().toUpperCase();
  if (LATERAL_VIEWS.has(view)) {
    flags.push({
      code: 'lateral-view',
      severity: 'reject',
      message: `the DICOM file is a lateral view (View Position ${view}); this model reads frontal (PA/AP) chest radiographs only`,
      ...tag('ViewPosition (0018,5101)', view),
    });
  }
  return flags;
}
