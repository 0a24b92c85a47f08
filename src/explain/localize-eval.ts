/**
 * Measuring explanations on images with radiologists' boxes: localisation (pointing game, IoU and IoBB accuracies,
 * Wang et al.'s protocol, see localize.ts) beside a random-map baseline, and optionally the trust checks:
 * faithfulness (deletion and insertion AUC, beside a random order) and the cascading model-randomisation check.
 */
import type { DecodedImage } from '../imaging/image.js';
import { SeededRandom } from '../eval/random.js';
import type { ExplainOptions, ExplanationMethod } from './core.js';
import { Explainer } from './explainer.js';
import { deletionInsertion, type FaithfulnessOptions, importanceOrder } from './faithfulness.js';
import { type CaseScore, type LocalizationOptions, type LocalizationScores, type Rect, boxOnGrid, localizationOptions, mapOnImageGrid, scoreCase, summarize } from './localize.js';
import { WANG_2017_LOCALIZATION, type PublishedLocalization } from './published-localization.js';
import { cascadeBlocks, randomizedModel, spearman } from './randomization.js';
import type { GridMap } from './types.js';

/** A ground-truth box in some pixel space (NIH's boxes: 1024 x 1024), as data/nih.ts reads them. */
export interface TruthBox extends Rect {
  finding: string;
  space: { width: number; height: number };
}

export interface BoxedImage {
  name: string;
  image: DecodedImage;
  boxes: readonly TruthBox[];
}

export interface LocalizeEvalOptions extends LocalizationOptions, Omit<ExplainOptions, 'findings' | 'method'> {
  /** Default ['gradcam']. */
  methods?: readonly ExplanationMethod[];
  /** Random maps drawn per case for the baseline; default 100. */
  randomDraws?: number;
  /** Seed of the random baseline and the trust checks; default 0. */
  seed?: number;
  /** Deletion and insertion curves per case (forward passes: about 4 x (steps + 1) per case and method). */
  faithfulness?: boolean | FaithfulnessOptions;
  /** Cascading randomisation (one model per block of the network). */
  randomization?: boolean;
  onProgress?: (done: number, total: number, stage: string) => void;
}

export interface Spread {
  mean: number;
  sd: number;
}

export interface RandomBaseline {
  draws: number;
  seed: number;
  pointing: Spread;
  iou: Record<string, Spread>;
  iobb: Record<string, Spread>;
  afpIou: Record<string, Spread>;
  afpIobb: Record<string, Spread>;
  /** Share of draws whose pointing score over all cases is at least the method's (a one-sided p-value). */
  pointingAtLeastOurs: number;
  perFinding: Record<string, { pointing: Spread }>;
}

export interface CaseResult {
  image: string;
  finding: string;
  probability: number;
  pointing: boolean;
  /** The map's maximum, in the ground truth's pixel space. */
  peak: { x: number; y: number };
  bestIou: number[];
  bestIobb: number[];
  predictedBoxes: number;
  deletionAuc?: number;
  insertionAuc?: number;
}

export interface FaithfulnessSummary {
  steps: number;
  deletionAuc: Spread;
  insertionAuc: Spread;
  /** The same curves with pixels taken in a random order. */
  randomDeletionAuc: Spread;
  randomInsertionAuc: Spread;
}

export interface RandomizationStep {
  /** The blocks re-initialised so far, classifier first. */
  randomized: string[];
  /** Mean Spearman rank correlation with the trained model's maps over all cases (NaN-free cases only). */
  spearman: number;
  /** The same on magnitudes |map| (Adebayo et al. report both). */
  spearmanAbs: number;
}

export interface MethodReport {
  method: ExplanationMethod;
  layer?: string;
  target: 'logit' | 'probability';
  overall: LocalizationScores;
  perFinding: Record<string, LocalizationScores>;
  random: RandomBaseline;
  faithfulness?: FaithfulnessSummary;
  randomization?: RandomizationStep[];
  cases: CaseResult[];
}

