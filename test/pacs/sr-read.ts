/** Reading our SR back into plain values (through dcmjs, independently of how sr.ts assembled it), for the tests. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';

const run = promisify(execFile);

type Item = Record<string, any>;

export interface SrFinding {
  probability: number;
  probabilityText: string;
  calibrated: boolean;
  threshold: number | null;
  thresholdRule: string | null;
  decision: 'positive' | 'negative' | null;
  decisionNote: string | null;
  heatmaps: string[];
}

export interface SrValues {
  dataset: Item;
  disclaimer?: string;
  source?: { sopClass: string; sop: string };
  algorithmName?: string;
  algorithmVersion?: string;
  modelSha256?: string;
  verdict?: string;
  flags: string[];
  refused?: string;
  findings: Map<string, SrFinding>;
}

export function readDataset(file: Uint8Array): Item {
  const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(buffer).dict);
}

const meaning = (item: Item): string => item.ConceptNameCodeSequence?.[0]?.CodeMeaning ?? item.ConceptNameCodeSequence?.CodeMeaning;
const seq = (value: unknown): Item[] => (Array.isArray(value) ? value : value ? [value as Item] : []);

export function readSr(file: Uint8Array): SrValues {
  const dataset = readDataset(file);
  const values: SrValues = { dataset, flags: [], findings: new Map() };
  for (const item of seq(dataset.ContentSequence)) {
    const text = item.TextValue as string;
    switch (meaning(item)) {
      case 'Research use only': values.disclaimer = text; break;
      case 'Algorithm Name': values.algorithmName = text; break;
      case 'Algorithm Version': values.algorithmVersion = text; break;
      case 'Model file SHA-256': values.modelSha256 = text; break;
      case 'Input check verdict': values.verdict = text; break;
      case 'Input check flag': values.flags.push(text); break;
      case 'Analysis refused': values.refused = text; break;
      case 'Source of Measurement': {
        const ref = seq(item.ReferencedSOPSequence)[0];
        values.source = { sopClass: ref.ReferencedSOPClassUID, sop: ref.ReferencedSOPInstanceUID };
        break;
      }
      case 'Findings':
        for (const container of seq(item.ContentSequence)) values.findings.set(meaning(container), readFinding(seq(container.ContentSequence)));
        break;
    }
  }
  return values;
}

function readFinding(items: Item[]): SrFinding {
  const f: SrFinding = { probability: NaN, probabilityText: '', calibrated: false, threshold: null, thresholdRule: null, decision: null, decisionNote: null, heatmaps: [] };
  for (const item of items) {
    const measured = seq(item.MeasuredValueSequence)[0];
    const code = seq(item.ConceptCodeSequence)[0]?.CodeMeaning;
    switch (meaning(item)) {
      case 'Probability':
        f.probability = measured.FloatingPointValue;
        f.probabilityText = String(measured.NumericValue);
        break;
      case 'Probability calibrated': f.calibrated = code === 'Yes'; break;
      case 'Decision threshold': f.threshold = measured.FloatingPointValue; break;
      case 'Threshold rule': f.thresholdRule = item.TextValue; break;
      case 'Decision': f.decision = code === 'Positive' ? 'positive' : code === 'Negative' ? 'negative' : (assert.fail(`decision ${code}`) as never); break;
      case 'No decision, because': f.decisionNote = item.TextValue; break;
      case 'Heatmap': f.heatmaps.push(seq(item.ReferencedSOPSequence)[0].ReferencedSOPInstanceUID); break;
    }
  }
  return f;
}

/** dciodvfy's and dsrdump's verdicts on a file (written to a temp folder for them). */
export async function dicom3tools(file: Uint8Array, sr: boolean): Promise<{ errors: string[]; dump: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cxr-dciodvfy-'));
  try {
    const path = join(dir, 'object.dcm');
    writeFileSync(path, file);
    // dsrdump runs strict (no relaxing options): it fails on an SR it cannot read. dciodvfy exits 0 or 1 with findings on stderr; only lines starting "Error" are violations.
    const checked = await run('dciodvfy', [path]).catch((e: { stdout: string; stderr: string }) => e);
    const errors = `${checked.stdout}\n${checked.stderr}`.split('\n').filter((l) => /^Error/.test(l));
    const dump = sr ? (await run('dsrdump', ['+Pl', path])).stdout : '';
    return { errors, dump };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
