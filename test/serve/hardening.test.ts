/**
 * Issue 17 on the real server on loopback: security headers on every answer, Host checks (DNS rebinding),
 * cross-origin POSTs refused before the body is read, CORS only where configured, 400 for empty lists, 405 with
 * Allow, no client file names or DICOM free text in logs or answers, saved uploads named by the server with mode
 * 0600 and only once decoded.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { NAME_LIMIT } from '../../src/serve/plugins/analyze.js';
import { el, grayImage, writeDicom } from '../imaging/dicom-writer.js';
import { assertMatchesSpec, makeTestModel, NIH_IMAGE, postForm, startServer } from './helpers.js';

const png = new Uint8Array(readFileSync(NIH_IMAGE));
const modelPath = makeTestModel();
const logs = new PassThrough();
const logText: string[] = [];
logs.on('data', (chunk: Buffer) => logText.push(chunk.toString('utf8')));
const uploads = mkdtempSync(join(tmpdir(), 'cxr-uploads-'));
let server: Awaited<ReturnType<typeof startServer>>;
let port: number;

before(async () => {
  server = await startServer({ modelPath, workers: 1, logLevel: 'info', logStream: logs, saveUploadsTo: uploads });
  port = Number(new URL(server.url).port);
});
after(() => server.app.close());

/** A raw HTTP request (fetch cannot set Host), with an optional body streamed in 1 MB chunks up to `bodyBytes`. */
function raw(
  url: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: Uint8Array; bodyBytes?: number },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any; sent: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${options.path ?? '/'}`, { method: options.method ?? 'GET', headers: options.headers });
    let answered = false;
    let sent = 0;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text && res.headers['content-type']?.includes('json') ? JSON.parse(text) : text, sent });
      });
    });
    req.on('error', (error) => answered || reject(error));
    if (options.bodyBytes) {
      const chunk = Buffer.alloc(1 << 20);
      const pump = () => {
        while (!answered && sent < options.bodyBytes!) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (!answered) req.end();
      };
      pump();
    } else req.end(options.body);
  });
}

/** A multipart body with one image part, as bytes (for raw requests). */
function multipart(name: string, bytes: Uint8Array, fields: Record<string, string> = {}): { body: Uint8Array; type: string } {
  const boundary = 'cxr-hardening-boundary';
  const parts = [
    ...Object.entries(fields).map(([k, v]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    Buffer.from(bytes),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ];
  return { body: new Uint8Array(Buffer.concat(parts)), type: `multipart/form-data; boundary=${boundary}` };
}

function assertSecurityHeaders(headers: Headers | Record<string, string | string[] | undefined>, what: string): void {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] as string | undefined)) ?? '';
  const csp = get('content-security-policy');
  assert.match(csp, /default-src 'self'/, `${what}: CSP ${csp}`);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/, `${what}: scripts from this origin and WebAssembly only, no eval`);
  assert.match(csp, /frame-ancestors 'none'/, what);
  assert.match(csp, /object-src 'none'/, what);
  assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|upgrade-insecure-requests/, what);
  assert.equal(get('x-content-type-options'), 'nosniff', what);
  assert.equal(get('x-frame-options'), 'DENY', what);
  assert.equal(get('referrer-policy'), 'no-referrer', what);
}

describe('security headers', () => {
  it('are on every answer: the viewer, its assets, the API, errors, 404 and 405', async () => {
    const viewer = await fetch(`${server.url}/`);
    assert.equal(viewer.status, 200);
    assertSecurityHeaders(viewer.headers, 'GET /');
    const html = await viewer.text();
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    assert.ok(asset, 'the viewer page loads a script from /assets');
    assertSecurityHeaders((await fetch(`${server.url}${asset}`)).headers, asset);
    for (const path of ['/api/v1/model', '/healthz', '/api/v1/openapi.json', '/models/current.onnx', '/no/such/thing']) {
      const response = await fetch(`${server.url}${path}`);
      await response.arrayBuffer();
      assertSecurityHeaders(response.headers, `GET ${path}`);
    }
    const refused = await postForm(server.url, [{ name: 'image', value: new TextEncoder().encode('text'), filename: 'a.txt' }]);
    assert.equal(refused.status, 415);
    assertSecurityHeaders(refused.headers, 'a refused POST');
    const wrongMethod = await fetch(`${server.url}/api/v1/analyze`);
    await wrongMethod.arrayBuffer();
    assertSecurityHeaders(wrongMethod.headers, 'a 405');
  });
});

describe('Host and Origin checks on loopback (DNS rebinding, cross-site POSTs)', () => {
  it('answers Host 127.0.0.1, localhost and [::1] with the port; refuses any other name with 403', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      const ok = await raw(server.url, { path: '/healthz', headers: { host } });
      assert.equal(ok.status, 200, `Host ${host}`);
    }
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`, '127.0.0.1']) {
      const refused = await raw(server.url, { path: '/api/v1/model', headers: { host } });
      assert.equal(refused.status, 403, `Host ${host}`);
      assert.equal(refused.body.code, 'CXR_HOST_NOT_ALLOWED');
      assertSecurityHeaders(refused.headers, `Host ${host}`);
    }
  });

  it('refuses a cross-origin POST with 403 before reading its body (a 40 MB upload is cut short)', async () => {
    const total = 40 * 1024 * 1024;
    const started = performance.now();
    const result = await raw(server.url, {
      method: 'POST',
      path: '/api/v1/analyze',
      headers: { origin: 'https://evil.example', 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(total) },
      bodyBytes: total,
    });
    assert.equal(result.status, 403, JSON.stringify(result.body));
    assertMatchesSpec('/api/v1/analyze', 'post', 403, result.body);
    assert.equal(result.body.code, 'CXR_CROSS_ORIGIN');
    assert.match(result.body.message, /cross-origin requests from https:\/\/evil\.example are not allowed/);
    assert.ok(result.sent < total, `the client was stopped after ${result.sent} of ${total} bytes`);
    assert.equal(result.headers['access-control-allow-origin'], undefined, 'no CORS without --cors');
    const nullOrigin = await postForm(server.url, [{ name: 'image', value: png, filename: 'a.png' }, { name: 'heatmap', value: 'none' }], { origin: 'null' });
    assert.equal(nullOrigin.status, 403);
    console.log(`# cross-origin POST refused after ${result.sent} of ${total} bytes sent, in ${Math.round(performance.now() - started)} ms`);
  });

  it('answers a same-origin POST (the viewer) and one without Origin (curl)', async () => {
    const fields = [{ name: 'image', value: png, filename: 'a.png' }, { name: 'heatmap', value: 'none' }];
    assert.equal((await postForm(server.url, fields, { origin: server.url })).status, 200);
    assert.equal((await postForm(server.url, fields)).status, 200);
  });

  it('a server on 0.0.0.0 takes any Host; --allow-host adds names on loopback; --cors lets one origin in', async () => {
    const open = await buildAndListen({ host: '0.0.0.0' });
    try {
      assert.equal((await raw(open.url, { path: '/healthz', headers: { host: `cxr.example.org:${open.port}` } })).status, 200);
    } finally {
      await open.server.app.close();
    }
    const proxied = await buildAndListen({ allowedHosts: ['cxr.example.org'], corsOrigins: ['https://viewer.example.org'] });
    try {
      assert.equal((await raw(proxied.url, { path: '/healthz', headers: { host: 'cxr.example.org' } })).status, 200);
      assert.equal((await raw(proxied.url, { path: '/healthz', headers: { host: 'other.example.org' } })).status, 403);
      const preflight = await raw(proxied.url, {
        method: 'OPTIONS',
        path: '/api/v1/analyze',
        headers: { origin: 'https://viewer.example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://viewer.example.org');
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
      const form = multipart('a.png', png, { heatmap: 'none' });
      const allowed = await raw(proxied.url, { method: 'POST', path: '/api/v1/analyze', headers: { origin: 'https://viewer.example.org', 'content-type': form.type }, body: form.body });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://viewer.example.org');
      assert.match(String(allowed.headers['access-control-expose-headers']), /retry-after/);
      const other = await raw(proxied.url, { method: 'POST', path: '/api/v1/analyze', headers: { origin: 'https://evil.example', 'content-type': form.type }, body: form.body });
      assert.equal(other.status, 403);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    } finally {
      await proxied.server.app.close();
    }
  });
});