export interface LocalizationReport {
  model: { architecture: string; weights: string; labels: string[]; input: string };
  protocol: {
    grid: number;
    boxLevels: number[];
    boxRule: 'regions' | 'largest';
    iouThresholds: number[];
    iobbThresholds: number[];
    pointingTolerance: number;
    description: string;
  };
  images: number;
  boxes: number;
  findings: string[];
  methods: MethodReport[];
  published: PublishedLocalization;
  notes: string[];
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
function spread(values: readonly number[]): Spread {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { mean: Number.NaN, sd: Number.NaN };
  const m = mean(finite);
  return { mean: m, sd: finite.length > 1 ? Math.sqrt(finite.reduce((a, v) => a + (v - m) ** 2, 0) / (finite.length - 1)) : 0 };
}

interface Case {
  image: BoxedImage;
  finding: string;
  truth: Rect[];
}

/** The (image, finding) pairs with their boxes; boxes of findings the model does not know are refused by name. */
function casesOf(images: readonly BoxedImage[], labels: readonly string[], grid: number): Case[] {
  const cases: Case[] = [];
  for (const image of images) {
    if (image.boxes.length === 0) throw new Error(`${image.name}: no boxes`);
    for (const finding of [...new Set(image.boxes.map((b) => b.finding))]) {
      if (!labels.includes(finding)) throw new Error(`${image.name}: a box is labelled "${finding}", which the model does not predict (it knows ${labels.join(', ')})`);
      cases.push({ image, finding, truth: image.boxes.filter((b) => b.finding === finding).map((b) => boxOnGrid(b, grid)) });
    }
  }
  return cases;
}

export async function evaluateLocalization(explainer: Explainer, images: readonly BoxedImage[], options: LocalizeEvalOptions = {}): Promise<LocalizationReport> {
  if (images.length === 0) throw new Error('localisation: no images with boxes to evaluate');
  const protocol = localizationOptions(options);
  const methods = options.methods ?? ['gradcam'];
  const draws = options.randomDraws ?? 100;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(draws) || draws < 1) throw new Error(`random draws must be a positive whole number, got ${draws}`);
  const cases = casesOf(images, explainer.labels, protocol.grid);
  const report = (done: number, total: number, stage: string) => options.onProgress?.(done, total, stage);
  const methodReports: MethodReport[] = [];
  for (const method of methods) {
    const explainOptions: ExplainOptions = { ...options, method };
    const scores: CaseScore[] = [];
    const results: CaseResult[] = [];
    const maps: { map: GridMap; geometry: ReturnType<Explainer['prepareImage']>['geometry'] }[] = [];
    let layer: string | undefined;
    for (const [i, c] of cases.entries()) {
      report(i, cases.length, `${method}: explaining`);
      const explanation = await explainer.explain(c.image.image, { ...explainOptions, findings: [c.finding] });
      layer = explanation.layer;
      const [finding] = explanation.findings;
      const onGrid = mapOnImageGrid(finding.map, explanation.geometry, protocol.grid);
      const score = scoreCase(onGrid, protocol.grid, c.truth, protocol);
      scores.push(score);
      maps.push({ map: finding.map, geometry: explanation.geometry });
      const space = c.image.boxes[0].space;
      results.push({
        image: c.image.name,
        finding: c.finding,
        probability: finding.probability,
        pointing: score.pointing,
        peak: { x: (score.peak.x * space.width) / protocol.grid, y: (score.peak.y * space.height) / protocol.grid },
        bestIou: score.bestIou,
        bestIobb: score.bestIobb,
        predictedBoxes: score.predicted.length,
      });
    }
    const findings = [...new Set(cases.map((c) => c.finding))].sort();
    const perFinding = Object.fromEntries(findings.map((f) => [f, summarize(scores.filter((_, k) => cases[k].finding === f), protocol)]));
    const overall = summarize(scores, protocol);
    report(0, draws, `${method}: random baseline`);
    const random = randomBaseline(cases, maps, protocol, draws, seed, overall.pointing);
    const methodReport: MethodReport = { method, ...(layer ? { layer } : {}), target: options.target ?? 'logit', overall, perFinding, random, cases: results };
    if (options.faithfulness) {
      const settings = typeof options.faithfulness === 'object' ? options.faithfulness : {};
      methodReport.faithfulness = await faithfulnessOf(explainer, cases, maps, results, { seed, ...settings }, (done) => report(done, cases.length, `${method}: deletion and insertion`));
    }
    if (options.randomization) {
      methodReport.randomization = await randomizationOf(explainer, cases, maps, explainOptions, seed, (done, total) => report(done, total, `${method}: model randomisation`));
    }
    methodReports.push(methodReport);
  }
  const { info } = explainer;
  return {
    model: { architecture: info.architecture, weights: info.weights, labels: [...info.labels], input: `${info.preprocessing.width}x${info.preprocessing.height}, ${info.preprocessing.channels} channel(s), ${info.preprocessing.resize}` },
    protocol: {
      ...protocol,
      boxLevels: [...protocol.boxLevels],
      iouThresholds: [...protocol.iouThresholds],
      iobbThresholds: [...protocol.iobbThresholds],
      description:
        `maps resampled onto a ${protocol.grid} x ${protocol.grid} grid over the image, scaled by their maximum; every 8-connected region at ` +
        `${protocol.boxLevels.map((l) => `${Math.round(l * 255)}/255`).join(' and ')} of the maximum gives a box (Wang et al. 2017)` +
        `${protocol.boxRule === 'largest' ? ' (only the largest region per level)' : ''}; a ground-truth box ` +
        'counts as localised at T when some predicted box has IoU > T (resp. IoBB > T); pointing game: the map\'s maximum inside a ground-truth box of the finding',
    },
    images: images.length,
    boxes: cases.reduce((n, c) => n + c.truth.length, 0),
    findings: [...new Set(cases.map((c) => c.finding))].sort(),
    methods: methodReports,
    published: WANG_2017_LOCALIZATION,
    notes: [
      `${cases.length} (image, finding) cases: with so few, an accuracy's 95% interval spans tens of percentage points; compare with the random baseline, not with published numbers.`,
      'Published numbers come from thousands of boxes, another model and training set, and their own split; they are shown for orientation only.',
    ],
  };
}

