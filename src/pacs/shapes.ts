/**
 * The shapes of what the server's PACS routes answer (studies found, a stored result read back), types only: the
 * viewer imports them too, without any of the DICOM code behind them.
 */
import type { Finding } from '../outputs/findings.js';

export interface PacsInstance {
  study: string;
  series: string;
  sop: string;
  modality: string;
  seriesDescription: string;
  instanceNumber: number | null;
  /** Our SR of this instance (by this model) is in the PACS. */
  stored: boolean;
}

export interface PacsStudy {
  studyInstanceUid: string;
  studyDate: string;
  studyDescription: string;
  patientId: string;
  accessionNumber: string;
  modalities: string[];
  /** Its CR and DX instances. */
  instances: PacsInstance[];
}

/** A finding as our SR holds it: what `cxr predict` gives, less the logit and the threshold's interval. */
export type StoredFinding = Omit<Finding, 'logit' | 'thresholdInterval'> & {
  /** Whether the SR references a heatmap Secondary Capture of this finding. */
  heatmap: boolean;
};

export interface StoredResult {
  /** SOP Instance UID of the SR. */
  sop: string;
  /** When the result was written (the SR's content date and time, UTC), ISO 8601. */
  created: string;
  model: { name: string; version: string; sha256: string };
  /** accepted, rejected (by the input checks) or undecodable. */
  verdict: string;
  /** The input checks' flags as written: "severity code: message". */
  flags: string[];
  /** Why there are no findings (refused or undecodable), or null. */
  refused: string | null;
  findings: StoredFinding[];
}
