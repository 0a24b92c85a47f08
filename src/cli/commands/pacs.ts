/** `cxr pacs`: analyse the chest films of a PACS over DICOMweb and store the results back into it (SR + heatmaps). */
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../../api.js';
import { EXPLANATION_METHODS, type ExplanationMethod, isExplanationMethod } from '../../explain/index.js';
import { Analyser } from '../../pacs/analyse.js';
import { DicomWebClient, PacsError } from '../../pacs/dicomweb.js';
import { OrthancChanges } from '../../pacs/orthanc-changes.js';
import { DEFAULT_MODALITIES, PacsProcessor, type PacsEvent, type PassSummary } from '../../pacs/processor.js';
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
Logs name instances by a hash of their UID and count them; no patient data is printed.
Research use only; not for clinical decisions.

Examples:
  $ cxr pacs --url http://127.0.0.1:8042 --once          everything pending in a local Orthanc, then exit
  $ cxr pacs --url http://pacs.example:8042 --interval 30 watch, searching every 30 s
  $ cxr pacs --url https://pacs.example --dicomweb /wado --model chexnet.onnx --heatmaps none
  $ cxr pacs --url http://127.0.0.1:8042 --once --fhir reports/   also FHIR DiagnosticReports, one JSON per instance`,
    )
    .action(async (options: PacsCliOptions) => {
      const root = new URL(options.dicomweb, options.url.endsWith('/') ? options.url : `${options.url}/`).href;
      const client = new DicomWebClient(root, {
        timeoutMs: options.timeout * 1000,
        retries: options.retries,
        onRetry: (e) => log(`PACS ${e.operation}: ${e.reason}; try ${e.attempt + 1} of ${options.retries + 1} in ${(e.waitMs / 1000).toFixed(1)} s`),
      });
      const loaded = loadModel(options.model);
      const analyser = await Analyser.create(loaded, { batchSize: options.batchSize, threads: options.threads, heatmaps: options.heatmaps });
      if (options.fhir) mkdirSync(options.fhir, { recursive: true });
      const processor = new PacsProcessor(client, analyser, {
        modalities: options.modalities,
        fhirDir: options.fhir,
        onEvent: (e) => {
          // A watcher finding nothing new every few seconds says nothing.
          if (!(e.type === 'scan' && e.pending === 0 && !options.once)) log(describe(e));
        },
      });
      const stop = new AbortController();
      const onSignal = () => {
        log('stopping after the current instance batch');
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        log(`model ${analyser.model.name}, SHA-256 ${analyser.model.sha256.slice(0, 12)}; PACS ${new URL(root).origin}; modalities ${options.modalities.join(', ')}`);
        if (options.once) {
          const summary = await processor.processPending(stop.signal);
          process.stdout.write(`${summarise(summary)}\n`);
          if (summary.failed > 0) process.exitCode = 1;
          return;
        }
        // The first pass searches everything; later ones follow Orthanc's change log where the server has one (its
        // end taken before that search, so nothing stored during it is missed), else search everything again.
        let changes: OrthancChanges | undefined;
        let searchedAll = false;
        while (!stop.signal.aborted) {
          try {
            let summary: PassSummary;
            if (!searchedAll) {
              changes = await OrthancChanges.open(client);
              summary = await processor.processPending(stop.signal);
              searchedAll = true;
              log(changes ? "all searched; now following Orthanc's change log" : 'all searched; no change log on this server, so every pass searches everything (QIDO-RS)');
            } else if (changes) {
              const { instances, last } = await changes.newInstances();
              summary = await processor.processInstances(instances, stop.signal);
              changes.position = last;
            } else {
              summary = await processor.processPending(stop.signal);
            }
            if (summary.candidates > summary.alreadyDone) log(summarise(summary));
          } catch (e) {
            if (!(e instanceof PacsError)) throw e;
            log(`pass failed, nothing lost (unfinished instances are redone next pass): ${e.message}`);
          }
          await sleep(options.interval * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await analyser.close();
      }
    });
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
