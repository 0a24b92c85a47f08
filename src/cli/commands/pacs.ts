/**
 * `cxr pacs`: analyse the chest films of a PACS over DICOMweb and store the results back into it (SR + heatmaps), in
 * this process or, with --redis, by handing each instance to the `cxr worker` fleet.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../../api.js';
import { EXPLANATION_METHODS, type ExplanationMethod, isExplanationMethod } from '../../explain/index.js';
import { Analyser } from '../../pacs/analyse.js';
import type { DicomJson } from '../../pacs/dicom-json.js';
import { DicomWebClient, PacsError } from '../../pacs/dicomweb.js';
import { OrthancChanges } from '../../pacs/orthanc-changes.js';
import { DEFAULT_MODALITIES, PacsProcessor, type PacsEvent, type PassSummary } from '../../pacs/processor.js';
import { connectRedis, displayRedisUrl, type FeedSummary, PacsFeed } from '../../queue/index.js';
import { positiveInt } from '../options.js';

interface PacsCliOptions {
  url: string;
  dicomweb: string;
  once?: boolean;
  interval: number;
  model?: string;
  modalities: string[];
  heatmaps: ExplanationMethod | 'none';
  batchSize: number;
  threads?: number;
  timeout: number;
  retries: number;
  fhir?: string;
  redis?: string;
  name?: string;
}

function heatmapMethod(value: string): ExplanationMethod | 'none' {
  if (value === 'none' || isExplanationMethod(value)) return value;
  throw new InvalidArgumentError(`--heatmaps must be none or one of ${EXPLANATION_METHODS.join(', ')}, got "${value}"`);
}

function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`--url must be an http or https URL such as http://127.0.0.1:8042, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`--url must be an http or https URL, got "${value}"`);
  return value;
}

function modalityList(value: string): string[] {
  const list = value.split(',').map((m) => m.trim().toUpperCase()).filter(Boolean);
  if (list.length === 0 || list.some((m) => !/^[A-Z0-9]{1,16}$/.test(m))) throw new InvalidArgumentError(`--modalities expects DICOM modality codes separated by commas (e.g. CR,DX), got "${value}"`);
  return list;
}

export function pacsCommand(): Command {
  return new Command('pacs')
    .description('analyse new CR/DX instances in a PACS (DICOMweb) and store a DICOM SR and heatmap images back into their studies')
    .requiredOption('--url <url>', 'the PACS web server, e.g. http://127.0.0.1:8042 (Orthanc)', httpUrl)
    .option('--dicomweb <path>', 'path of the DICOMweb root on that server', '/dicom-web')
    .option('--once', 'process everything pending, then exit (default: keep watching)')
    .option('--interval <s>', 'seconds between searches for new instances while watching', positiveInt('interval'), 10)
    .option('-m, --model <file>', 'cxr-lens model (.onnx); default: the embedded default model')
    .addOption(new Option('--modalities <list>', 'modalities to analyse, comma-separated').argParser(modalityList).default(DEFAULT_MODALITIES, DEFAULT_MODALITIES.join(',')))
    .option('--heatmaps <method>', `heatmap method for positive findings, or none (${EXPLANATION_METHODS.join(', ')})`, heatmapMethod, 'gradcam')
    .option('-b, --batch-size <n>', 'instances per ONNX Runtime run', positiveInt('batch size'), 8)
    .option('-t, --threads <n>', 'threads per operator (default: all cores)', positiveInt('threads'))
    .option('--timeout <s>', 'deadline of one request to the PACS, seconds', positiveInt('timeout'), 30)
    .option('--fhir <dir>', 'also write each result as a FHIR R4 DiagnosticReport, <dir>/<SR UID>.json (no patient identifiers in it)')
    .option('--retries <n>', 'further tries of a request when the PACS is down, slow or busy (back-off 0.5 s, doubled each time)', positiveInt('retries'), 4)
    .option('--redis <url>', 'hand each pending instance to the `cxr worker`s of this Redis (one job each) instead of analysing it here, e.g. redis://127.0.0.1:6379')
    .option('--name <id>', 'with --redis: the batch the jobs belong to (cxr batch status ID); default pacs-<hash of the DICOMweb root and model>')
    .addHelpText(
      'after',
      `
Finds the instances of the given modalities (QIDO-RS) that have no result of this model yet, retrieves them
(WADO-RS), analyses them with the same model, input checks and thresholds as \`cxr predict\`, and stores back
(STOW-RS), in new series of the same study:
  - a DICOM Comprehensive SR per instance: each finding's probability, threshold, rule and decision, the input
    checks' verdict and flags, the model's name, version and file SHA-256, and "research use only, not for clinical
    use"; an instance the checks refuse (not a chest film) or that cannot be decoded gets an SR saying so and why;
  - a Secondary Capture image of the heatmap of each positive finding (unless --heatmaps none);
  - with --fhir, the same result as a FHIR R4 DiagnosticReport JSON file (patient not named; UIDs tie it back).
While watching, passes after the first follow Orthanc's change log (GET /changes) where the server has one, and
search everything again where it has not.
Restartable: what is done is read from the PACS (an instance is done when its SR, whose UID is fixed by the
instance and the model file, is there), never from a local file. Stop it at any point and run it again, here or
on another machine: nothing is redone twice over or lost. A PACS that is down or slow is retried with back-off;
while watching, a failed pass is reported and the next one tried after --interval.
With --redis, nothing is analysed here: each pending instance becomes one job of a batch on the queue the
\`cxr worker\`s serve (start them with the same --model; they must reach the PACS), carrying its UIDs, the DICOMweb
root and what to store (the SR; heatmaps unless --heatmaps none; with --fhir, reports into that folder, which the
workers must share). A worker retrieves the instance, analyses it and stores the same SR and heatmaps as this
command would. An instance already queued is not queued twice; one whose job failed for good (\`cxr batch status\`
gives the reason) is sent round again by the next run's first pass. --batch-size and --threads are the workers'.
Logs name instances by a hash of their UID and count them; no patient data is printed.
Research use only; not for clinical decisions.

Examples:
  $ cxr pacs --url http://127.0.0.1:8042 --once          everything pending in a local Orthanc, then exit
  $ cxr pacs --url http://pacs.example:8042 --interval 30 watch, searching every 30 s
  $ cxr pacs --url https://pacs.example --dicomweb /wado --model chexnet.onnx --heatmaps none
  $ cxr pacs --url http://127.0.0.1:8042 --once --fhir reports/   also FHIR DiagnosticReports, one JSON per instance
  $ cxr pacs --url http://pacs.example:8042 --redis redis://10.0.0.5:6379   watch, and let the workers analyse`,
    )
    .action(async (options: PacsCliOptions) => {
      const root = new URL(options.dicomweb, options.url.endsWith('/') ? options.url : `${options.url}/`).href;
      const client = new DicomWebClient(root, {
        timeoutMs: options.timeout * 1000,
        retries: options.retries,
        onRetry: (e) => log(`PACS ${e.operation}: ${e.reason}; try ${e.attempt + 1} of ${options.retries + 1} in ${(e.waitMs / 1000).toFixed(1)} s`),
      });
      if (options.name !== undefined && options.redis === undefined) throw new Error('--name names the batch of --redis: give --redis too');
      if (options.fhir) mkdirSync(options.fhir, { recursive: true });
      const passes = options.redis ? await queuedPasses(client, options) : await inlinePasses(client, options);
      const stop = new AbortController();
      const onSignal = () => {
        log(options.redis ? 'stopping after the current hand-over' : 'stopping after the current instance batch');
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        log(`${passes.describe}; PACS ${new URL(root).origin}; modalities ${options.modalities.join(', ')}`);
        if (options.once) {
          const pass = await passes.all(stop.signal, true);
          process.stdout.write(`${pass.line}\n`);
          if (pass.failed) process.exitCode = 1;
          return;
        }
        // The first pass searches everything; later ones follow Orthanc's change log where the server has one (its
        // end taken before that search, so nothing stored during it is missed), else search everything again.
        let changes: OrthancChanges | undefined;
        let searchedAll = false;
        while (!stop.signal.aborted) {
          try {
            let pass: Pass;
            if (!searchedAll) {
              changes = await OrthancChanges.open(client);
              pass = await passes.all(stop.signal, true);
              searchedAll = true;
              log(changes ? "all searched; now following Orthanc's change log" : 'all searched; no change log on this server, so every pass searches everything (QIDO-RS)');
            } else if (changes) {
              const { instances, last } = await changes.newInstances();
              pass = await passes.some(instances, stop.signal);
              changes.position = last;
            } else {
              pass = await passes.all(stop.signal, false);
            }
            if (pass.work) log(pass.line);
          } catch (e) {
            if (!(e instanceof PacsError)) throw e;
            log(`pass failed, nothing lost (unfinished instances are redone next pass): ${e.message}`);
          }
          await sleep(options.interval * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await passes.close();
      }
    });
}

/** What one pass did, for the log: its summary line, whether it found anything to do, and whether any failed. */
interface Pass {
  line: string;
  work: boolean;
  failed: boolean;
}

