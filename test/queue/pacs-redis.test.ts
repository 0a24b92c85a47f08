/**
 * `cxr pacs --redis`: the PACS connection hands its analyses to the `cxr worker` fleet. Two real Orthancs hold the
 * same real films (sent by storescu) and a film whose pixel data is cut short: one is served by `cxr pacs --redis`
 * and a real `cxr worker` on a real redis-server, the other by `cxr pacs` analysing inline, and every SR (and FHIR
 * report) the first gets is the second's, values and UIDs alike, apart from the time it was made. Without a worker
 * nothing is analysed: the jobs wait. Seeing an instance again queues nothing new; an instance that cannot be
 * decoded, or is gone when its job runs, ends in the batch's failures with the reason, as do jobs a worker with
 * another model refuses (sent round again by the next run); no log names a patient.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { writePart10 } from '../../src/pacs/part10.js';
import { derivedUid } from '../../src/pacs/uid.js';
import { QUEUE_NAME } from '../../src/queue/index.js';
import { assertNoSecrets, cxr, readAllSrs, sopInstanceUid, startCxr } from '../pacs/cli.js';
import { type RunningOrthanc, startOrthanc, storescu } from '../pacs/orthanc.js';
import type { SrValues } from '../pacs/sr-read.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { killWorkers, startWorker, until } from './processes.js';
import { RedisServer } from './redis.js';

const run = promisify(execFile);
const film = (name: string) => sharedDataPath('dicom', name);
/** Two chest films, a hip (refused by the input checks), and one deleted from the PACS before its job runs. */
const CHESTS = [film('cxr01_CR_chest_PA_MONO1_10bit_ImplicitLE_nometa.dcm'), film('cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm')];
const HIP = film('neg2_CR_hip_MONO2_10bit_JPEGExtended_RG2.dcm');
const GONE = film('cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');
/** Sent while a watching `cxr pacs --redis` runs. */
const LATE = film('cxr04_DX_chest_PA_MONO1_12bit_J2K_lossless_ForPresentation_966.dcm');

/** A DX film whose pixel data is cut short: its header is fine, its pixels cannot be decoded. */
const CUT = writePart10({
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
  SOPInstanceUID: derivedUid('test instance', 'cut for the queue'),
  StudyInstanceUID: derivedUid('test study', 'cut for the queue'),
  SeriesInstanceUID: derivedUid('test series', 'cut for the queue'),
  PatientName: 'Test^Cut',
  PatientID: 'TEST-CUT-QUEUE',
  Modality: 'DX',
  BodyPartExamined: 'CHEST',
  SamplesPerPixel: 1,
  PhotometricInterpretation: 'MONOCHROME2',
  Rows: 512,
  Columns: 512,
  BitsAllocated: 8,
  BitsStored: 8,
  HighBit: 7,
  PixelRepresentation: 0,
  PixelData: [new Uint8Array(1000).fill(7).buffer],
  _vrMap: { PixelData: 'OB' },
});
const CUT_SOP = derivedUid('test instance', 'cut for the queue');

let queued: RunningOrthanc; // served by cxr pacs --redis and a worker
let inline: RunningOrthanc; // served by cxr pacs in its own process, the reference
let redis: RedisServer;
const dir = mkdtempSync(join(tmpdir(), 'cxr-pacs-redis-'));
const fhirQueued = join(dir, 'fhir-queued');
const fhirInline = join(dir, 'fhir-inline');
const sops = new Map<string, string>();
let logs = '';

/** `cxr pacs --once --redis` on the queued PACS; its summary line. */
async function handOver(...extra: string[]): Promise<string> {
  const { stdout, stderr } = await cxr(['pacs', '--url', queued.url, '--once', '--redis', redis.url, '--threads', '1', '--fhir', fhirQueued, ...extra]);
  logs += stdout + stderr;
  return stdout;
}

async function queueCounts() {
  const queue = new Queue(QUEUE_NAME, { connection: redis.client() });
  try {
    return await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
  } finally {
    await queue.close();
  }
}

async function batchStatus(): Promise<{ batch: string; total: number; done: number; failed: number; pending: number; failures: { job: string; reason: string }[] }> {
  const batch = /batch (pacs-[0-9a-f]{16})/.exec(logs)![1];
  const { stdout } = await cxr(['batch', 'status', batch, '--redis', redis.url, '--json']).catch((e: { stdout: string }) => e);
  return JSON.parse(stdout);
}

