/** `cxr explain`: where in the image each finding comes from, as overlay PNGs and a JSON with the raw maps. */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../../api.js';
import { EXPLANATION_METHODS, Explainer, type ExplainOptions, checkMethod, findingIndices } from '../../explain/index.js';
import { colourScaleSvg, downsampleMap, renderHeatmap } from '../../explain/render.js';
import { COLORMAP_NAMES, type ColormapName, DEFAULT_CUTOFF, decodeImageFile } from '../../imaging/index.js';
import { type Finding, Predictor } from '../../inference/predictor.js';
import { filmPng } from '../../outputs/report-film.js';
import { reportPdf } from '../../outputs/report-pdf.js';
import { RESEARCH_NOTICE } from '../../serve/analysis.js';
import { VERSION } from '../../version.js';
import { positiveInt } from '../options.js';

interface ExplainCliOptions {
  model?: string;
  finding?: string[];
  all?: boolean;
  method: string;
  layer?: string;
  target: 'logit' | 'probability';
  out?: string;
  colormap: ColormapName;
  opacity: number;
  contour?: number;
  cutoff: number;
  rawOverlay?: boolean;
  eigenSmooth?: boolean;
  augSmooth?: boolean;
  rawSize: number;
  json?: boolean;
  steps?: number;
  baseline?: string;
  samples?: number;
  noise?: number;
  patch?: number;
  stride?: number;
  threads?: number;
  listLayers?: boolean;
  showRejected?: boolean;
  report?: string;
}

const fraction = (name: string) => (value: string) => {
  const x = Number(value);
  if (!(x >= 0 && x <= 1) || value.trim() === '') throw new InvalidArgumentError(`${name} must be a number between 0 and 1, got "${value}"`);
  return x;
};