async function buildAndListen(options: { host?: string; allowedHosts?: string[]; corsOrigins?: string[] }) {
  const { buildServer } = await import('../../src/serve/index.js');
  const built = await buildServer({ modelPath, workers: 1, logLevel: false, allowedHosts: options.allowedHosts, corsOrigins: options.corsOrigins });
  await built.app.listen({ host: options.host ?? '127.0.0.1', port: 0 });
  const bound = built.app.server.address() as { port: number };
  return { server: built, port: bound.port, url: `http://127.0.0.1:${bound.port}` };
}

describe('errors', () => {
  const image = { name: 'image', value: png, filename: 'a.png' };

  it('an empty findings or methods list: 400 naming the field, not 500', async () => {
    for (const [field, value] of [['findings', ''], ['findings', ' , ,'], ['methods', ','], ['methods', '']] as const) {
      const result = await postForm(server.url, [image, { name: field, value }]);
      assert.equal(result.status, 400, `${field}="${value}": ${JSON.stringify(result.body)}`);
      assertMatchesSpec('/api/v1/analyze', 'post', 400, result.body);
      assert.equal(result.body.code, 'CXR_BAD_OPTION');
      assert.match(result.body.message, new RegExp(`^${field} is empty`));
    }
  });

  it('a wrong method on a known route: 405 with Allow; an unknown route stays 404', async () => {
    for (const [method, path, allow] of [
      ['GET', '/api/v1/analyze', 'POST'],
      ['PUT', '/api/v1/analyze', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/api/v1/model', 'GET, HEAD'],
      ['POST', '/api/v1/openapi.json', 'GET, HEAD'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { method });
      const body = (await response.json()) as { code: string; message: string };
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get('allow'), allow, `${method} ${path}`);
      assert.equal(body.code, 'CXR_METHOD_NOT_ALLOWED');
      assert.match(body.message, new RegExp(`answers ${allow}, not ${method}`));
    }
    assert.equal((await fetch(`${server.url}/api/v1/nothing`, { method: 'POST' })).status, 404);
  });
});

describe('privacy', () => {
  const secretName = 'DOE^JOHN MRN-4417-2290 chest.png';

  it('client file names never reach the logs; answers echo at most 100 characters of them', async () => {
    const from = logText.length;
    const garbage = await postForm(server.url, [{ name: 'image', value: new TextEncoder().encode('not an image at all'), filename: secretName }]);
    assert.equal(garbage.status, 415);
    assert.match(garbage.body.message, /^DOE\^JOHN MRN-4417-2290 chest\.png: not a PNG, JPEG or DICOM image/);
    const truncated = await postForm(server.url, [{ name: 'image', value: png.subarray(0, 4000), filename: secretName }]);
    assert.equal(truncated.status, 422);
    assert.match(truncated.body.message, /^DOE\^JOHN MRN-4417-2290 chest\.png: cannot decode PNG/);
    const empty = await postForm(server.url, [{ name: 'image', value: new Uint8Array(0), filename: secretName }]);
    assert.equal(empty.status, 400);
    const long = 'x'.repeat(81_862) + '.png';
    const served = await postForm(server.url, [{ name: 'image', value: png, filename: long }, { name: 'heatmap', value: 'none' }]);
    assert.equal(served.status, 200);
    assert.equal([...served.body.image.name].length, NAME_LIMIT);
    assert.ok(served.body.image.name.endsWith('\u2026'));
    const longBad = await postForm(server.url, [{ name: 'image', value: png.subarray(0, 4000), filename: long }]);
    assert.ok(longBad.body.message.length < NAME_LIMIT + 200, `a refusal echoes a bounded name (${longBad.body.message.length} characters)`);
    const written = logText.slice(from).join('');
    assert.match(written, /"msg":"request refused"/, 'the refusals were logged');
    assert.match(written, /cannot decode PNG/, 'with their reasons');
    for (const leak of ['DOE', 'MRN-4417', 'xxxxxxxxxx']) assert.ok(!written.includes(leak), `the log mentions "${leak}"`);
  });

  it('free-text and patient DICOM fields (Series Description, name, ID, birth date, accession) are neither answered nor logged', async () => {
    const decoded = await decodeImageFile(NIH_IMAGE);
    const pixels = decoded.pixels as Uint8Array;
    const dicom = writeDicom(
      grayImage({ rows: decoded.height, columns: decoded.width, bitsAllocated: 8, bitsStored: 8, samples: pixels }, [
        el(0x0008103e, 'LO', 'SMITH JANE follow-up 4417'),
        el(0x00100010, 'PN', 'ROE^RICHARD'),
        el(0x00100020, 'LO', 'MRN-99120'),
        el(0x00100030, 'DA', '19470311'),
        el(0x00080050, 'SH', 'ACC-55731'),
        el(0x00185101, 'CS', 'PA'),
        el(0x00180015, 'CS', 'CHEST'),
      ]),
    );
    const from = logText.length;
    const result = await postForm(server.url, [{ name: 'image', value: dicom, filename: 'study.dcm' }, { name: 'heatmap', value: 'none' }]);
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assertMatchesSpec('/api/v1/analyze', 'post', 200, result.body);
    assert.equal(result.body.image.metadata.viewPosition, 'PA', 'coded fields are kept');
    assert.equal(result.body.image.metadata.seriesDescription, undefined);
    const answer = JSON.stringify(result.body);
    const logged = logText.slice(from).join('');
    for (const phi of ['SMITH', 'ROE', 'RICHARD', 'MRN-99120', '19470311', 'ACC-55731']) {
      assert.ok(!answer.includes(phi), `the answer quotes "${phi}"`);
      assert.ok(!logged.includes(phi), `the log quotes "${phi}"`);
    }
  });

  it('--save-uploads: a server-generated name (not X-Request-Id), mode 0600, undecodable uploads not kept', async () => {
    const before = new Set(readdirSync(uploads));
    const kept = await postForm(server.url, [{ name: 'image', value: png, filename: secretName }, { name: 'heatmap', value: 'none' }], { 'x-request-id': '..' });
    assert.equal(kept.status, 200);
    await postForm(server.url, [{ name: 'image', value: png, filename: 'b.png' }, { name: 'heatmap', value: 'none' }], { 'x-request-id': 'same-id' });
    await postForm(server.url, [{ name: 'image', value: png, filename: 'c.png' }, { name: 'heatmap', value: 'none' }], { 'x-request-id': 'same-id' });
    const bad = await postForm(server.url, [{ name: 'image', value: png.subarray(0, 4000), filename: 'cut.png' }], { 'x-request-id': 'bad-one' });
    assert.equal(bad.status, 422);
    const added = readdirSync(uploads).filter((f) => !before.has(f));
    assert.equal(added.length, 3, `three decoded uploads kept, two of them under the same X-Request-Id: ${added.join(', ')}`);
    for (const file of added) {
      assert.match(file, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png$/, file);
      assert.equal(statSync(join(uploads, file)).mode & 0o777, 0o600, `${file} is readable by its owner only`);
      assert.deepEqual(new Uint8Array(readFileSync(join(uploads, file))), png);
    }
    const savedAs = logText.join('').match(/"savedAs":"([^"]+)"/g)!.map((m) => m.slice(11, -1));
    assert.ok(added.every((file) => savedAs.includes(file)), 'each kept file is named in its request\'s log line');
  });
});
