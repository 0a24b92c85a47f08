/** Reading the descriptive DICOM attributes into ImageMetadata. Pure (works on a dicom-parser DataSet). */
import type { DataSet } from 'dicom-parser';
import type { ImageMetadata } from '../image.js';

export function readMetadata(ds: DataSet, notes: string[]): ImageMetadata {
  const meta: ImageMetadata = {};
  const text = (tag: string): string | undefined => {
    const v = ds.string(tag)?.trim();
    return v ? v : undefined;
  };
  const upper = (tag: string) => text(tag)?.toUpperCase();

  meta.viewPosition = upper('x00185101');
  const age = text('x00101010');
  if (age !== undefined) {
    meta.patientAge = parseAgeString(age);
    if (meta.patientAge === undefined && /^\d{1,3}$/.test(age)) {
      // Seen in real exports (e.g. SIIM's '62'): a bare number with no unit; years is the only plausible reading.
      meta.patientAge = Number(age);
      notes.push(`Patient Age '${age}' has no unit; read as years`);
    } else if (meta.patientAge === undefined) {
      notes.push(`Patient Age '${age}' is not a DICOM age string (nnnD/W/M/Y); ignored`);
    }
  }
  const sex = upper('x00100040');
  if (sex === 'M' || sex === 'F' || sex === 'O') meta.patientSex = sex;

  const spacing = readSpacing(ds, 'x00280030');
  const imagerSpacing = readSpacing(ds, 'x00181164');
  if (spacing) {
    meta.pixelSpacing = spacing;
    meta.pixelSpacingSource = 'PixelSpacing';
  } else if (imagerSpacing) {
    meta.pixelSpacing = imagerSpacing;
    meta.pixelSpacingSource = 'ImagerPixelSpacing';
  }
  meta.photometric = upper('x00280004');
  meta.modality = upper('x00080060');
  meta.bodyPart = upper('x00180015');
  meta.imageLaterality = upper('x00200062');
  meta.seriesDescription = text('x0008103e');
  meta.sopClassUid = text('x00080016');
  meta.studyInstanceUid = text('x0020000d');
  meta.seriesInstanceUid = text('x0020000e');
  meta.sopInstanceUid = text('x00080018');
  meta.transferSyntaxUid = text('x00020010');
  meta.presentationIntent = upper('x00080068');
  meta.presentationLutShape = upper('x20500020');
  for (const key of Object.keys(meta) as (keyof ImageMetadata)[]) if (meta[key] === undefined) delete meta[key];
  return meta;
}

const AGE_UNIT_YEARS: Record<string, number> = { D: 1 / 365.25, W: 7 / 365.25, M: 1 / 12, Y: 1 };

/** DICOM AS value ('058Y', '006M', '010W', '003D') in years; undefined when malformed. */
export function parseAgeString(value: string): number | undefined {
  const m = /^(\d{3})([DWMY])$/.exec(value.trim().toUpperCase());
  if (!m) return undefined;
  return Number(m[1]) * AGE_UNIT_YEARS[m[2]];
}

/** A positive [row, column] spacing in mm, or undefined (absent, zero as in some CR files, or malformed). */
function readSpacing(ds: DataSet, tag: string): [number, number] | undefined {
  if (!ds.elements[tag]) return undefined;
  const row = ds.floatString(tag, 0);
  const col = ds.floatString(tag, 1) ?? row;
  if (row === undefined || col === undefined || !(row > 0) || !(col > 0)) return undefined;
  return [row, col];
}
