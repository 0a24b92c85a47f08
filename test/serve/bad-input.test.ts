/**
 * Bad input to POST /api/v1/analyze: each gets a 4xx JSON error (checked against the OpenAPI document) whose
 * message names the problem, and the server goes on serving real images afterwards.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { el, writeDicom } from '../imaging/dicom-writer.js';
import { assertMatchesSpec, largeUpload, makeTestModel, NIH_IMAGE, postForm, startServer } from './helpers.js';

const png = new Uint8Array(readFileSync(NIH_IMAGE));
let server: Awaited<ReturnType<typeof startServer>>;

before(async () => {
  server = await startServer({ modelPath: makeTestModel(), workers: 1 });
});
after(() => server.app.close());

function assertError(result: { status: number; body: any }, status: number, code: string, message: RegExp): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assertMatchesSpec('/api/v1/analyze', 'post', status, result.body);
  assert.equal(result.body.code, code);
  assert.match(result.body.message, message);
}


describe('bad input to POST /api/v1/analyze', () => {
  it('garbage bytes: 415 naming the file and its first bytes', async () => {
    const garbage = new TextEncoder().encode('this is not an image, just some text pretending to be one');
    assertError(await postForm(server.url, [{ name: 'image', value: garbage, filename: 'notes.txt' }]), 415, 'CXR_UNSUPPORTED_IMAGE', /notes\.txt: not a PNG, JPEG or DICOM image \(first bytes 74 68 69 73/);
  });

  it('a truncated PNG: 422 naming the file and PNG', async () => {
    assertError(await postForm(server.url, [{ name: 'image', value: png.subarray(0, 4000), filename: 'cut.png' }]), 422, 'CXR_UNREADABLE_IMAGE', /cut\.png: cannot decode PNG/);
  });

  it('a DICOM without pixel data (a structured report): 422 saying so', async () => {
    const report = writeDicom([el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.88.11'), el(0x00080060, 'CS', 'SR')]);
    assertError(await postForm(server.url, [{ name: 'image', value: report, filename: 'report.dcm' }]), 422, 'CXR_UNREADABLE_IMAGE', /report\.dcm: no Pixel Data \(7FE0,0010\): not an image/);
  });

  it('a 200 MB upload with its length declared: 413 before the body is read', async () => {
    const result = await largeUpload(server.url, 200 * 1024 * 1024);
    assertError(result, 413, 'CXR_UPLOAD_TOO_LARGE', /200\.0 MB\) is larger than this server's limit of 50\.0 MB/);
    assert.ok(result.sent < 200 * 1024 * 1024, 'the client was stopped before sending everything');
  });

  it('a 200 MB chunked upload (no length): 413 once the limit is crossed', async () => {
    const result = await largeUpload(server.url, 200 * 1024 * 1024, { chunked: true });
    assertError(result, 413, 'CXR_UPLOAD_TOO_LARGE', /larger than this server's limit of 50\.0 MB/);
  });

  it('the wrong content type: 415 naming it', async () => {
    const response = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    assertError({ status: response.status, body: await response.json() }, 415, 'CXR_NOT_MULTIPART', /multipart\/form-data.*not "image\/png"/);
    const json = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"image":"x"}' });
    assertError({ status: json.status, body: await json.json() }, 415, 'CXR_NOT_MULTIPART', /not "application\/json"/);
  });

  it('an empty form, a form without the image, an empty file: 400 saying what is missing', async () => {
    const empty = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--\r\n' });
    assertError({ status: empty.status, body: await empty.json() }, 400, 'CXR_NO_IMAGE', /no image; send the file in the field "image"/);
    assertError(await postForm(server.url, [{ name: 'heatmap', value: 'none' }]), 400, 'CXR_NO_IMAGE', /field "image"/);
    assertError(await postForm(server.url, [{ name: 'image', value: new Uint8Array(0), filename: 'zero.png' }]), 400, 'CXR_EMPTY_IMAGE', /zero\.png: the uploaded file is empty/);
  });

  it('unknown options: 400 naming the field and the choices', async () => {
    const image = { name: 'image', value: png, filename: 'a.png' };
    assertError(await postForm(server.url, [image, { name: 'findings', value: 'Effusion,Broken_Heart' }]), 400, 'CXR_UNKNOWN_FINDING', /findings: the model has no finding "Broken_Heart"; it knows Atelectasis/);
    assertError(await postForm(server.url, [image, { name: 'methods', value: 'magic' }]), 400, 'CXR_UNKNOWN_METHOD', /unknown explanation method "magic"; choose from gradcam, gradcam\+\+/);
    assertError(await postForm(server.url, [image, { name: 'heatmap', value: 'gif' }]), 400, 'CXR_BAD_OPTION', /heatmap must be one of png, raw, both, none, got "gif"/);
    assertError(await postForm(server.url, [image, { name: 'colour', value: 'red' }]), 400, 'CXR_UNKNOWN_FIELD', /unknown form field "colour"/);
    assertError(await postForm(server.url, [{ name: 'scan', value: png, filename: 'a.png' }]), 400, 'CXR_UNKNOWN_FIELD', /unexpected file field "scan"/);
  });

  it('an unknown route: 404 JSON', async () => {
    const response = await fetch(`${server.url}/api/v2/analyze`);
    const body = (await response.json()) as { code: string; message: string };
    assert.equal(response.status, 404);
    assert.equal(body.code, 'CXR_NOT_FOUND');
    assert.match(body.message, /no route for GET \/api\/v2\/analyze/);
  });

  it('after all of that the server still analyses a real image', async () => {
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { status: string; pool: { workers: number; busy: number } };
    assert.equal(health.status, 'ok');
    assert.equal(health.pool.workers, 1);
    const { status, body } = await postForm(server.url, [{ name: 'image', value: png, filename: 'a.png' }, { name: 'heatmap', value: 'none' }]);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.findings.length, 14);
  });
});
