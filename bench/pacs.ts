/**
 * The PACS path end to end against bare prediction, per instance, on the real DICOM files of ../shared/data/dicom
 * (the 10 CR/DX instances with distinct SOP Instance UIDs; 6 are chest films the checks accept, 4 are refused).
 *
 * In process (the headline; model loading excluded from both, as a long-running `cxr pacs` pays it once):
 *   ours: the files sent to a fresh Orthanc with dcmtk's storescu (DIMSE) in one association, as a modality sends
 *         a study, then one PacsProcessor pass (QIDO-RS search, WADO-RS retrieve, the Analyser, SR and heatmap
 *         Secondary Captures STOWed back while the next batch is analysed): from the first byte sent to the last SR
 *         stored;
 *   reference: predictFiles (what `cxr predict` runs: decode from disk + Predictor) on the same files.
 *   watching: the same, with the pass run as a watching `cxr pacs` runs it while storescu is still sending (a search
 *         every 50 ms, each new instance analysed as soon as the PACS lists it): the order of a deployment, where
 *         images arrive while earlier ones are analysed; from the first byte sent to the last SR stored (SRs only).
 * Whole commands (secondary): `storescu` + `cxr pacs --once` against `cxr predict --json`, Node start and model
 * load included in both.
 * Cases: with Grad-CAM heatmaps of positive findings (the default) and with --heatmaps none (SR only). Each is
 * run `--rounds` times (default 5 in process, 3 for whole commands), interleaved with the reference; medians kept.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { loadModel } from '../src/api.js';
import { predictFiles } from '../src/inference/files.js';
import { Predictor } from '../src/inference/predictor.js';
import { Analyser } from '../src/pacs/analyse.js';
import { DicomWebClient } from '../src/pacs/dicomweb.js';
import { PacsProcessor } from '../src/pacs/processor.js';
import { DICOM_DIR, startOrthanc, storescu } from '../test/pacs/orthanc.js';
import { countOption, headlineCase, median, round, writeResults } from './lib.js';

const run = promisify(execFile);
const CXR = join(import.meta.dirname, '..', '..', 'bin', 'cxr.js');
// One file per SOP Instance UID (cxr07 repeats cxr06's; a PACS keeps one), CR and DX only (not the CT).
const FILES = readdirSync(DICOM_DIR)
  .filter((f) => f.endsWith('.dcm') && !/^neg4_CT|^cxr07_/.test(f))
  .sort()
  .map((f) => join(DICOM_DIR, f));
const N = FILES.length;

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

async function cxr(args: string[]): Promise<string> {
  return (await run(process.execPath, [CXR, ...args], { maxBuffer: 64 << 20 })).stdout;
}

/** One round against a fresh Orthanc: storescu, then `pass`; the times of both. */
async function pacsRound(pass: (url: string) => Promise<void>): Promise<{ store: number; pass: number }> {
  const orthanc = await startOrthanc();
  try {
    const store = await timed(() => storescu(orthanc, FILES));
    return { store, pass: await timed(() => pass(orthanc.url)) };
  } finally {
    await orthanc.stop();
  }
}

/** Between searches of a watcher that found nothing new. */
const POLL_MS = 50;

/** One round against a fresh Orthanc: passes run while storescu sends, until every instance has its SR. */
async function watchRound(analyser: Analyser): Promise<number> {
  const orthanc = await startOrthanc();
  try {
    const processor = new PacsProcessor(new DicomWebClient(orthanc.dicomweb), analyser);
    const start = performance.now();
    const sending = storescu(orthanc, FILES);
    sending.catch(() => undefined); // awaited below
    for (let analysed = 0; analysed < N; ) {
      const s = await processor.processPending();
      const done = s.accepted + s.rejected + s.undecodable;
      analysed += done;
      if (done === 0) await sleep(POLL_MS);
    }
    await sending;
    return performance.now() - start;
  } finally {
    await orthanc.stop();
  }
}

function check(analysed: number): void {
  if (analysed !== N) throw new Error(`the pass analysed ${analysed} of ${N} instances`);
}

