/**
 * The PACS loop: find CR/DX instances that have no result of this model yet, retrieve them (WADO-RS), analyse them
 * in batches (analyse.ts: the Predictor and input checks of `cxr predict`), and store the heatmaps and then the SR
 * (STOW-RS). Whether an instance is done is asked of the PACS: its SR has a UID fixed by the instance and the model
 * file (sr.ts), so it is done exactly when the PACS holds an SR with that UID. Nothing is remembered locally: a run
 * killed at any point is resumed by running again, on this machine or another, and an instance killed mid-way is
 * redone whole. Two runs at once waste work but cannot duplicate results: the same UIDs are written, and the PACS
 * keeps one instance per UID. The SR is written last, so an instance with an SR has its heatmaps too.
 * `cxr pacs --redis` finds the same pending instances (pendingInstances) but hands them to the queue's workers,
 * which treat each with processInstance: the same retrieval, analysis and writers, one instance per job.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { join } from 'node:path';
import type { Analyser, Analysis, Decoded } from './analyse.js';
import { type DicomJson, stringValue, TAGS } from './dicom-json.js';
import { DicomWebClient, type InstanceRef, PacsError } from './dicomweb.js';
import { diagnosticReport } from './fhir.js';
import { readHeader } from './part10.js';
import { buildHeatmapSc } from './sc.js';
import { sourceInstance, type SourceInstance } from './source.js';
import { buildResultSr, type HeatmapRef, type ModelIdentity, srUids } from './sr.js';
import { uidTag } from './uid.js';

export const DEFAULT_MODALITIES = ['CR', 'DX'];

export interface ProcessorOptions {
  /** Modalities to analyse; default CR and DX (projection radiographs: a CT slice is not a chest film). */
  modalities?: readonly string[];
  onEvent?: (event: PacsEvent) => void;
  /**
   * Also write each result as a FHIR DiagnosticReport, `<dir>/<SR SOP Instance UID>.json`. Written before the SR is
   * stored (and again if the instance is redone), so a crash cannot leave an SR without its report.
   */
  fhirDir?: string;
}

/** What happened, for a status line. Instances are named by `uidTag` (a hash), never by UID or patient data. */
export type PacsEvent =
  | { type: 'scan'; candidates: number; done: number; pending: number }
  | { type: 'instance'; instance: string; verdict: 'accepted' | 'rejected' | 'undecodable'; positives: number; heatmaps: number }
  | { type: 'skipped'; instance: string; reason: string }
  /** Its result could not be written (left pending: tried again next pass); the reason names no patient data. */
  | { type: 'failed'; instance: string; reason: string };

export interface PassSummary {
  candidates: number;
  alreadyDone: number;
  accepted: number;
  rejected: number;
  undecodable: number;
  /** Instances that could not be retrieved any more (deleted meanwhile). */
  skipped: number;
  /** Instances whose result could not be written: left pending, tried again next pass. */
  failed: number;
  heatmaps: number;
}

/** An instance without this model's result: its reference and what the search said of it. */
export interface PendingInstance {
  ref: InstanceRef;
  searched: DicomJson;
}

/**
 * Of the given search results, those of `modalities` without an SR of the model with this file hash (asked of the
 * PACS at once). Shared by the inline passes and `cxr pacs --redis`, which hands the same instances to the queue.
 */
export async function pendingAmong(client: DicomWebClient, modalities: readonly string[], modelSha256: string, searched: readonly DicomJson[]): Promise<{ pending: PendingInstance[]; candidates: number }> {
  const candidates = searched.filter((d) => modalities.includes(stringValue(d, TAGS.Modality) ?? ''));
  const refs = DicomWebClient.refs(candidates);
  const done = await Promise.all(refs.map(async (ref) => (await client.searchInstances({ SOPInstanceUID: srUids(ref, modelSha256).sop })).length > 0));
  const pending = refs.flatMap((ref, i) => (done[i] ? [] : [{ ref, searched: candidates[i] }]));
  return { pending, candidates: candidates.length };
}

/** Every instance of `modalities` in the PACS without an SR of the model with this file hash, and how many there are in all. */
export async function pendingInstances(client: DicomWebClient, modalities: readonly string[], modelSha256: string): Promise<{ pending: PendingInstance[]; candidates: number }> {
  // The searches are independent: asked at once, one round trip instead of one per modality and one for the SRs.
  const [reportsFound, ...byModality] = await Promise.all([client.searchInstances({ Modality: 'SR' }), ...modalities.map((modality) => client.searchInstances({ Modality: modality }))]);
  const candidates: PendingInstance[] = byModality.flatMap((found) => DicomWebClient.refs(found).map((ref, i) => ({ ref, searched: found[i] })));
  const reports = new Set(reportsFound.map((d) => stringValue(d, TAGS.SOPInstanceUID)));
  return { pending: candidates.filter((c) => !reports.has(srUids({ study: c.ref.study, sop: c.ref.sop }, modelSha256).sop)), candidates: candidates.length };
}

