/** `cxr predict`: per-finding probabilities for images, folders of images, as a table, JSON or CSV. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { loadModel } from '../../api.js';
import { listImageFiles, predictFiles, type FileResult } from '../../inference/files.js';
import { Predictor } from '../../inference/predictor.js';
import { predictionsToCsv } from '../../eval/predictions.js';
import type { ModelInfo } from '../../models/metadata.js';
import { positiveInt } from '../options.js';
import { progressBar } from '../progress.js';

interface PredictOptions {
  model?: string;
  json?: boolean;
  csv?: string;
  batchSize: number;
  threads?: number;
  recursive?: boolean;
  showRejected?: boolean;
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('probability of each finding for chest X-rays (PNG, JPEG or DICOM files, or folders of them)')
    .argument('<images...>', 'image files and/or folders')
    .option('-m, --model <file>', 'cxr-lens model (.onnx); default: the embedded default model')
    .option('--json', 'print one JSON document: { model, findings } for one image, { model, images: [...] } for several')
    .option('--csv <file>', 'also write one row per image: file, a probability per finding (every digit), verdict (accepted, rejected, rejected-shown), flags (the input checks\' codes), error (why there are none), and for DICOM inputs their study, series and SOP instance UIDs')
    .option('-b, --batch-size <n>', 'images per ONNX Runtime run', positiveInt('batch size'), 16)
    .option('-t, --threads <n>', 'threads per operator (default: all cores)', positiveInt('threads'))
    .option('-r, --recursive', 'descend into sub-folders of folder inputs')
    .option('--show-rejected', 'give findings even for inputs the input checks reject (marked: not to be trusted)')
    .addHelpText(
      'after',
      `
Probabilities are each finding's sigmoid (calibrated where the model is: --json says \`calibrated\` per finding):
findings are independent, so they do not add up to 1. Decisions are made only at the model's validated thresholds,
named with the rule that chose them (and the threshold's confidence interval); a finding without one (too few
validation positives) gets no decision and the reason.
Every input is checked first: an image that does not look like a frontal chest X-ray (a photograph, another body
part, a lateral, rotated, inverted, blank or tiny image) gets no findings, only the flags and their reasons.
A file that cannot be read is reported (and the exit status is 1); the others are still predicted.
Research use only; not for clinical decisions.

Examples:
  $ cxr predict chest.png --model densenet121.onnx
  $ cxr predict study.dcm --json
  $ cxr predict nih/images --recursive --csv predictions.csv
  $ cxr predict odd.png --show-rejected                findings even if the input checks reject the image`,
    )
    .action(async (inputs: string[], options: PredictOptions) => {
      const files = listImageFiles(inputs, { recursive: options.recursive });
      if (files.length === 0) throw new Error(`no image files found in ${inputs.join(', ')}`);
      const { model, info, path } = loadModel(options.model);
      const predictor = await Predictor.create(model, { batchSize: options.batchSize, threads: options.threads, source: path, showRejected: options.showRejected });
      const bar = progressBar('predicting', files.length);
      let results: FileResult[];
      try {
        results = await predictFiles(predictor, files, { onProgress: (done, total) => bar.update(done, total) });
      } finally {
        bar.stop();
        await predictor.close();
      }
      const modelSummary = describeModel(info, path);
      if (options.csv) writeFileSync(options.csv, toCsv(results, info.labels));
      if (options.json) process.stdout.write(`${JSON.stringify(toJson(modelSummary, results), null, 2)}\n`);
      else process.stdout.write(toTable(modelSummary, results));
      const failed = results.filter((r) => r.error);
      if (failed.length > 0) {
        process.stderr.write(`${failed.length} of ${results.length} files could not be predicted:\n${failed.map((f) => `  ${f.error}`).join('\n')}\n`);
        process.exitCode = 1;
      }
      const rejected = results.filter((r) => r.prediction?.verdict === 'rejected').length;
      const shown = results.filter((r) => r.prediction?.verdict === 'rejected-shown').length;
      if (rejected > 0) process.stderr.write(`${rejected} of ${results.length} inputs were rejected by the input checks (no findings given; --show-rejected shows them anyway)\n`);
      if (shown > 0) process.stderr.write(`${shown} of ${results.length} inputs were rejected by the input checks; their findings are shown anyway as asked (--show-rejected), marked rejected-shown: not to be trusted\n`);
    });
}

function describeModel(info: ModelInfo, path: string) {
  const p = info.preprocessing;
  return {
    file: path,
    architecture: info.architecture,
    weights: info.weights,
    labels: info.labels,
    input: { height: p.height, width: p.width, channels: p.channels, resize: p.resize },
    calibration: info.calibration ? `${info.calibration.method}, fitted on the ${info.calibration.source}` : 'none (plain sigmoid)',
    thresholds: info.thresholds ? `${info.thresholds.rule}, chosen on the ${info.thresholds.source}` : 'none (no decisions are made)',
    inputChecks: info.safety ? info.safety.checks.map((c) => `${c.code}: ${c.score} ${c.direction} ${+c.threshold.toPrecision(4)}`) : ['image and DICOM-tag checks only (no out-of-distribution detector)'],
  };
}

function toJson(model: ReturnType<typeof describeModel>, results: FileResult[]) {
  return results.length === 1 ? { model, ...jsonEntry(results[0]) } : { model, images: results.map(jsonEntry) };
}

/** One image as --json gives it (also a line of `cxr batch results --jsonl`). */
export function jsonEntry(r: FileResult) {
  if (!r.prediction) return { file: r.file, error: r.error };
  const { image, verdict, inputFlags, inputChecks, findings } = r.prediction;
  return { file: r.file, image, verdict, inputFlags, inputChecks, findings };
}

