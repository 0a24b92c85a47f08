/**
 * POST /api/v1/analyze: one image (multipart field "image": PNG, JPEG or DICOM) and options as form fields;
 * answers probabilities for every finding, input flags and heatmaps. The upload stays in memory and goes to an
 * inference worker; it is written to disk only when the server was started with a folder for uploads, and then
 * only once it decoded (named by a server-generated id, mode 0600).
 *
 * Privacy: the client's file name (often a patient name or record number) never reaches a log line and is echoed
 * back at most NAME_LIMIT characters long; the worker never sees it. Free-text DICOM fields (Series Description,
 * LUT Explanation) are not answered. Work that cannot be done is refused before the body is read (no room in the
 * pool within the admission wait: 503 + Retry-After; admission.ts), and an analysis whose client disconnected is
 * cancelled (dropped from the queue, or its worker stopped at its next ONNX Runtime run).
 *
 * Progress: a client that accepts `application/x-ndjson` gets one JSON object per line as the analysis goes
 * (`accepted`, then a `progress` after every ONNX Runtime run: a batch of SmoothGrad's noisy copies, Integrated
 * Gradients' path points, Score-CAM's masks, occlusion's patches), ending with `result` (the usual answer as
 * `body`) or `error` (the usual error body). Errors found before the analysis starts are ordinary HTTP errors.
 *
 * POST /api/v1/report takes the same form and answers the PDF report (outputs/report-pdf.ts: findings table, input
 * checks, model, the film and heatmaps drawn by the worker, colour bar), made only once the heatmaps are drawn.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_CUTOFF, detectFormat, type ImageMetadata, isColormap } from '../../imaging/browser.js';
import type { Finding } from '../../outputs/findings.js';
import { reportPdf } from '../../outputs/report-pdf.js';
import { VERSION } from '../../version.js';
import { type AnalyzeRequest, type AnalyzeResponse, HEATMAP_FORMATS, type HeatmapFormat, type ImageResult, RESEARCH_NOTICE } from '../analysis.js';
import { type ErrorBody, HttpError } from '../errors.js';
import type { Admission, AdmissionGate } from '../admission.js';
import type { ModelCard } from '../model-card.js';
import type { AnalysisDispatcher } from '../dispatch.js';
import { AnalysisCancelledError, AnalysisTimeoutError, QueueFullError, UnreadableImageError, type WorkerAnalysis } from '../pool.js';

export interface AnalyzeOptions {
  pool: AnalysisDispatcher;
  admission: AdmissionGate;
  card: ModelCard;
  maxUploadBytes: number;
  analysisTimeoutMs: number;
  saveUploadsTo?: string;
}

export const ANALYZE_FIELDS = ['findings', 'methods', 'heatmap', 'colormap', 'showRejected'] as const;
/** Room for the multipart framing and option fields around the image itself. */
const FORM_OVERHEAD = 64 * 1024;
/** The longest file name echoed back (longer ones are cut, marked with an ellipsis). */
export const NAME_LIMIT = 100;
/** The name the worker (and so every decoder message) uses for an upload; the client's name is put back in answers. */
const WORKER_NAME = 'upload';

