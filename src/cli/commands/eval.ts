/** `cxr eval`: metrics with confidence intervals, operating points and calibration, as JSON, CSV and an HTML report. */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../../api.js';
import { readCsvDataset } from '../../data/generic.js';
import { readNihDataset } from '../../data/nih.js';
import type { Dataset } from '../../data/dataset.js';
import { evaluate, type EvaluationResult, type ThresholdSource } from '../../eval/evaluate.js';
import { labelledSetFromDataset, readPredictionsFile, writeEvaluation } from '../../eval/files.js';
import { type LabelledSet, matchPredictions, type MatchedPredictions, type PredictionTable, predictionsToCsv } from '../../eval/predictions.js';
import { parseThresholdRule, type ThresholdRule } from '../../eval/thresholds.js';
import { predictFiles } from '../../inference/files.js';
import { Predictor } from '../../inference/predictor.js';
import { readModelInfo } from '../../models/metadata.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { progressBar } from '../progress.js';

interface EvalOptions {
  labels: string;
  imageColumn?: string;
  model?: string;
  images?: string;
  list?: string;
  val?: string;
  valLabels?: string;
  thresholdRule: ThresholdRule;
  thresholds?: string;
  bootstrap: number;
  bootstrapBy: 'image' | 'patient';
  stratified?: boolean;
  seed: number;
  level: number;
  delongScale: 'auc' | 'logit';
  bins: number;
  out: string;
  json?: boolean;
  batchSize: number;
  threads?: number;
}

