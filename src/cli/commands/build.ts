/** `cxr build`: a freshly initialised zoo model, e.g. to train from scratch. */
import { Command } from 'commander';
import { ARCHITECTURE_NAMES, buildModel } from '../../models/zoo/index.js';
import { torchvisionInit } from '../../models/init.js';
import { writeModelFile } from '../../onnx/index.js';
import { channels, labelList, positiveInt, resizeRule } from '../options.js';

interface BuildCliOptions {
  output: string;
  labels?: string[];
  channels?: 1 | 3;
  size?: number;
  resize?: 'pad' | 'crop' | 'stretch';
  seed: number;
}

export function buildCommand(): Command {
  return new Command('build')
    .description('write an untrained model of a zoo architecture (random torchvision-style weights)')
    .argument('<architecture>', ARCHITECTURE_NAMES.join(' | '))
    .requiredOption('-o, --output <file>', 'where to write the model (.onnx)')
    .option('-l, --labels <labels>', 'output labels: "nih" (default), "a,b,c", or @file', labelList)
    .option('-c, --channels <1|3>', 'input channels (default 3)', channels)
    .option('-s, --size <px>', 'input height and width (default 224)', positiveInt('size'))
    .option('--resize <rule>', 'aspect handling: pad (default), crop or stretch', resizeRule)
    .option('--seed <n>', 'random seed of the initial weights', (v) => Number.parseInt(v, 10), 0)
    .addHelpText('after', '\nAn untrained model predicts nothing useful: train it, or import pretrained weights with `cxr import`.')
    .action((architecture: string, options: BuildCliOptions) => {
      const model = buildModel(architecture, {
        labels: options.labels,
        channels: options.channels,
        height: options.size,
        width: options.size,
        preprocessing: options.resize ? { resize: options.resize } : undefined,
        init: torchvisionInit(options.seed),
        weights: `random initialisation (torchvision-style, seed ${options.seed}), untrained`,
      });
      writeModelFile(options.output, model);
      process.stdout.write(`${options.output}: untrained ${architecture}, ${model.graph.inputs[0].type.shape.slice(1).join('x')} input\n`);
    });
}
