/**
 * The viewer's way into a PACS (`cxr serve --pacs URL`), over DICOMweb:
 *   GET  /api/v1/pacs/status    whether a PACS is configured (the viewer shows its panel only then)
 *   POST /api/v1/pacs/search    studies by patient ID, accession number and/or study date (QIDO-RS), each with its
 *                               CR/DX instances and whether our SR of them is in the PACS
 *   POST /api/v1/pacs/instance  one instance as DICOM (WADO-RS), for the viewer to display
 *   POST /api/v1/pacs/analyze   one instance retrieved (WADO-RS) and analysed by the workers exactly as an upload
 *   POST /api/v1/pacs/result    our SR of an instance, read back (findings as `cxr pacs` stored them), or null
 *   POST /api/v1/pacs/heatmap   a heatmap Secondary Capture of a finding of that instance, as PNG
 * Patient IDs, accession numbers and UIDs travel in JSON bodies, never in URLs, so no request log line carries
 * them; logs name an instance by uidTag only. The PACS gets a short deadline and one retry: a person is waiting,
 * so a PACS that is down answers 502 and one that is slow 504 within seconds, not after `cxr pacs`'s patient
 * back-off.
 */
import type { FastifyInstance } from 'fastify';
import { type DicomJson, stringValue, TAGS } from '../../pacs/dicom-json.js';
import { DicomWebClient, type InstanceRef, PacsError } from '../../pacs/dicomweb.js';
import { DEFAULT_MODALITIES } from '../../pacs/processor.js';
import { modelFileSha256, srUids } from '../../pacs/sr.js';
import type { PacsInstance, PacsStudy } from '../../pacs/shapes.js';
import { findStoredHeatmap, findStoredResult } from '../../pacs/stored.js';
import { uidTag } from '../../pacs/uid.js';
import type { AdmissionGate } from '../admission.js';
import { HttpError } from '../errors.js';
import type { ModelCard } from '../model-card.js';
import type { AnalysisDispatcher } from '../dispatch.js';
import { QueueFullError } from '../pool.js';
import { analyzeResponse, asHttpError, parseOptions, watchClient } from './analyze.js';

export interface PacsRoutesOptions {
  /** The DICOMweb root (e.g. http://127.0.0.1:8042/dicom-web); without it only the status route answers. */
  dicomweb?: string;
  /** Deadline of one request to the PACS, ms. */
  timeoutMs: number;
  pool: AnalysisDispatcher;
  admission: AdmissionGate;
  card: ModelCard;
  /** The model file: our results' UIDs derive from its SHA-256 (sr.ts). */
  modelPath: string;
  analysisTimeoutMs: number;
}

/** Studies answered per search: a person reads the first ones and narrows the search. */
export const STUDY_LIMIT = 25;
const ADDITIONAL = 'StudyDate,StudyDescription,AccessionNumber,PatientID,ModalitiesInStudy';
const INSTANCE_FIELDS = 'Modality,SeriesDescription,SeriesNumber,InstanceNumber';
/** The name the worker sees (never anything from the PACS), as for uploads. */
const WORKER_NAME = 'upload';

