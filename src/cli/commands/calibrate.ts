/**
 * `cxr calibrate`: fits an existing model's input checks, calibration and operating points on labelled data split
 * by patient, so imported or older models answer like trained ones: refusing invalid inputs, with calibrated
 * probabilities and stated thresholds. Writes the model and a report beside it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import Papa from 'papaparse';
import { basename } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { NIH_FINDINGS } from '../../data/labels.js';
import { parseThresholdRule } from '../../eval/thresholds.js';
import { listImageFiles } from '../../inference/files.js';
import { type SafetyInfo, readModelInfo } from '../../models/metadata.js';
import { writeModelFile } from '../../onnx/index.js';
import { type NegativeSet, calibrateModel, labelledImages, meanEce } from '../../safety/calibrate.js';
import { fileSource } from '../../safety/features.js';
import { calibrationMarkdown, safetyMarkdown } from '../../safety/report.js';
import { readConfigFile, resolveConfig } from '../../train/config.js';
import { readDatasets, splitData } from '../../train/data.js';
import { recalibratedCard } from '../../train/card-update.js';
import { type ModelCard, cardMarkdown, splitCounts } from '../../train/finish.js';
import { evaluationToHtml } from '../../eval/index.js';
import { concatDatasets } from '../../data/dataset.js';
import { checkNoLeakage } from '../../data/split.js';
import { decodeImageFile } from '../../imaging/decode.js';
import { DATA_OPTION, collect, datasetFlag, nonNegativeInt, positiveInt, readModelToRewrite } from '../options.js';
import { progressBar } from '../progress.js';
import { MIN_ADAPTATION_IMAGES } from '../../safety/adapt.js';
import { UNLABELLED_HELP, calibrateUnlabelled } from './calibrate-unlabelled.js';

interface CalibrateCliOptions {
  model: string;
  out: string;
  config?: string;
  data: string[];
  split: { train: number; validation: number; test: number };
  seed: number;
  negatives: NegativeFlag[];
  negativesManifest?: string;
  card?: string;
  add: string[];
  method: 'platt' | 'temperature';
  thresholdRule: string;
  falseFlagRate: number;
  components: number;
  synthetic: number;
  batchSize: number;
  threads?: number;
  unlabelled?: string;
  reference?: string;
  resamples: number;
  minImages: number;
}

interface NegativeFlag {
  kind: string;
  path: string;
}

export function calibrateCommand(): Command {
  return new Command('calibrate')
    .description("fit a model's input checks, probability calibration and operating points on labelled data, or adapt it to a site's prevalence from unlabelled images (--unlabelled)")
    .requiredOption('-m, --model <file>', 'the cxr-lens model (.onnx) to calibrate')
    .requiredOption('-o, --out <file>', 'where to write the calibrated model (.onnx); a report goes beside it (.calibration.md/.json)')
    .option('-c, --config <recipe>', "a training recipe: its datasets and patient split (a trained model's own recipe reproduces its split)")
    .option(...DATA_OPTION, collect, [])
    .option('--split <train,validation,test>', 'patient fractions: reference images for the checks, fitting data, held-out data (default 0.7,0.15,0.15)', splitFractions)
    .option('--seed <n>', 'seed of the patient split (default: the recipe\'s, else 0)', nonNegativeInt('seed'))
    .option('--add <format:labels.csv[:images]>', "more labelled images of patients the model never trained on, split by patient at the same fractions and added to each part (the recipe's own split is kept)", collect, [])
    .option('--card <model-card.json>', "the training run's model card: written again beside --out (.card.json, .card.md, .test-report.html) with the new calibration, thresholds and checks, and metrics on this split")
    .option('--negatives-manifest <csv>', 'a kind,path CSV of real invalid images to measure the checks on (scripts/negatives.sh writes one from Debian packages); files that cannot be decoded are counted and skipped')
    .option('--negatives <kind=path>', 'real invalid images to measure the checks on: a folder or a file, e.g. "natural photographs=photos/" (repeatable; one kind may be given several paths)', negativeFlag, [])
    .option('--method <platt|temperature>', 'calibration per finding', calibrationMethod, 'platt')
    .option('--threshold-rule <rule>', 'operating points: specificity:<0..1> (the lowest threshold keeping that share of validation negatives negative), sensitivity:<0..1>, f1 or youden; each threshold gets a bootstrap CI, and a finding with under 10 validation positives or negatives gets none (no decision)', 'specificity:0.9')
    .option('--false-flag-rate <rate>', 'share of held-out real films the input checks together may refuse (their warnings may reach twice that)', rate, 0.01)
    .option('--components <n>', 'principal directions of the out-of-distribution Gaussian', positiveInt('components'), 64)
    .option('--synthetic <n>', 'held-out images turned, inverted, cropped, blanked or replaced by noise, per kind, to measure the checks on (0: none)', nonNegativeInt('synthetic'), 100)
    .option('-b, --batch-size <n>', 'images per ONNX Runtime run', positiveInt('batch size'), 16)
    .option('-t, --threads <n>', 'ONNX Runtime threads (default: all cores)', positiveInt('threads'))
    .option('--unlabelled <folder>', "no labels: adapt the model's calibration and thresholds to the prevalence of these images (EM prior shift; see below)")
    .option('--reference <format:labels.csv[:images]>', "with --unlabelled, for a model that does not store its calibration's prevalence: the labelled data it was calibrated on")
    .option('--resamples <n>', 'with --unlabelled: bootstrap resamples of the images for the prevalence intervals', nonNegativeInt('resamples'), 1000)
    .option('--min-images <n>', 'with --unlabelled: fewest usable images to estimate from', positiveInt('min images'), MIN_ADAPTATION_IMAGES)
    .addHelpText(
      'after',
      `
The data is split by patient: the first part is the reference distribution of the input checks (the feature and
thumbnail-layout Gaussians; its films, each under its 16 turns, mirrorings and inversions, train the orientation
network), the second fits the calibration, the thresholds and the checks' thresholds, the third is held out and
only measured on (ECE after calibration, the checks' false refusals, per view where the labels give views). The
checks are fitted on real films only: every --negatives kind is measured, never fitted on.
Calibration comes first; thresholds are chosen on the calibrated probabilities.

Examples:
  $ cxr calibrate --model runs/default/model.onnx --config configs/default-model.yaml --out models/default.onnx \\
      --negatives "natural photographs=../shared/data/natural-photos"
  $ cxr calibrate --model chexnet.onnx --data nih:Data_Entry_2017.csv:/data/nih --split 0.5,0.25,0.25 \\
      --threshold-rule sensitivity:0.9 --out chexnet-calibrated.onnx
${UNLABELLED_HELP}`,
    )
    .action(async (options: CalibrateCliOptions) => {
      if (options.unlabelled) {
        if (options.data.length > 0) throw new Error('--unlabelled adapts without labels; --data fits on labels: give one of them (the source prevalence of an older model comes from --reference or --config)');
        return calibrateUnlabelled({ ...options, unlabelled: options.unlabelled });
      }
      if (options.reference) throw new Error('--reference is for --unlabelled (the labelled data behind the source prevalence); to fit on labels use --data');
      if (!options.config && options.data.length === 0) throw new Error('give the labelled data: --config <recipe> or --data format:labels.csv[:images]');
      const thresholdRule = parseThresholdRule(options.thresholdRule);
      const model = readModelToRewrite(options.model, options.out);
      const info = readModelInfo(model, options.model);
      const raw = options.config ? readConfigFile(options.config) : {};
      if (options.data.length > 0) raw.datasets = options.data.map((value) => datasetFlag(value));
      raw.labels = sameLabels(info.labels, NIH_FINDINGS) ? 'nih' : info.labels;
      if (options.split) raw.split = { method: 'patient', ...options.split };
      if (options.seed !== undefined) raw.seed = options.seed;
      const config = resolveConfig(raw, options.config ?? 'the command line');
      const say = (message: string) => process.stderr.write(`${message}\n`);
      say('reading the datasets');
      const data = await splitData(await readDatasets(config), config);
      if (options.add.length > 0) {
        // Patients the model never trained on: split at the same fractions and added to each part, never to one part only.
        const extra = await splitData(await readDatasets({ ...config, datasets: options.add.map((value) => datasetFlag(value, '--add')) } as typeof config), config);
        for (const part of ['train', 'validation', 'test'] as const) data[part] = concatDatasets([data[part], extra[part]], { duplicates: 'error' });
        checkNoLeakage({ train: data.train.records, validation: data.validation.records, test: data.test.records });
      }
      const describe = (name: string, d: typeof data.train) => `${name} (${d.records.length} images, ${new Set(d.records.map((r) => r.patientId)).size} patients)`;
      say(`${data.train.records.length} reference, ${data.validation.records.length} fitting, ${data.test.records.length} held-out images${data.apart.records.length > 0 ? ` (and ${data.apart.records.length} kept apart)` : ''}`);
      // The training card is read before the long work, so a wrong path or file fails at once.
      const trainingCard = options.card ? readTrainingCard(options.card) : undefined;
      const negatives: NegativeSet[] = options.negativesManifest ? await manifestNegatives(options.negativesManifest, say) : [];
      for (const n of options.negatives) {
        const files = listImageFiles([n.path]);
        if (files.length === 0) throw new Error(`--negatives ${n.kind}=${n.path}: no image files there`);
        const set = negatives.find((s) => s.kind === n.kind) ?? negatives[negatives.push({ kind: n.kind, sources: [] }) - 1];
        set.sources.push(...files.map(fileSource));
      }
      let bar = progressBar('', 0);
      const result = await calibrateModel(
        model,
        {
          reference: data.train.records.map((r) => fileSource(r.imagePath)),
          validation: labelledImages(data.validation, describe('validation split', data.validation)),
          test: data.test.records.length > 0 ? labelledImages(data.test, describe('test split', data.test)) : undefined,
          apart: data.apart.records.length > 0 ? labelledImages(data.apart, describe('test patients kept apart', data.apart)) : undefined,
          negatives,
        },
        {
          method: options.method,
          thresholdRule,
          falseFlagRate: options.falseFlagRate,
          components: options.components,
          syntheticNegatives: options.synthetic,
          batchSize: options.batchSize,
          threads: options.threads,
          onStage: (message) => {
            bar.stop();
            say(message);
          },
          onProgress: (done, total) => {
            if (done <= options.batchSize) {
              bar.stop();
              bar = progressBar('  images', total);
            }
            bar.update(done, total);
          },
        },
      );
      bar.stop();
      writeModelFile(options.out, result.model);
      const base = options.out.replace(/\.onnx$/i, '');
      const report = {
        model: options.out,
        from: options.model,
        calibration: result.calibration,
        thresholds: result.thresholds,
        operatingPoints: result.operatingPoints,
        inputChecks: withoutWeights(result.safety),
      };
      writeFileSync(`${base}.calibration.json`, `${JSON.stringify(report, null, 2)}\n`);
      writeFileSync(
        `${base}.calibration.md`,
        `# Calibration and input checks of ${options.out}\n\nFrom ${options.model}; data split by patient (seed ${config.seed}).\n\n${calibrationMarkdown(result.calibration, result.thresholds, result.operatingPoints)}\n${safetyMarkdown(result.safety)}`,
      );
      if (trainingCard) {
        // The training card brought up to date: new calibration, thresholds and checks, metrics on this split.
        const card = recalibratedCard(trainingCard, result, {
          validation: describe('validation split', data.validation),
          test: data.test.records.length > 0 ? describe('test split', data.test) : undefined,
          file: basename(options.out),
          counts: splitCounts(data),
        });
        writeFileSync(`${base}.card.json`, `${JSON.stringify({ ...card, inputChecks: withoutWeights(card.inputChecks) }, null, 2)}\n`);
        writeFileSync(`${base}.card.md`, cardMarkdown(card));
        if (card.metrics.test) writeFileSync(`${base}.test-report.html`, evaluationToHtml(card.metrics.test, { title: `Test split of ${info.architecture} (${basename(options.out)})` }));
      }
      const ece = result.test ?? result.validation;
      process.stdout.write(
        [
          `model: ${options.out}`,
          `report: ${base}.calibration.md`,
          `mean ECE on the ${result.test ? 'held-out test split' : 'validation split'}: ${meanEce(ece.uncalibrated).toFixed(4)} before, ${meanEce(ece.calibrated).toFixed(4)} after calibration`,
          `thresholds: ${result.thresholds.rule} for ${Object.keys(result.thresholds.values).length} of ${info.labels.length} findings`,
          ...(result.safety.measured ?? []).map((m) => `  ${m.kind}: ${(m.rejected * 100).toFixed(1)}% rejected${m.aurocs.ood !== undefined ? `, out-of-distribution AUROC ${m.aurocs.ood.toFixed(3)}` : ''}`),
          '',
        ].join('\n'),
      );
    });
}

function rate(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 0.25)) throw new InvalidArgumentError(`expected a rate in (0, 0.25), e.g. 0.01, got "${value}"`);
  return n;
}

function calibrationMethod(value: string): 'platt' | 'temperature' {
  if (value !== 'platt' && value !== 'temperature') throw new InvalidArgumentError(`expected platt or temperature, got "${value}"`);
  return value;
}

function splitFractions(value: string): { train: number; validation: number; test: number } {
  const parts = value.split(',').map(Number);
  if (parts.length !== 3 || parts.some((p) => !(p >= 0 && p <= 1)) || Math.abs(parts[0] + parts[1] + parts[2] - 1) > 1e-6 || parts[0] === 0 || parts[1] === 0) {
    throw new InvalidArgumentError(`expected three fractions adding up to 1, the first two above 0, e.g. 0.7,0.15,0.15; got "${value}"`);
  }
  return { train: parts[0], validation: parts[1], test: parts[2] };
}

function negativeFlag(value: string, previous: NegativeFlag[]): NegativeFlag[] {
  const eq = value.indexOf('=');
  if (eq < 1 || eq === value.length - 1) throw new InvalidArgumentError(`expected kind=folder or kind=file, e.g. "natural photographs=photos/", got "${value}"`);
  return [...previous, { kind: value.slice(0, eq), path: value.slice(eq + 1) }];
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

/** The kinds of a kind,path manifest whose files decode; the rest are counted, not measured. */
async function manifestNegatives(path: string, say: (message: string) => void): Promise<NegativeSet[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`--negatives-manifest ${path}: ${(error as Error).message}`);
  }
  const rows = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true }).data;
  if (rows.length === 0 || !('kind' in rows[0]) || !('path' in rows[0])) throw new Error(`--negatives-manifest ${path}: expected a CSV with the columns kind,path`);
  const sets = new Map<string, NegativeSet>();
  let undecodable = 0;
  for (const row of rows) {
    if (row.kind === 'undecodable') continue;
    try {
      await decodeImageFile(row.path);
    } catch {
      undecodable++;
      continue;
    }
    const set = sets.get(row.kind) ?? { kind: row.kind, sources: [] };
    set.sources.push(fileSource(row.path));
    sets.set(row.kind, set);
  }
  say(`negatives: ${rows.length - undecodable} files of ${sets.size} kinds from ${path}${undecodable ? ` (${undecodable} could not be decoded and are left out)` : ''}`);
  return [...sets.values()];
}

/** The checks as a report shows them: the fitted networks' numbers stay in the model, their size is said. */
function withoutWeights(safety: SafetyInfo): Omit<SafetyInfo, 'orientation' | 'layout'> & { orientation?: string; layout?: string } {
  const { orientation, layout, ...rest } = safety;
  return {
    ...rest,
    ...(orientation ? { orientation: `a ${orientation.thumbnail}x${orientation.thumbnail} -> ${orientation.hidden} -> 1 network, weights in the model's cxr.safety metadata` } : {}),
    ...(layout ? { layout: `PPCA Gaussian of ${layout.channels} thumbnail pixels, ${layout.components} directions, in the model's cxr.safety metadata` } : {}),
  };
}

function readTrainingCard(path: string): ModelCard {
  let card: Partial<ModelCard>;
  try {
    card = JSON.parse(readFileSync(path, 'utf8')) as Partial<ModelCard>;
  } catch (error) {
    throw new Error(`--card ${path}: ${(error as Error).message}`);
  }
  if (typeof card !== 'object' || card === null || !card.model || !card.trainingData || !card.metrics) {
    throw new Error(`--card ${path}: not a cxr train model card (model-card.json with model, trainingData and metrics)`);
  }
  return card as ModelCard;
}
