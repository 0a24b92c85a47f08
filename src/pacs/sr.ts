/**
 * The DICOM Structured Report of one analysed instance (Comprehensive SR, PS3.3 A.35.3), in a series of its own in
 * the source's study, referencing the source image by Study, Series and SOP Instance UID. It holds what `cxr
 * predict --json` gives for the same file, taken from the same Prediction object: per finding the probability
 * (NUM, exact double in Floating Point Value, DS rounded to fit), whether it is calibrated, the threshold, its rule
 * and the decision (SNOMED CT positive/negative) or why there is none; the input checks' verdict and flags; the
 * model's name, version and file hash; the heatmaps written for positive findings; and the research-use
 * disclaimer. An instance that was refused (input checks) or could not be decoded gets an SR saying so and why.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NaturalDataset } from 'dcmjs';
import type { Prediction } from '../inference/predictor.js';
import { VERSION } from '../version.js';
import { writePart10 } from './part10.js';
import type { SourceInstance } from './source.js';
import { derivedUid } from './uid.js';

export const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
export const SR_SERIES_NUMBER = 9901;
export const SR_SERIES_DESCRIPTION = 'cxr-lens findings (research use only)';
export const DISCLAIMER = 'Research use only: not for clinical use. Computed by cxr-lens without review by a clinician; not a diagnosis.';

/** Private codes (PS3.16 8.2: a "99" coding scheme designator is local) for what no standard code names. */
export const SCHEME = '99CXRLENS';

export interface ModelIdentity {
  /** e.g. "default.onnx (mobilenet_v2)". */
  name: string;
  /** The cxr-lens version that ran it. */
  version: string;
  /** SHA-256 of the model file, hex. */
  sha256: string;
  /** Where the weights came from, in words. */
  weights: string;
}

/** The SHA-256 of a model file, hex: part of every result UID, so each model file has results of its own. */
export function modelFileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** What happened to an instance: a prediction (accepted or refused by the input checks), or no image to predict. */
export type Outcome = { kind: 'prediction'; prediction: Prediction } | { kind: 'undecodable'; reason: string };

/** A heatmap Secondary Capture already written for a finding. */
export interface HeatmapRef {
  finding: string;
  series: string;
  sop: string;
  sopClass: string;
}

/** The UIDs of an instance's SR for a model: fixed by the source and the model file, so a rerun writes the same. */
export function srUids(source: Pick<SourceInstance, 'study' | 'sop'>, modelSha256: string): { series: string; sop: string } {
  return { series: derivedUid('cxr-lens sr series', source.study, modelSha256), sop: derivedUid('cxr-lens sr', source.sop, modelSha256) };
}

type Code = { CodeValue: string; CodingSchemeDesignator: string; CodeMeaning: string };
const code = (CodeValue: string, CodingSchemeDesignator: string, CodeMeaning: string): Code => ({ CodeValue, CodingSchemeDesignator, CodeMeaning });

export const CODES = {
  report: code('18748-4', 'LN', 'Diagnostic imaging report'),
  source: code('121112', 'DCM', 'Source of Measurement'),
  algorithmName: code('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: code('111003', 'DCM', 'Algorithm Version'),
  modelSha256: code('MODEL-SHA256', SCHEME, 'Model file SHA-256'),
  modelWeights: code('MODEL-WEIGHTS', SCHEME, 'Model weights'),
  disclaimer: code('DISCLAIMER', SCHEME, 'Research use only'),
  verdict: code('VERDICT', SCHEME, 'Input check verdict'),
  flag: code('FLAG', SCHEME, 'Input check flag'),
  refused: code('REFUSED', SCHEME, 'Analysis refused'),
  findings: code('FINDINGS', SCHEME, 'Findings'),
  probability: code('PROBABILITY', SCHEME, 'Probability'),
  calibrated: code('CALIBRATED', SCHEME, 'Probability calibrated'),
  threshold: code('THRESHOLD', SCHEME, 'Decision threshold'),
  rule: code('THRESHOLD-RULE', SCHEME, 'Threshold rule'),
  decision: code('DECISION', SCHEME, 'Decision'),
  decisionNote: code('DECISION-NOTE', SCHEME, 'No decision, because'),
  heatmap: code('HEATMAP', SCHEME, 'Heatmap'),
  positive: code('10828004', 'SCT', 'Positive'),
  negative: code('260385009', 'SCT', 'Negative'),
  unitless: code('1', 'UCUM', 'no units'),
  yes: code('373066001', 'SCT', 'Yes'),
  no: code('373067005', 'SCT', 'No'),
};

/** A finding's concept: its model label (Code Value is SH, at most 16 characters; the meaning keeps the full name). */
export function findingCode(name: string): Code {
  return code(name.slice(0, 16), SCHEME, name);
}

/** A DS value (at most 16 characters) as close to `value` as fits; the exact double goes in Floating Point Value. */
export function decimalString(value: number): string {
  for (let digits = 15; digits >= 1; digits--) {
    const text = String(Number(value.toPrecision(digits)));
    if (text.length <= 16) return text;
  }
  throw new Error(`cannot write ${value} as a DICOM DS`);
}

const text = (concept: Code, value: string, relationship = 'CONTAINS'): NaturalDataset => ({ RelationshipType: relationship, ValueType: 'TEXT', ConceptNameCodeSequence: [concept], TextValue: value });
const coded = (concept: Code, value: Code): NaturalDataset => ({ RelationshipType: 'CONTAINS', ValueType: 'CODE', ConceptNameCodeSequence: [concept], ConceptCodeSequence: [value] });
const num = (concept: Code, value: number): NaturalDataset => ({
  RelationshipType: 'CONTAINS',
  ValueType: 'NUM',
  ConceptNameCodeSequence: [concept],
  MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [CODES.unitless], NumericValue: decimalString(value), FloatingPointValue: value }],
});
const image = (concept: Code, sopClass: string, sop: string): NaturalDataset => ({
  RelationshipType: 'CONTAINS',
  ValueType: 'IMAGE',
  ConceptNameCodeSequence: [concept],
  ReferencedSOPSequence: [{ ReferencedSOPClassUID: sopClass, ReferencedSOPInstanceUID: sop }],
});
const container = (concept: Code, children: NaturalDataset[]): NaturalDataset => ({
  RelationshipType: 'CONTAINS',
  ValueType: 'CONTAINER',
  ConceptNameCodeSequence: [concept],
  ContinuityOfContent: 'SEPARATE',
  ContentSequence: children,
});

