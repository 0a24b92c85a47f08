/** `cxr import`: weights from PyTorch or ONNX files -> a clean, self-describing cxr-lens model. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { type ImportOptions, importWeights } from '../../models/import/index.js';
import { PRESET_NAMES, type PresetName, rangeToMeanStd } from '../../models/import/presets.js';
import { readModelInfo } from '../../models/metadata.js';
import { ARCHITECTURE_NAMES } from '../../models/zoo/index.js';
import { writeModelFile } from '../../onnx/index.js';
import { channels, labelList, positiveInt, resizeRule } from '../options.js';

interface ImportCliOptions {
  output: string;
  arch?: string;
  preset?: PresetName;
  labels?: string[];
  newHead?: boolean;
  channels?: 1 | 3;
  size?: number;
  resize?: 'pad' | 'crop' | 'stretch';
  crop?: boolean;
  mean?: number[];
  std?: number[];
  range?: [number, number];
  json?: boolean;
}

function preset(value: string): PresetName {
  if (!(PRESET_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`--preset must be one of ${PRESET_NAMES.join(', ')}, got "${value}"`);
  return value as PresetName;
}

function numbers(option: string, count?: number) {
  return (value: string): number[] => {
    const parts = value.split(',').map((p) => p.trim());
    const values = parts.map(Number);
    if (parts.some((p) => p === '') || !values.every(Number.isFinite) || (count !== undefined && values.length !== count)) {
      throw new InvalidArgumentError(`${option} expects ${count === 2 ? 'two numbers, low,high' : 'one number, or one per channel separated by commas'}, got "${value}"`);
    }
    return values;
  };
}

function pixelRange(value: string): [number, number] {
  const [lo, hi] = numbers('--range', 2)(value);
  if (!(hi > lo)) throw new InvalidArgumentError(`--range expects low,high with low < high, got "${value}"`);
  return [lo, hi];
}

export function importCommand(): Command {
  return new Command('import')
    .description('turn PyTorch (.pth/.pt/.pth.tar) or ONNX weights into a cxr-lens model')
    .argument('<weights>', 'a torch.save checkpoint (zip or legacy; a state dict or a whole pickled model) or an .onnx file (float or int8)')
    .requiredOption('-o, --output <file>', 'where to write the cxr-lens model (.onnx)')
    .option('-a, --arch <name>', `architecture: ${ARCHITECTURE_NAMES.join(', ')} (default: recognised from the weights)`)
    .option('-p, --preset <name>', `pixel contract to start from: ${PRESET_NAMES.join(', ')} (default: recognised from the file)`, preset)
    .option('-l, --labels <labels>', 'output labels: "nih" (the 14 NIH findings), "a,b,c", or @file with one per line', labelList)
    .option('--new-head', 'replace the classifier with a fresh one for the labels (fine-tuning from e.g. ImageNet weights)')
    .option('-c, --channels <1|3>', "input channels (default: the preset's); 1 from RGB weights sums the first layer's kernels", channels)
    .option('-s, --size <px>', "input height and width (default: the preset's, 224; torchxrayvision's ResNet 512)", positiveInt('size'))
    .option('--resize <rule>', "aspect handling: pad (letterbox), crop or stretch (default: the preset's)", resizeRule)
    .option('--crop', 'centre-crop the longer side (the same as --resize crop)')
    .option('--mean <values>', 'per-channel mean subtracted from [0, 1] pixels: one number, or one per channel (e.g. 0.485,0.456,0.406)', numbers('--mean'))
    .option('--std <values>', 'per-channel std the pixels are divided by, as --mean', numbers('--std'))
    .option('--range <low,high>', 'scale [0, 1] pixels to this range instead of --mean/--std (e.g. -1024,1024)', pixelRange)
    .option('--json', 'print the import report as JSON')
    .addHelpText(
      'after',
      `
Parameters are matched by torchvision's names: DataParallel's "module." prefix, legacy DenseNet names
(norm.1, conv.2), wrappers such as CheXNet's "densenet121." or torchxrayvision's "model." and a
Sequential(Linear, Sigmoid) classifier are handled. A whole pickled model (torch.save(model), or
{'model': model, ...}) is read without running anything from it, for torch.nn's layers and torchvision's and
torchxrayvision's classifiers; any other class is refused by name. Files whose names were lost (BatchNorm
folded by torch.onnx.export, int8-quantised models) are matched layer by layer instead. Every missing,
unexpected or mis-shaped tensor is reported by name. The model outputs logits: a head that ended in a Sigmoid
(CheXNet) gives the same probabilities after the model's sigmoid.

Presets (recognised from the file; --preset overrides, the options after it override parts of it):
  xrv       torchxrayvision: 1 channel scaled to [-1024, 1024], centre crop, 224 px (ResNet-50: 512 px).
            Its 18 outputs keep its names (NIH's spelling) with NIH's 14 findings first; its op_threshs (in
            the file, or in its table for its published file names) become the model's thresholds, and an
            output without one (NaN, or not trained for those weights) gets no decision.
  chexnet   CheXNet re-implementations: ImageNet mean/std on 3 channels, shorter side to 224, centre crop.
  imagenet  torchvision's ImageNet mean/std on 3 channels, 224 px, letterboxed.

Examples:
  $ cxr import chexnet.pth.tar -o chexnet.onnx
  $ cxr import nih-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt -o xrv-nih.onnx
  $ cxr import weights.pth --preset xrv --size 320 -o xrv320.onnx
  $ cxr import resnet50.pth --range -1,1 --channels 1 --crop --labels @labels.txt -o r50.onnx
  $ cxr import mobilenetv2-12-int8.onnx --new-head -o mobilenet-nih.onnx    ImageNet backbone, new 14-finding head`,
    )
    .action((weights: string, options: ImportCliOptions) => {
      if (options.range && (options.mean || options.std)) throw new Error('--range sets the mean and std itself: give either --range or --mean/--std');
      if (options.crop && options.resize && options.resize !== 'crop') throw new Error(`--crop contradicts --resize ${options.resize}`);
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(weights);
      } catch (error) {
        throw new Error(`${weights}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      const scaled = options.range ? rangeToMeanStd(...options.range) : undefined;
      const importOptions: ImportOptions = {
        architecture: options.arch,
        preset: options.preset,
        labels: options.labels,
        newHead: options.newHead,
        channels: options.channels,
        height: options.size,
        width: options.size,
        preprocessing: {
          ...(options.crop || options.resize ? { resize: options.crop ? 'crop' : options.resize } : {}),
          ...(scaled ? { mean: [scaled.mean], std: [scaled.std] } : {}),
          ...(options.mean ? { mean: options.mean } : {}),
          ...(options.std ? { std: options.std } : {}),
        },
      };
      const result = importWeights(bytes, weights, importOptions);
      writeModelFile(options.output, result.model);
      const { report } = result;
      const info = readModelInfo(result.model);
      if (options.json) {
        const { architecture, format, method, preset: chosen, notes, thresholds } = result;
        process.stdout.write(`${JSON.stringify({ output: options.output, architecture, format, method, preset: chosen, preprocessing: info.preprocessing, labels: info.labels, thresholds, notes, report }, null, 2)}\n`);
        return;
      }
      const p = info.preprocessing;
      const withheld = Object.keys(result.thresholds?.withheld ?? {}).length;
      const lines = [
        `${options.output}: ${result.architecture} from ${result.format}, matched by ${result.method}`,
        `  ${report.loaded.length} tensors loaded${report.ignored.length ? `, ${report.ignored.length} bookkeeping entries ignored (${[...new Set(report.ignored.map((name) => name.split('.').at(-1)))].join(', ')})` : ''}`,
        `  pixels: ${result.preset.name} preset (${result.preset.reason}): ${p.height}x${p.width}, ${p.channels} channel${p.channels === 1 ? '' : 's'}, ` +
          `mean ${p.mean.map(short).join(',')}, std ${p.std.map(short).join(',')}, ${p.resize}`,
        `  outputs: ${info.labels.length} (${info.labels.slice(0, 4).join(', ')}${info.labels.length > 4 ? ', ...' : ''})`,
        ...(result.thresholds ? [`  thresholds: ${Object.keys(result.thresholds.values).length} from the file's operating points${withheld ? `, ${withheld} withheld (${Object.keys(result.thresholds.withheld ?? {}).join(', ')})` : ''}`] : []),
        ...report.reinitialized.map((n) => `  new head: ${n} starts from a fresh initialisation`),
        ...report.adapted.map((n) => `  adapted: ${n}`),
        ...result.notes.map((n) => `  note: ${n}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function short(value: number): string {
  return String(Number(value.toPrecision(4)));
}