export class PacsProcessor {
  private readonly modalities: readonly string[];

  constructor(
    readonly client: DicomWebClient,
    readonly analyser: Analyser,
    private readonly options: ProcessorOptions = {},
  ) {
    this.modalities = options.modalities ?? DEFAULT_MODALITIES;
    if (this.modalities.length === 0) throw new Error('no modalities to analyse were given');
  }

  /** Of the given search results, those of the chosen modalities without this model's SR (asked of the PACS at once). */
  pendingOf(searched: readonly DicomJson[]): Promise<{ pending: PendingInstance[]; candidates: number }> {
    return pendingAmong(this.client, this.modalities, this.analyser.model.sha256, searched);
  }

  /** Instances of the chosen modalities without this model's SR in the PACS, and how many have one. */
  pending(): Promise<{ pending: PendingInstance[]; candidates: number }> {
    return pendingInstances(this.client, this.modalities, this.analyser.model.sha256);
  }

  /**
   * One pass over everything pending; a PACS failure (down past the retries) ends the pass with a PacsError. An
   * aborted `signal` ends it after the batch in hand (whose results are stored first).
   */
  async processPending(signal?: AbortSignal): Promise<PassSummary> {
    return this.process(await this.pending(), signal);
  }

  /** processPending for the given search results only (new instances a change log named). */
  async processInstances(searched: readonly DicomJson[], signal?: AbortSignal): Promise<PassSummary> {
    return this.process(await this.pendingOf(searched), signal);
  }

  private async process({ pending, candidates }: { pending: PendingInstance[]; candidates: number }, signal?: AbortSignal): Promise<PassSummary> {
    const summary: PassSummary = { candidates, alreadyDone: candidates - pending.length, accepted: 0, rejected: 0, undecodable: 0, skipped: 0, failed: 0, heatmaps: 0 };
    this.options.onEvent?.({ type: 'scan', candidates, done: summary.alreadyDone, pending: pending.length });
    const size = this.analyser.batchSize;
    const fetchBatch = (start: number) => {
      const batch = Promise.all(pending.slice(start, start + size).map((item) => this.retrieve(item)));
      batch.catch(() => undefined); // awaited (and its failure thrown) in its turn; never left unhandled meanwhile
      return batch;
    };
    // The next batch is retrieved and decoded while this one is predicted, and each instance is decoded as soon as
    // it arrives: retrieval waits on the PACS, decoding takes one core, prediction all of them. A batch's results are
    // stored while the next one is analysed (the PACS ingests them meanwhile), one batch in flight at a time.
    let next = pending.length > 0 ? fetchBatch(0) : undefined;
    let storing: Promise<void> = Promise.resolve();
    for (let start = 0; next && !signal?.aborted; start += size) {
      const retrieved = await next;
      next = start + size < pending.length && !signal?.aborted ? fetchBatch(start + size) : undefined;
      const batch = retrieved.filter((b): b is Retrieved => {
        if (b.bytes) return true;
        summary.skipped++;
        this.options.onEvent?.({ type: 'skipped', instance: uidTag(b.item.ref.sop), reason: 'no longer in the PACS' });
        return false;
      });
      const analyses = await this.analyser.analyseDecoded(batch.map((b) => b.decoded));
      await storing;
      storing = this.write(batch, analyses, summary);
      storing.catch(() => undefined); // awaited (and its failure thrown) before the next batch's store or at the end
    }
    await storing;
    return summary;
  }

  /** A batch's SRs and heatmaps, built and stored (storeResults); a failure stores the batch again next pass, under the same UIDs. */
  private async write(batch: Retrieved[], analyses: Analysis[], summary: PassSummary): Promise<void> {
    // Built off the loop's path, so the next batch's prediction (on ONNX Runtime's threads) can start meanwhile.
    await setImmediate();
    // One instance whose result cannot be written must not hold up the others (nor every later pass).
    const written = batch.flatMap(({ item, bytes }, i) => {
      try {
        return [{ item, result: buildResults(sourceInstance(item.ref, item.searched, bytes), analyses[i], this.analyser.model) }];
      } catch (e) {
        summary.failed++;
        this.options.onEvent?.({ type: 'failed', instance: uidTag(item.ref.sop), reason: (e as Error).message });
        return [];
      }
    });
    await storeResults(this.client, written.map((w) => w.result), this.options.fhirDir);
    for (const { item, result } of written) {
      summary[result.verdict]++;
      summary.heatmaps += result.heatmaps.length;
      this.options.onEvent?.({ type: 'instance', instance: uidTag(item.ref.sop), verdict: result.verdict, positives: result.positives, heatmaps: result.heatmaps.length });
    }
  }

