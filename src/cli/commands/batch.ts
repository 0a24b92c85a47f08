/** `cxr batch submit|status|results`: batches of images scored by `cxr worker`s through a shared Redis queue. */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Redis } from 'ioredis';
import { EXPLANATION_METHODS, checkMethod } from '../../explain/index.js';
import { type BatchStatus, batchResults, batchStatus, connectRedis, listBatchSources, newBatchId, searchPacsInstances, submitBatch } from '../../queue/index.js';
import { positiveInt, nonNegativeInt } from '../options.js';
import { progressBar } from '../progress.js';
import { jsonEntry, toCsv } from './predict.js';

/** --redis, also read from $CXR_REDIS (so a password need not be typed on command lines, which others can see). */
export function redisOption(): Option {
  return new Option('--redis <url>', 'the Redis server of the batches and workers, e.g. redis://127.0.0.1:6379').env('CXR_REDIS').makeOptionMandatory();
}

/** Runs `work` on a Redis connection (retried a few times with back-off, each retry said on stderr), then closes it. */
export async function withRedis<T>(url: string, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = await connectRedis(url, { onRetry: (message) => process.stderr.write(`cxr: ${message}\n`) });
  try {
    return await work(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

export function batchCommand(): Command {
  return new Command('batch')
    .description('score many images on any number of `cxr worker`s sharing a Redis queue (submit, status, results)')
    .addCommand(submitCommand())
    .addCommand(statusCommand())
    .addCommand(resultsCommand())
    .addHelpText(
      'after',
      `
A batch is one job per image in a BullMQ queue on Redis. Start workers anywhere that can read the same paths and
has the same model file (\`cxr worker --help\`); results are kept in Redis, so a finished batch is read back any time.

Examples:
  $ cxr batch submit /data/nih/images --redis redis://10.0.0.5:6379 --name nih-full --model chexnet.onnx
  $ cxr worker --redis redis://10.0.0.5:6379 --model chexnet.onnx --threads 1 --concurrency 2    (on each machine)
  $ cxr batch status nih-full --redis redis://10.0.0.5:6379 --watch
  $ cxr batch results nih-full --redis redis://10.0.0.5:6379 --csv nih-full.csv`,
    );
}

interface SubmitFlags {
  redis: string;
  name?: string;
  model?: string;
  recursive?: boolean;
  showRejected?: boolean;
  attempts: number;
  backoff: number;
  heatmaps?: string;
  out?: string;
  pacsQuery?: string;
  pacs?: string;
  storeSr?: boolean;
}

function submitCommand(): Command {
  return new Command('submit')
    .description('queue one job per image of a folder, a CSV list or a PACS search; prints the batch id')
    .argument('[folder|list.csv]', 'a folder of images, or a CSV with a "file" (or "path") column; relative names are relative to the CSV')
    .option('--pacs-query <query>', 'instead: the instances a QIDO-RS search of --pacs finds, KEY=VALUE joined by & (e.g. Modality=CR&StudyDate=20240101-20240131); workers retrieve each by WADO-RS')
    .option('--pacs <dicomweb-url>', 'with --pacs-query: the PACS\'s DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web (workers must reach it too)')
    .option('--store-sr', 'with --pacs-query: the workers also store each result back into the PACS as the DICOM SR `cxr pacs` writes (no heatmap images: `cxr pacs --redis` stores those)')
    .addOption(redisOption())
    .option('--name <id>', 'the batch id (letters, digits, - and _); default: generated and printed')
    .option('-m, --model <file>', 'the model the batch is scored with (workers must load the same file); default: the embedded default model')
    .option('-r, --recursive', 'descend into sub-folders')
    .option('--show-rejected', 'give findings even for inputs the input checks reject (marked rejected-shown)')
    .option('--attempts <n>', 'tries per image before it is kept as a failure', positiveInt('attempts'), 3)
    .option('--backoff <ms>', 'wait before the first retry, doubling after each', nonNegativeInt('backoff'), 2000)
    .option('--heatmaps <method>', `also write an overlay PNG per positive finding (every finding for a model without thresholds): ${EXPLANATION_METHODS.join(', ')}`)
    .option('--out <dir>', 'with --heatmaps: the folder for them, one sub-folder per image (<position>-<name>); workers must all see it')
    .addHelpText(
      'after',
      `
Job ids come from the batch id and each image's path (a PACS instance's UIDs): submitting the same batch again adds
nothing already queued or done, and sends its failed images (the dead-letter list) round once more. Paths are stored absolute; workers on
other machines need them at the same place. The batch id alone goes to stdout, the summary to stderr.

Examples:
  $ cxr batch submit scans/ --redis redis://127.0.0.1:6379 --name site-a
  $ cxr batch submit scans/ --redis redis://127.0.0.1:6379 --heatmaps gradcam --out /shared/site-a-heatmaps
  $ id=$(cxr batch submit todo.csv --redis redis://127.0.0.1:6379 --model chexnet.onnx)
  $ cxr batch submit --pacs http://127.0.0.1:8042/dicom-web --pacs-query 'Modality=CR' --redis redis://127.0.0.1:6379 --name pacs-cr
  $ cxr batch submit --pacs http://127.0.0.1:8042/dicom-web --pacs-query 'StudyDate=20240101-20240131' --store-sr --redis redis://127.0.0.1:6379`,
    )
    .action(async (input: string | undefined, flags: SubmitFlags) => {
      if ((flags.heatmaps === undefined) !== (flags.out === undefined)) throw new Error('--heatmaps and --out go together: the method, and the folder the overlays are written to');
      const heatmaps = flags.heatmaps !== undefined && flags.out !== undefined ? { method: checkMethod(flags.heatmaps), out: flags.out } : undefined;
      if ((input === undefined) === (flags.pacsQuery === undefined)) throw new Error('give a folder or CSV list, or --pacs-query (with --pacs): one of the two');
      if ((flags.pacsQuery === undefined) !== (flags.pacs === undefined)) throw new Error('--pacs-query and --pacs go together: the search, and the DICOMweb root it is sent to');
      if (flags.storeSr && flags.pacsQuery === undefined) throw new Error('--store-sr stores results back into the PACS they came from: it goes with --pacs-query');
      if (flags.storeSr && (heatmaps || flags.showRejected)) throw new Error('--store-sr writes the SR `cxr pacs` writes: not with --heatmaps or --show-rejected');
      const images = input !== undefined ? { files: await listBatchSources(input, { recursive: flags.recursive }) } : { instances: await searchPacsInstances(flags.pacs!, flags.pacsQuery!) };
      const batch = flags.name ?? newBatchId();
      const outcome = await withRedis(flags.redis, (redis) =>
        submitBatch(redis, { batch, ...images, modelPath: flags.model, showRejected: flags.showRejected, attempts: flags.attempts, backoffMs: flags.backoff, heatmaps, ...(flags.storeSr ? { store: { heatmaps: 'none' } } : {}) }),
      );
      process.stdout.write(`${outcome.batch}\n`);
      process.stderr.write(
        `batch ${outcome.batch}: ${outcome.total} images for model sha256 ${outcome.modelHash.slice(0, 12)}…: ` +
          `${outcome.queued} queued, ${outcome.done} already done, ${outcome.retried} failed ones sent round again\n`,
      );
    });
}

interface StatusFlags {
  redis: string;
  json?: boolean;
  watch?: boolean;
}

function statusCommand(): Command {
  return new Command('status')
    .description('how far a batch is: counts, images per second, time left, failures with their reasons')
    .argument('<id>', 'the batch id')
    .addOption(redisOption())
    .option('--json', 'print the status as one JSON document')
    .option('-w, --watch', 'follow the batch until every image is done or failed (a progress bar on a terminal)')
    .addHelpText(
      'after',
      `
Exit status: 0 when every image has a result, 1 when some failed, 2 while images are still pending.

Examples:
  $ cxr batch status site-a --redis redis://127.0.0.1:6379
  $ cxr batch status site-a --redis redis://127.0.0.1:6379 --watch`,
    )
    .action(async (id: string, flags: StatusFlags) => {
      const status = await withRedis(flags.redis, async (redis) => {
        if (!flags.watch) return batchStatus(redis, id);
        return watch(redis, id);
      });
      process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : describe(status));
      process.exitCode = status.pending > 0 ? 2 : status.failed > 0 ? 1 : 0;
    });
}

async function watch(redis: Redis, id: string): Promise<BatchStatus> {
  let status = await batchStatus(redis, id);
  const bar = progressBar(`batch ${id}`, status.total);
  try {
    while (status.pending > 0) {
      bar.update(status.done + status.failed, status.total);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = await batchStatus(redis, id);
    }
    bar.update(status.total, status.total);
  } finally {
    bar.stop();
  }
  return status;
}

const SHOWN_FAILURES = 20;

function describe(s: BatchStatus): string {
  const percent = ((100 * (s.done + s.failed)) / s.total).toFixed(1);
  const lines = [`batch ${s.batch}: ${s.done} of ${s.total} done, ${s.failed} failed, ${s.pending} pending (${percent}% finished)`];
  if (s.perSecond !== undefined) lines.push(`rate ${s.perSecond.toFixed(1)} images/s${s.pending > 0 ? `, about ${formatSeconds(s.etaSeconds ?? 0)} left` : `, took ${formatSeconds(((s.finishedAt ?? Date.now()) - (s.startedAt ?? 0)) / 1000)}`}`);
  else lines.push('no worker has taken a job yet (start one: cxr worker --redis URL --model FILE)');
  lines.push(`model sha256 ${s.modelHash}`);
  if (s.failures.length > 0) {
    lines.push('failures (job, reason):');
    for (const f of s.failures.slice(0, SHOWN_FAILURES)) lines.push(`  #${f.index} ${f.job}: ${f.reason} (${f.attempts} ${f.attempts === 1 ? 'try' : 'tries'})`);
    if (s.failures.length > SHOWN_FAILURES) lines.push(`  ... and ${s.failures.length - SHOWN_FAILURES} more (--json lists all; \`cxr batch results\` gives them with their files)`);
  }
  return `${lines.join('\n')}\n`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

interface ResultsFlags {
  redis: string;
  csv?: string;
  jsonl?: string;
}

function resultsCommand(): Command {
  return new Command('results')
    .description("a batch's results as `cxr predict --csv` writes them, or one JSON line per image")
    .argument('<id>', 'the batch id')
    .addOption(redisOption())
    .option('--csv <file>', 'write file, a probability per finding, verdict, flags and error (the failures\' reasons), as `cxr predict --csv`')
    .option('--jsonl <file>', 'write one JSON object per image, as an entry of `cxr predict --json` (and its overlays\' folder and files when the batch has heatmaps)')
    .addHelpText(
      'after',
      `
Rows come in the submitted order; an image still pending has no row yet (the summary on stderr says how many).
Exit status: 0 when every image has a result, 1 when some failed or are pending.

Examples:
  $ cxr batch results site-a --redis redis://127.0.0.1:6379 --csv site-a.csv
  $ cxr eval site-a.csv --labels Data_Entry_2017.csv          (evaluate them like any predictions CSV)`,
    )
    .action(async (id: string, flags: ResultsFlags) => {
      if (!flags.csv && !flags.jsonl) throw new Error('say where to write the results: --csv FILE and/or --jsonl FILE');
      const { status, results } = await withRedis(flags.redis, async (redis) => ({ status: await batchStatus(redis, id), results: await batchResults(redis, id) }));
      if (flags.csv) writeFileSync(flags.csv, toCsv(results, status.labels));
      if (flags.jsonl) writeFileSync(flags.jsonl, results.map((r) => `${JSON.stringify({ ...jsonEntry(r), ...(r.instance ? { instance: r.instance } : {}), ...(r.heatmaps ? { heatmaps: r.heatmaps } : {}) })}\n`).join(''));
      process.stderr.write(`batch ${id}: ${results.length - status.failed} results, ${status.failed} failures, ${status.pending} pending\n`);
      if (status.failed > 0 || status.pending > 0) process.exitCode = 1;
    });
}