/**
 * The two ways a pass treats what is pending: analysed here (PacsProcessor) or handed to the queue's workers
 * (PacsFeed); `all` searches the whole PACS (`first`: the first pass of this run), `some` the given search results.
 */
interface Passes {
  describe: string;
  all(signal: AbortSignal, first: boolean): Promise<Pass>;
  some(searched: readonly DicomJson[], signal: AbortSignal): Promise<Pass>;
  close(): Promise<void>;
}

async function inlinePasses(client: DicomWebClient, options: PacsCliOptions): Promise<Passes> {
  const analyser = await Analyser.create(loadModel(options.model), { batchSize: options.batchSize, threads: options.threads, heatmaps: options.heatmaps });
  const processor = new PacsProcessor(client, analyser, {
    modalities: options.modalities,
    fhirDir: options.fhir,
    onEvent: (e) => {
      // A watcher finding nothing new every few seconds says nothing.
      if (!(e.type === 'scan' && e.pending === 0 && !options.once)) log(describe(e));
    },
  });
  const pass = (s: PassSummary): Pass => ({ line: summarise(s), work: s.candidates > s.alreadyDone, failed: s.failed > 0 });
  return {
    describe: `model ${analyser.model.name}, SHA-256 ${analyser.model.sha256.slice(0, 12)}`,
    all: async (signal) => pass(await processor.processPending(signal)),
    some: async (searched, signal) => pass(await processor.processInstances(searched, signal)),
    close: () => analyser.close(),
  };
}

