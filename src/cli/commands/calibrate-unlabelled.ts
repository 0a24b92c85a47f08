/**
 * `cxr calibrate --unlabelled <folder>`: adapts a calibrated model to a new site's prevalence without labels (EM
 * prior shift, src/safety/prior-shift.ts). Runs the model over the folder's images (recursively), leaves out those
 * the input checks reject, estimates each finding's local prevalence with a 95% bootstrap interval, shifts the
 * calibration and thresholds by the same logit, writes the adapted model and prints a table.
 */
import { NIH_FINDINGS } from '../../data/labels.js';
import { listImageFiles } from '../../inference/files.js';
import { type ModelInfo, readModelInfo } from '../../models/metadata.js';
import { writeModelFile } from '../../onnx/index.js';
import { adaptToPrevalence, storedPrevalence } from '../../safety/adapt.js';
import { fileSource } from '../../safety/features.js';
import { labelPrevalence } from '../../safety/prior-shift.js';
import { readConfigFile, resolveConfig } from '../../train/config.js';
import { readDatasets, splitData } from '../../train/data.js';
import { datasetFlag, readModelToRewrite } from '../options.js';
import { progressBar } from '../progress.js';

export interface UnlabelledOptions {
  model: string;
  out: string;
  unlabelled: string;
  reference?: string;
  config?: string;
  seed?: number;
  resamples: number;
  minImages: number;
  batchSize: number;
  threads?: number;
}

export const UNLABELLED_HELP = `
Without local labels (--unlabelled <folder>): the model's calibrated probabilities on the folder's images (searched
recursively: PNG, JPEG, DICOM) estimate each finding's local prevalence by EM (Saerens, Latinne & Decaestecker
2002), with a 95% bootstrap interval over the images. Each finding's logit is shifted by
logit(local prevalence) - logit(source prevalence): added to its Platt intercept and to its threshold's logit, so
probabilities reflect the local prevalence while every positive/negative call, and so the validated sensitivity
and specificity, stays as it was (valid when only the prevalence differs, not the images' look). Images the input
checks reject are left out and counted. The source prevalence is the one the model's calibration stores; a model
calibrated before that was stored needs the labelled data it was calibrated on: --reference, or --config with the
recipe (its validation split). The record is stored in the model ("cxr.adaptation"; \`cxr info\` shows it).

  $ cxr calibrate --model models/site-a.onnx --unlabelled /data/site-b/ --out models/site-b.onnx
  $ cxr calibrate --model models/default.onnx --config configs/default-model.yaml \\
      --unlabelled ../shared/data/nih-cxr14-subset2/images --out default-site2.onnx`;

export async function calibrateUnlabelled(options: UnlabelledOptions): Promise<void> {
  const say = (message: string) => process.stderr.write(`${message}\n`);
  const model = readModelToRewrite(options.model, options.out);
  const info = readModelInfo(model, options.model);
  if (!info.calibration) throw new Error(`${options.model}: the model has no calibration; a prior shift needs calibrated probabilities (fit one first: cxr calibrate --model ${options.model} --data ...)`);
  const files = listImageFiles([options.unlabelled], { recursive: true });
  if (files.length === 0) throw new Error(`--unlabelled ${options.unlabelled}: no image files there (PNG, JPEG or DICOM, searched recursively)`);
  const reference = storedPrevalence(info.calibration) ? undefined : await referencePrevalence(options, info);
  say(`${files.length} images in ${options.unlabelled}`);
  const bar = progressBar('  images', files.length);
  const result = await adaptToPrevalence(model, files.map(fileSource), {
    description: `${files.length} images in ${options.unlabelled}`,
    sourcePriors: reference?.priors,
    sourcePriorDescription: reference?.description,
    resamples: options.resamples,
    minImages: options.minImages,
    batchSize: options.batchSize,
    threads: options.threads,
    onProgress: (done, total) => bar.update(done, total),
  }).finally(() => bar.stop());
  writeModelFile(options.out, result.model);
  const a = result.adaptation;
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
  const rows = info.labels.map((label) => {
    const f = a.findings[label];
    if (!f) return [label, '-', '-', '-', info.thresholds?.values[label]?.toFixed(4) ?? '-', `not adapted: ${a.skipped?.[label] ?? 'no estimate'}`];
    return [
      label,
      pct(f.sourcePrior),
      `${pct(f.prior)} [${pct(f.lower)}, ${pct(f.upper)}]${f.converged ? '' : ' (EM did not converge)'}`,
      `${f.delta >= 0 ? '+' : ''}${f.delta.toFixed(3)}`,
      f.thresholdBefore !== undefined ? `${f.thresholdBefore.toFixed(4)} -> ${f.thresholdAfter!.toFixed(4)}` : '-',
      '',
    ];
  });
  const header = ['finding', 'source prevalence', 'local prevalence [95% CI]', 'logit shift', 'threshold', ''];
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((cell, k) => cell.padEnd(widths[k])).join('  ').trimEnd();
  process.stdout.write(
    [
      `model: ${options.out}`,
      `images: ${a.images} used, ${a.rejected} rejected by the input checks${result.unreadable.length ? `, ${result.unreadable.length} unreadable (${result.unreadable.slice(0, 3).map((u) => u.id).join(', ')}${result.unreadable.length > 3 ? ', ...' : ''})` : ''}${result.checked ? '' : ' (the model stores no input checks: none were applied)'}`,
      `source prevalence: ${a.sourcePrior}`,
      line(header),
      ...rows.map(line),
      'Decisions at the shifted thresholds are those of the validated operating points; probabilities now reflect the local prevalence.',
      '',
    ].join('\n'),
  );
}

/** The source prevalence from labelled data: --reference (every labelled image) or --config (its validation split). */
async function referencePrevalence(options: UnlabelledOptions, info: ModelInfo): Promise<{ priors: Record<string, number>; description: string }> {
  if (!options.reference && !options.config) {
    throw new Error(
      `${options.model}: its calibration does not store the prevalence it was fitted at (calibrated before that was stored); give the labelled data it was calibrated on: --reference format:labels.csv[:images], or --config <recipe> (its validation split)`,
    );
  }
  const raw = options.config ? readConfigFile(options.config) : {};
  if (options.reference) raw.datasets = [datasetFlag(options.reference, '--reference')];
  raw.labels = info.labels.length === NIH_FINDINGS.length && info.labels.every((l, i) => l === NIH_FINDINGS[i]) ? 'nih' : info.labels;
  if (options.seed !== undefined) raw.seed = options.seed;
  const config = resolveConfig(raw, options.config ?? 'the command line');
  const datasets = await readDatasets(config);
  const records = options.reference ? datasets.records : (await splitData(datasets, config)).validation.records;
  if (records.length === 0) throw new Error(`${options.reference ? '--reference' : `${options.config}'s validation split`}: no labelled images`);
  const c = info.labels.length;
  const targets = new Float32Array(records.length * c);
  const mask = new Float32Array(records.length * c);
  records.forEach((r, i) => {
    for (let j = 0; j < c; j++) {
      targets[i * c + j] = r.labels[j] >= 0.5 ? 1 : 0;
      mask[i * c + j] = r.mask[j];
    }
  });
  const where = options.reference ? `--reference ${options.reference}` : `the validation split of ${options.config} (seed ${config.seed})`;
  return { priors: labelPrevalence(info.labels, targets, mask), description: `label prevalence of ${records.length} labelled images: ${where}` };
}
