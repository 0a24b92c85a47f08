/**
 * A finding's heatmap as a Secondary Capture image (PS3.3 A.8.1): the overlay `cxr explain` draws (X-ray in gray,
 * evidence in colour), RGB, in a series of its own in the source's study, naming the source image it was derived
 * from. Any PACS viewer shows it; no viewer needs to understand our SR to see the heatmap.
 */
import type { Heatmap } from './analyse.js';
import { writePart10 } from './part10.js';
import type { SourceInstance } from './source.js';
import { dicomDateTime, type ModelIdentity } from './sr.js';
import { derivedUid } from './uid.js';

export const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
export const SC_SERIES_NUMBER = 9902;
export const SC_SERIES_DESCRIPTION = 'cxr-lens heatmaps (research use only)';

/** The UIDs of a finding's heatmap: fixed by the source, the model file and the finding, as the SR's are. */
export function heatmapUids(source: Pick<SourceInstance, 'study' | 'sop'>, modelSha256: string, finding: string): { series: string; sop: string } {
  return { series: derivedUid('cxr-lens heatmap series', source.study, modelSha256), sop: derivedUid('cxr-lens heatmap', source.sop, modelSha256, finding) };
}

export function buildHeatmapSc(source: SourceInstance, heatmap: Heatmap, model: ModelIdentity, instanceNumber: number, now = new Date()): { file: Uint8Array; series: string; sop: string; sopClass: string } {
  const uids = heatmapUids(source, model.sha256, heatmap.finding);
  const { date, time } = dicomDateTime(now);
  const file = writePart10({
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: SECONDARY_CAPTURE,
    SOPInstanceUID: uids.sop,
    ...source.patientStudy,
    Modality: 'OT',
    SeriesInstanceUID: uids.series,
    SeriesNumber: SC_SERIES_NUMBER,
    SeriesDescription: SC_SERIES_DESCRIPTION,
    // Heatmaps are made only for images the input checks accepted as chest films; a chest is an unpaired body part,
    // so Laterality (type 2C) is absent.
    BodyPartExamined: 'CHEST',
    ConversionType: 'WSD',
    Manufacturer: 'cxr-lens',
    SoftwareVersions: model.version.replace(/^cxr-lens /, ''),
    InstanceNumber: instanceNumber,
    PatientOrientation: '',
    ContentDate: date,
    ContentTime: time,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    TimezoneOffsetFromUTC: '+0000',
    ImageType: ['DERIVED', 'SECONDARY'],
    DerivationDescription: `${heatmap.method} heatmap of ${heatmap.finding} by ${model.name}, model SHA-256 ${model.sha256}; research use only, not for clinical use`.slice(0, 1024),
    SourceImageSequence: [{ ReferencedSOPClassUID: source.sopClass, ReferencedSOPInstanceUID: source.sop }],
    ImageComments: `cxr-lens ${heatmap.finding} (${heatmap.method}). Research use only: not for clinical use.`,
    BurnedInAnnotation: 'NO',
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: heatmap.height,
    Columns: heatmap.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    PixelData: [heatmap.rgb.buffer.slice(heatmap.rgb.byteOffset, heatmap.rgb.byteOffset + heatmap.rgb.byteLength)],
    _vrMap: { PixelData: 'OB' },
  });
  return { file, ...uids, sopClass: SECONDARY_CAPTURE };
}
