/** Writing a naturalised dataset as a DICOM Part 10 file (explicit VR little endian) with dcmjs. */
import dcmjs, { type NaturalDataset } from 'dcmjs';
import { VERSION } from '../version.js';
import { IMPLEMENTATION_CLASS_UID } from './uid.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;
// dcmjs logs attribute values it finds odd (a birth date it truncates, say) to the console: patient data must not
// reach a log, and every problem that matters reaches the caller as an error anyway.
dcmjs.log.setLevel('silent');
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/**
 * The dataset as a Part 10 file. dcmjs's errors quote the offending value, which may be a patient's: they are
 * passed on naming the VR only.
 */
export function writePart10(dataset: NaturalDataset & { SOPClassUID: string; SOPInstanceUID: string }): Uint8Array {
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: `CXRLENS_${VERSION}`.slice(0, 16),
  });
  const file = new DicomDict(meta);
  try {
    file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    return new Uint8Array(file.write());
  } catch (e) {
    const vr = /\bvr:? ?([A-Z]{2})\b/i.exec((e as Error).message)?.[1];
    throw new Error(`cannot write the DICOM object: a value is not valid for its VR${vr ? ` (${vr.toUpperCase()})` : ''}`);
  }
}

/** The attributes before the pixel data of a Part 10 file, naturalised; throws when dcmjs cannot read it. */
export function readHeader(bytes: Uint8Array): NaturalDataset {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const file = dcmjs.data.DicomMessage.readFile(buffer, { untilTag: '7FE00010', includeUntilTagValue: false });
  return DicomMetaDictionary.naturalizeDataset(file.dict);
}
