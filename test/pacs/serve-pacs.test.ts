/**
 * `cxr serve --pacs` against a real Orthanc fed by storescu with the real DICOM files: searching by patient ID,
 * accession and date finds their studies; opening an instance gives what `cxr predict` gives for its file; after
 * `cxr pacs`'s processor ran, the stored-result route reads its SR back equal to that analysis, and the heatmap
 * route gives its Secondary Captures as PNG. A PACS that is down, slow or talking nonsense gets a clear answer
 * within seconds; with --auth the routes need the token; no log line carries patient data or UIDs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../../src/api.js';
import { Analyser } from '../../src/pacs/analyse.js';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { readHeader } from '../../src/pacs/part10.js';
import { PacsProcessor } from '../../src/pacs/processor.js';
import { createToken } from '../../src/serve/tokens.js';
import { assertMatchesSpec, startServer } from '../serve/helpers.js';
import { type PredictedImage, assertNoSecrets, cxr, dicomFiles, predictJson, sopInstanceUid } from './cli.js';
import { freePort, type RunningOrthanc, startOrthanc, storescu } from './orthanc.js';

const run = promisify(execFile);

type Server = Awaited<ReturnType<typeof startServer>>;

async function post(server: Server, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: any; bytes: Uint8Array; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, type, bytes, body: type.startsWith('application/json') ? JSON.parse(Buffer.from(bytes).toString('utf8')) : undefined, ms: performance.now() - started };
}

/** A file's tags as dcmtk reads them (empty when absent). */
async function tags(file: string): Promise<{ patientId: string; accession: string; date: string; modality: string }> {
  const { stdout } = await run('dcmdump', ['-q', '+P', '0010,0020', '+P', '0008,0050', '+P', '0008,0020', '+P', '0008,0060', file]);
  const value = (tag: string) => new RegExp(`^\\(${tag}\\) \\w\\w \\[([^\\]]*)\\]`, 'm').exec(stdout)?.[1].trim() ?? '';
  return { patientId: value('0010,0020'), accession: value('0008,0050'), date: value('0008,0020'), modality: value('0008,0060') };
}

