/**
 * An API that needs a key (issue 19): `cxr token create` prints a token once and keeps only its hash (mode 0600);
 * `cxr serve --auth` answers 401 without a valid bearer token, before reading an upload, while /healthz and the
 * OpenAPI document stay open and the token never reaches a log; `--tls-cert/--tls-key` serve HTTPS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { buildServer } from '../../src/serve/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { assertMatchesSpec, largeUpload, makeTestModel, NIH_IMAGE, postForm, startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-auth-'));
const tokensFile = join(dir, 'tokens.txt');
const modelPath = makeTestModel();
const image = { name: 'image', value: new Uint8Array(readFileSync(NIH_IMAGE)), filename: 'chest.png' };

function cxr(...args: string[]) {
  return spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
}

describe('cxr token', () => {
  it('create prints a new token once and stores only its hash, in a file only its owner reads; labels are unique', () => {
    const run = cxr('token', 'create', '--file', tokensFile, '--label', 'pacs-bridge');
    assert.equal(run.status, 0, run.stderr);
    const token = run.stdout.trim();
    assert.match(token, /^cxr_[\w-]{43}$/);
    const stored = readFileSync(tokensFile, 'utf8');
    assert.ok(!stored.includes(token), 'the file holds the token itself');
    assert.ok(stored.includes(`${createHash('sha256').update(token).digest('hex')}  pacs-bridge`));
    assert.equal(statSync(tokensFile).mode & 0o777, 0o600);

    const again = cxr('token', 'create', '--file', tokensFile, '--label', 'pacs-bridge');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already has a token labelled "pacs-bridge"/);
    const badLabel = cxr('token', 'create', '--file', tokensFile, '--label', 'two words');
    assert.equal(badLabel.status, 1);
    assert.match(badLabel.stderr, /a token label is 1-64 letters, digits or \. _ @ - \(got "two words"\)/);
    const second = cxr('token', 'create', '--file', tokensFile, '--label', 'viewer');
    assert.equal(second.status, 0, second.stderr);
    assert.notEqual(second.stdout.trim(), token);
    assert.deepEqual(cxr('token', 'list', '--file', tokensFile).stdout.trim().split('\n'), ['pacs-bridge', 'viewer']);
  });

  it('a file whose tokens were all revoked (comments left) takes a new token; a malformed one is named, not appended to', () => {
    const revoked = join(dir, 'revoked.txt');
    writeFileSync(revoked, '# cxr-lens API tokens\n# every token revoked\n', { mode: 0o600 });
    const run = cxr('token', 'create', '--file', revoked, '--label', 'again');
    assert.equal(run.status, 0, run.stderr);
    assert.ok(readFileSync(revoked, 'utf8').endsWith(`${createHash('sha256').update(run.stdout.trim()).digest('hex')}  again\n`));
    const malformed = join(dir, 'malformed.txt');
    writeFileSync(malformed, 'not a hash line\n');
    const refused = cxr('token', 'create', '--file', malformed, '--label', 'x');
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /malformed\.txt, line 1: expected/);
    assert.equal(readFileSync(malformed, 'utf8'), 'not a hash line\n');
  });

  it('a malformed token file, an empty one, or half a TLS pair stops the server from starting, naming the problem', async () => {
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, '# comment\ncxr_plaintext-token alice\n');
    await assert.rejects(buildServer({ modelPath, workers: 1, logLevel: false, authTokensFile: bad }), /bad\.txt, line 2: expected "<sha256 hex of a token> <label>"/);
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '# nothing yet\n');
    await assert.rejects(buildServer({ modelPath, workers: 1, logLevel: false, authTokensFile: empty }), /holds no tokens/);
    await assert.rejects(buildServer({ modelPath, workers: 1, logLevel: false, tlsCertFile: join(dir, 'cert.pem') }), /both a certificate \(--tls-cert\) and its private key/);
    await assert.rejects(buildServer({ modelPath, workers: 1, logLevel: false, tlsCertFile: join(dir, 'none.pem'), tlsKeyFile: join(dir, 'none.key') }), /cannot read the TLS certificate .*none\.pem: ENOENT/);
  });
});

describe('cxr serve --auth', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let token: string;
  const logText: string[] = [];
  before(async () => {
    const run = cxr('token', 'create', '--file', tokensFile, '--label', 'radiology-ai');
    assert.equal(run.status, 0, run.stderr);
    token = run.stdout.trim();
    const logs = new PassThrough();
    logs.on('data', (chunk: Buffer) => logText.push(chunk.toString('utf8')));
    server = await startServer({ modelPath, workers: 1, authTokensFile: tokensFile, logLevel: 'info', logStream: logs });
  });
  after(() => server.app.close());

  it('no token or a wrong one: 401 with WWW-Authenticate, and a 40 MB upload is refused before its body is read', async () => {
    const missing = await fetch(`${server.url}/api/v1/model`);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="cxr-lens"');
    const body = (await missing.json()) as { message: string };
    assertMatchesSpec('/api/v1/model', 'get', 401, body);
    assert.match(body.message, /needs an API key/);

    const wrong = await postForm(server.url, [image], { authorization: `Bearer ${token}x` });
    assert.equal(wrong.status, 401);
    assertMatchesSpec('/api/v1/analyze', 'post', 401, wrong.body);
    assert.match(wrong.body.message, /not valid/);
    assert.equal((await postForm(server.url, [image], { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).status, 401);

    const total = 40 * 1024 * 1024;
    const refused = await largeUpload(server.url, total);
    assert.equal(refused.status, 401);
    assert.ok(refused.sent < total, `refused after ${refused.sent} of ${total} bytes`);
  });

  it('the right token: the analysis and the model card; /healthz and the OpenAPI document need none', async () => {
    const analysed = await postForm(server.url, [image, { name: 'heatmap', value: 'none' }], { authorization: `Bearer ${token}` });
    assert.equal(analysed.status, 200, JSON.stringify(analysed.body));
    assert.equal(analysed.body.findings.length, 14);
    assert.equal((await fetch(`${server.url}/api/v1/model`, { headers: { authorization: `bearer ${token}` } })).status, 200);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/api/v1/openapi.json`)).status, 200);
  });

  it('logs name the token by its label, never the token', () => {
    const logged = logText.join('');
    assert.ok(!logged.includes(token), 'a log line holds the token');
    assert.ok(!logged.includes(token.slice(4, 20)), 'a log line holds part of the token');
    assert.match(logged, /"token":"radiology-ai"/);
    assert.match(logged, /refused: not authenticated/);
  });
});

describe('cxr serve --tls-cert --tls-key', () => {
  it('speaks HTTPS with the given certificate (and not plain HTTP on the same port)', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const server = await startServer({ modelPath, workers: 1, tlsCertFile: cert, tlsKeyFile: key });
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const answer = await new Promise<{ status: number; hsts: unknown }>((resolve, reject) => {
        httpsRequest(`${server.url}/healthz`, { ca: readFileSync(cert) }, (res) => {
          res.resume();
          resolve({ status: res.statusCode!, hsts: res.headers['strict-transport-security'] });
        }).on('error', reject).end();
      });
      assert.equal(answer.status, 200);
      assert.match(String(answer.hsts), /max-age=\d+/, 'HTTPS answers carry Strict-Transport-Security');
      const plain = await new Promise<string>((resolve) => {
        httpRequest(server.url.replace('https:', 'http:') + '/healthz', (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode}`);
        }).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)).end();
      });
      assert.doesNotMatch(plain, /HTTP 200/, `plain HTTP answered: ${plain}`);
    } finally {
      await server.app.close();
    }
  });
});