export default async function analyze(app: FastifyInstance, options: AnalyzeOptions): Promise<void> {
  const { pool, admission, card, maxUploadBytes } = options;
  const admitted = new WeakMap<FastifyRequest, Admission>();
  const release = async (request: FastifyRequest) => admitted.get(request)?.release();
  await app.register(multipart, { limits: { fileSize: maxUploadBytes, files: 1, fields: ANALYZE_FIELDS.length, fieldSize: 4096, parts: ANALYZE_FIELDS.length + 1 } });

  const hooks = {
    // Refuse before reading a byte of the body when the headers already show it cannot be accepted.
    onRequest: async (request: FastifyRequest) => {
      const type = request.headers['content-type'] ?? '';
      if (!/^multipart\/form-data\b/i.test(type)) {
        throw new HttpError(415, 'CXR_NOT_MULTIPART', `send the image as multipart/form-data (a file in the field "image"), not ${type ? `"${type.split(';')[0].slice(0, 100)}"` : 'a body without a content type'}`);
      }
      const length = Number(request.headers['content-length']);
      if (length > maxUploadBytes + FORM_OVERHEAD) throw tooLarge(maxUploadBytes, length);
      // No room: wait for some with the upload unread, and refuse without receiving a 50 MB upload it could not
      // analyse anyway.
      const place = await admission.enter();
      if (!place) {
        pool.countRejected();
        throw asHttpError(new QueueFullError(pool.retryAfterSeconds()), { connection: 'close' });
      }
      admitted.set(request, place);
    },
    // Whatever ends the request (an answer, an error, the client leaving) frees the room it was promised.
    onResponse: release,
    onRequestAbort: release,
  };

  app.post('/api/v1/analyze', {
    ...hooks,
    handler: async (request, reply) => {
      const client = watchClient(reply);
      const form = await readForm(request, maxUploadBytes);
      const analyzeRequest = parseOptions(form.fields, card);
      assertImage(form);
      const started = performance.now();
      const lines = wantsProgress(request) ? progressLines(reply, request.id) : undefined;
      let result;
      try {
        const analysis = pool.analyze(form.bytes, WORKER_NAME, analyzeRequest, {
          timeoutMs: options.analysisTimeoutMs,
          signal: client.signal,
          onProgress: lines && ((progress) => lines.write({ type: 'progress', ...progress })),
        });
        // Submitted: the pool's queue now holds the place the admission promised.
        admitted.get(request)?.release();
        result = await analysis;
      } catch (error) {
        if (error instanceof AnalysisCancelledError) request.log.info({ whileQueued: error.whileQueued }, 'client disconnected; analysis cancelled');
        const answer = asHttpError(error as Error, {}, form.name);
        if (!lines) throw answer;
        lines.fail(request, answer);
        return reply;
      } finally {
        client.done();
      }
      // Kept only once it decoded, under a name the server chose (a caller's X-Request-Id could collide or point
      // elsewhere), readable by this user only.
      let savedAs: string | undefined;
      if (options.saveUploadsTo) {
        savedAs = `${randomUUID()}${extensionOf(form.bytes)}`;
        await writeFile(join(options.saveUploadsTo, savedAs), form.bytes, { mode: 0o600, flag: 'wx' });
      }
      const body = analyzeResponse(request.id, card, result, form.name, started);
      request.log.info(
        {
          image: { format: body.image.format, width: body.image.width, height: body.image.height },
          methods: analyzeRequest.methods,
          verdict: body.verdict,
          flags: body.inputFlags.map((f) => f.code),
          timings: body.timings,
          ...(savedAs ? { savedAs } : {}),
        },
        'analysed',
      );
      if (lines) {
        lines.end({ type: 'result', body });
        return reply;
      }
      return reply.send(body);
    },
  });

  // The same form as /api/v1/analyze, answered with the PDF report (outputs/report-pdf.ts) once its heatmaps are
  // drawn: of the findings asked, or else of those called positive (else the three most probable), which a quick
  // first analysis finds. The first method asked draws them.
  app.post('/api/v1/report', {
    ...hooks,
    handler: async (request, reply) => {
      const client = watchClient(reply);
      const form = await readForm(request, maxUploadBytes);
      const asked = parseOptions(form.fields, card);
      assertImage(form);
      const method = asked.methods[0];
      if (!method) throw new HttpError(400, 'CXR_BAD_OPTION', `a report needs its heatmaps: name a method (${card.explanationMethods.join(', ')}), not none`);
      const submit = (analyzeRequest: AnalyzeRequest) => pool.analyze(form.bytes, WORKER_NAME, analyzeRequest, { timeoutMs: options.analysisTimeoutMs, signal: client.signal });
      let result;
      try {
        let findings = asked.findings;
        if (form.fields.findings === undefined) {
          const first = submit({ ...asked, methods: [], heatmap: 'none' });
          admitted.get(request)?.release();
          findings = reportedFindings((await first).findings);
        }
        const analysis = submit({ ...asked, findings, methods: [method], heatmap: 'png', film: true });
        admitted.get(request)?.release();
        result = await analysis;
      } catch (error) {
        if (error instanceof AnalysisCancelledError) request.log.info({ whileQueued: error.whileQueued }, 'client disconnected; report cancelled');
        throw asHttpError(error as Error, {}, form.name);
      } finally {
        client.done();
      }
      const image = publicImage(result.image, form.name);
      const fromDataUrl = (url: string) => new Uint8Array(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
      const pdf = await reportPdf({
        notice: RESEARCH_NOTICE,
        createdAt: new Date(),
        analysedBy: `on the cxr server (request ${request.id})`,
        model: { file: card.file, architecture: card.architecture, weights: card.weights, sha256: card.sha256, software: VERSION, thresholdRule: card.thresholds?.rule ?? null },
        image: { name: image.name, width: image.width, height: image.height, format: image.format, notes: image.notes },
        verdict: result.verdict,
        inputFlags: result.inputFlags,
        findings: result.findings,
        filmPng: fromDataUrl(result.filmPng!),
        heatmaps: result.explanations.flatMap((e) => e.maps.map((m) => ({ finding: m.finding, method: e.method, overlayPng: fromDataUrl(m.overlayPng!) }))),
        colormap: asked.colormap,
        cutoff: DEFAULT_CUTOFF,
      });
      request.log.info({ image: { format: image.format, width: image.width, height: image.height }, method, verdict: result.verdict, flags: result.inputFlags.map((f) => f.code), bytes: pdf.length }, 'report');
      return reply.type('application/pdf').header('content-disposition', 'attachment; filename="cxr-report.pdf"').send(Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength));
    },
  });
}

