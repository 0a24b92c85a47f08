/** `cxr localize-eval`: how well explanations match radiologists' boxes (NIH BBox_List_2017.csv), and whether to trust them. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../../api.js';
import {
  EXPLANATION_METHODS,
  Explainer,
  type ExplanationMethod,
  type LocalizationReport,
  boxedImageFiles,
  checkMethod,
  evaluateLocalization,
  localizationToHtml,
  randomizationLines,
  readBoxedImages,
} from '../../explain/index.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { progressBar } from '../progress.js';

interface LocalizeEvalCliOptions {
  model?: string;
  boxes: string;
  images: string[];
  methods: ExplanationMethod[];
  layer?: string;
  target: 'logit' | 'probability';
  draws: number;
  seed: number;
  grid: number;
  boxRule: 'regions' | 'largest';
  trust?: boolean;
  faithfulness?: boolean;
  randomization?: boolean;
  steps: number;
  out: string;
  json?: boolean;
  threads?: number;
}

function methodList(value: string): ExplanationMethod[] {
  const methods = value.split(',').map((m) => m.trim()).filter(Boolean);
  if (methods.length === 0) throw new InvalidArgumentError('give at least one method');
  try {
    return methods.map(checkMethod);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}


export function localizeEvalCommand(): Command {
  return new Command('localize-eval')
    .description('score explanations against NIH\'s radiologist boxes: pointing game, IoU/IoBB accuracies, random-map baseline, trust checks')
    .requiredOption('--boxes <csv>', 'NIH BBox_List_2017.csv (boxes in 1024 px space; scaled to each image read)')
    .requiredOption('--images <folders...>', 'folders holding the boxed images (the first folder wins for an image found twice)')
    .option('-m, --model <file>', 'cxr-lens model (.onnx); default: the embedded default model')
    .option('--methods <list>', `comma-separated: ${EXPLANATION_METHODS.join(', ')}`, methodList, ['gradcam'] as ExplanationMethod[])
    .option('--layer <name>', 'CAM methods: the layer to read (default: the last feature map)')
    .addOption(new Option('--target <what>', 'explain each finding\'s logit or its probability').choices(['logit', 'probability']).default('logit'))
    .option('--draws <n>', 'random maps per case for the baseline', positiveInt('draws'), 100)
    .option('--seed <n>', 'seed of the random baseline and the trust checks', nonNegativeInt('seed'), 0)
    .option('--grid <n>', 'evaluation grid cells per image side', positiveInt('grid'), 256)
    .addOption(new Option('--box-rule <rule>', 'a box per isolated region (Wang et al.), or only the largest region per threshold').choices(['regions', 'largest']).default('regions'))
    .option('--trust', 'also run both trust checks (same as --faithfulness --randomization)')
    .option('--faithfulness', 'deletion and insertion AUC and ROAD (MoRF/LeRF, removed pixels imputed) per case, beside a random pixel order')
    .option('--randomization', 'cascading model randomisation: maps must change as learned weights are replaced')
    .option('--steps <n>', 'points on each deletion/insertion curve', positiveInt('steps'), 16)
    .option('-o, --out <folder>', 'where localization.json and localization.html go', 'localize-report')
    .option('--json', 'print localization.json to stdout instead of the summary')
    .option('-t, --threads <n>', 'threads per operator (default: all cores)', positiveInt('threads'))
    .addHelpText(
      'after',
      `
Protocol (Wang et al., CVPR 2017): maps are resampled over the image and thresholded at 60/255 and 180/255 of
their maximum; each isolated region gives a box; a ground-truth box is localised at T when a box has IoU > T
(or IoBB > T, intersection over the predicted box). Pointing game: the map's maximum inside a box. Random maps
at the method's own resolution give the chance level; with a handful of boxes, read the random baseline's
spread before any published number (Wang et al.'s Table 4 is shown for orientation, not comparison).

The summary prints a WARNING line for every score below its random baseline (and deletion/insertion worse than
a random pixel order), a note when methods gave identical maps (Grad-CAM, HiResCAM and XGrad-CAM coincide by
construction at a layer the head global-average-pools), and for randomisation steps without a correlation
('const': every randomised map was constant, zero after the ReLU) the reason.

Examples:
  $ cxr localize-eval --model model.onnx --boxes BBox_List_2017.csv --images nih/images
  $ cxr localize-eval --model model.onnx --boxes BBox_List_2017.csv --images images-1024 images-512 \\
      --methods gradcam,hirescam,integrated-gradients --trust --out report`,
    )
    .action(async (options: LocalizeEvalCliOptions) => {
      const { model, path } = loadModel(options.model);
      const files = await boxedImageFiles(options.boxes, options.images);
      if (files.length === 0) throw new Error(`none of the images in ${options.boxes} is in ${options.images.join(', ')}`);
      const images = await readBoxedImages(files);
      const explainer = await Explainer.create(model, { threads: options.threads, source: path });
      let bar = progressBar('explaining', files.length);
      let stage = '';
      let report: LocalizationReport;
      try {
        report = await evaluateLocalization(explainer, images, {
          methods: options.methods,
          layer: options.layer,
          target: options.target,
          randomDraws: options.draws,
          seed: options.seed,
          grid: options.grid,
          boxRule: options.boxRule,
          faithfulness: options.trust || options.faithfulness ? { steps: options.steps } : false,
          randomization: options.trust || options.randomization,
          onProgress: (done, total, what) => {
            if (what !== stage) {
              bar.stop();
              bar = progressBar(what, total);
              stage = what;
            }
            bar.update(done, total);
          },
        });
      } finally {
        bar.stop();
        await explainer.close();
      }
      mkdirSync(options.out, { recursive: true });
      const json = `${JSON.stringify({ ...report, model: { file: path, ...report.model } }, null, 2)}\n`;
      writeFileSync(join(options.out, 'localization.json'), json);
      writeFileSync(join(options.out, 'localization.html'), localizationToHtml(report, `Localisation: ${path}`));
      if (options.json) process.stdout.write(json);
      else process.stdout.write(summary(report, options.out));
    });
}

function summary(report: LocalizationReport, out: string): string {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%`.padStart(5) : '    -');
  const lines = [`${report.images} images, ${report.boxes} boxes (${report.findings.join(', ')})`, ''];
  for (const m of report.methods) {
    lines.push(`${m.method}${m.layer ? ` on ${m.layer}` : ''}: pointing ${pct(m.overall.pointing)} (random ${pct(m.random.pointing.mean)} +- ${pct(m.random.pointing.sd).trim()}; ${pct(m.random.pointingAtLeastOurs).trim()} of random draws do as well)`);
    lines.push(`  ${'finding'.padEnd(14)} boxes pointing ${Object.keys(m.overall.iou).map((t) => `IoU>${t}`.padStart(9)).join('')}${Object.keys(m.overall.iobb).map((t) => `IoBB>${t}`.padStart(10)).join('')}`);
    for (const [finding, s] of [...Object.entries(m.perFinding), ['all', m.overall] as const]) {
      lines.push(`  ${finding.padEnd(14)} ${String(s.boxes).padStart(5)} ${pct(s.pointing).padStart(8)} ${Object.values(s.iou).map((v) => pct(v).padStart(9)).join('')}${Object.values(s.iobb).map((v) => pct(v).padStart(10)).join('')}`);
    }
    const first = Object.keys(m.overall.iobb)[0];
    lines.push(`  random maps: IoU>${Object.keys(m.overall.iou)[0]} ${pct(m.random.iou[Object.keys(m.overall.iou)[0]].mean).trim()}, IoBB>${first} ${pct(m.random.iobb[first].mean).trim()}; false positives per case at IoBB>${first}: ${m.overall.afpIobb[first].toFixed(1)} (random maps ${m.random.afpIobb[first].mean.toFixed(1)})`);
    if (m.faithfulness) {
      const f = m.faithfulness;
      lines.push(`  deletion AUC ${f.deletionAuc.mean.toFixed(3)} (random order ${f.randomDeletionAuc.mean.toFixed(3)}), insertion AUC ${f.insertionAuc.mean.toFixed(3)} (random order ${f.randomInsertionAuc.mean.toFixed(3)})`);
      if (f.road) lines.push(`  ROAD MoRF ${f.road.morf.mean.toFixed(3)} (random order ${f.road.randomMorf.mean.toFixed(3)}), LeRF ${f.road.lerf.mean.toFixed(3)} (random order ${f.road.randomLerf.mean.toFixed(3)})`);
    }
    if (m.randomization) lines.push(...randomizationLines(m.randomization).map((l) => `  ${l}`));
    lines.push(...m.warnings.map((w) => `  WARNING ${w}`));
    lines.push('');
  }
  lines.push(...report.coincidences.map((n) => `note: ${n}`), ...(report.coincidences.length > 0 ? [''] : []));
  lines.push(`report: ${join(out, 'localization.html')}, ${join(out, 'localization.json')}`, `${report.notes[0]}`, 'Research use only; not for clinical decisions.', '');
  return lines.join('\n');
}
