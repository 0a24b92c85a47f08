/**
 * `cxr worker`: takes batch jobs from the shared Redis queue until stopped, and the analyses of `cxr serve --redis`
 * servers with the same model (one model in memory for both). Logs are JSON lines on stderr naming
 * jobs by id only (never a file name). SIGTERM or SIGINT finish the running jobs and exit (143, 130); a second
 * signal hands them back at once (another worker takes them when their lock expires).
 */
import { Command } from 'commander';
import { connectRedis, BatchWorker, type WorkerEvent } from '../../queue/index.js';
import { AnalysisWorker } from '../../serve/dispatch-redis-worker.js';
import { positiveInt } from '../options.js';
import { redisOption } from './batch.js';

interface WorkerFlags {
  redis: string;
  model?: string;
  concurrency: number;
  threads?: number;
  exitWhenIdle?: boolean;
  lockDuration: number;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

function log(event: WorkerEvent | Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('score batch jobs (see `cxr batch`) and `cxr serve --redis` analyses from a Redis queue; run any number, on any number of machines')
    .addOption(redisOption())
    .option('-m, --model <file>', 'the model file; only batches submitted for this exact file (its SHA-256) are scored, others are refused; default: the embedded default model')
    .option('-c, --concurrency <k>', 'jobs in flight at once in this process (decoding overlaps inference)', positiveInt('concurrency'), 1)
    .option('-t, --threads <n>', 'ONNX Runtime threads (default: all cores; give each of several workers on one machine 1)', positiveInt('threads'))
    .option('--exit-when-idle', 'exit once the queue has nothing waiting, delayed or running (for one-off fleets and scripts)')
    .option('--lock-duration <ms>', "how long a job stays claimed without its worker renewing the claim: a dead worker's job is taken over after this", positiveInt('lock duration'), 30_000)
    .addHelpText(
      'after',
      `
The model is loaded once. Each image is retried with back-off as its batch says; an image that fails every try is
kept with its reason (\`cxr batch status\`). A job of a batch submitted for another model file is refused, never
scored with this one. Servers started with \`cxr serve --redis\` and the same model file send their analyses here too
(one queue per model file: a worker only sees its own model's analyses, and checks each one's hash again). Jobs of
\`cxr pacs --redis\` (and \`cxr batch submit --pacs-query --store-sr\`) are PACS instances whose results the worker
stores back into the PACS exactly as \`cxr pacs\` does (SR, heatmap images, FHIR reports): it must reach the PACS.
If Redis goes away the worker waits for it (retrying with back-off) and goes on.
SIGTERM or Ctrl-C finishes the running jobs and exits (143, 130); a second signal hands them back at once (another
worker takes them when their lock expires). Logs are JSON lines on stderr naming jobs by id, never file names.

Examples:
  $ cxr worker --redis redis://10.0.0.5:6379 --model chexnet.onnx
  $ cxr worker --redis redis://127.0.0.1:6379 --threads 1 --concurrency 2 --exit-when-idle`,
    )
    .action(async (flags: WorkerFlags) => {
      const redis = await connectRedis(flags.redis, { attempts: Infinity, onRetry: (message) => log({ event: 'redis', message }) });
      const worker = await BatchWorker.start(redis, {
        modelPath: flags.model,
        concurrency: flags.concurrency,
        threads: flags.threads,
        lockDurationMs: flags.lockDuration,
        onEvent: log,
      });
      const explainer = await worker.explainer();
      // Built now, as the server's own workers do, so no analysis pays for the Grad-CAM graph; a model the autodiff
      // cannot differentiate still answers predictions, and gradient methods fail per request with the reason.
      await explainer.prepare(['gradcam']).catch(() => undefined);
      const analyses = await AnalysisWorker.start(redis, {
        modelHash: worker.modelHash,
        predictor: worker.predictor,
        explainer,
        concurrency: flags.concurrency,
        lockDurationMs: flags.lockDuration,
        onEvent: log,
      });
      log({ event: 'ready', model: worker.modelHash, concurrency: flags.concurrency });
      const stopped = new Promise<string>((resolve) => {
        for (const signal of Object.keys(SIGNAL_EXIT)) {
          process.once(signal, () => {
            // A second signal means now: running jobs are handed back rather than finished.
            for (const s of Object.keys(SIGNAL_EXIT)) process.once(s, () => void Promise.all([analyses.close(true), worker.close(true)]));
            resolve(signal);
          });
        }
      });
      const reason = await Promise.race([stopped, ...(flags.exitWhenIdle ? [worker.whenIdle().then(() => 'idle')] : [])]);
      log({ event: 'stopping', reason });
      await analyses.close();
      await worker.close();
      await redis.quit().catch(() => redis.disconnect());
      log({ event: 'stopped' });
      process.exitCode = SIGNAL_EXIT[reason] ?? 0;
    });
}