/**
 * The client going away (the connection closed before the answer was written) aborts `signal`; `done()` stops
 * watching once the analysis is over.
 */
export function watchClient(reply: FastifyReply): { signal: AbortSignal; done(): void } {
  const cancel = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) cancel.abort();
  };
  reply.raw.once('close', onClose);
  return { signal: cancel.signal, done: () => reply.raw.off('close', onClose) };
}

/** An upload that is no image we read is refused with its first bytes named (never its file name). */
function assertImage(form: { bytes: Uint8Array; name: string }): void {
  if (detectFormat(form.bytes)) return;
  const head = Array.from(form.bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new HttpError(415, 'CXR_UNSUPPORTED_IMAGE', `not a PNG, JPEG or DICOM image (first bytes ${head})`, {}, form.name);
}

/** The answer to an analysis: the worker's result, named as the client may see it, with the model and the timings. */
export function analyzeResponse(requestId: string, card: ModelCard, result: WorkerAnalysis & { queuedMs: number }, imageName: string, started: number): AnalyzeResponse {
  const { queuedMs, timings } = result;
  return {
    requestId,
    model: { architecture: card.architecture, weights: card.weights, sha256: card.sha256 },
    image: publicImage(result.image, imageName),
    inputFlags: result.inputFlags,
    verdict: result.verdict,
    findings: result.findings,
    explanations: result.explanations,
    timings: { queuedMs, ...timings, totalMs: Math.round((performance.now() - started) * 10) / 10 },
    notice: RESEARCH_NOTICE,
  };
}

/** A report's heatmaps when none are asked for: the findings called positive, else the three most probable. */
function reportedFindings(findings: readonly Finding[]): string[] {
  const positive = findings.filter((f) => f.decision === 'positive').map((f) => f.name);
  return positive.length ? positive : [...findings].sort((a, b) => b.probability - a.probability).slice(0, 3).map((f) => f.name);
}

const NDJSON = 'application/x-ndjson';

function wantsProgress(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').split(',').some((type) => type.split(';')[0].trim().toLowerCase() === NDJSON);
}

/** The answer as JSON lines, started now (200) so that progress reaches the client while the analysis runs. */
function progressLines(reply: FastifyReply, requestId: string) {
  const out = new PassThrough();
  reply.type(`${NDJSON}; charset=utf-8`).header('cache-control', 'no-store').send(out);
  const write = (line: object) => {
    if (!out.writableEnded && !out.destroyed) out.write(`${JSON.stringify(line)}\n`);
  };
  write({ type: 'accepted', requestId });
  return {
    write,
    end(line: object) {
      write(line);
      out.end();
    },
    /** The error answer as the last line, logged as the errors plugin logs a refusal (no client file name). */
    fail(request: FastifyRequest, error: Error) {
      const known = error instanceof HttpError;
      const statusCode = known ? error.statusCode : 500;
      if (known) request.log.info({ statusCode, code: error.code, reason: error.message }, 'request refused');
      else request.log.error({ err: error }, 'request failed');
      const body: ErrorBody = {
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        code: known ? error.code : 'CXR_INTERNAL',
        message: known ? error.answer : `internal error; the server log has the details under request id ${requestId}`,
        requestId,
      };
      this.end({ type: 'error', body });
    },
  };
}

/**
 * A client file name as it may be echoed: the last path component, without control characters, at most
 * NAME_LIMIT characters (a longer one keeps its start and ends in an ellipsis).
 */
export function boundedName(filename: string | undefined): string {
  const base = (filename ?? '').split(/[\\/]/).pop()!.replace(/[\p{Cc}\p{Cf}]/gu, '').trim();
  if (!base) return 'upload';
  const chars = [...base];
  return chars.length <= NAME_LIMIT ? base : `${chars.slice(0, NAME_LIMIT - 1).join('')}\u2026`;
}

/** DICOM fields a client may get back: coded values and numbers, never free text written by people. */
const PUBLIC_METADATA: readonly (keyof ImageMetadata)[] = [
  'viewPosition', 'patientAge', 'patientSex', 'pixelSpacing', 'pixelSpacingSource', 'photometric', 'modality', 'bodyPart',
  'imageLaterality', 'colourfulness', 'sopClassUid', 'studyInstanceUid', 'seriesInstanceUid', 'sopInstanceUid', 'transferSyntaxUid', 'bitsStored', 'presentationIntent',
  'presentationLutShape', 'window', 'inverted',
];
/** Coded DICOM strings are at most 16 characters (CS); anything longer in them is not a code. */
const CODE_LIMIT = 64;

export function publicImage(image: ImageResult, name: string): ImageResult {
  const metadata: Record<string, unknown> = {};
  for (const key of PUBLIC_METADATA) {
    let value: unknown = image.metadata[key];
    if (value === undefined) continue;
    if (typeof value === 'string') value = value.slice(0, CODE_LIMIT);
    if (key === 'window' && typeof value === 'object' && value && 'explanation' in value) {
      const { explanation: _free, ...rest } = value as { explanation?: string };
      value = rest;
    }
    metadata[key] = value;
  }
  return {
    ...image,
    name,
    // Notes can quote a field's value (an unparsable Patient Age): bounded, and a few at most.
    notes: image.notes.slice(0, 20).map((note) => (note.length > 200 ? `${note.slice(0, 199)}\u2026` : note)),
    metadata: metadata as ImageMetadata,
  };
}

interface Form {
  bytes: Uint8Array;
  name: string;
  fields: Record<string, string>;
}

async function readForm(request: FastifyRequest, maxUploadBytes: number): Promise<Form> {
  const fields: Record<string, string> = {};
  let file: { bytes: Uint8Array; name: string } | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw new HttpError(400, 'CXR_UNKNOWN_FIELD', `unexpected file field "${part.fieldname}"; send the image in the field "image"`);
        }
        file = { bytes: await part.toBuffer(), name: boundedName(part.filename) };
      } else {
        if (!(ANALYZE_FIELDS as readonly string[]).includes(part.fieldname)) {
          throw new HttpError(400, 'CXR_UNKNOWN_FIELD', `unknown form field "${part.fieldname}"; the fields are image, ${ANALYZE_FIELDS.join(', ')}`);
        }
        fields[part.fieldname] = String(part.value);
      }
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(maxUploadBytes);
    if (code === 'FST_FILES_LIMIT') throw new HttpError(400, 'CXR_ONE_IMAGE', 'send one image per request');
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw new HttpError(400, 'CXR_TOO_MANY_FIELDS', `too many form fields; the fields are image, ${ANALYZE_FIELDS.join(', ')}`);
    }
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, 'CXR_BAD_FORM', `the multipart form cannot be read: ${(error as Error).message}`);
  }
  if (!file) throw new HttpError(400, 'CXR_NO_IMAGE', 'the form has no image; send the file in the field "image"');
  if (file.bytes.length === 0) throw new HttpError(400, 'CXR_EMPTY_IMAGE', 'the uploaded file is empty', {}, file.name);
  return { ...file, fields };
}