const uid = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$', maxLength: 64 } as const;
export const INSTANCE_BODY = {
  type: 'object',
  required: ['study', 'series', 'sop'],
  additionalProperties: false,
  properties: { study: uid, series: uid, sop: uid },
} as const;
export const SEARCH_BODY = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    patientId: { type: 'string', minLength: 1, maxLength: 64 },
    accession: { type: 'string', minLength: 1, maxLength: 16 },
    date: { type: 'string', pattern: '^[0-9]{8}(-[0-9]{8})?$', description: 'YYYYMMDD or a range YYYYMMDD-YYYYMMDD' },
  },
} as const;
export const ANALYZE_BODY = {
  type: 'object',
  required: ['study', 'series', 'sop'],
  additionalProperties: false,
  properties: {
    ...INSTANCE_BODY.properties,
    findings: { type: 'string', maxLength: 4096 },
    methods: { type: 'string', maxLength: 4096 },
    heatmap: { type: 'string', maxLength: 16 },
    colormap: { type: 'string', maxLength: 16 },
    showRejected: { type: 'boolean' },
  },
} as const;
export const HEATMAP_BODY = {
  type: 'object',
  required: ['study', 'series', 'sop', 'finding'],
  additionalProperties: false,
  properties: { ...INSTANCE_BODY.properties, finding: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

type Ref = { study: string; series: string; sop: string };

export default async function pacs(app: FastifyInstance, options: PacsRoutesOptions): Promise<void> {
  app.get('/api/v1/pacs/status', async () => ({ configured: options.dicomweb !== undefined }));
  if (options.dicomweb === undefined) return;
  const client = new DicomWebClient(options.dicomweb, { timeoutMs: options.timeoutMs, retries: 1, backoffMs: 250 });
  const { pool, admission, card } = options;
  const modelSha256 = modelFileSha256(options.modelPath);

  app.post<{ Body: { patientId?: string; accession?: string; date?: string } }>('/api/v1/pacs/search', { schema: { body: SEARCH_BODY } }, async (request) => {
    const { patientId, accession, date } = request.body;
    const query: Record<string, string> = { includefield: ADDITIONAL };
    if (patientId) query.PatientID = patientId;
    if (accession) query.AccessionNumber = accession;
    if (date) query.StudyDate = date;
    const found = await pacsCall(() => client.searchStudies(query, STUDY_LIMIT + 1));
    const studies = await Promise.all(found.slice(0, STUDY_LIMIT).map((study) => describeStudy(client, study, modelSha256)));
    request.log.info({ searchedBy: Object.keys(request.body).sort(), studies: studies.length, instances: studies.reduce((n, s) => n + s.instances.length, 0) }, 'pacs search');
    return { studies, truncated: found.length > STUDY_LIMIT };
  });

  app.post<{ Body: Ref }>('/api/v1/pacs/instance', { schema: { body: INSTANCE_BODY } }, async (request, reply) => {
    const bytes = await retrieve(client, request.body);
    request.log.info({ instance: uidTag(request.body.sop), bytes: bytes.length }, 'pacs instance sent');
    return reply.type('application/dicom').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  app.post<{ Body: Ref & { findings?: string; methods?: string; heatmap?: string; colormap?: string; showRejected?: boolean } }>('/api/v1/pacs/analyze', { schema: { body: ANALYZE_BODY } }, async (request, reply) => {
    const { study, series, sop, showRejected, ...fields } = request.body;
    const analyzeRequest = parseOptions({ ...fields, ...(showRejected === undefined ? {} : { showRejected: String(showRejected) }) } as Record<string, string>, card);
    const bytes = await retrieve(client, { study, series, sop });
    const started = performance.now();
    const place = await admission.enter();
    if (!place) {
      pool.countRejected();
      throw asHttpError(new QueueFullError(pool.retryAfterSeconds()));
    }
    const leaving = watchClient(reply);
    let result;
    try {
      const analysis = pool.analyze(bytes, WORKER_NAME, analyzeRequest, { timeoutMs: options.analysisTimeoutMs, signal: leaving.signal });
      place.release();
      result = await analysis;
    } catch (error) {
      throw asHttpError(error as Error);
    } finally {
      place.release();
      leaving.done();
    }
    const body = {
      ...analyzeResponse(request.id, card, result, 'PACS instance', started),
      pacs: { studyInstanceUid: study, seriesInstanceUid: series, sopInstanceUid: sop },
    };
    request.log.info({ instance: uidTag(sop), methods: analyzeRequest.methods, verdict: body.verdict, flags: body.inputFlags.map((f) => f.code), timings: body.timings }, 'pacs instance analysed');
    return body;
  });

  app.post<{ Body: Ref }>('/api/v1/pacs/result', { schema: { body: INSTANCE_BODY } }, async (request) => {
    const result = await pacsCall(() => findStoredResult(client, request.body, modelSha256));
    request.log.info({ instance: uidTag(request.body.sop), stored: result !== null }, 'pacs stored result');
    return { result };
  });

  app.post<{ Body: Ref & { finding: string } }>('/api/v1/pacs/heatmap', { schema: { body: HEATMAP_BODY } }, async (request, reply) => {
    const { finding, ...ref } = request.body;
    if (!card.labels.includes(finding)) throw new HttpError(400, 'CXR_UNKNOWN_FINDING', `the model has no finding "${finding}"; it knows ${card.labels.join(', ')}`);
    const png = await pacsCall(() => findStoredHeatmap(client, ref, modelSha256, finding));
    if (!png) throw new HttpError(404, 'CXR_NO_HEATMAP', `the PACS holds no heatmap of ${finding} for this instance by this model`);
    return reply.type('image/png').send(Buffer.from(png.buffer, png.byteOffset, png.byteLength));
  });
}

/** A study's answer: its CR/DX instances (one QIDO-RS request for all its instances) and which have our SR. */
async function describeStudy(client: DicomWebClient, study: DicomJson, modelSha256: string): Promise<PacsStudy> {
  const studyInstanceUid = stringValue(study, TAGS.StudyInstanceUID);
  if (!studyInstanceUid) throw new HttpError(502, 'CXR_PACS_MALFORMED', 'search: a study in the PACS answer has no Study Instance UID');
  const instances = await pacsCall(() => client.searchInstances({ StudyInstanceUID: studyInstanceUid, includefield: INSTANCE_FIELDS }));
  const present = new Set(instances.map((d) => stringValue(d, TAGS.SOPInstanceUID)));
  const projections = instances.filter((d) => DEFAULT_MODALITIES.includes(stringValue(d, TAGS.Modality) ?? ''));
  let refs: InstanceRef[];
  try {
    refs = DicomWebClient.refs(projections);
  } catch (e) {
    throw pacsHttpError(e as PacsError);
  }
  const text = (d: DicomJson, tag: string) => stringValue(d, tag) ?? '';
  return {
    studyInstanceUid,
    studyDate: text(study, '00080020'),
    studyDescription: text(study, '00081030'),
    patientId: text(study, '00100020'),
    accessionNumber: text(study, '00080050'),
    modalities: (study['00080061']?.Value ?? []).map(String),
    instances: refs
      .map((ref, i) => ({
        study: ref.study,
        series: ref.series,
        sop: ref.sop,
        modality: text(projections[i], TAGS.Modality),
        seriesDescription: text(projections[i], '0008103E'),
        instanceNumber: Number(stringValue(projections[i], '00200013')) || null,
        stored: present.has(srUids(ref, modelSha256).sop),
      }))
      .sort((a, b) => (a.instanceNumber ?? 0) - (b.instanceNumber ?? 0)),
  };
}

async function retrieve(client: DicomWebClient, ref: Ref): Promise<Uint8Array> {
  return pacsCall(() => client.retrieveInstance(ref));
}

/** A PACS call whose failure becomes a clear answer: 404 not there, 504 too slow, 502 down or talking nonsense. */
async function pacsCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw e instanceof PacsError ? pacsHttpError(e) : e;
  }
}

function pacsHttpError(e: PacsError): HttpError {
  if (e.status === 404) return new HttpError(404, 'CXR_PACS_NOT_FOUND', 'the PACS does not hold this instance (any more)');
  if (e.kind === 'timeout') return new HttpError(504, 'CXR_PACS_TIMEOUT', e.message);
  if (e.kind === 'malformed') return new HttpError(502, 'CXR_PACS_MALFORMED', e.message);
  return new HttpError(502, 'CXR_PACS_UNAVAILABLE', e.message);
}
