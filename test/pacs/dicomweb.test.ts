/**
 * The DICOMweb client against a real Orthanc (search, retrieve, store), and against what a real PACS does on a bad
 * day: not listening yet, too slow, busy (503 + Retry-After), or answering nonsense. The bad days are small
 * node:http servers that misbehave on purpose: no PACS misbehaves on request.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { DicomWebClient, PacsError, type RetryEvent } from '../../src/pacs/dicomweb.js';
import { DICOM_DIR, freePort, type RunningOrthanc, startOrthanc, storescu } from './orthanc.js';

const CXR08 = join(DICOM_DIR, 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm');
const CXR04 = join(DICOM_DIR, 'cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm');

describe('DICOMweb client on a real Orthanc', () => {
  let orthanc: RunningOrthanc;
  before(async () => {
    orthanc = await startOrthanc();
  });
  after(async () => orthanc?.stop());

  test('STOW-RS stores a real file, QIDO-RS finds it, WADO-RS returns the same pixel data', async () => {
    const client = new DicomWebClient(orthanc.dicomweb);
    const bytes = new Uint8Array(readFileSync(CXR08));
    const stored = await client.store([bytes]);
    assert.equal(stored.stored.length, 1);
    const found = DicomWebClient.refs(await client.searchInstances({ Modality: 'DX' }));
    assert.equal(found.length, 1);
    assert.equal(found[0].sop, stored.stored[0]);
    const back = await client.retrieveInstance(found[0]);
    // Orthanc keeps the data set as sent (its own meta header in front): the last MiB, the pixels, is identical.
    assert.deepEqual(Buffer.from(back.subarray(back.length - 1 << 20)), Buffer.from(bytes.subarray(bytes.length - 1 << 20)));
    // Storing the same instance again is accepted (nothing duplicated): a retried STOW is harmless.
    await client.store([bytes]);
    assert.equal((await client.searchInstances({ Modality: 'DX' })).length, 1);
  });

  test('a compressed instance sent by storescu comes back in its own transfer syntax', async () => {
    await storescu(orthanc, [CXR04]);
    const client = new DicomWebClient(orthanc.dicomweb);
    const refs = DicomWebClient.refs(await client.searchInstances({ Modality: 'DX' }));
    assert.equal(refs.length, 2);
    const sizes = await Promise.all(refs.map(async (r) => (await client.retrieveInstance(r)).length));
    assert.ok(sizes.some((s) => Math.abs(s - readFileSync(CXR04).length) < 4096), `sizes ${sizes}`);
  });

  test('paging: every page of a search is followed', async () => {
    const client = new DicomWebClient(orthanc.dicomweb);
    assert.equal((await client.searchInstances({}, 1)).length, 2);
  });

  test('no match is an empty list; a wrong DICOMweb path is a clear 404 error without retries', async () => {
    const client = new DicomWebClient(orthanc.dicomweb);
    assert.deepEqual(await client.searchInstances({ Modality: 'MR' }), []);
    const retries: RetryEvent[] = [];
    const wrong = new DicomWebClient(`${orthanc.url}/no-such-root`, { onRetry: (e) => retries.push(e) });
    await assert.rejects(wrong.searchInstances({}), (e: PacsError) => e.kind === 'http' && e.status === 404 && /not found/.test(e.message));
    assert.equal(retries.length, 0);
  });

  test('a PACS that is down when asked is retried with back-off until it is up', async () => {
    const port = await freePort();
    const retries: RetryEvent[] = [];
    const client = new DicomWebClient(`http://127.0.0.1:${port}/dicom-web`, { backoffMs: 200, retries: 8, onRetry: (e) => retries.push(e) });
    const search = client.searchInstances({});
    await new Promise((r) => setTimeout(r, 500));
    const late = await startOrthanc({ httpPort: port });
    try {
      assert.deepEqual(await search, []);
      assert.ok(retries.length >= 2, `${retries.length} retries`);
      assert.ok(retries.every((r, i) => r.waitMs === 200 * 2 ** i && /could not be reached/.test(r.reason)));
    } finally {
      await late.stop();
    }
  });
});

describe('DICOMweb client against a misbehaving server', () => {
  let server: Server;
  let root: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  before(async () => {
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    root = `http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('nobody listening: a clear "could not be reached" after the last retry', async () => {
    const client = new DicomWebClient(`http://127.0.0.1:${await freePort()}`, { retries: 2, backoffMs: 10 });
    await assert.rejects(client.searchInstances({}), (e: PacsError) => e.kind === 'unreachable' && /could not be reached \(ECONNREFUSED\), 3 tries/.test(e.message));
  });

  test('too slow: each try is cut at the deadline, and a later fast answer is taken', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls <= 2) setTimeout(() => res.end('[]'), 1000).unref();
      else res.end('[]');
    };
    const retries: RetryEvent[] = [];
    const client = new DicomWebClient(root, { timeoutMs: 200, backoffMs: 10, onRetry: (e) => retries.push(e) });
    const started = Date.now();
    assert.deepEqual(await client.searchInstances({}), []);
    assert.equal(calls, 3);
    assert.ok(Date.now() - started < 900, 'the slow answers were not waited for');
    assert.match(retries[0].reason, /did not answer within 200 ms/);
    handler = (_req, res) => setTimeout(() => res.end('[]'), 1000).unref();
    await assert.rejects(new DicomWebClient(root, { timeoutMs: 100, retries: 1, backoffMs: 10 }).searchInstances({}), (e: PacsError) => e.kind === 'timeout');
  });

  test('busy: 503 with Retry-After is waited out as the PACS asks', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(503, { 'retry-after': '1' }).end();
      else res.end('[]');
    };
    const retries: RetryEvent[] = [];
    await new DicomWebClient(root, { onRetry: (e) => retries.push(e) }).searchInstances({});
    assert.equal(retries[0].waitMs, 1000);
    assert.match(retries[0].reason, /HTTP 503/);
  });

  test('malformed answers are clear errors, not retried', async () => {
    const cases: [string, (res: ServerResponse) => void, RegExp][] = [
      ['search', (res) => res.end('{not json'), /search: the PACS answered with invalid JSON/],
      ['search', (res) => res.end('{"a":1}'), /search: expected a JSON array of datasets, got object/],
      ['search', (res) => res.end('[1]'), /item 0 is not a DICOM JSON dataset/],
      ['refs', (res) => res.end('[{"00080018":{"vr":"UI","Value":["1.2"]}}]'), /result 1 lacks its Study, Series or SOP Instance UID/],
      ['retrieve', (res) => res.writeHead(200, { 'content-type': 'application/dicom' }).end('x'), /expected a multipart\/related answer/],
      ['retrieve', (res) => res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"' }).end('x'), /without a boundary/],
      ['retrieve', (res) => res.writeHead(200, { 'content-type': 'multipart/related; boundary=b' }).end('--b\r\nContent-Type: application/dicom\r\n\r\nDICM'), /ends inside part 1/],
      ['retrieve', (res) => res.writeHead(200, { 'content-type': 'multipart/related; boundary=b' }).end('--b\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--b--'), /not a DICOM Part 10 file/],
      ['retrieve', (res) => res.writeHead(200, { 'content-type': 'multipart/related; boundary=b' }).end('--b--'), /expected 1 instance, the PACS sent 0/],
      ['store', (res) => res.end('[]'), /store: the PACS answer is not a DICOM JSON dataset/],
      ['store', (res) => res.end('{"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2"]},"00081197":{"vr":"US","Value":[272]}}]}}'), /refused 1 of 1 instances \(failure reasons 272\)/],
      ['store', (res) => res.end('{}'), /sent 1 instances, the PACS confirmed 0/],
    ];
    for (const [operation, answer, expected] of cases) {
      let calls = 0;
      handler = (_req, res) => {
        calls++;
        answer(res);
      };
      const client = new DicomWebClient(root, { backoffMs: 10 });
      const ref = { study: '1.2', series: '1.3', sop: '1.4' };
      const call =
        operation === 'search' ? client.searchInstances({}) : operation === 'refs' ? client.searchInstances({}).then(DicomWebClient.refs) : operation === 'retrieve' ? client.retrieveInstance(ref) : client.store([new Uint8Array(4)]);
      await assert.rejects(call, (e: Error) => e instanceof PacsError && expected.test(e.message), `${operation}: ${expected}`);
      assert.equal(calls, 1, `${expected} was not retried`);
    }
  });

  test('an answer cut short mid-body is retried', async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('[');
        setTimeout(() => res.destroy(), 20);
      } else res.end('[]');
    };
    assert.deepEqual(await new DicomWebClient(root, { backoffMs: 10 }).searchInstances({}), []);
    assert.equal(calls, 2);
  });

  test('a URL that is not http(s) is refused at once', () => {
    assert.throws(() => new DicomWebClient('ftp://pacs'), /http or https/);
    assert.throws(() => new DicomWebClient('pacs:8042'), /http or https|not a URL/);
  });
});