export function parseOptions(fields: Record<string, string>, card: ModelCard): AnalyzeRequest {
  const list = (value: string | undefined) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const findings = fields.findings === undefined ? [...card.labels] : [...new Set(list(fields.findings))];
  if (findings.length === 0) throw new HttpError(400, 'CXR_BAD_OPTION', `findings is empty; name at least one of ${card.labels.join(', ')}, or leave the field out for all`);
  for (const name of findings) {
    if (!card.labels.includes(name)) throw new HttpError(400, 'CXR_UNKNOWN_FINDING', `findings: the model has no finding "${name.slice(0, 100)}"; it knows ${card.labels.join(', ')}`);
  }
  // Each method at most once (occlusion,occlusion,... would repeat the same work), so at most the known methods.
  const methods = fields.methods === undefined ? [card.explanationMethods[0]] : fields.methods.trim() === 'none' ? [] : [...new Set(list(fields.methods))];
  if (fields.methods !== undefined && fields.methods.trim() !== 'none' && methods.length === 0) {
    throw new HttpError(400, 'CXR_BAD_OPTION', `methods is empty; name one or more of ${card.explanationMethods.join(', ')}, or none`);
  }
  for (const method of methods) {
    if (!card.explanationMethods.includes(method)) throw new HttpError(400, 'CXR_UNKNOWN_METHOD', `methods: unknown explanation method "${method.slice(0, 100)}"; choose from ${card.explanationMethods.join(', ')} or none`);
  }
  const heatmap = (fields.heatmap ?? 'png') as HeatmapFormat;
  if (!HEATMAP_FORMATS.includes(heatmap)) throw new HttpError(400, 'CXR_BAD_OPTION', `heatmap must be one of ${HEATMAP_FORMATS.join(', ')}, got "${fields.heatmap}"`);
  const colormap = fields.colormap ?? 'turbo';
  if (!isColormap(colormap)) throw new HttpError(400, 'CXR_BAD_OPTION', `colormap must be turbo, inferno or jet, got "${colormap}"`);
  const showRejected = fields.showRejected ?? 'false';
  if (showRejected !== 'true' && showRejected !== 'false') throw new HttpError(400, 'CXR_BAD_OPTION', `showRejected must be true or false, got "${showRejected}"`);
  return { findings, methods: heatmap === 'none' ? [] : methods, heatmap, colormap, showRejected: showRejected === 'true' };
}

