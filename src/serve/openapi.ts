/**
 * The HTTP API described for clients (OpenAPI 3.1, JSON Schema 2020-12), served at /api/v1/openapi.json. Written
 * by hand beside the routes; the tests validate every real answer, errors included, against these schemas.
 */
import { EXPLANATION_METHODS } from '../explain/index.js';
import { COLORMAP_NAMES, RESIZE_RULES } from '../imaging/browser.js';
import { HEATMAP_FORMATS } from './analysis.js';
import { ANALYZE_BODY, HEATMAP_BODY, INSTANCE_BODY, SEARCH_BODY } from './plugins/pacs.js';
import { VERSION } from '../version.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const number = { type: 'number' };
const string = { type: 'string' };
const object = (properties: Record<string, object>, required = Object.keys(properties)) => ({ type: 'object', properties, required, additionalProperties: false });

const schemas = {
  Error: object({
    statusCode: { type: 'integer', minimum: 400, maximum: 599 },
    error: { ...string, description: 'HTTP reason phrase' },
    code: { ...string, description: 'stable identifier, e.g. CXR_UNREADABLE_IMAGE, CXR_UPLOAD_TOO_LARGE, CXR_BUSY' },
    message: { ...string, description: 'what was wrong, naming the file, field or limit' },
    requestId: string,
  }),
  Preprocessing: object({
    height: { type: 'integer' },
    width: { type: 'integer' },
    channels: { enum: [1, 3] },
    mean: { type: 'array', items: number },
    std: { type: 'array', items: number },
    resize: { enum: [...RESIZE_RULES] },
  }),
  ModelCard: object({
    file: string,
    bytes: { type: 'integer' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    architecture: string,
    weights: { ...string, description: 'where the weights came from, in words; read before trusting any probability' },
    labels: { type: 'array', items: string, minItems: 1 },
    preprocessing: ref('Preprocessing'),
    io: object({ input: string, logits: string, features: string }),
    explanationMethods: { type: 'array', items: { enum: [...EXPLANATION_METHODS] } },
    thresholds: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['rule', 'source', 'values'],
          properties: {
            rule: { type: 'string' },
            source: { type: 'string' },
            values: { type: 'object', additionalProperties: number },
            intervals: { type: 'object', additionalProperties: { type: 'array', items: number, minItems: 2, maxItems: 2 } },
            intervalMethod: { type: 'string' },
            withheld: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      ],
      description:
        'validated per-finding thresholds, the rule that chose them and the data they were chosen on, with each threshold\'s bootstrap confidence interval and the findings withheld a threshold (and why); null when the model has none',
    },
    calibration: {
      oneOf: [{ type: 'null' }, { type: 'object', required: ['method', 'source', 'values'], properties: { method: { enum: ['platt', 'temperature'] }, source: string, values: { type: 'object' } } }],
      description: 'per-finding p = sigmoid(a * logit + b), where fitted, with the ECE before and after; null when probabilities are the plain sigmoid',
    },
    inputChecks: {
      oneOf: [{ type: 'null' }, { type: 'object', required: ['outputs', 'heads', 'detector', 'checks', 'source'], properties: { detector: string, checks: { type: 'array' }, measured: { type: 'array' } } }],
      description: "the input checks' thresholds, the rules that chose them and how well they were measured to work; null when the model has no detector (image and DICOM-tag checks only)",
    },
    modelUrl: { ...string, description: 'the same model as one ONNX file, for in-browser inference' },
    notice: string,
  }),
  PoolStats: object({
    workers: { type: 'integer' },
    busy: { type: 'integer' },
    queued: { type: 'integer' },
    queueLimit: { type: 'integer' },
    completed: { type: 'integer' },
    rejected: { type: 'integer' },
    timedOut: { type: 'integer' },
    cancelled: { type: 'integer', description: 'analyses cancelled because their client disconnected' },
    recycled: { type: 'integer', description: 'workers terminated to stop an analysis (deadline passed or client gone) and replaced' },
    retired: { type: 'integer', description: "workers replaced between analyses because the server's resident memory was above --worker-max-rss" },
    rssMb: { type: 'number', description: 'resident memory of the whole server process now, in MB' },
    meanServiceMs: { type: ['number', 'null'], description: 'moving average of the time a worker spends per analysis' },
    estimatedWaitMs: { type: 'number', description: 'how long a new analysis would wait for a worker (the measured cost of the work ahead per worker)' },
  }),
  AdmissionStats: object({
    waiting: { type: 'integer', description: 'requests waiting, uploads unread, for room in the pool (at most --admission-wait each)' },
    admittedAfterWaiting: { type: 'integer' },
    refusedAfterWaiting: { type: 'integer', description: 'requests answered 503 because no room appeared within the admission wait' },
    refusedAtOnce: { type: 'integer', description: 'requests answered 503 at once: no admission wait configured, or too many already waiting' },
  }),
  Health: object({ status: { enum: ['ok', 'degraded', 'unavailable'] }, pool: ref('PoolStats'), admission: ref('AdmissionStats') }),
  Finding: object({
    name: string,
    probability: { type: 'number', minimum: 0, maximum: 1 },
    logit: number,
    calibrated: { type: 'boolean', description: "true when the probability went through the model's calibration of this finding; false: the plain sigmoid of the logit" },
    threshold: { type: ['number', 'null'], description: "the model's validated threshold; null when none exists" },
    thresholdRule: { type: ['string', 'null'], description: 'the rule that chose the threshold, e.g. specificity:0.9 or youden; null without one' },
    thresholdInterval: { oneOf: [{ type: 'null' }, { type: 'array', items: number, minItems: 2, maxItems: 2 }], description: "the threshold's bootstrap confidence interval [lower, upper]; null where the model stores none" },
    decision: { enum: ['positive', 'negative', null], description: 'null without a validated threshold' },
    decisionNote: { type: ['string', 'null'], description: 'why there is no decision (e.g. too few validation positives for a stable threshold); null with a decision' },
  }),
  InputFlag: object({
    code: { enum: ['not-chest-xray', 'lateral-view', 'inverted', 'rotated', 'mirrored', 'too-small', 'blank'] },
    severity: { enum: ['info', 'warning', 'reject'] },
    message: { ...string, description: 'the reason, in words' },
    score: { type: ['number', 'null'], description: 'the measured score; null for a flag raised by a DICOM tag' },
    threshold: { type: ['number', 'null'], description: "the model's threshold the score passed; null for a DICOM tag" },
    rule: { ...string, description: 'how the threshold was chosen, or which tag raised the flag' },
  }),
  Geometry: object({
    sourceWidth: number,
    sourceHeight: number,
    width: number,
    height: number,
    scaleX: number,
    scaleY: number,
    offsetX: number,
    offsetY: number,
    resize: { enum: [...RESIZE_RULES] },
  }),
  RawMap: object({
    width: { type: 'integer' },
    height: { type: 'integer' },
    dtype: { const: 'float32' },
    data: { type: 'string', contentEncoding: 'base64', description: 'width*height little-endian float32 values, row-major, on the model-input grid' },
  }),
  Map: object(
    {
      finding: string,
      overlayPng: { type: 'string', pattern: '^data:image/png;base64,', description: 'the map drawn over the original image, at its size' },
      raw: ref('RawMap'),
    },
    ['finding'],
  ),
  Explanation: object({ method: string, geometry: ref('Geometry'), maps: { type: 'array', items: ref('Map') } }),
  Image: object({
    name: string,
    width: { type: 'integer' },
    height: { type: 'integer' },
    format: { enum: ['png', 'jpeg', 'dicom'] },
    notes: { type: 'array', items: string },
    metadata: { type: 'object', description: 'view, age, sex, pixel spacing, windowing where the file has them' },
  }),
  Analysis: object({
    requestId: string,
    model: object({ architecture: string, weights: string, sha256: string }),
    image: ref('Image'),
    inputFlags: { type: 'array', items: ref('InputFlag'), description: 'what the input checks raised; a reject flag withholds the findings unless showRejected=true' },
    verdict: { enum: ['accepted', 'rejected', 'rejected-shown'], description: 'rejected: no findings; rejected-shown: findings given on request, not to be trusted' },
    findings: { type: 'array', items: ref('Finding'), description: "one per model label, in the model's order; empty when the input was rejected" },
    explanations: { type: 'array', items: ref('Explanation') },
    timings: object({ queuedMs: number, decodeMs: number, predictMs: number, explainMs: number, totalMs: number }),
    notice: string,
  }),
  PacsInstance: object({
    study: string,
    series: string,
    sop: string,
    modality: { ...string, description: 'CR or DX' },
    seriesDescription: string,
    instanceNumber: { type: ['integer', 'null'] },
    stored: { type: 'boolean', description: "the PACS holds this model's SR of the instance (written by cxr pacs)" },
  }),
  PacsStudy: object({
    studyInstanceUid: string,
    studyDate: { ...string, description: 'YYYYMMDD, or empty' },
    studyDescription: string,
    patientId: string,
    accessionNumber: string,
    modalities: { type: 'array', items: string },
    instances: { type: 'array', items: ref('PacsInstance'), description: 'its CR and DX instances' },
  }),
  StoredResult: object({
    sop: { ...string, description: 'SOP Instance UID of the SR' },
    created: { ...string, description: 'when cxr pacs wrote it (UTC, ISO 8601)' },
    model: object({ name: string, version: string, sha256: string }),
    verdict: { ...string, description: 'accepted, rejected (input checks) or undecodable' },
    flags: { type: 'array', items: string, description: 'the input checks\' flags as stored: "severity code: message"' },
    refused: { type: ['string', 'null'], description: 'why there are no findings' },
    findings: {
      type: 'array',
      items: object({
        name: string,
        probability: number,
        calibrated: { type: 'boolean' },
        threshold: { type: ['number', 'null'] },
        thresholdRule: { type: ['string', 'null'] },
        decision: { enum: ['positive', 'negative', null] },
        decisionNote: { type: ['string', 'null'] },
        heatmap: { type: 'boolean', description: 'a heatmap Secondary Capture of this finding is in the PACS (POST /api/v1/pacs/heatmap)' },
      }),
    },
  }),
};
/** An analysis of a PACS instance: an upload's answer, and the UIDs the instance was retrieved by. */
const pacsSchemas = {
  PacsAnalysis: object({
    ...schemas.Analysis.properties,
    pacs: object({ studyInstanceUid: string, seriesInstanceUid: string, sopInstanceUid: string }),
  }),
  PacsStatus: object({ configured: { type: 'boolean' } }),
  PacsSearch: object({ studies: { type: 'array', items: ref('PacsStudy') }, truncated: { type: 'boolean', description: 'more studies matched than are listed' } }),
  PacsResult: object({ result: { oneOf: [{ type: 'null' }, ref('StoredResult')] } }),
};