/** The --csv table (also `cxr batch results --csv`'s). */
export function toCsv(results: FileResult[], labels: string[]): string {
  // The columns `cxr eval` reads: a rejected input has no probabilities, and its "error" says why; an input shown
  // anyway keeps its probabilities, its verdict (rejected-shown) and its flags.
  return predictionsToCsv(
    labels,
    results.map((r) => {
      const p = r.prediction;
      if (!p) return { file: r.file, probabilities: null, verdict: '', error: r.error };
      const flags = p.inputFlags.map((f) => f.code);
      const m = p.image.metadata;
      const uids = m.sopInstanceUid ? ([m.studyInstanceUid, m.seriesInstanceUid, m.sopInstanceUid] as const) : undefined;
      if (p.verdict === 'rejected') return { file: r.file, probabilities: null, verdict: p.verdict, flags, uids, error: `rejected by the input checks: ${p.inputFlags.filter((f) => f.severity === 'reject').map((f) => f.message).join('; ')}` };
      return { file: r.file, probabilities: p.findings.map((f) => f.probability), verdict: p.verdict, flags, uids };
    }),
  );
}

function toTable(model: ReturnType<typeof describeModel>, results: FileResult[]): string {
  const lines: string[] = [`model: ${model.file} (${model.architecture}; ${model.weights})`, ''];
  for (const r of results) {
    if (!r.prediction) continue;
    const { findings, image, inputFlags, verdict } = r.prediction;
    lines.push(`${r.file}  (${image.width}x${image.height} ${image.format}${image.notes.length ? `; ${image.notes.join('; ')}` : ''})`);
    for (const flag of inputFlags) lines.push(`  ${flag.severity === 'reject' ? 'REJECTED' : flag.severity}: ${flag.message}`);
    if (verdict === 'rejected') lines.push('  no findings: the input checks rejected this image (--show-rejected shows them anyway)');
    if (verdict === 'rejected-shown') lines.push('  findings shown anyway on request: NOT TO BE TRUSTED for this image');
    const width = Math.max(...findings.map((f) => f.name.length));
    for (const f of [...findings].sort((a, b) => b.probability - a.probability)) {
      const bar = '#'.repeat(Math.round(f.probability * 20)).padEnd(20, '.');
      const decision = f.decision ? `  ${f.decision} at ${f.threshold?.toFixed(3)} (${f.thresholdRule})` : f.decisionNote ? `  no decision: ${f.decisionNote}` : '';
      // Where the model calibrates other findings, say which probabilities are the plain sigmoid.
      const plain = !f.calibrated && findings.some((g) => g.calibrated) ? ' (uncalibrated)' : '';
      lines.push(`  ${f.name.padEnd(width)}  ${(f.probability * 100).toFixed(1).padStart(5)}%  ${bar}${plain}${decision}`);
    }
    lines.push('');
  }
  lines.push('Research use only; not for clinical decisions.', '');
  return lines.join('\n');
}
