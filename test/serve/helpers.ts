/** Shared by the server and browser tests: a real model, real NIH images, a running server, the OpenAPI check. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { buildServer, OPENAPI_DOCUMENT, type Server, type ServeOptions } from '../../src/serve/index.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

export const NIH_IMAGE = sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png');
export const NIH_IMAGE_2 = sharedDataPath('nih-cxr14-subset', 'images', '00000100_000.png');
/** A real CR chest, JPEG 2000 lossless, MONOCHROME1 (decoded through the codec WebAssembly). */
export const DICOM_IMAGE = sharedDataPath('dicom', 'cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm');

/**
 * An ImageNet MobileNetV2 backbone with a fresh 14-finding head at 224 px (`cxr import --new-head`): a real
 * cxr-lens model whose probabilities mean nothing, which is all these tests need.
 */
export function makeTestModel(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cxr-serve-'));
  const model = join(dir, 'mobilenet-new-head.onnx');
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), 'import', sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), '--new-head', '--size', '224', '-o', model], {
    encoding: 'utf8',
    env: { ...process.env, CXR_NO_REEXEC: '1' },
  });
  assert.equal(run.status, 0, run.stderr);
  return model;
}

/** A server on a free loopback port; `url` is its base address. */
export async function startServer(options: ServeOptions): Promise<Server & { url: string }> {
  const server = await buildServer({ logLevel: false, ...options });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return { ...server, url };
}

export interface Field {
  name: string;
  value: string | Uint8Array;
  filename?: string;
}

export async function postForm(url: string, fields: Field[], headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; headers: Headers; body: any }> {
  const form = new FormData();
  for (const f of fields) {
    if (typeof f.value === 'string') form.append(f.name, f.value);
    else form.append(f.name, new Blob([f.value]), f.filename ?? 'upload');
  }
  const response = await fetch(`${url}/api/v1/analyze`, { method: 'POST', body: form, headers, signal });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(OPENAPI_DOCUMENT as object, 'openapi');

/** Asserts that a real answer is what the OpenAPI document says this route answers with this status. */
export function assertMatchesSpec(path: keyof typeof OPENAPI_DOCUMENT.paths, method: 'get' | 'post', status: number, body: unknown): void {
  const operation = (OPENAPI_DOCUMENT.paths[path] as Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref: string } }> }> }>)[method];
  const response = operation?.responses[status];
  assert.ok(response, `the OpenAPI document has no ${status} answer for ${method.toUpperCase()} ${path}`);
  const ref = response.content?.['application/json']?.schema?.$ref;
  assert.ok(ref, `${method.toUpperCase()} ${path} ${status} has no JSON schema`);
  const validate = ajv.getSchema(`openapi${ref}`)!;
  assert.ok(validate(body), `${method.toUpperCase()} ${path} ${status} does not match ${ref}: ${ajv.errorsText(validate.errors)}`);
}

/**
 * Sends `total` bytes of a PNG-looking file (a real PNG's first bytes, then zeros) as a multipart upload, its
 * length declared up front or chunked, and stops sending as soon as the server answers (refusals come early).
 */
export function largeUpload(url: string, total: number, options: { chunked?: boolean } = {}): Promise<{ status: number; body: any; sent: number; retryAfter?: string }> {
  const boundary = 'cxr-test-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="huge.png"\r\nContent-Type: image/png\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const headers: Record<string, string> = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  if (!options.chunked) headers['content-length'] = String(head.length + total + tail.length);
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/analyze`, { method: 'POST', headers });
    let answered = false;
    let sent = 0;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), sent, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    // The server closes the connection after refusing; writes still in flight then fail, which is expected.
    req.on('error', (error) => answered || reject(error));
    const chunk = Buffer.alloc(1 << 20);
    chunk.set(readFileSync(NIH_IMAGE).subarray(0, 64));
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!answered) req.end(tail);
    };
    req.write(head);
    pump();
  });
}
