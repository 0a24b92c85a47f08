/** `cxr train`: a recipe (file and/or flags) -> a trained, self-describing model with its model card. */
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { applyOverride, readConfigFile, resolveConfig } from '../../train/config.js';
import { finishRun } from '../../train/finish.js';

import { type TrainEvent, train } from '../../train/trainer.js';
import { DATA_OPTION, collect, datasetFlag, positiveInt } from '../options.js';

interface TrainCliOptions {
  config?: string;
  out: string;
  resume?: boolean;
  set: string[];
  data: string[];
  arch?: string;
  pretrained?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  size?: number;
  seed?: number;
  threads?: number;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a multi-label classifier (transfer learning, imbalance, uncertain labels, patient metadata)')
    .option('-c, --config <file>', 'recipe in YAML or JSON (see configs/ for examples)')
    .requiredOption('-o, --out <folder>', 'the run folder: model, model card, log.jsonl, checkpoint')
    .option('--resume', 'continue the run in --out from its checkpoint (same recipe)')
    .option(...DATA_OPTION, collect, [])
    .option('-a, --arch <name>', 'densenet121 | resnet50 | alexnet | mobilenet_v2')
    .option('-p, --pretrained <weights>', 'start from these weights (any file `cxr import` reads)')
    .option('-e, --epochs <n>', 'epochs', positiveInt('epochs'))
    .option('-b, --batch-size <n>', 'images per step', positiveInt('batch size'))
    .option('--lr <rate>', 'peak learning rate', (v) => Number(v))
    .option('-s, --size <px>', 'input size', positiveInt('size'))
    .option('--seed <n>', 'seed of the split, order, augmentation and initialisation', (v) => Number.parseInt(v, 10))
    .option('-t, --threads <n>', 'ONNX Runtime threads', positiveInt('threads'))
    .option('--set <key=value>', 'any recipe setting, e.g. --set loss.kind=focal --set freeze.headEpochs=1 (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
The recipe's settings and their defaults:
  datasets            [{ format: nih|chexpert|csv, csv, images, uncertainty (CheXpert: U-Ignore, U-Zeros, U-Ones,
                      U-MultiClass, LSR-Ones, LSR-Zeros) }]
  labels              nih (the 14 NIH findings) or a list
  split               { method: patient, train: 0.7, validation: 0.15, test: 0.15 } or { method: official, lists, validation }
  model               { architecture: densenet121, pretrained, size: 224, channels: 3, resize: pad, metadata: false }
  loss                { kind: bce, posWeight: none|auto } | { kind: focal, alpha, gamma } | { kind: asymmetric, gammaNeg, gammaPos, clip }
  sampler             shuffle | balanced
  optimizer           { kind: adamw, lr: 1e-4, weightDecay: 1e-4 } | { kind: sgd, lr, momentum, nesterov, weightDecay }
  schedule            { type: cosine, warmupEpochs: 1 } | { type: plateau, factor, patience } | { type: constant }
  epochs 10, batchSize 16, freeze { headEpochs: 0, then: all | n }, earlyStopping { patience: 3 }, seed 0
  augmentation        { rotationDeg: 7, translate: 0.05, scale: 0.07, flipProbability: 0, brightness: 0.1, contrast: 0.1 } | none

Patients never straddle splits; the test split is scored once, with the best model by validation mean AUROC.
Ctrl-C stops after the current step and saves a checkpoint; --resume continues exactly.

Examples:
  $ cxr train --config configs/default-model.yaml --out runs/default
  $ cxr train -d nih:Data_Entry_2017.csv:/data/nih -a densenet121 -p chexnet.pth --set split.method=official \\
      --set split.lists=/data/nih --epochs 5 --out runs/densenet
  $ cxr train --config recipe.yaml --out runs/densenet --resume`,
    )
    .action(async (options: TrainCliOptions) => {
      const raw = options.config ? readConfigFile(options.config) : {};
      if (options.data.length > 0) raw.datasets = options.data.map(datasetFlag);
      const flags: [string, unknown][] = [
        ['model.architecture', options.arch],
        ['model.pretrained', options.pretrained && resolve(options.pretrained)],
        ['epochs', options.epochs],
        ['batchSize', options.batchSize],
        ['optimizer.lr', options.lr],
        ['model.size', options.size],
        ['seed', options.seed],
        ['threads', options.threads],
      ];
      for (const [key, value] of flags) if (value !== undefined) applyOverride(raw, key, JSON.stringify(value));
      for (const assignment of options.set) {
        const eq = assignment.indexOf('=');
        if (eq < 1) throw new Error(`--set expects key=value, got "${assignment}"`);
        applyOverride(raw, assignment.slice(0, eq), assignment.slice(eq + 1));
      }
      const config = resolveConfig(raw, options.config ?? 'the command line');
      const controller = new AbortController();
      let interrupts = 0;
      const onInterrupt = () => {
        interrupts += 1;
        if (interrupts > 1) process.exit(130);
        process.stderr.write('\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)\n');
        controller.abort();
      };
      process.on('SIGINT', onInterrupt);
      const display = new TrainDisplay();
      try {
        const outcome = await train({ config, outDir: options.out, resume: options.resume, signal: controller.signal, onEvent: (e) => display.show(e) });
        display.stop();
        if (outcome.status === 'interrupted') {
          process.stdout.write(`interrupted; continue with: cxr train ${options.config ? `--config ${options.config} ` : ''}--out ${options.out} --resume\n`);
          process.exitCode = 130;
          return;
        }
        const run = await finishRun(outcome, config, options.out, (message) => process.stderr.write(`${message}\n`));
        process.stdout.write(`\n${run.summary}\n`);
      } finally {
        display.stop();
        process.off('SIGINT', onInterrupt);
      }
    });
}

/** Progress bars on a terminal, plain lines otherwise (logs, CI). */
class TrainDisplay {
  private bar?: cliProgress.SingleBar;
  private readonly tty = process.stderr.isTTY;
  private lossSum = 0;
  private lossCount = 0;

  show(e: TrainEvent): void {
    switch (e.type) {
      case 'info':
        this.line(e.message);
        break;
      case 'cache':
        if (this.tty) {
          if (!this.bar) this.start('caching images', e.total, '');
          this.bar?.update(e.done);
          if (e.done === e.total) this.stop();
        } else if (e.done === e.total) this.line(`cached ${e.total} images`);
        break;
      case 'epoch':
        this.lossSum = 0;
        this.lossCount = 0;
        this.start(`epoch ${e.epoch + 1}/${e.epochs} (${e.phase})`, e.steps, ' | loss {loss} | lr {lr} | {speed} img/s');
        break;
      case 'step':
        this.lossSum += e.loss;
        this.lossCount += 1;
        this.bar?.update(e.step, { loss: (this.lossSum / this.lossCount).toFixed(4), lr: e.lr.toExponential(2), speed: e.imagesPerSecond.toFixed(1) });
        break;
      case 'validation':
        this.stop();
        this.line(`epoch ${e.epoch + 1}: train loss ${(this.lossSum / Math.max(1, this.lossCount)).toFixed(4)}, validation mean AUROC ${e.meanAuroc.toFixed(4)}${e.best ? ' (best so far)' : ''}`);
        break;
      case 'checkpoint':
        if (e.reason === 'interrupt') this.line(`checkpoint saved: ${e.path}`);
        break;
    }
  }

  private start(label: string, total: number, extra: string): void {
    this.stop();
    if (!this.tty) {
      this.line(label);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted}${extra}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { loss: '-', lr: '-', speed: '-' });
  }

  private line(text: string): void {
    if (this.bar) this.bar.stop();
    this.bar = undefined;
    process.stderr.write(`${text}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
