/** `cxr import`: weights from PyTorch or ONNX files -> a clean, self-describing cxr-lens model. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { type ImportOptions, importWeights } from '../../models/import/index.js';
import { ARCHITECTURE_NAMES } from '../../models/zoo/index.js';
import { writeModelFile } from '../../onnx/index.js';
import { channels, labelList, positiveInt, resizeRule } from '../options.js';

interface ImportCliOptions {
  output: string;
  arch?: string;
  labels?: string[];
  newHead?: boolean;
  channels?: 1 | 3;
  size?: number;
  resize?: 'pad' | 'crop' | 'stretch';
  json?: boolean;
}

export function importCommand(): Command {
  return new Command('import')
    .description('turn PyTorch (.pth/.pt/.pth.tar) or ONNX weights into a cxr-lens model')
    .argument('<weights>', 'a torch.save checkpoint (zip or legacy format) or an .onnx file (float or int8-quantised)')
    .requiredOption('-o, --output <file>', 'where to write the cxr-lens model (.onnx)')
    .option('-a, --arch <name>', `architecture: ${ARCHITECTURE_NAMES.join(', ')} (default: recognised from the weights)`)
    .option('-l, --labels <labels>', 'output labels: "nih" (the 14 NIH findings), "a,b,c", or @file with one per line', labelList)
    .option('--new-head', 'replace the classifier with a fresh one for the labels (fine-tuning from e.g. ImageNet weights)')
    .option('-c, --channels <1|3>', 'input channels; 1 sums RGB first-layer kernels for gray input (default 3)', channels)
    .option('-s, --size <px>', 'input height and width (default 224)', positiveInt('size'))
    .option('--resize <rule>', 'aspect handling: pad (letterbox, default), crop or stretch', resizeRule)
    .option('--json', 'print the import report as JSON')
    .addHelpText(
      'after',
      `
Parameters are matched by torchvision's names: DataParallel's "module." prefix, legacy DenseNet names
(norm.1, conv.2) and wrappers such as CheXNet's "densenet121." are handled. Files whose names were lost
(BatchNorm folded by torch.onnx.export, int8-quantised models) are matched layer by layer instead.
Every missing, unexpected or mis-shaped tensor is reported by name.

Examples:
  $ cxr import model.pth.tar -o chexnet.onnx
  $ cxr import mobilenetv2-12-int8.onnx --new-head -o mobilenet-nih.onnx    ImageNet backbone, new 14-finding head
  $ cxr import resnet50.pth --labels @labels.txt --channels 1 --size 320 -o r50.onnx`,
    )
    .action((weights: string, options: ImportCliOptions) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(weights);
      } catch (error) {
        throw new Error(`${weights}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      const importOptions: ImportOptions = {
        architecture: options.arch,
        labels: options.labels,
        newHead: options.newHead,
        channels: options.channels,
        height: options.size,
        width: options.size,
        preprocessing: options.resize ? { resize: options.resize } : undefined,
      };
      const result = importWeights(bytes, weights, importOptions);
      writeModelFile(options.output, result.model);
      const { report } = result;
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ output: options.output, architecture: result.architecture, format: result.format, method: result.method, notes: result.notes, report }, null, 2)}\n`);
        return;
      }
      const lines = [
        `${options.output}: ${result.architecture} from ${result.format}, matched by ${result.method}`,
        `  ${report.loaded.length} tensors loaded${report.ignored.length ? `, ${report.ignored.length} bookkeeping entries ignored (num_batches_tracked)` : ''}`,
        ...report.reinitialized.map((n) => `  new head: ${n} starts from a fresh initialisation`),
        ...report.adapted.map((n) => `  adapted: ${n}`),
        ...result.notes.slice(0, 8).map((n) => `  note: ${n}`),
        ...(result.notes.length > 8 ? [`  (${result.notes.length - 8} more notes; --json lists all)`] : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