/** The metadata key a model would store its per-label thresholds under (JSON { label: threshold }). */
/** How many unmatched image names metrics.json lists (the count is always complete). */
const LISTED_NAMES = 1000;

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate predictions against labels: AUROC with DeLong and bootstrap intervals, AP, operating points, calibration, HTML report')
    .argument('[predictions]', 'predictions CSV as `cxr predict --csv` writes it (file, one probability per label, error); or use --model')
    .requiredOption('-l, --labels <csv>', 'labels: NIH Data_Entry CSV ("Image Index", "Finding Labels"), or a CSV with an image column and one 1/0/-1/blank column per label')
    .option('--image-column <name>', 'image column of a labels CSV that is not in NIH format (default: its first column)')
    .option('-m, --model <file>', 'predict the labelled images with this cxr-lens model instead of reading a predictions CSV')
    .option('--images <folder>', 'with --model: where the labelled images are (default: the labels file\'s folder)')
    .option('--list <file>', 'with --model: evaluate only these images (one file name per line, e.g. NIH\'s test_list.txt)')
    .option('--val <csv>', 'validation predictions CSV: thresholds are chosen on it by --threshold-rule')
    .option('--val-labels <csv>', 'labels of the validation images (default: --labels)')
    .option('--threshold-rule <rule>', 'youden | f1 | sensitivity:<x> | specificity:<x>', thresholdRuleOption, { kind: 'youden' } as ThresholdRule)
    .option('--thresholds <file|model>', 'fixed thresholds instead: a JSON file { "label": threshold } (or an earlier metrics.json), or "model" for those stored in --model')
    .option('--bootstrap <n>', 'bootstrap resamples; 0 for none', nonNegativeInt('bootstrap resamples'), 1000)
    .addOption(new Option('--bootstrap-by <unit>', 'resample images, or whole patients (images of one patient are not independent)').choices(['image', 'patient']).default('image'))
    .option('--stratified', 'resample each finding\'s positives and negatives separately (no interval for the mean AUROC)')
    .option('--seed <n>', 'bootstrap seed', nonNegativeInt('seed'), 0)
    .option('--level <x>', 'confidence level of the intervals', levelOption, 0.95)
    .addOption(new Option('--delong-scale <scale>', 'DeLong interval: AUROC +- z SE clipped to [0, 1], or symmetric on the logit scale').choices(['auc', 'logit']).default('auc'))
    .option('--bins <n>', 'calibration bins (equal width)', positiveInt('bins'), 10)
    .option('-o, --out <folder>', 'where metrics.json, metrics.csv and report.html go', 'eval-report')
    .option('--json', 'print metrics.json to stdout instead of the summary table')
    .option('-b, --batch-size <n>', 'with --model: images per ONNX Runtime run', positiveInt('batch size'), 16)
    .option('-t, --threads <n>', 'with --model: threads per operator', positiveInt('threads'))
    .addHelpText(
      'after',
      `
Images are matched by name: a predictions row "scans/00000013_005.png" is the labels' "00000013_005.png".
Predicted images without labels, unknown labels, bad probabilities and duplicate rows are errors that name
the file, row and column; labelled images without predictions are left out and counted in the report.
Thresholds are chosen on validation predictions (--val); without --val or --thresholds they are chosen on
the evaluated data itself, and the report marks their operating points as optimistic.
The HTML report opens offline; it compares per-finding AUROCs with Wang et al. 2017, CheXNet and SwinCheX,
which were measured on different test splits (see the report).

Examples:
  $ cxr predict nih/test-images --model densenet121.onnx --csv test.csv
  $ cxr eval test.csv --labels Data_Entry_2017.csv --out report/
  $ cxr eval test.csv --labels Data_Entry_2017.csv --val val.csv --threshold-rule sensitivity:0.9
  $ cxr eval --model densenet121.onnx --labels Data_Entry_2017.csv --images nih/ --list test_list.txt --bootstrap-by patient
  $ cxr eval test.csv --labels Data_Entry_2017.csv --thresholds report/metrics.json --bootstrap 0`,
    )
    .action(async (predictionsPath: string | undefined, options: EvalOptions) => {
      if (predictionsPath && options.model) throw new Error('give either a predictions CSV or --model, not both');
      if (!predictionsPath && !options.model) throw new Error('give a predictions CSV, or --model to predict the labelled images');
      if (options.thresholds && options.val) throw new Error('give either --thresholds or --val (thresholds are fixed, or chosen on validation data)');
      const inputs: string[] = [];
      let predictions: PredictionTable;
      let labelled: LabelledSet;
      let modelMetadata: Record<string, string> | undefined;
      if (options.model) {
        const run = await predictLabelledImages(options);
        ({ predictions, labelled } = run);
        modelMetadata = run.metadata;
        inputs.push(`model: ${options.model}`, `images: ${options.images ?? dirname(options.labels)}${options.list ? ` (listed in ${options.list})` : ''}`);
      } else {
        predictions = await readPredictionsFile(predictionsPath!);
        labelled = await readLabels(options.labels, predictions.labels, options.imageColumn);
        inputs.push(`predictions: ${predictionsPath}`);
      }
      inputs.push(`labels: ${options.labels}`);
      const matched = matchPredictions(predictions, labelled);

      const thresholds = await thresholdSource(options, modelMetadata, predictions.labels);
      if (options.val) inputs.push(`validation predictions: ${options.val}`);
      const bar = progressBar('bootstrap', options.bootstrap);
      let result: EvaluationResult;
      try {
        result = evaluate(matched.input, {
          level: options.level,
          delongScale: options.delongScale,
          bootstrap: options.bootstrap > 0 && { resamples: options.bootstrap, seed: options.seed, stratified: options.stratified, byCluster: options.bootstrapBy === 'patient' },
          thresholds,
          calibrationBins: options.bins,
          onProgress: (_, done, total) => bar.update(done, total),
        });
      } finally {
        bar.stop();
      }
      addMatchingNotes(result, matched, labelled.file);
      const written = writeEvaluation(options.out, result, {
        title: 'cxr-lens evaluation',
        inputs,
        generatedAt: new Date().toISOString(),
        details: { unmatched: unmatchedDetails(matched) },
      });
      if (options.model) await writeFile(join(options.out, 'predictions.csv'), predictionsCsv(predictions));
      if (options.json) process.stdout.write(readFileSync(written.json, 'utf8'));
      else process.stdout.write(summaryTable(result));
      for (const warning of result.warnings) process.stderr.write(`note: ${warning}\n`);
      process.stderr.write(`wrote ${written.json}, ${written.csv}, ${written.html}\n`);
    });
}

