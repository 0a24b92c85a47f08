/**
 * Measuring explanations on images with radiologists' boxes: localisation (pointing game, IoU and IoBB accuracies,
 * Wang et al.'s protocol, see localize.ts) beside a random-map baseline, and optionally the trust checks:
 * faithfulness (deletion and insertion AUC, and ROAD's MoRF and LeRF, each beside a random order) and the cascading
 * model-randomisation check.
 */
import type { DecodedImage } from '../imaging/image.js';
import { SeededRandom } from '../eval/random.js';
import type { ExplainOptions, ExplanationMethod } from './core.js';
import { float32 } from '../onnx/tensor.js';
import { Explainer } from './explainer.js';
import { deletionInsertion, type FaithfulnessOptions, importanceOrder } from './faithfulness.js';
import { type RoadOptions, road } from './road.js';
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
  faithfulness?: boolean | (FaithfulnessOptions & { road?: RoadOptions | false });
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
  roadMorf?: number;
  roadLerf?: number;
}

export interface FaithfulnessSummary {
  steps: number;
  deletionAuc: Spread;
  insertionAuc: Spread;
  /** The same curves with pixels taken in a random order. */
  randomDeletionAuc: Spread;
  randomInsertionAuc: Spread;
  /** ROAD (road.ts): mean probability with the most (MoRF) and least (LeRF) relevant pixels imputed, ours and a random order's. */
  road?: { fractions: number[]; morf: Spread; lerf: Spread; randomMorf: Spread; randomLerf: Spread };
}

export interface RandomizationStep {
  /** The blocks re-initialised so far, classifier first. */
  randomized: string[];
  /**
   * Mean Spearman rank correlation with the trained model's maps over the cases where it is defined; null when it
   * is defined for none (then `note` says why).
   */
  spearman: number | null;
  /** The same on magnitudes |map| (Adebayo et al. report both). */
  spearmanAbs: number | null;
  /** Cases whose correlation is defined (neither map constant). */
  cases: number;
  /** Cases where the randomised model's map is constant (for a rectified map: zero everywhere). */
  constantMaps: number;
  /** The randomised model's logits on the cases with a constant map (how far from positive evidence it was). */
  constantLogits?: [min: number, max: number];
  /** Why some or all cases have no correlation, in words. */
  note?: string;
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
  /** Where the method did worse than its random baseline (maps or pixel order), one line each. */
  warnings: string[];
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
  /** Methods whose maps were identical on every case, and why (by construction or by chance). */
  coincidences: string[];
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
  const allMaps = new Map<string, GridMap[]>();
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
    const methodReport: MethodReport = { method, ...(layer ? { layer } : {}), target: options.target ?? 'logit', overall, perFinding, random, warnings: [], cases: results };
    if (options.faithfulness) {
      const settings = typeof options.faithfulness === 'object' ? options.faithfulness : {};
      methodReport.faithfulness = await faithfulnessOf(explainer, cases, maps, results, { seed, ...settings }, (done) => report(done, cases.length, `${method}: deletion, insertion and ROAD`));
    }
    if (options.randomization) {
      methodReport.randomization = await randomizationOf(explainer, method, cases, maps, explainOptions, seed, (done, total) => report(done, total, `${method}: model randomisation`));
    }
    methodReport.warnings = belowRandom(methodReport);
    methodReports.push(methodReport);
    allMaps.set(method, maps.map((m) => m.map));
  }
  const coinciding = await coincidences(explainer, cases, allMaps, options.layer);
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
    coincidences: coinciding,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * A line for every score where the method did worse than its random baseline: pointing, each IoU and IoBB
 * accuracy, pointing per finding, and deletion/insertion against a random pixel order. Below random is not proof
 * of anything on a few cases, but it must be read, not found by comparing columns.
 */