  /** The instance's file and its decoding, or none when it has gone since the search (deleted, moved). */
  private async retrieve(item: PendingInstance): Promise<Retrieved | { item: PendingInstance; bytes?: undefined }> {
    const bytes = await this.client.retrieveInstanceIfPresent(item.ref);
    return bytes ? { item, bytes, decoded: await this.analyser.decode(bytes, instanceLabel(item.ref)) } : { item };
  }
}

/** How decoder messages name an instance: by a hash of its UID, never by the UID or anything of the patient's. */
function instanceLabel(ref: InstanceRef): string {
  return `instance ${uidTag(ref.sop)}`;
}

/**
 * One instance from start to end as a pass treats each of its instances: retrieved, analysed, and its heatmaps,
 * FHIR report and SR stored. For the queue's workers, which get instances one job at a time and only their UIDs:
 * what a pass takes from its search is read from the file (or, if its header cannot be read, searched for).
 * Null when the PACS no longer holds the instance; a PACS failure is thrown.
 */
export async function processInstance(client: DicomWebClient, analyser: Analyser, ref: InstanceRef, fhirDir?: string): Promise<{ analysis: Analysis; results: InstanceResults } | null> {
  const bytes = await client.retrieveInstanceIfPresent(ref);
  if (!bytes) return null;
  const [analysis] = await analyser.analyseDecoded([await analyser.decode(bytes, instanceLabel(ref))]);
  const results = buildResults(sourceInstance(ref, await searchedIfUnreadable(client, ref, bytes), bytes), analysis, analyser.model);
  await storeResults(client, [results], fhirDir);
  return { analysis, results };
}

/** The PACS's search answer for an instance whose header dcmjs cannot read (sourceInstance falls back on it); else nothing. */
async function searchedIfUnreadable(client: DicomWebClient, ref: InstanceRef, bytes: Uint8Array): Promise<DicomJson> {
  try {
    readHeader(bytes);
    return {};
  } catch {
    return (await client.searchInstances({ StudyInstanceUID: ref.study, SeriesInstanceUID: ref.series, SOPInstanceUID: ref.sop }))[0] ?? {};
  }
}

/** The heatmap Secondary Captures and the SR of one analysed instance, as Part 10 files, and its FHIR report. */
export function buildResults(source: SourceInstance, analysis: Analysis, model: ModelIdentity, now = new Date()): InstanceResults {
  const heatmaps: (HeatmapRef & { file: Uint8Array })[] = analysis.heatmaps.map((h, i) => ({ finding: h.finding, ...buildHeatmapSc(source, h, model, i + 1, now) }));
  const { file: sr, sop: srSop } = buildResultSr(source, analysis.outcome, model, heatmaps, now);
  const { outcome } = analysis;
  const fhir = () => diagnosticReport(source, outcome, model, srSop, now);
  if (outcome.kind === 'undecodable') return { sr, srSop, fhir, heatmaps: [], verdict: 'undecodable', positives: 0 };
  const positives = outcome.prediction.findings.filter((f) => f.decision === 'positive').length;
  return { sr, srSop, fhir, heatmaps: heatmaps.map((h) => h.file), verdict: outcome.prediction.verdict === 'accepted' ? 'accepted' : 'rejected', positives };
}

/**
 * Instances' results stored: heatmaps first, SRs after, so an SR in the PACS (what "done" means) implies its
 * heatmaps are there too; the FHIR reports between them, so a crash cannot leave an SR without its report. One
 * STOW-RS request each for all of them.
 */
export async function storeResults(client: DicomWebClient, results: readonly InstanceResults[], fhirDir?: string): Promise<void> {
  const heatmaps = results.flatMap((r) => r.heatmaps);
  if (heatmaps.length > 0) await client.store(heatmaps);
  if (fhirDir) for (const r of results) writeReport(fhirDir, r);
  if (results.length > 0) await client.store(results.map((r) => r.sr));
}

interface Retrieved {
  item: PendingInstance;
  bytes: Uint8Array;
  decoded: Decoded;
}

export interface InstanceResults {
  sr: Uint8Array;
  srSop: string;
  fhir: () => Record<string, unknown>;
  heatmaps: Uint8Array[];
  verdict: 'accepted' | 'rejected' | 'undecodable';
  positives: number;
}

/**
 * `<dir>/<SR UID>.json`, written whole or not at all: a reader never sees half a report. A failure names the folder
 * and the error's code, not the file (a worker logs it, and UIDs stay out of logs).
 */
function writeReport(dir: string, results: InstanceResults): void {
  const path = join(dir, `${results.srSop}.json`);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(temporary, `${JSON.stringify(results.fhir(), null, 2)}\n`);
    renameSync(temporary, path);
  } catch (e) {
    throw new Error(`cannot write a FHIR report into ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
