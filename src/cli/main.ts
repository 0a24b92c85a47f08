/** The `cxr` command line: a thin face over the library (api.ts). Only this folder prints to the terminal. */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { batchCommand } from './commands/batch.js';
import { buildCommand } from './commands/build.js';
import { calibrateCommand } from './commands/calibrate.js';
import { evalCommand } from './commands/eval.js';
import { explainCommand } from './commands/explain.js';
import { importCommand } from './commands/import.js';
import { infoCommand } from './commands/info.js';
import { localizeEvalCommand } from './commands/localize-eval.js';
import { pacsCommand } from './commands/pacs.js';
import { predictCommand } from './commands/predict.js';
import { serveCommand } from './commands/serve.js';
import { tokenCommand } from './commands/token.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';

export function createProgram(): Command {
  const program = new Command('cxr')
    .version(VERSION)
    .description(
      'cxr-lens: multi-label chest X-ray classification with explanations, on ONNX Runtime.\n' +
        'Research use only; not for clinical decisions.',
    )
    .showHelpAfterError('(add --help for usage)')
    .option('--debug', 'show stack traces on errors')
    .addHelpText(
      'after',
      `
Examples:
  $ cxr import chexnet.pth.tar -o chexnet.onnx        PyTorch/ONNX weights -> a cxr-lens model
  $ cxr predict chest.png --model chexnet.onnx         probabilities for the 14 NIH findings
  $ cxr predict scans/ --model chexnet.onnx --csv out.csv
  $ cxr info chexnet.onnx                              what a model expects and outputs
  $ cxr calibrate -m chexnet.onnx -d nih:Data_Entry_2017.csv:images -o chexnet-checked.onnx
                                                       calibration, thresholds and input checks
  $ cxr batch submit scans/ --redis redis://127.0.0.1:6379 --name site-a
                                                       a batch for \`cxr worker\`s on a Redis queue`,
    );
  program.addCommand(predictCommand());
  program.addCommand(trainCommand());
  program.addCommand(importCommand());
  program.addCommand(buildCommand());
  program.addCommand(infoCommand());
  program.addCommand(evalCommand());
  program.addCommand(explainCommand());
  program.addCommand(localizeEvalCommand());
  program.addCommand(calibrateCommand());
  program.addCommand(serveCommand());
  program.addCommand(tokenCommand());
  program.addCommand(pacsCommand());
  program.addCommand(batchCommand());
  program.addCommand(workerCommand());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = createProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const debug = program.opts().debug === true || argv.includes('--debug');
    process.stderr.write(`cxr: error: ${debug ? ((error as Error).stack ?? String(error)) : (error as Error).message}\n`);
    return 1;
  }
}

/**
 * Started by bin/cxr.js's launcher (which re-launches Node with malloc settings): if the launcher dies without
 * passing a signal on (kill -9), its IPC channel closes and this process stops itself as on SIGTERM (training
 * saves a checkpoint, the server closes), instead of running on as an orphan in someone's run folder.
 */
export function watchLauncher(): void {
  if (!process.env.CXR_LAUNCHER_PID || !process.channel) return;
  delete process.env.CXR_LAUNCHER_PID;
  process.channel.unref(); // the channel alone must not keep this process alive
  process.once('disconnect', () => {
    process.stderr.write('cxr: the launcher process is gone; stopping\n');
    process.kill(process.pid, 'SIGTERM');
  });
}

watchLauncher();
process.exitCode = await main(process.argv);