export function belowRandom(m: Pick<MethodReport, 'method' | 'overall' | 'perFinding' | 'random' | 'faithfulness'>): string[] {
  const lines: string[] = [];
  const check = (what: string, ours: number, random: Spread) => {
    if (Number.isFinite(ours) && Number.isFinite(random.mean) && ours < random.mean) {
      lines.push(`${m.method}: ${what} ${pct(ours)} is below random maps' ${pct(random.mean)} ± ${pct(random.sd)}`);
    }
  };
  check('pointing', m.overall.pointing, m.random.pointing);
  for (const t of Object.keys(m.overall.iou)) check(`IoU>${t} accuracy`, m.overall.iou[t], m.random.iou[t]);
  for (const t of Object.keys(m.overall.iobb)) check(`IoBB>${t} accuracy`, m.overall.iobb[t], m.random.iobb[t]);
  for (const [finding, s] of Object.entries(m.perFinding)) {
    const random = m.random.perFinding[finding]?.pointing;
    if (random) check(`pointing on ${finding}`, s.pointing, random);
  }
  const f = m.faithfulness;
  if (f && f.deletionAuc.mean > f.randomDeletionAuc.mean) {
    lines.push(`${m.method}: deletion AUC ${f.deletionAuc.mean.toFixed(3)} is above a random order's ${f.randomDeletionAuc.mean.toFixed(3)} (removing pixels in the map's order lowers the score less than removing them at random)`);
  }
  if (f && f.insertionAuc.mean < f.randomInsertionAuc.mean) {
    lines.push(`${m.method}: insertion AUC ${f.insertionAuc.mean.toFixed(3)} is below a random order's ${f.randomInsertionAuc.mean.toFixed(3)} (inserting pixels in the map's order raises the score less than inserting them at random)`);
  }
  if (f?.road && f.road.morf.mean > f.road.randomMorf.mean) {
    lines.push(`${m.method}: ROAD MoRF ${f.road.morf.mean.toFixed(3)} is above a random order's ${f.road.randomMorf.mean.toFixed(3)} (imputing the map's most relevant pixels lowers the probability less than imputing random ones)`);
  }
  if (f?.road && f.road.lerf.mean < f.road.randomLerf.mean) {
    lines.push(`${m.method}: ROAD LeRF ${f.road.lerf.mean.toFixed(3)} is below a random order's ${f.road.randomLerf.mean.toFixed(3)} (imputing the map's least relevant pixels lowers the probability more than imputing random ones)`);
  }
  return lines;
}

/** Equal to float32 rounding (the maps come from different sums of the same products). */
function sameMap(a: GridMap, b: GridMap): boolean {
  if (a.width !== b.width || a.height !== b.height) return false;
  let scale = 0;
  for (const v of a.data) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i] - b.data[i]) > 1e-5 * scale + 1e-12) return false;
  return true;
}

/** Whether every channel of the layer gradient has one value at all its locations (to float32 rounding). */
function spatiallyConstant(gradient: Float32Array, [channels, height, width]: readonly [number, number, number]): boolean {
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const first = gradient[c * plane];
    for (let i = 1; i < plane; i++) if (Math.abs(gradient[c * plane + i] - first) > 1e-6 * Math.abs(first) + 1e-12) return false;
  }
  return true;
}

/** The CAM methods that are Grad-CAM when the layer gradient is spatially constant. */
const REDUCE_TO_GRADCAM: readonly string[] = ['gradcam', 'hirescam', 'xgradcam'];

/**
 * A note for each group of methods whose maps are identical on every case, with the reason where it is one by
 * construction: for CAM methods whose layer gradient is spatially constant (a head that global-average-pools the
 * layer, then a linear layer, as every zoo model's default layer), HiResCAM's elementwise weights and XGrad-CAM's
 * weights reduce to Grad-CAM's channel means (Draelos & Carin 2020; Fu et al. 2020, eq. 9), so the three coincide.
 */
