/** `cxr train`: a recipe (file and/or flags) -> a trained, self-describing model with its model card. */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { ARCHITECTURE_NAMES } from '../../models/zoo/index.js';
import { applyOverride, readConfigFile, resolveConfig } from '../../train/config.js';
import { finishRun } from '../../train/finish.js';

import { lockRunFolder } from '../../train/lock.js';
import { type TrainEvent, TrainingInterruptedError, train } from '../../train/trainer.js';
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
  checkpointEvery: { steps?: number; seconds?: number };
}

/** `200` (steps), `90s`, `5m` or `1h`. */
function checkpointInterval(value: string): { steps?: number; seconds?: number } {
  const m = /^(\d+)(s|m|h)?$/.exec(value.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || n <= 0) throw new InvalidArgumentError(`expected a number of steps (200) or a time (90s, 5m, 1h), got "${value}"`);
  return m[2] ? { seconds: n * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] } : { steps: n };
}

/** The exit status of a process stopped by a signal: 128 + its number (SIGHUP 129, SIGINT 130, SIGTERM 143). */
const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

export function trainCommand(): Command {
  return new Command('train')
    .description('train a multi-label classifier (transfer learning, imbalance, uncertain labels, patient metadata)')
    .option('-c, --config <file>', 'recipe in YAML or JSON (see configs/ for examples)')
    .requiredOption('-o, --out <folder>', 'the run folder: model, model card, log.jsonl, checkpoint')
    .option('--resume', 'continue the run in --out from its checkpoint (same recipe)')
    .option(...DATA_OPTION, collect, [])
    .option('-a, --arch <name>', ARCHITECTURE_NAMES.join(' | '))
    .option('-p, --pretrained <weights>', 'start from these weights (any file `cxr import` reads)')
    .option('-e, --epochs <n>', 'epochs', positiveInt('epochs'))
    .option('-b, --batch-size <n>', 'images per step', positiveInt('batch size'))
    .option('--lr <rate>', 'peak learning rate', (v) => Number(v))
    .option('-s, --size <px>', 'input size', positiveInt('size'))
    .option('--seed <n>', 'seed of the split, order, augmentation and initialisation', (v) => Number.parseInt(v, 10))
    .option('-t, --threads <n>', 'ONNX Runtime threads', positiveInt('threads'))
    .option('--checkpoint-every <steps|time>', 'also checkpoint within epochs: every N steps, or 90s, 5m, 1h', checkpointInterval, { seconds: 300 })
    .option('--set <key=value>', 'any recipe setting, e.g. --set loss.kind=focal --set freeze.headEpochs=1 (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
The recipe's settings and their defaults:
  datasets            [{ format: nih|chexpert|csv, csv, images, uncertainty (CheXpert: U-Ignore, U-Zeros, U-Ones,
                      U-MultiClass, LSR-Ones, LSR-Zeros), metadata (NIH: Data_Entry_2017_v2020.csv.gz fills in
                      the age, sex and view a labels file lacks), heldOut: test|apart (apart: the set's test
                      patients stay out of the test metrics, reported apart, e.g. NIH's 64 px thumbnails) }]
  labels              nih (the 14 NIH findings) or a list
  split               { method: patient, train: 0.7, validation: 0.15, test: 0.15 } or { method: official, lists, validation }
  model               { architecture: densenet121, pretrained, size: 224, channels: 3, resize: pad, metadata: false }
  loss                { kind: bce, posWeight: none|auto } | { kind: focal, alpha, gamma } | { kind: asymmetric, gammaNeg, gammaPos, clip }
  sampler             shuffle | balanced
  optimizer           { kind: adamw, lr: 1e-4, weightDecay: 1e-4, weightDecayOn: all|weights } | { kind: sgd, lr, momentum, nesterov, weightDecay }
  schedule            { type: cosine, warmupEpochs: 1 } | { type: plateau, factor, patience } | { type: constant }
  epochs 10, batchSize 16, freeze { headEpochs: 0, then: all | n }, earlyStopping { patience: 3 }, seed 0
  augmentation        { rotationDeg: 7, translate: 0.05, scale: 0.07, flipProbability: 0, brightness: 0.1, contrast: 0.1 } | none

Patients never straddle splits; the test split is scored once, with the best model by validation mean AUROC.
Ctrl-C, SIGTERM or SIGHUP stop after the current step and save a checkpoint (exit status 130, 143, 129); a
crash loses at most --checkpoint-every of work. --resume continues exactly, from the next batch. One process
per run folder: a --resume while the run is still going is refused (run.lock names its pid).

Examples:
  $ cxr train --config configs/default-model.yaml --out runs/default
  $ cxr train -d nih:Data_Entry_2017.csv:/data/nih -a densenet121 -p chexnet.pth --set split.method=official \\
      --set split.lists=/data/nih --epochs 5 --out runs/densenet
  $ cxr train --config recipe.yaml --out runs/densenet --resume`,
    )
    .action(async (options: TrainCliOptions) => {
      const raw = options.config ? readConfigFile(options.config) : {};
      if (options.data.length > 0) raw.datasets = options.data.map((value) => datasetFlag(value));
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
      // The run folder is this process's until it exits: training and then the model, card and evaluation.
      mkdirSync(options.out, { recursive: true });
      const lock = lockRunFolder(options.out, (message) => process.stderr.write(`${message}\n`));
      const controller = new AbortController();
      const resumeHint = `cxr train ${options.config ? `--config ${options.config} ` : ''}--out ${options.out} --resume`;
      let stoppedBy: NodeJS.Signals | undefined;
      let finishing = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (finishing) {
          // Training is over and checkpointed: the model, card and evaluation can be written again later.
          process.stderr.write(`\n${signal}: stopped while writing the model and its card; ${resumeHint} writes them\n`);
          process.exit(SIGNAL_EXIT[signal]);
        }
        if (stoppedBy) {
          // A second Ctrl-C quits at once; a repeated SIGTERM/SIGHUP (a supervisor, a process group) waits.
          if (signal === 'SIGINT') {
            process.stderr.write('\nquitting without a checkpoint\n');
            process.exit(SIGNAL_EXIT.SIGINT);
          }
          return;
        }
        stoppedBy = signal;
        process.stderr.write(`\n${signal}: stopping after this step and saving a checkpoint${signal === 'SIGINT' ? ' (Ctrl-C again to quit at once)' : ''}\n`);
        controller.abort();
      };
      const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
      for (const signal of signals) process.on(signal, onSignal);
      const display = new TrainDisplay();
      try {
        const outcome = await train({
          config,
          outDir: options.out,
          resume: options.resume,
          signal: controller.signal,
          checkpointEvery: options.checkpointEvery,
          onEvent: (e) => display.show(e),
        });
        display.stop();
        if (outcome.status === 'interrupted') {
          process.stdout.write(`interrupted; continue with: ${resumeHint}\n`);
          process.exitCode = SIGNAL_EXIT[stoppedBy ?? 'SIGINT'];
          return;
        }
        if (stoppedBy) {
          // Stopped as the last step ended: the run is checkpointed, writing the model is left for later.
          process.stdout.write(`training finished, but ${stoppedBy} came before the model and its card were written; ${resumeHint} writes them\n`);
          process.exitCode = SIGNAL_EXIT[stoppedBy];
          return;
        }
        finishing = true;
        const run = await finishRun(outcome, config, options.out, (message) => process.stderr.write(`${message}\n`));
        process.stdout.write(`\n${run.summary}\n`);
      } catch (error) {
        if (!(error instanceof TrainingInterruptedError)) throw error;
        display.stop();
        process.stderr.write(`${error.message}\n`);
        process.exitCode = SIGNAL_EXIT[stoppedBy ?? 'SIGINT'];
      } finally {
        display.stop();
        for (const signal of signals) process.off(signal, onSignal);
        lock.release();
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
        else if (e.reason === 'periodic' && !this.tty) this.line(`checkpoint saved: ${e.path}`);
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
