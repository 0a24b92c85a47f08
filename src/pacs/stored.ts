/**
 * Results already in the PACS, read back: our SR of an instance (found by the UID it must have, sr.ts: no search
 * needed) and the heatmap Secondary Captures it references, as PNG. The SR is read through dcmjs by the concepts
 * sr.ts writes; anything else in it is ignored, and an object that is not our SR is a malformed answer.
 */
import dcmjs from 'dcmjs';
import { encodePng } from '../imaging/encode.js';
import { type DicomWebClient, type InstanceRef, PacsError } from './dicomweb.js';
import { heatmapUids, SECONDARY_CAPTURE } from './sc.js';
import type { StoredFinding, StoredResult } from './shapes.js';
import { CODES, COMPREHENSIVE_SR, srUids } from './sr.js';

type Item = Record<string, unknown>;
const items = (value: unknown): Item[] => (Array.isArray(value) ? (value as Item[]) : value ? [value as Item] : []);
const meaning = (item: Item): string | undefined => items(item.ConceptNameCodeSequence)[0]?.CodeMeaning as string | undefined;
const codeMeaning = (item: Item): string | undefined => items(item.ConceptCodeSequence)[0]?.CodeMeaning as string | undefined;
const measured = (item: Item): number => {
  const value = items(item.MeasuredValueSequence)[0];
  const exact = value?.FloatingPointValue;
  return typeof exact === 'number' ? exact : Number(value?.NumericValue);
};

/** Our SR for `source` by the model with this file hash, or null when the PACS holds none (not analysed yet). */
export async function findStoredResult(client: DicomWebClient, source: InstanceRef, modelSha256: string): Promise<StoredResult | null> {
  const uids = srUids(source, modelSha256);
  const file = await client.retrieveInstanceIfPresent({ study: source.study, series: uids.series, sop: uids.sop });
  if (!file) return null;
  try {
    return readStoredResult(file);
  } catch (e) {
    if (e instanceof PacsError) throw e;
    throw new PacsError(`stored result: ${(e as Error).message}`, 'malformed');
  }
}

/** Our SR (a Part 10 file) as plain values; throws when the file is not one. */
export function readStoredResult(file: Uint8Array): StoredResult {
  const dataset = readDataset(file);
  if (dataset.SOPClassUID !== COMPREHENSIVE_SR || meaning(dataset) !== CODES.report.CodeMeaning) throw new Error('the object is not a cxr-lens SR');
  const result: StoredResult = { sop: String(dataset.SOPInstanceUID), created: isoDateTime(dataset.ContentDate, dataset.ContentTime), model: { name: '', version: '', sha256: '' }, verdict: '', flags: [], refused: null, findings: [] };
  for (const item of items(dataset.ContentSequence)) {
    const text = String(item.TextValue ?? '');
    switch (meaning(item)) {
      case CODES.algorithmName.CodeMeaning: result.model.name = text; break;
      case CODES.algorithmVersion.CodeMeaning: result.model.version = text; break;
      case CODES.modelSha256.CodeMeaning: result.model.sha256 = text; break;
      case CODES.verdict.CodeMeaning: result.verdict = text; break;
      case CODES.flag.CodeMeaning: result.flags.push(text); break;
      case CODES.refused.CodeMeaning: result.refused = text; break;
      case CODES.findings.CodeMeaning:
        for (const finding of items(item.ContentSequence)) result.findings.push(readFinding(meaning(finding) ?? '', items(finding.ContentSequence)));
        break;
    }
  }
  if (!result.verdict || !result.model.sha256) throw new Error('the SR has no verdict or no model hash');
  return result;
}

function readFinding(name: string, content: Item[]): StoredFinding {
  const f: StoredFinding = { name, probability: NaN, calibrated: false, threshold: null, thresholdRule: null, decision: null, decisionNote: null, heatmap: false };
  for (const item of content) {
    switch (meaning(item)) {
      case CODES.probability.CodeMeaning: f.probability = measured(item); break;
      case CODES.calibrated.CodeMeaning: f.calibrated = codeMeaning(item) === CODES.yes.CodeMeaning; break;
      case CODES.threshold.CodeMeaning: f.threshold = measured(item); break;
      case CODES.rule.CodeMeaning: f.thresholdRule = String(item.TextValue); break;
      case CODES.decision.CodeMeaning: f.decision = codeMeaning(item) === CODES.positive.CodeMeaning ? 'positive' : 'negative'; break;
      case CODES.decisionNote.CodeMeaning: f.decisionNote = String(item.TextValue); break;
      case CODES.heatmap.CodeMeaning: f.heatmap = true; break;
    }
  }
  if (!Number.isFinite(f.probability)) throw new Error(`the SR's finding ${name.slice(0, 40)} has no probability`);
  return f;
}

/**
 * The heatmap Secondary Capture of a finding of `source` by this model, as a PNG, or null when the PACS holds none.
 * It is ours (written by sc.ts: 8-bit RGB, uncompressed), so its pixels are read as they were written.
 */
export async function findStoredHeatmap(client: DicomWebClient, source: InstanceRef, modelSha256: string, finding: string): Promise<Uint8Array | null> {
  const uids = heatmapUids(source, modelSha256, finding);
  const file = await client.retrieveInstanceIfPresent({ study: source.study, series: uids.series, sop: uids.sop });
  if (!file) return null;
  const dataset = readDataset(file);
  const { Rows: rows, Columns: columns } = dataset as { Rows?: number; Columns?: number };
  const pixels = items(dataset.PixelData)[0] as unknown as ArrayBuffer | undefined;
  const fits = dataset.SOPClassUID === SECONDARY_CAPTURE && dataset.SamplesPerPixel === 3 && dataset.BitsAllocated === 8 && rows && columns && pixels instanceof ArrayBuffer && pixels.byteLength >= rows * columns * 3;
  if (!fits) throw new PacsError('stored heatmap: the object is not an 8-bit RGB Secondary Capture', 'malformed');
  return encodePng(new Uint8Array(pixels, 0, rows * columns * 3), columns, rows, 3);
}

function readDataset(file: Uint8Array): Item {
  const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  try {
    return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(buffer).dict) as Item;
  } catch {
    // dcmjs's messages may quote values: say only that it could not be read.
    throw new PacsError('stored result: the PACS sent an object dcmjs cannot read', 'malformed');
  }
}

/** DICOM DA + TM (UTC, as sr.ts writes them) as ISO 8601. */
function isoDateTime(date: unknown, time: unknown): string {
  const d = String(date ?? '');
  const t = String(time ?? '').padEnd(6, '0');
  return /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}Z` : '';
}