/** The SR of one instance as a Part 10 file, and its UIDs. */
export function buildResultSr(source: SourceInstance, outcome: Outcome, model: ModelIdentity, heatmaps: readonly HeatmapRef[] = [], now = new Date()): { file: Uint8Array; series: string; sop: string } {
  const uids = srUids(source, model.sha256);
  const content: NaturalDataset[] = [
    text(CODES.disclaimer, DISCLAIMER),
    image(CODES.source, source.sopClass, source.sop),
    text(CODES.algorithmName, model.name),
    text(CODES.algorithmVersion, model.version),
    text(CODES.modelSha256, model.sha256),
    text(CODES.modelWeights, model.weights),
  ];
  if (outcome.kind === 'undecodable') {
    content.push(text(CODES.verdict, 'undecodable'), text(CODES.refused, `The image could not be decoded: ${outcome.reason}`));
  } else {
    const { prediction } = outcome;
    content.push(text(CODES.verdict, prediction.verdict));
    for (const flag of prediction.inputFlags) content.push(text(CODES.flag, `${flag.severity} ${flag.code}: ${flag.message}`));
    if (prediction.verdict === 'rejected') {
      const reasons = prediction.inputFlags.filter((f) => f.severity === 'reject').map((f) => f.message);
      content.push(text(CODES.refused, `The input checks refused this image: ${reasons.join('; ')}`));
    }
    if (prediction.findings.length > 0) {
      content.push(
        container(
          CODES.findings,
          prediction.findings.map((f) => {
            const items = [num(CODES.probability, f.probability), coded(CODES.calibrated, f.calibrated ? CODES.yes : CODES.no)];
            if (f.threshold !== null) items.push(num(CODES.threshold, f.threshold));
            if (f.thresholdRule !== null) items.push(text(CODES.rule, f.thresholdRule));
            if (f.decision !== null) items.push(coded(CODES.decision, f.decision === 'positive' ? CODES.positive : CODES.negative));
            if (f.decisionNote !== null) items.push(text(CODES.decisionNote, f.decisionNote));
            for (const h of heatmaps.filter((h) => h.finding === f.name)) items.push(image(CODES.heatmap, h.sopClass, h.sop));
            return container(findingCode(f.name), items);
          }),
        ),
      );
    }
  }
  // Every instance the content references, by study and series (PS3.3 C.17.2.3).
  const series = new Map<string, { ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string }[]>([[source.series, [{ ReferencedSOPClassUID: source.sopClass, ReferencedSOPInstanceUID: source.sop }]]]);
  for (const h of heatmaps) series.set(h.series, [...(series.get(h.series) ?? []), { ReferencedSOPClassUID: h.sopClass, ReferencedSOPInstanceUID: h.sop }]);
  const { date, time } = dicomDateTime(now);
  const dataset = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: COMPREHENSIVE_SR,
    SOPInstanceUID: uids.sop,
    ...source.patientStudy,
    Modality: 'SR',
    SeriesInstanceUID: uids.series,
    SeriesNumber: SR_SERIES_NUMBER,
    SeriesDescription: SR_SERIES_DESCRIPTION,
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: 'cxr-lens',
    SoftwareVersions: VERSION,
    InstanceNumber: 1,
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ContentDate: date,
    ContentTime: time,
    TimezoneOffsetFromUTC: '+0000',
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: source.study,
        ReferencedSeriesSequence: [...series].map(([SeriesInstanceUID, ReferencedSOPSequence]) => ({ SeriesInstanceUID, ReferencedSOPSequence })),
      },
    ],
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [CODES.report],
    ContinuityOfContent: 'SEPARATE',
    ContentSequence: content,
  };
  return { file: writePart10(dataset), ...uids };
}

/** DICOM DA and TM of a moment, in UTC (the Timezone Offset From UTC says so). */
export function dicomDateTime(now: Date): { date: string; time: string } {
  const iso = now.toISOString();
  return { date: iso.slice(0, 10).replaceAll('-', ''), time: iso.slice(11, 19).replaceAll(':', '') };
}
