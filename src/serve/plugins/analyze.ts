/**
 * POST /api/v1/analyze: one image (multipart field "image": PNG, JPEG or DICOM) and options as form fields;
 * answers probabilities for every finding, input flags and heatmaps. The upload stays in memory and goes to an
 * inference worker; it is written to disk only when the server was started with a folder for uploads.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { detectFormat, isColormap } from '../../imaging/browser.js';
import { type AnalyzeRequest, type AnalyzeResponse, HEATMAP_FORMATS, type HeatmapFormat, RESEARCH_NOTICE } from '../analysis.js';
import { HttpError } from '../errors.js';
import type { ModelCard } from '../model-card.js';
import { AnalysisTimeoutError, type InferencePool, QueueFullError, UnreadableImageError } from '../pool.js';

export interface AnalyzeOptions {
  pool: InferencePool;
  card: ModelCard;
  maxUploadBytes: number;
  analysisTimeoutMs: number;
  saveUploadsTo?: string;
}

export const ANALYZE_FIELDS = ['findings', 'methods', 'heatmap', 'colormap', 'showRejected'] as const;
/** Room for the multipart framing and option fields around the image itself. */
const FORM_OVERHEAD = 64 * 1024;

export default async function analyze(app: FastifyInstance, options: AnalyzeOptions): Promise<void> {
  const { pool, card, maxUploadBytes } = options;
  await app.register(multipart, { limits: { fileSize: maxUploadBytes, files: 1, fields: ANALYZE_FIELDS.length, fieldSize: 4096, parts: ANALYZE_FIELDS.length + 1 } });

  app.post('/api/v1/analyze', {
    // Refuse before reading a byte of the body when the headers already show it cannot be accepted.
    onRequest: async (request) => {
      const type = request.headers['content-type'] ?? '';
      if (!/^multipart\/form-data\b/i.test(type)) {
        throw new HttpError(415, 'CXR_NOT_MULTIPART', `send the image as multipart/form-data (a file in the field "image"), not ${type ? `"${type.split(';')[0]}"` : 'a body without a content type'}`);
      }
      const length = Number(request.headers['content-length']);
      if (length > maxUploadBytes + FORM_OVERHEAD) throw tooLarge(maxUploadBytes, length);
    },
    handler: async (request, reply) => {
      const form = await readForm(request, maxUploadBytes);
      const analyzeRequest = parseOptions(form.fields, card);
      if (!detectFormat(form.bytes)) {
        const head = Array.from(form.bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
        throw new HttpError(415, 'CXR_UNSUPPORTED_IMAGE', `${form.name}: not a PNG, JPEG or DICOM image (first bytes ${head})`);
      }
      if (options.saveUploadsTo) await writeFile(join(options.saveUploadsTo, `${request.id}${extensionOf(form.bytes)}`), form.bytes);
      const started = performance.now();
      let result;
      try {
        result = await pool.analyze(form.bytes, form.name, analyzeRequest, options.analysisTimeoutMs);
      } catch (error) {
        throw asHttpError(error as Error);
      }
      const { queuedMs, timings, ...analysis } = result;
      const body: AnalyzeResponse = {
        requestId: request.id,
        model: { architecture: card.architecture, weights: card.weights, sha256: card.sha256 },
        image: analysis.image,
        inputFlags: analysis.inputFlags,
        verdict: analysis.verdict,
        findings: analysis.findings,
        explanations: analysis.explanations,
        timings: { queuedMs, ...timings, totalMs: Math.round((performance.now() - started) * 10) / 10 },
        notice: RESEARCH_NOTICE,
      };
      request.log.info(
        { image: { format: body.image.format, width: body.image.width, height: body.image.height }, methods: analyzeRequest.methods, verdict: body.verdict, flags: body.inputFlags.map((f) => f.code), timings: body.timings },
        'analysed',
      );
      return reply.send(body);
    },
  });
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
        file = { bytes: await part.toBuffer(), name: part.filename || 'upload' };
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
  if (file.bytes.length === 0) throw new HttpError(400, 'CXR_EMPTY_IMAGE', `${file.name}: the uploaded file is empty`);
  return { ...file, fields };
}

function parseOptions(fields: Record<string, string>, card: ModelCard): AnalyzeRequest {
  const list = (value: string | undefined) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const findings = fields.findings === undefined ? [...card.labels] : list(fields.findings);
  for (const name of findings) {
    if (!card.labels.includes(name)) throw new HttpError(400, 'CXR_UNKNOWN_FINDING', `findings: the model has no finding "${name}"; it knows ${card.labels.join(', ')}`);
  }
  const methods = fields.methods === undefined ? [card.explanationMethods[0]] : fields.methods.trim() === 'none' ? [] : list(fields.methods);
  for (const method of methods) {
    if (!card.explanationMethods.includes(method)) throw new HttpError(400, 'CXR_UNKNOWN_METHOD', `methods: unknown explanation method "${method}"; choose from ${card.explanationMethods.join(', ')} or none`);
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

function asHttpError(error: Error): Error {
  if (error instanceof QueueFullError) return new HttpError(503, 'CXR_BUSY', error.message, { 'retry-after': String(error.retryAfterSeconds) });
  if (error instanceof AnalysisTimeoutError) return new HttpError(504, 'CXR_TIMEOUT', error.message);
  if (error instanceof UnreadableImageError) return new HttpError(422, 'CXR_UNREADABLE_IMAGE', error.message);
  return error;
}

function extensionOf(bytes: Uint8Array): string {
  const format = detectFormat(bytes)?.format;
  return format === 'png' ? '.png' : format === 'jpeg' ? '.jpg' : '.dcm';
}
