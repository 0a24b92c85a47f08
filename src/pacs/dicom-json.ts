/** Reading DICOM JSON (PS3.18 F.2), the shape QIDO-RS and STOW-RS answer in. Pure. */

/** One dataset in DICOM JSON: tag (8 upper-case hex digits) -> { vr, Value }. */
export type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

/** Tags pacs/ reads, by keyword. */
export const TAGS = {
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  Modality: '00080060',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
} as const;

/** The first value of `tag` as a string, or undefined when absent or empty. */
export function stringValue(dataset: DicomJson, tag: string): string | undefined {
  const value = dataset[tag]?.Value?.[0];
  return value === undefined || value === null ? undefined : String(value);
}

/** Checks that an answer is an array of datasets (objects), naming what it was otherwise. */
export function asDatasets(value: unknown, what: string): DicomJson[] {
  if (!Array.isArray(value)) throw new Error(`${what}: expected a JSON array of datasets, got ${value === null ? 'null' : typeof value}`);
  value.forEach((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new Error(`${what}: item ${i} is not a DICOM JSON dataset`);
  });
  return value as DicomJson[];
}

/** The sequence items of `tag` (datasets), or an empty list. */
export function sequenceItems(dataset: DicomJson, tag: string): DicomJson[] {
  const items = dataset[tag]?.Value ?? [];
  return items.filter((item): item is DicomJson => typeof item === 'object' && item !== null);
}