function thresholdRuleOption(value: string): ThresholdRule {
  try {
    return parseThresholdRule(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}


function levelOption(value: string): number {
  const level = Number(value);
  if (!(level > 0 && level < 1)) throw new InvalidArgumentError(`level must be a number between 0 and 1 (e.g. 0.95), got "${value}"`);
  return level;
}

/** NIH's Data_Entry layout when the header has "Finding Labels"; otherwise one column per label. */
async function readLabelDataset(path: string, labelNames: readonly string[], imageColumn?: string, imageRoot?: string): Promise<Dataset> {
  let header: string;
  try {
    header = readFileSync(path, 'utf8').split(/\r?\n/, 1)[0].replace(/^\uFEFF/, '');
  } catch (error) {
    throw new Error(`${path}: cannot read the labels file: ${(error as Error).message}`);
  }
  const columns = header.split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  if (columns.includes('Finding Labels')) return readNihDataset({ csvPath: path, imageRoot, checkImages: false });
  return readCsvDataset({ csvPath: path, imageRoot, imageColumn: imageColumn ?? columns[0], labels: { columns: labelNames }, checkImages: false });
}

async function readLabels(path: string, labelNames: readonly string[], imageColumn?: string): Promise<LabelledSet> {
  return labelledSetFromDataset(await readLabelDataset(path, labelNames, imageColumn), path);
}

async function predictLabelledImages(options: EvalOptions): Promise<{ predictions: PredictionTable; labelled: LabelledSet; metadata: Record<string, string> }> {
  const { model, info, path } = loadModel(options.model);
  const dataset = await readLabelDataset(options.labels, info.labels, options.imageColumn, options.images ?? dirname(options.labels));
  let records = dataset.records;
  if (options.list) {
    const listed = new Set(readFileSync(options.list, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean));
    records = records.filter((r) => listed.has(basename(r.id)));
    if (records.length === 0) throw new Error(`${options.list}: none of its names is in ${options.labels}`);
  }
  // Each record's image path as its reader found it (or where NIH's layout puts it): a missing image becomes a
  // failed prediction, reported by name.
  const files = records.map((r) => r.imagePath);
  // Evaluation measures the model on every labelled image, including any its input checks would reject.
  const predictor = await Predictor.create(model, { batchSize: options.batchSize, threads: options.threads, source: path, showRejected: true });
  const bar = progressBar('predicting', files.length);
  let results;
  try {
    results = await predictFiles(predictor, files, { onProgress: (done, total) => bar.update(done, total) });
  } finally {
    bar.stop();
    await predictor.close();
  }
  const probabilities: number[] = [];
  const paths: string[] = [];
  const rows: number[] = [];
  const failed: PredictionTable['failed'] = [];
  const rejectedShown: NonNullable<PredictionTable['rejectedShown']> = [];
  results.forEach((r, i) => {
    if (!r.prediction) failed.push({ path: r.file, row: i + 1, error: r.error ?? 'not predicted' });
    else {
      for (const finding of r.prediction.findings) probabilities.push(finding.probability);
      paths.push(r.file);
      rows.push(i + 1);
      if (r.prediction.verdict === 'rejected-shown') rejectedShown.push({ path: r.file, row: i + 1, flags: r.prediction.inputFlags.map((f) => f.code) });
    }
  });
  return {
    predictions: { file: path, labels: [...info.labels], paths, rows, probabilities: Float64Array.from(probabilities), failed, rejectedShown },
    labelled: labelledSetFromDataset(dataset, options.labels),
    metadata: model.metadata,
  };
}

async function thresholdSource(options: EvalOptions, modelMetadata: Record<string, string> | undefined, labels: readonly string[]): Promise<ThresholdSource> {
  if (options.thresholds === 'model') {
    if (!modelMetadata) throw new Error('--thresholds model needs --model');
    const stored = readModelInfo({ metadata: modelMetadata }, options.model).thresholds;
    if (!stored) throw new Error(`${options.model}: the model stores no thresholds; choose them on validation data with --val`);
    return { kind: 'fixed', values: stored.values, source: `${stored.rule}, chosen on the ${stored.source}; stored in ${options.model}` };
  }
  if (options.thresholds) {
    let text: string;
    try {
      text = readFileSync(options.thresholds, 'utf8');
    } catch (error) {
      throw new Error(`${options.thresholds}: cannot read the thresholds file: ${(error as Error).message}`);
    }
    return { kind: 'fixed', values: thresholdMap(text, options.thresholds), source: `read from ${options.thresholds}` };
  }
  if (options.val) {
    const predictions = await readPredictionsFile(options.val);
    const labelsPath = options.valLabels ?? options.labels;
    const matched = matchPredictions(predictions, await readLabels(labelsPath, predictions.labels, options.imageColumn));
    const missing = labels.filter((l) => !predictions.labels.includes(l));
    if (missing.length > 0) throw new Error(`${options.val}: no validation predictions for ${missing.join(', ')}`);
    return { kind: 'rule', rule: options.thresholdRule, validation: matched.input, source: `chosen on ${options.val}` };
  }
  return { kind: 'rule', rule: options.thresholdRule };
}

/** { "label": threshold }, or an earlier run's metrics.json (its classes[].threshold.value). */
function thresholdMap(text: string, where: string): Record<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${where}: not valid JSON`);
  }
  const fromRun = (parsed as { classes?: { label: string; threshold: { value: number } | null }[] })?.classes;
  const entries: [string, unknown][] = Array.isArray(fromRun)
    ? fromRun.filter((k) => k.threshold).map((k) => [k.label, k.threshold!.value])
    : parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? Object.entries(parsed)
      : [];
  if (entries.length === 0) throw new Error(`${where}: expected { "label": threshold, ... } or the metrics.json of an earlier evaluation`);
  for (const [label, value] of entries) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${where}: the threshold of "${label}" is ${JSON.stringify(value)}, not a number`);
  }
  return Object.fromEntries(entries) as Record<string, number>;
}

