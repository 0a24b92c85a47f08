/** PACS connection: a DICOMweb client, DICOM SR and Secondary Capture writers, and the loop that ties them to analyses. */
export { Analyser, modelIdentity, type Analysis, type AnalyserOptions, type Heatmap } from './analyse.js';
export { DicomWebClient, PacsError, type DicomWebOptions, type InstanceRef, type PacsErrorKind, type RetryEvent, type StoreResult } from './dicomweb.js';
export { diagnosticReport } from './fhir.js';
export { DEFAULT_MODALITIES, PacsProcessor, buildResults, pendingAmong, pendingInstances, processInstance, storeResults, type InstanceResults, type PacsEvent, type PassSummary, type PendingInstance, type ProcessorOptions } from './processor.js';
export { buildHeatmapSc, heatmapUids, SECONDARY_CAPTURE } from './sc.js';
export type { PacsInstance, PacsStudy, StoredFinding, StoredResult } from './shapes.js';
export { findStoredHeatmap, findStoredResult, readStoredResult } from './stored.js';
export { sourceInstance, type SourceInstance } from './source.js';
export { buildResultSr, COMPREHENSIVE_SR, DISCLAIMER, modelFileSha256, srUids, type HeatmapRef, type ModelIdentity, type Outcome } from './sr.js';
export { derivedUid, uidTag } from './uid.js';
