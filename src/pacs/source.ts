/**
 * What a result copies from its source instance: the Patient and General Study attributes (so the PACS files it in
 * the same study of the same patient) and the UIDs it references. Read from the retrieved file; an instance dcmjs
 * cannot read falls back on what the PACS said about it in the search (fewer attributes, the same UIDs).
 */
import dcmjs, { type NaturalDataset } from 'dcmjs';
import type { DicomJson } from './dicom-json.js';
import type { InstanceRef } from './dicomweb.js';
import { readHeader } from './part10.js';

/**
 * Patient and General Study module attributes of type 2, copied where valid for their VR and empty otherwise (real
 * files carry hashed birth dates and over-long IDs from anonymisers: a wrong value copied is worse than none).
 */
const PATIENT_STUDY: Record<string, (value: unknown) => boolean> = {
  PatientName: personName,
  PatientID: (v) => typeof v === 'string' && v.length <= 64,
  PatientBirthDate: (v) => typeof v === 'string' && /^\d{8}$/.test(v),
  PatientSex: (v) => v === 'M' || v === 'F' || v === 'O',
  StudyDate: (v) => typeof v === 'string' && /^\d{8}$/.test(v),
  StudyTime: (v) => typeof v === 'string' && /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(v),
  ReferringPhysicianName: personName,
  StudyID: (v) => typeof v === 'string' && v.length <= 16,
  AccessionNumber: (v) => typeof v === 'string' && v.length <= 16,
};

/** One PN value whose component groups (alphabetic, ideographic, phonetic) are each at most 64 characters. */
function personName(value: unknown): boolean {
  const single = Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
  const groups = typeof single === 'string' ? single.split('=') : single && typeof single === 'object' ? Object.values(single) : undefined;
  return groups !== undefined && groups.every((g) => typeof g === 'string' && g.length <= 64);
}

export interface SourceInstance {
  study: string;
  series: string;
  sop: string;
  sopClass: string;
  /** Patient and study attributes to copy into a derived object (type 2 ones present, possibly empty), by keyword. */
  patientStudy: Record<string, unknown>;
}

/** The source of a result, from the retrieved file's header when readable, else from its search result. */
export function sourceInstance(ref: InstanceRef, searched: DicomJson, file?: Uint8Array): SourceInstance {
  let header: NaturalDataset | undefined;
  if (file) {
    try {
      header = readHeader(file);
    } catch {
      // An unreadable header still gets its result, from the search's attributes.
    }
  }
  header ??= dcmjs.data.DicomMetaDictionary.naturalizeDataset(searched as Record<string, unknown>);
  const patientStudy: Record<string, unknown> = {};
  for (const [key, valid] of Object.entries(PATIENT_STUDY)) patientStudy[key] = valid(header[key]) ? header[key] : '';
  // The UIDs are the PACS's, whatever the header says: results must land where the PACS filed the source.
  patientStudy.StudyInstanceUID = ref.study;
  const sopClass = ref.sopClass ?? (typeof header.SOPClassUID === 'string' ? header.SOPClassUID : undefined);
  if (!sopClass) throw new Error('the instance has no SOP Class UID (neither in the search result nor in its header)');
  return { study: ref.study, series: ref.series, sop: ref.sop, sopClass, patientStudy };
}