async function coincidences(explainer: Explainer, cases: readonly Case[], maps: ReadonlyMap<string, GridMap[]>, layer: string | undefined): Promise<string[]> {
  const methods = [...maps.keys()];
  const groups: string[][] = [];
  for (const method of methods) {
    const group = groups.find((g) => maps.get(g[0])!.every((m, k) => sameMap(m, maps.get(method)![k])));
    if (group) group.push(method);
    else groups.push([method]);
  }
  const notes: string[] = [];
  for (const group of groups.filter((g) => g.length > 1)) {
    const names = group.join(', ');
    if (!group.every((m) => REDUCE_TO_GRADCAM.includes(m))) {
      notes.push(`${names} gave identical maps on every case.`);
      continue;
    }
    const c = cases[0];
    const { tensor } = explainer.prepareImage(c.image.image);
    const gradients = await explainer.runner(c.image.image).layerGradients(float32([1, ...tensor.dims], tensor.data), [explainer.labels.indexOf(c.finding)], layer);
    notes.push(
      spatiallyConstant(gradients.gradients[0], gradients.dims)
        ? `${names} gave identical maps on every case, by construction: at ${gradients.layer} the gradient of a finding's logit is the same at every location ` +
            'of a channel (the head averages this layer over space, then applies a linear layer), so HiResCAM\'s per-location weights and XGrad-CAM\'s ' +
            'weights equal Grad-CAM\'s channel means. They are one method here; pick a layer the head does not average directly to tell them apart.'
        : `${names} gave identical maps on every case although the gradient at ${gradients.layer} varies over locations: a property of these images, not of the definitions.`,
    );
  }
  return notes;
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
  settings: FaithfulnessOptions & { seed: number; road?: RoadOptions | false },
  onCase: (done: number) => void,
): Promise<FaithfulnessSummary> {
  const deletion: number[] = [];
  const insertion: number[] = [];
  const randomDeletion: number[] = [];
  const randomInsertion: number[] = [];
  const roads = { morf: [] as number[], lerf: [] as number[], randomMorf: [] as number[], randomLerf: [] as number[] };
  let fractions: number[] = [];
  for (const [k, c] of cases.entries()) {
    onCase(k);
    const { tensor } = explainer.prepareImage(c.image.image);
    const [, height, width] = tensor.dims;
    const label = explainer.labels.indexOf(c.finding);
    const runner = explainer.runner(c.image.image);
    const order = importanceOrder(maps[k].map, height, width, settings.seed);
    const flat: GridMap = { width, height, data: new Float32Array(width * height) };
    const randomOrder = importanceOrder(flat, height, width, settings.seed + 1 + k);
    const ours = await deletionInsertion(runner, tensor.data, tensor.dims, label, order, settings);
    const shuffled = await deletionInsertion(runner, tensor.data, tensor.dims, label, randomOrder, settings);
    deletion.push(ours.deletion.auc);
    insertion.push(ours.insertion.auc);
    randomDeletion.push(shuffled.deletion.auc);
    randomInsertion.push(shuffled.insertion.auc);
    results[k].deletionAuc = ours.deletion.auc;
    results[k].insertionAuc = ours.insertion.auc;
    if (settings.road !== false) {
      const roadSettings = { seed: settings.seed + k, batchSize: settings.batchSize, ...settings.road };
      const mine = await road(runner, tensor.data, tensor.dims, label, order, roadSettings);
      const theirs = await road(runner, tensor.data, tensor.dims, label, randomOrder, roadSettings);
      fractions = mine.fractions;
      roads.morf.push(mine.morfMean);
      roads.lerf.push(mine.lerfMean);
      roads.randomMorf.push(theirs.morfMean);
      roads.randomLerf.push(theirs.lerfMean);
      results[k].roadMorf = mine.morfMean;
      results[k].roadLerf = mine.lerfMean;
    }
  }
  return {
    steps: settings.steps ?? 16,
    deletionAuc: spread(deletion),
    insertionAuc: spread(insertion),
    randomDeletionAuc: spread(randomDeletion),
    randomInsertionAuc: spread(randomInsertion),
    ...(settings.road !== false
      ? { road: { fractions, morf: spread(roads.morf), lerf: spread(roads.lerf), randomMorf: spread(roads.randomMorf), randomLerf: spread(roads.randomLerf) } }
      : {}),
  };
}

async function randomizationOf(
  explainer: Explainer,
  method: string,
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
      const logits: number[] = [];
      let constantMaps = 0;
      for (const [i, c] of cases.entries()) {
        const { findings } = await other.explain(c.image.image, { ...explainOptions, findings: [c.finding] });
        const original = maps[i].map.data;
        const data = findings[0].map.data;
        if (isConstant(data)) {
          constantMaps++;
          logits.push(findings[0].logit);
          continue;
        }
        correlations.push(spearman(original, data));
        magnitudes.push(spearman(original.map(Math.abs), data.map(Math.abs)));
      }
      steps.push(randomizationStep(method, randomized, correlations, magnitudes, constantMaps, cases.length, logits));
    } finally {
      await other.close();
    }
  }
  return steps;
}

function isConstant(data: Float32Array): boolean {
  for (let i = 1; i < data.length; i++) if (data[i] !== data[0]) return false;
  return true;
}

/**
 * One step of the cascade, saying why a correlation is missing rather than printing NaN: a constant map has no
 * ranking to correlate (Spearman is undefined), which for the CAM family means the ReLU removed everything: the
 * randomised model has no positive evidence for the finding anywhere. Such a map has kept nothing of the trained
 * map's ranking, so the step still passes the check; it is counted, not averaged in.
 */
export function randomizationStep(
  method: string,
  randomized: string[],
  correlations: readonly number[],
  magnitudes: readonly number[],
  constantMaps: number,
  total: number,
  constantLogits: readonly number[] = [],
): RandomizationStep {
  const defined = correlations.filter(Number.isFinite);
  const mean = (values: readonly number[]) => (values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length);
  const step: RandomizationStep = { randomized, spearman: mean(defined), spearmanAbs: mean(magnitudes.filter(Number.isFinite)), cases: defined.length, constantMaps };
  if (constantLogits.length > 0) step.constantLogits = [Math.min(...constantLogits), Math.max(...constantLogits)];
  const reasons: string[] = [];
  if (constantMaps > 0) {
    reasons.push(
      `${constantMaps} of ${total} randomised maps are constant: ${method}'s map is zero everywhere after its ReLU, so the randomised model ` +
        'shows no positive evidence for the finding; a constant map has no ranking to correlate (Spearman undefined) and has kept none of the trained map\'s',
    );
  }
  const undefinedOther = total - constantMaps - defined.length;
  if (undefinedOther > 0) reasons.push(`${undefinedOther} of ${total} trained maps are constant, so their correlation is undefined`);
  if (reasons.length > 0) step.note = reasons.join('; ');
  return step;
}