/** Uniform random maps at each case's map resolution, scored exactly as the method's maps. */
function randomBaseline(cases: readonly Case[], maps: readonly { map: GridMap; geometry: Parameters<typeof mapOnImageGrid>[1] }[], protocol: ReturnType<typeof localizationOptions>, draws: number, seed: number, oursPointing: number): RandomBaseline {
  const random = new SeededRandom(seed);
  const overall: LocalizationScores[] = [];
  const perFinding = new Map<string, number[]>();
  for (let d = 0; d < draws; d++) {
    const scores = cases.map((c, k) => {
      const { map, geometry } = maps[k];
      const noise: GridMap = { width: map.width, height: map.height, data: Float32Array.from(map.data, () => random.uint32() / 4294967296) };
      return scoreCase(mapOnImageGrid(noise, geometry, protocol.grid), protocol.grid, c.truth, protocol);
    });
    overall.push(summarize(scores, protocol));
    for (const f of new Set(cases.map((c) => c.finding))) {
      const list = perFinding.get(f) ?? [];
      list.push(summarize(scores.filter((_, k) => cases[k].finding === f), protocol).pointing);
      perFinding.set(f, list);
    }
  }
  const byThreshold = (pick: (s: LocalizationScores) => Record<string, number>) =>
    Object.fromEntries(Object.keys(pick(overall[0])).map((t) => [t, spread(overall.map((s) => pick(s)[t]))]));
  return {
    draws,
    seed,
    pointing: spread(overall.map((s) => s.pointing)),
    iou: byThreshold((s) => s.iou),
    iobb: byThreshold((s) => s.iobb),
    afpIou: byThreshold((s) => s.afpIou),
    afpIobb: byThreshold((s) => s.afpIobb),
    pointingAtLeastOurs: overall.filter((s) => s.pointing >= oursPointing).length / draws,
    perFinding: Object.fromEntries([...perFinding].map(([f, v]) => [f, { pointing: spread(v) }])),
  };
}

async function faithfulnessOf(
  explainer: Explainer,
  cases: readonly Case[],
  maps: readonly { map: GridMap }[],
  results: CaseResult[],
  settings: FaithfulnessOptions & { seed: number },
  onCase: (done: number) => void,
): Promise<FaithfulnessSummary> {
  const deletion: number[] = [];
  const insertion: number[] = [];
  const randomDeletion: number[] = [];
  const randomInsertion: number[] = [];
  for (const [k, c] of cases.entries()) {
    onCase(k);
    const { tensor } = explainer.prepareImage(c.image.image);
    const [, height, width] = tensor.dims;
    const label = explainer.labels.indexOf(c.finding);
    const runner = explainer.runner(c.image.image);
    const ours = await deletionInsertion(runner, tensor.data, tensor.dims, label, importanceOrder(maps[k].map, height, width, settings.seed), settings);
    const flat: GridMap = { width, height, data: new Float32Array(width * height) };
    const shuffled = await deletionInsertion(runner, tensor.data, tensor.dims, label, importanceOrder(flat, height, width, settings.seed + 1 + k), settings);
    deletion.push(ours.deletion.auc);
    insertion.push(ours.insertion.auc);
    randomDeletion.push(shuffled.deletion.auc);
    randomInsertion.push(shuffled.insertion.auc);
    results[k].deletionAuc = ours.deletion.auc;
    results[k].insertionAuc = ours.insertion.auc;
  }
  return {
    steps: settings.steps ?? 16,
    deletionAuc: spread(deletion),
    insertionAuc: spread(insertion),
    randomDeletionAuc: spread(randomDeletion),
    randomInsertionAuc: spread(randomInsertion),
  };
}

async function randomizationOf(
  explainer: Explainer,
  cases: readonly Case[],
  maps: readonly { map: GridMap }[],
  explainOptions: ExplainOptions,
  seed: number,
  onStep: (done: number, total: number) => void,
): Promise<RandomizationStep[]> {
  const blocks = cascadeBlocks(explainer.model);
  const steps: RandomizationStep[] = [];
  for (let k = 1; k <= blocks.length; k++) {
    onStep(k - 1, blocks.length);
    const randomized = blocks.slice(0, k);
    const other = await Explainer.create(randomizedModel(explainer.model, randomized, seed), { threads: explainer.threads });
    try {
      const correlations: number[] = [];
      const magnitudes: number[] = [];
      for (const [i, c] of cases.entries()) {
        const { findings } = await other.explain(c.image.image, { ...explainOptions, findings: [c.finding] });
        const original = maps[i].map.data;
        correlations.push(spearman(original, findings[0].map.data));
        magnitudes.push(spearman(original.map(Math.abs), findings[0].map.data.map(Math.abs)));
      }
      steps.push({ randomized, spearman: spread(correlations).mean, spearmanAbs: spread(magnitudes).mean });
    } finally {
      await other.close();
    }
  }
  return steps;
}
