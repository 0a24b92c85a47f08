/** `cxr info`: what a model is, expects and outputs. */
import { existsSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { loadModel } from '../../api.js';
import type { ModelCard } from '../../train/finish.js';
import { type Adaptation, readAdaptation } from '../../models/metadata.js';
import { isTrainable, parameterSlots } from '../../models/parameters.js';

export function infoCommand(): Command {
  return new Command('info')
    .description('describe a cxr-lens model: architecture, labels, pixel contract, outputs, parameters')
    .argument('[model]', 'model file (default: the embedded default model)')
    .option('--json', 'print as JSON')
    .action((file: string | undefined, options: { json?: boolean }) => {
      const { model, info, path } = loadModel(file);
      const slots = parameterSlots(model);
      const count = (trainable: boolean) =>
        slots.filter((s) => isTrainable(s.role) === trainable).reduce((n, s) => n + (model.graph.initializers.get(s.name)?.data.length ?? 0), 0);
      const adaptation = readAdaptation(model, path);
      const measured = measuredBeside(path);
      const summary = {
        file: path,
        ...info,
        ...(adaptation ? { adaptation } : {}),
        ...(measured ? { measured } : {}),
        parameters: count(true),
        bufferValues: count(false),
        producer: `${model.producerName} ${model.producerVersion}`,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const p = info.preprocessing;
      process.stdout.write(
        [
          `${path}`,
          `  architecture   ${info.architecture} (${(summary.parameters / 1e6).toFixed(2)}M parameters)`,
          `  weights        ${info.weights}`,
          `  input          "${info.io.input}": ${p.channels} x ${p.height} x ${p.width}, resize by ${p.resize}, mean ${fmt(p.mean)}, std ${fmt(p.std)} on [0, 1] pixels`,
          `  outputs        "${info.io.logits}" (one logit per label), "${info.io.features}" (last feature map, for Grad-CAM)`,
          `  labels (${info.labels.length})    ${info.labels.join(', ')}`,
          `  thresholds     ${info.thresholds ? `${info.thresholds.rule}, chosen on the ${info.thresholds.source} (${Object.keys(info.thresholds.values).length} findings)` : 'none: probabilities only, no positive/negative calls'}`,
          `  calibration    ${info.calibration ? `${info.calibration.method}, fitted on the ${info.calibration.source}${eceText(info.calibration.ece)}` : 'none: plain sigmoid of the logits'}`,
          ...(adaptation ? adaptationLines(adaptation) : []),
          `  input checks   ${info.safety ? `${[...new Set(info.safety.checks.map((c) => c.code))].join(', ')}; ${info.safety.detector}` : 'none stored in this model (image statistics and DICOM tags still apply)'}`,
          ...(measured ? measuredLines(measured) : [`  measured       no model card beside the file (${cardPathOf(path)}): no measured AUROCs to show`]),
          '',
        ].join('\n'),
      );
    });
}

interface Measured {
  card: string;
  data: string;
  meanAuroc: number | null;
  meanAurocCi: { lower: number; upper: number } | null;
  findings: { label: string; auroc: number | null; lower: number | null; upper: number | null; positives: number }[];
}

function cardPathOf(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.card.json';
}

/** The held-out metrics of the model card written beside the model (`cxr train`, `cxr calibrate --card`), if any. */
function measuredBeside(modelPath: string): Measured | undefined {
  const card = cardPathOf(modelPath);
  if (!existsSync(card)) return undefined;
  let metrics: Partial<ModelCard['metrics']> | undefined;
  try {
    metrics = (JSON.parse(readFileSync(card, 'utf8')) as Partial<ModelCard>).metrics;
  } catch (error) {
    throw new Error(`${card}: not a readable model card (${(error as Error).message})`);
  }
  const result = metrics?.test ?? metrics?.validation;
  if (!result?.summary || !Array.isArray(result.classes)) throw new Error(`${card}: a model card without held-out metrics (metrics.test or metrics.validation)`);
  return {
    card,
    data: `the ${metrics?.test ? 'held-out test' : 'validation'} split (${result.samples} images)`,
    meanAuroc: result.summary.meanAuroc,
    meanAurocCi: result.summary.meanAurocBootstrap && { lower: result.summary.meanAurocBootstrap.lower, upper: result.summary.meanAurocBootstrap.upper },
    findings: result.classes.map((k) => ({ label: k.label, auroc: k.auroc, lower: k.delong?.lower ?? null, upper: k.delong?.upper ?? null, positives: k.positives })),
  };
}

function measuredLines(m: Measured): string[] {
  const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
  return [
    `  measured       mean AUROC ${f(m.meanAuroc)}${m.meanAurocCi ? ` (95% CI ${f(m.meanAurocCi.lower)}-${f(m.meanAurocCi.upper)})` : ''} on ${m.data}, from ${m.card}`,
    ...m.findings.map((k) => `                 ${k.label.padEnd(19)} ${f(k.auroc)}${k.lower !== null ? ` (${f(k.lower)}-${f(k.upper)})` : ''}, ${k.positives} positives`),
  ];
}

/** The prior shift a model carries: where, how many images, and each finding's prevalence before and after. */
function adaptationLines(a: Adaptation): string[] {
  const pct = (v: number | null) => (v === null ? '?' : `${(v * 100).toFixed(1)}%`);
  return [
    `  adaptation     prevalence shift without labels (${a.method}) on ${a.images} images of ${a.data} (${a.rejected} rejected by the input checks); source prevalence: ${a.sourcePrior}`,
    ...Object.entries(a.findings).map(
      ([label, f]) =>
        `                 ${label}: ${pct(f.sourcePrior)} -> ${pct(f.prior)} [${pct(f.lower)}, ${pct(f.upper)}], logit ${f.delta >= 0 ? '+' : ''}${f.delta.toFixed(3)}${f.thresholdBefore !== undefined ? `, threshold ${f.thresholdBefore.toFixed(4)} -> ${f.thresholdAfter?.toFixed(4)}` : ''}`,
    ),
    ...Object.entries(a.skipped ?? {}).map(([label, why]) => `                 ${label}: not adapted (${why})`),
  ];
}

function eceText(ece: { data: string; before: number; after: number }[] | undefined): string {
  return ece?.length ? `; ECE ${ece.map((e) => `${e.before.toFixed(3)} -> ${e.after.toFixed(3)} on ${e.data}`).join(', ')}` : '';
}

function fmt(values: number[]): string {
  return `[${values.map((v) => Number(v.toFixed(4))).join(', ')}]`;
}
