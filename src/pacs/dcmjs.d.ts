/** The few parts of dcmjs (no published types) that pacs/ uses: reading, naturalising and writing Part 10 files. */
declare module 'dcmjs' {
  /** A dataset with keyword properties (PatientID, ContentSequence, ...), as dcmjs naturalises them. */
  export type NaturalDataset = Record<string, unknown>;
  interface DicomDict {
    meta: Record<string, unknown>;
    dict: Record<string, unknown>;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  interface DicomDictConstructor {
    new (meta: Record<string, unknown>): DicomDict;
  }
  const dcmjs: {
    log: { setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'): void };
    data: {
      DicomDict: DicomDictConstructor;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { untilTag?: string; includeUntilTagValue?: boolean; ignoreErrors?: boolean }): DicomDict;
      };
      DicomMetaDictionary: {
        naturalizeDataset(dict: Record<string, unknown>): NaturalDataset;
        denaturalizeDataset(dataset: NaturalDataset): Record<string, unknown>;
      };
    };
  };
  export default dcmjs;
}