describe('cxr serve --pacs against a real Orthanc', () => {
  let orthanc: RunningOrthanc;
  let server: Server;
  const logs: string[] = [];
  const files = dicomFiles();
  const sopOf = new Map<string, string>();
  const tagsOf = new Map<string, Awaited<ReturnType<typeof tags>>>();
  let predicted = new Map<string, PredictedImage>();
  /** The CR/DX files as the PACS holds them (cxr07 shares cxr06's SOP Instance UID; the PACS keeps the first). */
  let projections: string[] = [];
  const refOf = new Map<string, { study: string; series: string; sop: string }>();
  const analysed = new Map<string, any>();

  before(async () => {
    orthanc = await startOrthanc();
    await storescu(orthanc, files);
    for (const file of files) {
      sopOf.set(file, await sopInstanceUid(file));
      tagsOf.set(file, await tags(file));
    }
    projections = files.filter((f, i) => ['CR', 'DX'].includes(tagsOf.get(f)!.modality) && files.findIndex((g) => sopOf.get(g) === sopOf.get(f)) === i);
    predicted = await predictJson(projections);
    const refs = DicomWebClient.refs(await new DicomWebClient(orthanc.dicomweb).searchInstances({}));
    for (const file of projections) refOf.set(file, refs.find((r) => r.sop === sopOf.get(file))!);
    const logStream = new PassThrough();
    logStream.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
    server = await startServer({ workers: 1, pacsDicomweb: orthanc.dicomweb, logLevel: 'info', logStream });
  });
  after(async () => {
    await server?.app.close();
    await orthanc?.stop();
  });

  test('status says a PACS is configured', async () => {
    const response = await fetch(`${server.url}/api/v1/pacs/status`);
    assert.deepEqual(await response.json(), { configured: true });
  });

  test('search by patient ID, accession number, date or date range finds the studies, with their CR/DX instances only', async () => {
    const search = async (query: Record<string, string>) => {
      const answer = await post(server, '/api/v1/pacs/search', query);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assertMatchesSpec('/api/v1/pacs/search', 'post', 200, answer.body);
      return new Set((answer.body.studies as { instances: { sop: string }[] }[]).flatMap((s) => s.instances.map((i) => i.sop)));
    };
    const sopsWhere = (keep: (t: Awaited<ReturnType<typeof tags>>) => boolean) => new Set(projections.filter((f) => keep(tagsOf.get(f)!)).map((f) => sopOf.get(f)!));
    const byPatient = await search({ patientId: '9RG1' });
    assert.deepEqual(byPatient, sopsWhere((t) => t.patientId === '9RG1'));
    assert.equal(byPatient.size, 2, 'cxr02 and cxr03');
    assert.deepEqual(await search({ accession: 'FUJI95706' }), sopsWhere((t) => t.accession === 'FUJI95706'));
    const byDate = await search({ date: '20040826' });
    assert.deepEqual(byDate, sopsWhere((t) => t.date === '20040826'));
    assert.equal(byDate.size, 4);
    assert.deepEqual(await search({ date: '20200101-20201231' }), sopsWhere((t) => t.date.startsWith('2020')));
    assert.deepEqual(await search({ patientId: '9RG1', date: '20040826' }), byPatient, 'criteria combine');
    assert.equal((await search({ patientId: 'nobody-has-this-id' })).size, 0);
    // The CT's study is found, without instances to open (another modality).
    const ct = await post(server, '/api/v1/pacs/search', { patientId: '2178309' });
    assert.equal(ct.body.studies.length, 1);
    assert.deepEqual(ct.body.studies[0].instances, []);
    assert.deepEqual(ct.body.studies[0].modalities, ['CT']);
    const study = (await post(server, '/api/v1/pacs/search', { accession: 'FUJI95706' })).body.studies[0];
    assert.equal(study.studyDate, '20040826');
    assert.equal(study.patientId, '11RG3');
    assert.equal(study.instances[0].modality, 'CR');
    assert.equal(study.instances[0].stored, false);
  });

  test('a search without criteria, or with a malformed date, is refused naming the field', async () => {
    const none = await post(server, '/api/v1/pacs/search', {});
    assert.equal(none.status, 400);
    assertMatchesSpec('/api/v1/pacs/search', 'post', 400, none.body);
    const badDate = await post(server, '/api/v1/pacs/search', { date: '26/08/2004' });
    assert.equal(badDate.status, 400);
    assert.match(badDate.body.message, /date/);
  });

  test('opening an instance retrieves it and gives what cxr predict gives for its file, with its UIDs', async () => {
    for (const file of projections) {
      const ref = refOf.get(file)!;
      const answer = await post(server, '/api/v1/pacs/analyze', { ...ref, heatmap: 'none' });
      assert.equal(answer.status, 200, `${basename(file)}: ${JSON.stringify(answer.body)}`);
      assertMatchesSpec('/api/v1/pacs/analyze', 'post', 200, answer.body);
      assert.deepEqual(answer.body.pacs, { studyInstanceUid: ref.study, seriesInstanceUid: ref.series, sopInstanceUid: ref.sop });
      const expected = predicted.get(file)!;
      assert.equal(answer.body.verdict, expected.verdict, basename(file));
      assert.deepEqual(answer.body.inputFlags.map((f: { code: string }) => f.code), expected.inputFlags.map((f) => f.code), basename(file));
      assert.equal(answer.body.findings.length, expected.findings.length, basename(file));
      for (const [i, f] of expected.findings.entries()) {
        const got = answer.body.findings[i];
        assert.equal(got.name, f.name);
        assert.equal(got.probability, f.probability, `${basename(file)} ${f.name}: the same double as cxr predict's`);
        assert.equal(got.decision, f.decision);
      }
      analysed.set(file, answer.body);
    }
    const refused = projections.filter((f) => predicted.get(f)!.verdict === 'rejected');
    assert.ok(refused.length >= 3, 'the tibia, hip and teeth are refused as uploads are');
    for (const file of refused) assert.deepEqual(analysed.get(file).findings, []);
  });

  test('the instance route sends the DICOM the PACS holds', async () => {
    const file = projections[0];
    const answer = await post(server, '/api/v1/pacs/instance', refOf.get(file));
    assert.equal(answer.status, 200);
    assert.equal(answer.type, 'application/dicom');
    assert.equal(readHeader(answer.bytes).SOPInstanceUID, sopOf.get(file));
  });

  test('an instance the PACS does not hold is 404; a malformed UID 400', async () => {
    const ref = refOf.get(projections[0])!;
    const missing = await post(server, '/api/v1/pacs/analyze', { ...ref, sop: '1.2.3.4' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'CXR_PACS_NOT_FOUND');
    const bad = await post(server, '/api/v1/pacs/result', { ...ref, sop: '../../system' });
    assert.equal(bad.status, 400);
  });

  test("after cxr pacs ran, the stored-result route reads its SR back equal to the analysis, and its heatmaps as PNG", async () => {
    const before = await post(server, '/api/v1/pacs/result', refOf.get(projections[0]));
    assert.equal(before.status, 200);
    assert.deepEqual(before.body, { result: null });

    const analyser = await Analyser.create(loadModel(), { heatmaps: 'gradcam', heatmapSide: 256 });
    try {
      await new PacsProcessor(new DicomWebClient(orthanc.dicomweb), analyser).processPending();
    } finally {
      await analyser.close();
    }
    let heatmaps = 0;
    for (const file of projections) {
      const ref = refOf.get(file)!;
      const answer = await post(server, '/api/v1/pacs/result', ref);
      assert.equal(answer.status, 200);
      assertMatchesSpec('/api/v1/pacs/result', 'post', 200, answer.body);
      const { result } = answer.body;
      const analysis = analysed.get(file);
      assert.equal(result.verdict, analysis.verdict, basename(file));
      assert.equal(result.model.sha256.length, 64);
      assert.match(result.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.deepEqual(result.flags.map((f: string) => f.split(':')[0]), analysis.inputFlags.map((f: { severity: string; code: string }) => `${f.severity} ${f.code}`));
      assert.equal(result.findings.length, analysis.findings.length);
      for (const [i, f] of analysis.findings.entries()) {
        const stored = result.findings[i];
        assert.equal(stored.name, f.name);
        assert.equal(stored.probability, f.probability, `${basename(file)} ${f.name}: the stored double is the analysed one`);
        assert.equal(stored.threshold, f.threshold);
        assert.equal(stored.thresholdRule, f.thresholdRule);
        assert.equal(stored.calibrated, f.calibrated);
        assert.equal(stored.decision, f.decision);
        assert.equal(stored.decisionNote, f.decisionNote);
        assert.equal(stored.heatmap, f.decision === 'positive' && result.verdict === 'accepted');
        const png = await post(server, '/api/v1/pacs/heatmap', { ...ref, finding: f.name });
        if (stored.heatmap) {
          heatmaps++;
          assert.equal(png.status, 200);
          assert.equal(png.type, 'image/png');
          assert.deepEqual([...png.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
          assert.ok(Buffer.from(png.bytes).readUInt32BE(16) <= 256 && Buffer.from(png.bytes).readUInt32BE(20) <= 256, 'the stored size');
        } else {
          assert.equal(png.status, 404);
          assert.equal(png.body.code, 'CXR_NO_HEATMAP');
        }
      }
    }
    assert.ok(heatmaps > 0, 'some finding was positive, with its heatmap');
    const listed = await post(server, '/api/v1/pacs/search', { date: '20040826' });
    assert.ok(listed.body.studies.every((s: { instances: { stored: boolean }[] }) => s.instances.every((i) => i.stored)), 'the list marks them stored');
  });

  test('no log line carries patient data or UIDs', async () => {
    const secrets = new Set<string>();
    for (const file of files) {
      secrets.add(basename(file));
      secrets.add(sopOf.get(file)!);
      const { stdout } = await run('dcmdump', ['-q', '+P', '0010,0010', '+P', '0010,0020', '+P', '0010,0030', '+P', '0008,0050', '+P', '0020,000d', '+P', '0020,000e', '+P', '0008,1030', file]);
      for (const match of stdout.matchAll(/\[([^\]]+)\]/g)) if (match[1].trim().length >= 4) secrets.add(match[1].trim());
    }
    const text = logs.join('');
    assert.match(text, /pacs search/);
    assert.match(text, /pacs instance analysed/);
    assert.match(text, /pacs stored result/);
    assertNoSecrets(text, secrets);
  });
});

describe('cxr serve --pacs with a PACS having a bad day, and --auth', () => {
  let server: Server;
  let pacs: HttpServer;
  let behaviour: 'slow' | 'nonsense' = 'slow';
  let dir = '';
  let token = '';

  before(async () => {
    // A PACS misbehaving on purpose (no real one does on request): never answering, or answering something that is not DICOMweb.
    pacs = createServer((req, res) => {
      if (behaviour === 'nonsense') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
    });
    const port = await new Promise<number>((resolve) => pacs.listen(0, '127.0.0.1', () => resolve((pacs.address() as { port: number }).port)));
    dir = mkdtempSync(join(tmpdir(), 'cxr-pacs-auth-'));
    token = createToken(join(dir, 'tokens.txt'), 'viewer');
    server = await startServer({ workers: 1, pacsDicomweb: `http://127.0.0.1:${port}/dicom-web`, pacsTimeoutMs: 500, authTokensFile: join(dir, 'tokens.txt') });
  });
  after(async () => {
    await server?.app.close();
    pacs?.closeAllConnections();
    pacs?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const auth = () => ({ authorization: `Bearer ${token}` });

  test('without the token the PACS routes answer 401', async () => {
    const answer = await post(server, '/api/v1/pacs/search', { patientId: '9RG1' });
    assert.equal(answer.status, 401);
    assertMatchesSpec('/api/v1/pacs/search', 'post', 401, answer.body);
    assert.equal((await fetch(`${server.url}/api/v1/pacs/status`)).status, 401);
  });

  test('a PACS that does not answer is 504 after the deadline and one retry, not later', async () => {
    behaviour = 'slow';
    const answer = await post(server, '/api/v1/pacs/search', { patientId: '9RG1' }, auth());
    assert.equal(answer.status, 504);
    assert.equal(answer.body.code, 'CXR_PACS_TIMEOUT');
    assertMatchesSpec('/api/v1/pacs/search', 'post', 504, answer.body);
    assert.ok(answer.ms < 3000, `answered in ${answer.ms.toFixed(0)} ms`);
  });

  test('a PACS answering something that is not DICOMweb is 502 saying so', async () => {
    behaviour = 'nonsense';
    const answer = await post(server, '/api/v1/pacs/search', { accession: 'A1' }, auth());
    assert.equal(answer.status, 502);
    assert.equal(answer.body.code, 'CXR_PACS_MALFORMED');
    assert.match(answer.body.message, /invalid JSON/);
    const open = await post(server, '/api/v1/pacs/analyze', { study: '1.2', series: '1.2.3', sop: '1.2.3.4' }, auth());
    assert.equal(open.status, 502);
    assert.match(open.body.message, /expected a multipart\/related answer/);
  });

  test('cxr serve refuses a --pacs that is not an http(s) URL, naming it', async () => {
    const refused = await cxr(['serve', '--pacs', 'dicom://pacs:104']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((refused as { code: number }).code, 1);
    assert.match((refused as { stderr: string }).stderr, /--pacs must be an http or https URL such as http:\/\/127\.0\.0\.1:8042, got "dicom:\/\/pacs:104"/);
  });

  test('a PACS that is down is 502 within a second', async () => {
    const down = await startServer({ workers: 1, pacsDicomweb: `http://127.0.0.1:${await freePort()}/dicom-web`, pacsTimeoutMs: 500 });
    try {
      const answer = await post(down, '/api/v1/pacs/result', { study: '1.2', series: '1.2.3', sop: '1.2.3.4' });
      assert.equal(answer.status, 502);
      assert.equal(answer.body.code, 'CXR_PACS_UNAVAILABLE');
      assert.match(answer.body.message, /could not be reached \(ECONNREFUSED\), 2 tries/);
      assert.ok(answer.ms < 1000, `answered in ${answer.ms.toFixed(0)} ms`);
    } finally {
      await down.app.close();
    }
  });
});