async function queuedPasses(client: DicomWebClient, options: PacsCliOptions): Promise<Passes> {
  const redis = await connectRedis(options.redis!, { onRetry: (message) => log(message) });
  try {
    const feed = await PacsFeed.open(redis, client, {
      batch: options.name,
      modelPath: options.model,
      modalities: options.modalities,
      store: { heatmaps: options.heatmaps, ...(options.fhir ? { fhir: resolve(options.fhir) } : {}) },
    });
    const pass = (s: FeedSummary): Pass => ({ line: handedOver(s), work: s.candidates > s.alreadyDone, failed: false });
    return {
      describe: `handing instances to the workers of ${displayRedisUrl(options.redis!)}, batch ${feed.batch} (cxr batch status ${feed.batch}), model SHA-256 ${feed.modelHash.slice(0, 12)}`,
      all: async (signal, first) => pass(await feed.processPending(signal, first)),
      some: async (searched, signal) => pass(await feed.processInstances(searched, signal)),
      close: async () => {
        await feed.close();
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  } catch (e) {
    redis.disconnect();
    throw e;
  }
}

function handedOver(s: FeedSummary): string {
  return `handed ${s.queued + s.inQueue + s.retried} of ${s.candidates} instances to the workers (${s.alreadyDone} were done before): ${s.queued} queued now, ${s.inQueue} already queued, ${s.retried} failed ones sent round again, ${s.failed} failed (cxr batch status ${s.batch})`;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} cxr pacs: ${line}\n`);
}

function describe(event: PacsEvent): string {
  switch (event.type) {
    case 'scan':
      return `${event.candidates} instances, ${event.done} already analysed, ${event.pending} to do`;
    case 'instance':
      return `instance ${event.instance}: ${event.verdict}${event.verdict === 'accepted' ? `, ${event.positives} positive, ${event.heatmaps} heatmaps` : ''}; SR stored`;
    case 'skipped':
      return `instance ${event.instance} skipped: ${event.reason}`;
    case 'failed':
      return `instance ${event.instance} failed, left for the next pass: ${event.reason}`;
  }
}

function summarise(s: PassSummary): string {
  const done = s.accepted + s.rejected + s.undecodable;
  return `analysed ${done} of ${s.candidates} instances (${s.alreadyDone} were done before): ${s.accepted} accepted, ${s.rejected} refused by the input checks, ${s.undecodable} undecodable, ${s.skipped} gone, ${s.failed} failed; ${s.heatmaps} heatmaps stored`;
}