/** An SR's dataset without the moments it was made, which are all two runs may differ in. */
function timeless(sr: SrValues): Record<string, unknown> {
  const { ContentDate, ContentTime, InstanceCreationDate, InstanceCreationTime, ...rest } = sr.dataset;
  return rest;
}

before(async () => {
  [queued, inline, redis] = await Promise.all([startOrthanc(), startOrthanc(), RedisServer.start()]);
  for (const orthanc of [queued, inline]) {
    await storescu(orthanc, [...CHESTS, HIP, GONE]);
    await new DicomWebClient(orthanc.dicomweb).store([CUT]);
  }
  for (const file of [...CHESTS, HIP, GONE, LATE]) sops.set(file, await sopInstanceUid(file));
});
after(async () => {
  killWorkers();
  await Promise.all([queued?.stop(), inline?.stop()]);
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cxr pacs --redis: the PACS connection hands its analyses to the worker fleet', { timeout: 300_000 }, () => {
  it('with no worker running, nothing is analysed: one job per pending instance waits, and seeing them again queues nothing', async () => {
    assert.match(await handOver(), /handed 5 of 5 instances to the workers \(0 were done before\): 5 queued now, 0 already queued/);
    assert.equal((await readAllSrs(new DicomWebClient(queued.dicomweb))).length, 0, 'no SR: nothing analysed in cxr pacs');
    assert.equal((await queueCounts()).waiting, 5);
    assert.match(await handOver(), /handed 5 of 5 instances .*: 0 queued now, 5 already queued/);
    assert.equal((await queueCounts()).waiting, 5, 'no job doubled');
    const status = await batchStatus();
    assert.deepEqual([status.total, status.done, status.pending], [5, 0, 5]);
  });

  it('a worker with another model refuses the jobs; they wait in the failures until the next run sends them round again', async () => {
    // The same network with one more doc_string field (protobuf: the last one wins): a valid model, another file.
    const otherModel = join(dir, 'other.onnx');
    writeFileSync(otherModel, Buffer.concat([readFileSync(DEFAULT_MODEL_PATH), Buffer.from([0x32, 0x01, 0x78])]));
    const wrong = startWorker('--redis', redis.url, '--model', otherModel, '--threads', '1', '--exit-when-idle');
    assert.deepEqual(await wrong.exited, { code: 0, signal: null });
    logs += JSON.stringify(wrong.events());
    const refused = await batchStatus();
    assert.deepEqual([refused.failed, refused.pending], [5, 0]);
    for (const f of refused.failures) assert.match(f.reason, /^refused: the batch is for model sha256 [0-9a-f]{12}…, this worker has/);
    assert.equal((await readAllSrs(new DicomWebClient(queued.dicomweb))).length, 0);
    assert.match(await handOver(), /handed 5 of 5 instances .*: 0 queued now, 0 already queued, 5 failed ones sent round again, 0 failed/);
    const again = await batchStatus();
    assert.deepEqual([again.total, again.failed, again.pending], [5, 0, 5]);
    assert.equal((await queueCounts()).waiting, 5);
  });

  it('a cxr worker stores, for each instance, the SR (and heatmaps and FHIR report) cxr pacs stores inline', async () => {
    // One instance goes away before any worker takes its job.
    const [found] = (await (await fetch(`${queued.url}/tools/lookup`, { method: 'POST', body: sops.get(GONE) })).json()) as { ID: string }[];
    assert.equal((await fetch(`${queued.url}/instances/${found.ID}`, { method: 'DELETE' })).status, 200);

    const worker = startWorker('--redis', redis.url, '--threads', '1', '--exit-when-idle');
    const reference = await cxr(['pacs', '--url', inline.url, '--once', '--threads', '1', '--fhir', fhirInline]);
    logs += reference.stdout + reference.stderr;
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    logs += JSON.stringify(worker.events());

    const got = await readAllSrs(new DicomWebClient(queued.dicomweb));
    const expected = await readAllSrs(new DicomWebClient(inline.dicomweb));
    assert.deepEqual(got.map((sr) => sr.source?.sop).sort(), [...CHESTS, HIP].map((f) => sops.get(f)).concat(CUT_SOP).sort(), 'one SR per instance still in the PACS');
    for (const sr of got) {
      const reference = expected.find((e) => e.source?.sop === sr.source?.sop)!;
      assert.deepEqual(timeless(sr), timeless(reference), 'the SR cxr pacs stores inline, to the last value and UID');
      assert.deepEqual(sr.findings, reference.findings);
    }
    const verdicts = new Map(got.map((sr) => [sr.source?.sop, sr.verdict]));
    assert.equal(verdicts.get(sops.get(HIP)), 'rejected');
    assert.equal(verdicts.get(CUT_SOP), 'undecodable');
    assert.deepEqual(CHESTS.map((f) => verdicts.get(sops.get(f))), ['accepted', 'accepted']);

    // The heatmaps the SRs reference are in the PACS: one Secondary Capture per positive finding.
    const referenced = got.flatMap((sr) => [...sr.findings.values()].flatMap((f) => f.heatmaps)).sort();
    assert.ok(referenced.length > 0, 'some positive finding has a heatmap');
    const scs = DicomWebClient.refs(await new DicomWebClient(queued.dicomweb).searchInstances({ Modality: 'OT' })).map((r) => r.sop).sort();
    assert.deepEqual(scs, referenced);

    // The FHIR reports too, apart from when they were issued.
    assert.deepEqual(readdirSync(fhirQueued).sort(), got.map((sr) => `${sr.dataset.SOPInstanceUID}.json`).sort());
    for (const name of readdirSync(fhirQueued)) {
      const { issued: _a, ...mine } = JSON.parse(readFileSync(join(fhirQueued, name), 'utf8'));
      const { issued: _b, ...theirs } = JSON.parse(readFileSync(join(fhirInline, name), 'utf8'));
      assert.deepEqual(mine, theirs, name);
    }

    // The undecodable film and the one that went away are the batch's failures, with their reasons.
    const status = await batchStatus();
    assert.deepEqual([status.total, status.done, status.failed, status.pending], [5, 3, 2, 0]);
    const reasons = status.failures.map((f) => f.reason).sort();
    assert.match(reasons[0], /^instance [0-9a-f]{10}: .+ \(the SR stored in the PACS says so\)$/);
    assert.match(reasons[1], /^the instance is no longer in the PACS/);
    assert.equal((await queueCounts()).failed, 2, "BullMQ's failed set, the dead-letter list");
  });

  it('a second pass finds every instance done and queues nothing', async () => {
    assert.match(await handOver(), /handed 0 of 4 instances to the workers \(4 were done before\): 0 queued now, 0 already queued, 0 failed ones sent round again/);
    const counts = await queueCounts();
    assert.deepEqual([counts.waiting, counts.active, counts.delayed], [0, 0, 0]);
    assert.equal((await batchStatus()).total, 5);
  });

  it('watching: a film stored while cxr pacs --redis runs is handed over and a running worker stores its SR', async () => {
    const worker = startWorker('--redis', redis.url, '--threads', '1');
    const watcher = startCxr(['pacs', '--url', queued.url, '--redis', redis.url, '--interval', '1', '--heatmaps', 'none']);
    let stderr = '';
    watcher.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await until('the watcher to follow the change log', () => /now following Orthanc's change log/.test(stderr), 60_000);
    await storescu(queued, [LATE]);
    const client = new DicomWebClient(queued.dicomweb);
    await until('the SR of the film sent late', async () => (await readAllSrs(client)).some((sr) => sr.source?.sop === sops.get(LATE)), 90_000);
    assert.match(stderr, /handed 1 of 1 instances to the workers \(0 were done before\): 1 queued now/, 'the change log named the one new film');
    watcher.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    const [code] = await once(watcher, 'exit');
    assert.equal(code, 0, stderr);
    assert.equal((await worker.exited).code, 143);
    logs += stderr + JSON.stringify(worker.events());
  });

  it('no log line carries patient data, file names or UIDs in clear', async () => {
    const secrets = new Set<string>([CUT_SOP, 'TEST-CUT-QUEUE']);
    for (const file of [...CHESTS, HIP, GONE, LATE]) {
      secrets.add(basename(file));
      const { stdout } = await run('dcmdump', ['-q', '+P', '0010,0010', '+P', '0010,0020', '+P', '0010,0030', '+P', '0008,0050', '+P', '0020,000d', '+P', '0020,000e', '+P', '0008,0018', file]);
      for (const match of stdout.matchAll(/\[([^\]]+)\]/g)) if (match[1].trim().length >= 4) secrets.add(match[1].trim());
    }
    assert.ok(logs.length > 0);
    assertNoSecrets(logs, secrets);
  });
});