export function explainCommand(): Command {
  return new Command('explain')
    .description('explain findings on a chest X-ray: a heatmap per finding (Grad-CAM family, gradients, occlusion) as overlay PNGs and JSON')
    .argument('<image>', 'PNG, JPEG or DICOM file')
    .option('-m, --model <file>', 'cxr-lens model (.onnx); default: the embedded default model')
    .option('-f, --finding <name...>', 'findings to explain (default: those the model calls positive, else the 3 most probable)')
    .option('-a, --all', 'explain every finding of the model')
    .option('--method <name>', `explanation method: ${EXPLANATION_METHODS.join(', ')}`, 'gradcam')
    .option('--layer <name>', 'CAM methods: the layer to read (default: the last feature map; --list-layers shows more)')
    .option('--eigen-smooth', 'CAM methods: the weighted activations\' first principal component instead of their sum (pytorch-grad-cam\'s eigen_smooth)')
    .option('--aug-smooth', 'CAM methods: average over the image and its mirror at intensities x0.9, x1, x1.1 (pytorch-grad-cam\'s aug_smooth, 6 passes)')
    .addOption(new Option('--target <what>', 'explain each finding\'s logit or its probability (never a softmax across findings)').choices(['logit', 'probability']).default('logit'))
    .option('-o, --out <folder>', 'where the PNGs and explanation.json go (default: <image name>-explain)')
    .addOption(new Option('--colormap <name>', 'overlay colours').choices([...COLORMAP_NAMES]).default('turbo'))
    .option('--opacity <x>', 'overlay strength of the strongest evidence, 0..1', fraction('opacity'), 0.5)
    .option('--cutoff <x>', 'leave the film untouched where the map is below this fraction of its range, 0..1', fraction('cutoff'), DEFAULT_CUTOFF)
    .option('--contour <x>', 'draw a white contour where the map crosses this fraction of its range (0: its minimum, 1: its maximum)', fraction('contour'))
    .option('--raw-overlay', 'draw the method\'s map as it is, without the post-processing for reading (clipping, smoothing)')
    .option('--raw-size <n>', 'longest side of the raw maps in the JSON (downsampled, area-weighted)', positiveInt('raw size'), 64)
    .option('--json', 'also print explanation.json to stdout')
    .option('--steps <n>', 'integrated-gradients: points on the path (default 32)', positiveInt('steps'))
    .option('--baseline <b>', 'integrated-gradients: black | mean | a gray level in [0, 1] (default black)', baselineOption)
    .option('--samples <n>', 'smoothgrad: noisy copies (default 25)', positiveInt('samples'))
    .option('--noise <x>', 'smoothgrad: noise level as a fraction of the input range (default 0.15)', fraction('noise'))
    .option('--patch <n>', 'occlusion: patch side in model pixels (default 1/8 of the input)', positiveInt('patch'))
    .option('--stride <n>', 'occlusion: step between patches (default half the patch)', positiveInt('stride'))
    .option('-t, --threads <n>', 'threads per operator (default: all cores)', positiveInt('threads'))
    .option('--list-layers', 'print the layers CAM methods can read, and exit')
    .option('--report <file.pdf>', 'also write a PDF report: the findings table, the input checks, the film and these heatmaps with their colour bar')
    .option('--show-rejected', 'explain even an image the input checks reject (marked: not to be trusted)')
    .addHelpText(
      'after',
      `
Each finding is explained through its own logit (or probability): findings are independent, so several are
explained in one batched pass and never through a softmax across findings. CAM maps (gradcam, gradcam++,
hirescam, layercam, xgradcam, eigencam, scorecam, ablationcam) read the last convolutional feature map unless
--layer names another one; eigencam is the same map for every finding, scorecam runs the model once per channel
of the layer (1280 for MobileNetV2: tens of seconds), ablationcam the rest of the network once per channel.
Overlays are drawn for reading: the map is scaled over its own range (weakest to strongest), the film is left
untouched below --cutoff, and gradient maps are clipped at their 99th percentile and smoothed at the model's
feature stride (--raw-overlay draws them as computed; explanation.json always holds the raw maps).
Writes <finding>.<method>.png (the map over the original image, at its own resolution) per finding,
colour-scale.svg (what the colours mean) and explanation.json (probabilities, geometry, raw maps downsampled to
--raw-size).
A heatmap shows what the model used, not where disease is: see \`cxr localize-eval\` for how well maps match
radiologists' boxes. Research use only; not for clinical decisions.

Examples:
  $ cxr explain chest.png --model densenet121.onnx
  $ cxr explain chest.png --finding Effusion Cardiomegaly --method gradcam++ --contour 0.5
  $ cxr explain study.dcm --all --method integrated-gradients --steps 64 --baseline mean
  $ cxr explain chest.png --method gradcam --layer features.denseblock3.cat --colormap inferno
  $ cxr explain chest.png --list-layers`,
    )
    .action(async (imagePath: string, options: ExplainCliOptions) => {
      const method = checkMethod(options.method);
      const { model, info, path } = loadModel(options.model);
      const explainer = await Explainer.create(model, { threads: options.threads, source: path });
      let predictor: Predictor | undefined;
      try {
        if (options.listLayers) {
          process.stdout.write(`${explainer.layers().map((l, i) => `${l}${i === 0 ? '  (default)' : ''}`).join('\n')}\n`);
          return;
        }
        // The predictor runs the input checks and gives the calibrated probabilities and decisions.
        predictor = await Predictor.create(model, { threads: options.threads, source: path, showRejected: options.showRejected });
        if (options.all && options.finding) throw new Error('give either --finding or --all, not both');
        if (options.finding) findingIndices(info.labels, options.finding);
        const image = await decodeImageFile(imagePath);
        const [prediction] = await predictor.predict([image]);
        if (prediction.verdict === 'rejected') {
          throw new Error(`${imagePath}: the input checks rejected this image: ${prediction.inputFlags.map((f) => f.message).join('; ')} (--show-rejected explains it anyway)`);
        }
        const findings = prediction.findings;
        const chosen = options.all ? [...info.labels] : (options.finding ?? defaultFindings(findings));
        const explainOptions: ExplainOptions = {
          findings: chosen,
          method,
          target: options.target,
          layer: options.layer,
          eigenSmooth: options.eigenSmooth,
          augSmooth: options.augSmooth,
          integratedGradients: { steps: options.steps, baseline: options.baseline as 'black' | 'mean' | number | undefined },
          smoothgrad: { samples: options.samples, noise: options.noise },
          occlusion: { patch: options.patch, stride: options.stride },
        };
        const explanation = await explainer.explain(image, explainOptions);
        const out = options.out ?? join('.', `${basename(imagePath, extname(imagePath))}-explain`);
        mkdirSync(out, { recursive: true });
        const entries = [];
        const overlays: { finding: string; method: string; overlayPng: Uint8Array }[] = [];
        for (const f of explanation.findings) {
          const file = `${f.finding}.${method}.png`;
          const overlayPng = await renderHeatmap(image, explanation, f, { colormap: options.colormap, opacity: options.opacity, contour: options.contour, cutoff: options.cutoff, raw: options.rawOverlay });
          writeFileSync(join(out, file), overlayPng);
          overlays.push({ finding: f.finding, method, overlayPng });
          const raw = downsampleMap(f.map, options.rawSize);
          const predicted = findings.find((p) => p.name === f.finding)!;
          entries.push({
            finding: f.finding,
            probability: predicted.probability,
            logit: f.logit,
            threshold: predicted.threshold,
            decision: predicted.decision,
            overlay: file,
            map: { width: raw.width, height: raw.height, fullWidth: f.map.width, fullHeight: f.map.height, data: Array.from(raw.data) },
          });
        }
        writeFileSync(join(out, 'colour-scale.svg'), colourScaleSvg(options.colormap, { cutoff: options.cutoff, method }));
        const document = {
          colourScale: 'colour-scale.svg',
          image: { file: imagePath, width: image.width, height: image.height, format: image.format, notes: image.notes },
          model: { file: path, architecture: info.architecture, weights: info.weights },
          verdict: prediction.verdict,
          inputFlags: prediction.inputFlags,
          method: explanation.method,
          target: explanation.target,
          ...(explanation.layer ? { layer: explanation.layer } : {}),
          geometry: explanation.geometry,
          findings: entries,
          note: 'maps lie over the model input (geometry maps them onto the image); values are unscaled (CAMs after ReLU); research use only',
        };
        writeFileSync(join(out, 'explanation.json'), `${JSON.stringify(document, null, 2)}\n`);
        if (options.report) {
          const pdf = await reportPdf({
            notice: RESEARCH_NOTICE,
            createdAt: new Date(),
            analysedBy: 'by cxr explain',
            model: { file: basename(path), architecture: info.architecture, weights: info.weights, sha256: sha256File(path), software: VERSION, thresholdRule: info.thresholds?.rule ?? null },
            image: { name: basename(imagePath), width: image.width, height: image.height, format: image.format, notes: image.notes },
            verdict: prediction.verdict,
            inputFlags: prediction.inputFlags,
            findings,
            filmPng: await filmPng(image),
            heatmaps: overlays,
            colormap: options.colormap,
            cutoff: options.cutoff,
          });
          writeFileSync(options.report, pdf);
        }
        if (options.json) process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
        else {
          const lines = [`${imagePath}: ${method}${explanation.layer ? ` on ${explanation.layer}` : ''}, ${options.target} target`];
          if (prediction.verdict === 'rejected-shown') lines.push('  explained anyway on request: the input checks rejected this image, NOT TO BE TRUSTED');
          for (const e of entries) lines.push(`  ${e.finding.padEnd(20)} ${(100 * e.probability).toFixed(1).padStart(5)}%  -> ${join(out, e.overlay)}`);
          if (options.report) lines.push(`  report -> ${options.report}`);
          lines.push(`  what the colours mean -> ${join(out, 'colour-scale.svg')}`, `  raw maps and geometry -> ${join(out, 'explanation.json')}`, 'Research use only; not for clinical decisions.', '');
          process.stdout.write(lines.join('\n'));
        }
      } finally {
        await explainer.close();
        await predictor?.close();
      }
    });
}

/** The model file's SHA-256, the hash a report names it by. */
function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Findings called positive at the model's validated thresholds, else the three most probable. */
function defaultFindings(findings: readonly Finding[]): string[] {
  const positive = findings.filter((f) => f.decision === 'positive').map((f) => f.name);
  if (positive.length > 0) return positive;
  return [...findings].sort((a, b) => b.probability - a.probability).slice(0, 3).map((f) => f.name);
}

function baselineOption(value: string): 'black' | 'mean' | number {
  if (value === 'black' || value === 'mean') return value;
  const x = Number(value);
  if (value.trim() === '' || !(x >= 0 && x <= 1)) throw new InvalidArgumentError(`baseline must be black, mean or a gray level in [0, 1], got "${value}"`);
  return x;
}