function tooLarge(limit: number, declared?: number): HttpError {
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  return new HttpError(413, 'CXR_UPLOAD_TOO_LARGE', `the upload${declared ? ` (${mb(declared)})` : ''} is larger than this server's limit of ${mb(limit)} per image`, { connection: 'close' });
}

export function asHttpError(error: Error, headers: Record<string, string> = {}, name?: string): Error {
  if (error instanceof QueueFullError) return new HttpError(503, 'CXR_BUSY', error.message, { 'retry-after': String(error.retryAfterSeconds), ...headers });
  if (error instanceof AnalysisTimeoutError) return new HttpError(504, 'CXR_TIMEOUT', error.message, headers);
  // Nobody reads this answer (the client left); it is logged with its own code.
  if (error instanceof AnalysisCancelledError) return new HttpError(499, 'CXR_CLIENT_GONE', error.message, headers);
  if (error instanceof UnreadableImageError) {
    const message = error.message.startsWith(`${WORKER_NAME}: `) ? error.message.slice(WORKER_NAME.length + 2) : error.message;
    return new HttpError(422, 'CXR_UNREADABLE_IMAGE', message, headers, name);
  }
  return error;
}

function extensionOf(bytes: Uint8Array): string {
  const format = detectFormat(bytes)?.format;
  return format === 'png' ? '.png' : format === 'jpeg' ? '.jpg' : '.dcm';
}
