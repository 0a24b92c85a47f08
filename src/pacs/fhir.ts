/**
 * An instance's result as a FHIR R4 DiagnosticReport (JSON), beside the SR for systems that speak FHIR rather than
 * DICOM: one contained Observation per finding (probability, POS/NEG interpretation at the model's threshold, or
 * why there is no decision), the input checks' verdict and flags, the model, and the research-use disclaimer. The
 * patient is not named (no `subject`): the report points at its study, image and SR by DICOM UID, and whoever
 * reads it resolves the patient from the PACS. Pure.
 */
import type { Outcome, ModelIdentity } from './sr.js';
import { DISCLAIMER } from './sr.js';
import type { SourceInstance } from './source.js';

const UID = 'urn:dicom:uid';
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

const dicomUid = (uid: string) => ({ system: UID, value: `urn:oid:${uid}` });

export function diagnosticReport(source: Pick<SourceInstance, 'study' | 'series' | 'sop'>, outcome: Outcome, model: ModelIdentity, srSop: string, issued = new Date()): Record<string, unknown> {
  const findings = outcome.kind === 'prediction' ? outcome.prediction.findings : [];
  const observations = findings.map((f, i) => ({
    resourceType: 'Observation',
    id: `finding-${i + 1}`,
    status: 'preliminary',
    code: { coding: [{ system: 'urn:cxr-lens:finding', code: f.name }], text: f.name },
    valueQuantity: { value: f.probability, unit: 'probability', system: 'http://unitsofmeasure.org', code: '1' },
    ...(f.decision ? { interpretation: [{ coding: [{ system: INTERPRETATION, code: f.decision === 'positive' ? 'POS' : 'NEG', display: f.decision === 'positive' ? 'Positive' : 'Negative' }] }] } : {}),
    note: [
      {
        text:
          f.threshold !== null
            ? `${f.decision} at threshold ${f.threshold} (${f.thresholdRule}); probability ${f.calibrated ? 'calibrated' : 'uncalibrated (plain sigmoid)'}`
            : `no decision: ${f.decisionNote}; probability ${f.calibrated ? 'calibrated' : 'uncalibrated (plain sigmoid)'}`,
      },
    ],
    derivedFrom: [{ identifier: dicomUid(source.sop), display: 'source image (SOP Instance UID)' }],
  }));
  const verdict = outcome.kind === 'undecodable' ? 'undecodable' : outcome.prediction.verdict;
  const reasons = outcome.kind === 'undecodable' ? [`the image could not be decoded: ${outcome.reason}`] : outcome.prediction.inputFlags.map((f) => `${f.severity} ${f.code}: ${f.message}`);
  const positives = findings.filter((f) => f.decision === 'positive').map((f) => f.name);
  const conclusion =
    verdict === 'accepted'
      ? `${positives.length ? `Positive at the model's thresholds: ${positives.join(', ')}.` : 'No finding positive at the model\'s thresholds.'}`
      : `No findings: ${verdict === 'rejected' ? 'the input checks refused this image' : 'the image could not be decoded'}.`;
  return {
    resourceType: 'DiagnosticReport',
    meta: { tag: [{ system: 'urn:cxr-lens', code: 'research-use-only', display: DISCLAIMER }] },
    identifier: [{ ...dicomUid(srSop), type: { text: 'SOP Instance UID of the DICOM SR holding the same result' } }],
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging report' }] },
    issued: issued.toISOString(),
    performer: [{ display: `${model.name}, ${model.version}, model SHA-256 ${model.sha256}` }],
    imagingStudy: [{ type: 'ImagingStudy', identifier: dicomUid(source.study) }],
    contained: observations,
    result: observations.map((o) => ({ reference: `#${o.id}` })),
    conclusion: `${DISCLAIMER} Input checks: ${verdict}${reasons.length ? ` (${reasons.join('; ')})` : ''}. ${conclusion}`,
  };
}