const UNAUTHORIZED = {
  ...error('the server runs with --auth and the request has no valid bearer token (answered before the upload is read)'),
  headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
};

/** How a PACS route fails: the request, the key, or the PACS (down, talking nonsense: 502; too slow: 504). */
const PACS_ERRORS = {
  400: error('malformed request body (names the field)'),
  401: UNAUTHORIZED,
  502: error('the PACS could not be reached, refused, or answered something that is not DICOMweb (CXR_PACS_UNAVAILABLE, CXR_PACS_MALFORMED)'),
  504: error('the PACS did not answer within the deadline (CXR_PACS_TIMEOUT)'),
};

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
  info: {
    title: 'cxr-lens',
    version: VERSION,
    description: 'Chest X-ray findings with explanations. Research use only; not for clinical decisions. Probabilities are per finding (independent sigmoids).',
  },
  paths: {
    '/api/v1/analyze': {
      post: {
        summary: 'Probabilities, input flags and heatmaps for one chest X-ray',
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['image'],
                properties: {
                  image: { type: 'string', contentMediaType: 'application/octet-stream', description: 'PNG, JPEG or DICOM, detected by content' },
                  findings: { type: 'string', description: "comma-separated findings to draw heatmaps for (not empty; repeats count once); default all of the model's" },
                  methods: { type: 'string', description: `comma-separated explanation methods (${EXPLANATION_METHODS.join(', ')}) or "none"; each runs once however often it is named; default ${EXPLANATION_METHODS[0]}` },
                  heatmap: { enum: [...HEATMAP_FORMATS], default: 'png', description: 'png: overlays as data URLs; raw: maps as base64 float32; both; none: no explanation' },
                  colormap: { enum: [...COLORMAP_NAMES], default: 'turbo' },
                  showRejected: { enum: ['true', 'false'], default: 'false', description: 'give findings and heatmaps even when the input checks reject the image (verdict rejected-shown)' },
                },
              },
            },
          },
        },
        responses: {
          200: json(ref('Analysis'), 'the analysis'),
          400: error('malformed form or options (names the field)'),
          401: UNAUTHORIZED,
          403: error('cross-origin request (Origin not this server nor a configured CORS origin), or a Host that is not loopback on a loopback server'),
          413: error('upload over the size limit'),
          415: error('not multipart, or the file is not PNG, JPEG or DICOM'),
          422: error('the image cannot be decoded (truncated, corrupt, a DICOM without pixels, ...)'),
          503: {
            ...error('all workers busy and the queue full (answered before the upload is read); retry after the Retry-After header, the estimated wait'),
            headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } },
          },
          504: error('the analysis did not finish within the server timeout'),
        },
      },
    },
    '/api/v1/report': {
      post: {
        summary: 'The PDF report of one chest X-ray: findings table, input checks, model, the film and heatmaps with their colour bar',
        description:
          'The same form as /api/v1/analyze (heatmap is ignored). Heatmaps of the findings named, or else of those called positive (else the three most probable), by the first method named; the PDF is made once they are drawn.',
        requestBody: { required: true, content: { 'multipart/form-data': { schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', contentMediaType: 'application/octet-stream' } } } } } },
        responses: {
          200: { description: 'the report', content: { 'application/pdf': {} } },
          400: error('malformed form or options, or methods=none (a report needs heatmaps)'),
          401: UNAUTHORIZED,
          413: error('upload over the size limit'),
          415: error('not multipart, or the file is not PNG, JPEG or DICOM'),
          422: error('the image cannot be decoded'),
          503: error('no room for the analysis (Retry-After)'),
          504: error('the analysis did not finish within the server timeout'),
        },
      },
    },
    '/api/v1/model': { get: { summary: 'The model card', responses: { 200: json(ref('ModelCard'), 'the loaded model'), 401: UNAUTHORIZED } } },
    '/models/current.onnx': {
      get: { summary: 'The loaded model as one ONNX file (for in-browser private mode)', responses: { 200: { description: 'ONNX bytes', content: { 'application/octet-stream': {} } } } },
    },
    '/models/current.cam.json': {
      get: {
        summary: "What private mode needs to run the model's CAM graph: its URL and sha256, the layer, its layout, the labels and output names",
        responses: { 200: { description: 'the CAM graph\'s description', content: { 'application/json': {} } } },
      },
    },
    '/models/current.cam.onnx': {
      get: { summary: "The model's CAM graph as one ONNX file (logits, the layer's activation and every finding's gradient there, for in-browser Grad-CAM)", responses: { 200: { description: 'ONNX bytes', content: { 'application/octet-stream': {} } } } },
    },
    '/healthz': {
      get: {
        summary: 'Liveness and load',
        responses: { 200: json(ref('Health'), 'workers alive and a new analysis would start soon'), 503: json(ref('Health'), 'degraded (every worker busy and analyses waiting, or the queue full) or unavailable (no worker alive)') },
      },
    },
    '/api/v1/pacs/status': {
      get: { summary: 'Whether a PACS is configured (cxr serve --pacs)', responses: { 200: json(ref('PacsStatus'), 'configured or not'), 401: UNAUTHORIZED } },
    },
    '/api/v1/pacs/search': {
      post: {
        summary: 'Studies in the PACS by patient ID, accession number and/or study date (QIDO-RS), with their CR/DX instances',
        requestBody: { required: true, content: { 'application/json': { schema: SEARCH_BODY } } },
        responses: {
          200: json(ref('PacsSearch'), 'the first studies found'),
          ...PACS_ERRORS,
        },
      },
    },
    '/api/v1/pacs/instance': {
      post: {
        summary: 'One instance from the PACS as DICOM (WADO-RS), for display',
        requestBody: { required: true, content: { 'application/json': { schema: INSTANCE_BODY } } },
        responses: { 200: { description: 'the instance as the PACS stored it', content: { 'application/dicom': {} } }, 404: error('the PACS does not hold it'), ...PACS_ERRORS },
      },
    },
    '/api/v1/pacs/analyze': {
      post: {
        summary: 'One PACS instance retrieved (WADO-RS) and analysed exactly as an upload to /api/v1/analyze',
        requestBody: { required: true, content: { 'application/json': { schema: ANALYZE_BODY } } },
        responses: {
          200: json(ref('PacsAnalysis'), 'the analysis, with the UIDs'),
          404: error('the PACS does not hold it'),
          422: error('the instance cannot be decoded'),
          503: { ...error('all workers busy and the queue full'), headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } } },
          ...PACS_ERRORS,
        },
      },
    },
    '/api/v1/pacs/result': {
      post: {
        summary: "This model's stored result (the SR cxr pacs wrote) of an instance, or null",
        requestBody: { required: true, content: { 'application/json': { schema: INSTANCE_BODY } } },
        responses: { 200: json(ref('PacsResult'), 'the stored result, or null when there is none'), ...PACS_ERRORS },
      },
    },
    '/api/v1/pacs/heatmap': {
      post: {
        summary: "A finding's stored heatmap (the Secondary Capture cxr pacs wrote) as PNG",
        requestBody: { required: true, content: { 'application/json': { schema: HEATMAP_BODY } } },
        responses: { 200: { description: 'the heatmap overlay', content: { 'image/png': {} } }, 404: error('no such heatmap in the PACS'), ...PACS_ERRORS },
      },
    },
    '/api/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': {} } } } } },
  },
  // Without --auth every route is open (a single user on loopback); with it, the /api/ routes but this document need a token.
  security: [{}, { apiToken: [] }],
  components: { schemas: { ...schemas, ...pacsSchemas }, securitySchemes: { apiToken: { type: 'http', scheme: 'bearer', description: 'a token from `cxr token create`, when the server runs with --auth' } } },
} as const;