function addMatchingNotes(result: EvaluationResult, matched: MatchedPredictions, labelsFile: string): void {
  const { labelsWithoutPredictions, failedPredictions, labelsNotPredicted, rejectedShown } = matched;
  if (rejectedShown.length > 0) {
    const listed = rejectedShown.slice(0, 5).map((r) => `${r.path} (${r.flags.join(', ')})`).join('; ');
    result.warnings.unshift(`${rejectedShown.length} evaluated image(s) were rejected by the input checks and predicted anyway (rejected-shown): ${listed}${rejectedShown.length > 5 ? '; ...' : ''}`);
  }
  if (failedPredictions.length > 0) {
    const listed = failedPredictions.slice(0, 5).map((f) => `${f.path} (${f.error})`).join('; ');
    result.warnings.unshift(`${failedPredictions.length} image(s) could not be predicted and are not evaluated: ${listed}${failedPredictions.length > 5 ? '; ...' : ''}`);
  }
  if (labelsWithoutPredictions.length > 0) {
    result.warnings.unshift(`${labelsWithoutPredictions.length} labelled image(s) of ${labelsFile} have no prediction and are not evaluated (listed in metrics.json)`);
  }
  if (labelsNotPredicted.length > 0) result.warnings.unshift(`labels without predictions, not evaluated: ${labelsNotPredicted.join(', ')}`);
}

function unmatchedDetails(matched: MatchedPredictions) {
  const names = matched.labelsWithoutPredictions;
  return {
    labelsWithoutPredictions: { count: names.length, names: names.slice(0, LISTED_NAMES), listed: Math.min(names.length, LISTED_NAMES) },
    failedPredictions: matched.failedPredictions,
    labelsNotPredicted: matched.labelsNotPredicted,
  };
}

/** The predictions of a --model run, in `cxr predict --csv`'s format, so they can be evaluated again without the model. */
function predictionsCsv(predictions: PredictionTable): string {
  const c = predictions.labels.length;
  const shown = new Map((predictions.rejectedShown ?? []).map((r) => [r.row, r.flags]));
  return predictionsToCsv(predictions.labels, [
    ...predictions.paths.map((file, i) => ({
      file,
      probabilities: predictions.probabilities.subarray(i * c, (i + 1) * c),
      verdict: shown.has(predictions.rows[i]) ? 'rejected-shown' : 'accepted',
      flags: shown.get(predictions.rows[i]) ?? [],
    })),
    ...predictions.failed.map((f) => ({ file: f.path, probabilities: null, error: f.error })),
  ]);
}

function summaryTable(result: EvaluationResult): string {
  const level = `${Math.round(result.settings.level * 100)}%`;
  const f = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3));
  const range = (i: { lower: number; upper: number } | null | undefined) => (i ? `${f(i.lower)}-${f(i.upper)}` : '-');
  const width = Math.max(7, ...result.labels.map((l) => l.length));
  const head = ['finding'.padEnd(width), 'pos'.padStart(6), 'neg'.padStart(7), 'AUROC'.padStart(6), `DeLong ${level}`.padStart(13), `bootstrap ${level}`.padStart(15), 'AP'.padStart(6), 'sens'.padStart(6), 'spec'.padStart(6), 'ECE'.padStart(6)];
  const lines = [head.join('  ')];
  for (const k of result.classes) {
    lines.push(
      [
        k.label.padEnd(width),
        String(k.positives).padStart(6),
        String(k.negatives).padStart(7),
        f(k.auroc).padStart(6),
        range(k.delong).padStart(13),
        range(k.bootstrap).padStart(15),
        f(k.averagePrecision).padStart(6),
        f(k.operatingPoint?.sensitivity).padStart(6),
        f(k.operatingPoint?.specificity).padStart(6),
        f(k.calibration.ece).padStart(6),
      ].join('  '),
    );
  }
  const s = result.summary;
  lines.push(
    [`mean (${s.meanOver.length})`.padEnd(width), ''.padStart(6), ''.padStart(7), f(s.meanAuroc).padStart(6), ''.padStart(13), range(s.meanAurocBootstrap).padStart(15), f(s.meanAveragePrecision).padStart(6), ''.padStart(6), ''.padStart(6), f(s.meanEce).padStart(6)].join('  '),
  );
  const t = result.settings.thresholds;
  lines.push('', `thresholds: ${t.source}${t.rule ? ` (${t.rule})` : ''}${t.optimistic ? ' - optimistic' : ''}`, 'Research use only; not for clinical decisions.', '');
  return lines.join('\n');
}