async function main(): Promise<void> {
  const rounds = countOption('rounds', 5);
  const cliRounds = countOption('cli-rounds', 3);
  const loaded = loadModel();
  const predictor = await Predictor.create(loaded.model, { source: loaded.path });
  const analysers = { gradcam: await Analyser.create(loaded, { heatmaps: 'gradcam', batchSize: 8 }), none: await Analyser.create(loaded, { heatmaps: 'none', batchSize: 8 }) };
  await predictFiles(predictor, FILES); // warm-up: first runs of the sessions and the codecs' WebAssembly
  const inProcess = { predict: [] as number[], gradcam: [] as { store: number; pass: number }[], none: [] as { store: number; pass: number }[], watching: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    inProcess.predict.push(await timed(() => predictFiles(predictor, FILES)));
    for (const mode of ['gradcam', 'none'] as const) {
      inProcess[mode].push(
        await pacsRound(async (url) => {
          const s = await new PacsProcessor(new DicomWebClient(`${url}/dicom-web`), analysers[mode]).processPending();
          check(s.accepted + s.rejected + s.undecodable);
        }),
      );
    }
    inProcess.watching.push(await watchRound(analysers.none));
    process.stderr.write(`in process ${r + 1}/${rounds}: predict ${round(inProcess.predict.at(-1)!)} ms, gradcam ${JSON.stringify(inProcess.gradcam.at(-1))}, none ${JSON.stringify(inProcess.none.at(-1))}, watching ${round(inProcess.watching.at(-1)!)} ms\n`);
  }
  await predictor.close();
  for (const a of Object.values(analysers)) await a.close();

  const cli = { predict: [] as number[], gradcam: [] as number[], none: [] as number[] };
  for (let r = 0; r < cliRounds; r++) {
    cli.predict.push(await timed(() => cxr(['predict', '--json', ...FILES])));
    for (const mode of ['gradcam', 'none'] as const) {
      const t = await pacsRound(async (url) => {
        const out = await cxr(['pacs', '--url', url, '--once', '--heatmaps', mode]);
        if (!out.includes(`analysed ${N} of ${N}`)) throw new Error(`cxr pacs did not analyse every instance: ${out}`);
      });
      cli[mode].push(t.store + t.pass);
    }
    process.stderr.write(`commands ${r + 1}/${cliRounds}: predict ${round(cli.predict.at(-1)!)} ms, gradcam ${round(cli.gradcam.at(-1)!)} ms, none ${round(cli.none.at(-1)!)} ms\n`);
  }

  const total = (xs: { store: number; pass: number }[]) => median(xs.map((x) => x.store + x.pass));
  const reference = `predictFiles (cxr predict's decode + Predictor) on the same ${N} files from disk, in process, model loaded; ms per instance`;
  const cliReference = `cxr predict --json on the same ${N} files (Node start and model load included); ms per instance`;
  const path = writeResults('pacs', {
    headline: {
      store_to_sr_no_heatmaps: headlineCase(total(inProcess.none) / N, median(inProcess.predict) / N, `${reference}; ours: storescu to Orthanc + one PacsProcessor pass writing SRs only (speedup < 1: the PACS path's cost; the issue's target is >= 0.667)`),
      store_to_sr_watching_no_heatmaps: headlineCase(median(inProcess.watching) / N, median(inProcess.predict) / N, `${reference}; ours: a watching pass (a search every ${POLL_MS} ms) analysing instances as storescu sends them, SRs only: the order of a deployment, where the PACS ingests new images while earlier ones are analysed`),
      store_to_sr_with_heatmaps: headlineCase(total(inProcess.gradcam) / N, median(inProcess.predict) / N, `${reference}; ours: storescu + one pass writing SRs and Grad-CAM heatmap Secondary Captures of every positive finding (work cxr predict does not do)`),
      command_store_to_sr_no_heatmaps: headlineCase(median(cli.none) / N, median(cli.predict) / N, `${cliReference}; ours: storescu + cxr pacs --once --heatmaps none`),
      command_store_to_sr_with_heatmaps: headlineCase(median(cli.gradcam) / N, median(cli.predict) / N, `${cliReference}; ours: storescu + cxr pacs --once (Grad-CAM heatmaps)`),
    },
    setup: {
      instances: N,
      accepted_by_the_checks: 6,
      files: FILES.map((f) => f.slice(DICOM_DIR.length + 1)),
      pacs: 'Debian Orthanc 1.10 with its DICOMweb plugin on loopback, fresh storage each round; storescu: one association for all files, as a modality sends a study (a presentation context per SOP class and transfer syntax; until Dec 2026 one storescu run per transfer syntax, 7 associations for these 10 files)',
      model: 'the embedded default model (MobileNetV2); batch size 16 (predictFiles, cxr predict), 8 (the Analyser in process and cxr pacs, its default: the next batch is retrieved while one is analysed)',
      rounds: { in_process: rounds, commands: cliRounds },
    },
    in_process_ms: {
      predict: inProcess.predict.map((x) => round(x, 1)),
      storescu: { gradcam: inProcess.gradcam.map((x) => round(x.store, 1)), none: inProcess.none.map((x) => round(x.store, 1)) },
      pass: { gradcam: inProcess.gradcam.map((x) => round(x.pass, 1)), none: inProcess.none.map((x) => round(x.pass, 1)) },
      watching: inProcess.watching.map((x) => round(x, 1)),
    },
    command_ms: Object.fromEntries(Object.entries(cli).map(([k, v]) => [k, v.map((x) => round(x, 1))])),
  });
  process.stdout.write(`${path}\n`);
}

await main();
