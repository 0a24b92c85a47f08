/**
 * `cxr batch submit --pacs-query`: a QIDO-RS search of a real Orthanc (fed real DICOM films by dcmtk's storescu)
 * becomes one job per instance carrying its UIDs; a real `cxr worker` retrieves each by WADO-RS and scores it exactly
 * as `cxr predict` scores the same file; results carry the UIDs; the same search submitted again adds no work.
 * With --store-sr the workers also store each result back into the PACS as `cxr pacs` does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { createPredictor } from '../../src/api.js';
import { predictFiles } from '../../src/inference/files.js';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { QUEUE_NAME } from '../../src/queue/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { readAllSrs, sopInstanceUid } from '../pacs/cli.js';
import { type RunningOrthanc, startOrthanc, storescu } from '../pacs/orthanc.js';
import { cxr, killWorkers, startWorker } from './processes.js';
import { RedisServer } from './redis.js';

/** Three CR chests (the search's answer) beside a DX chest and a CT slice it must leave out. */
const CR = ['cxr01_CR_chest_PA_MONO1_10bit_ImplicitLE_nometa.dcm', 'cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm', 'cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm'].map((f) => sharedDataPath('dicom', f));
const OTHERS = ['cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm', 'neg4_CT_chest_axial_ImplicitLE.dcm'].map((f) => sharedDataPath('dicom', f));

const dir = mkdtempSync(join(tmpdir(), 'cxr-pacs-query-'));
let orthanc: RunningOrthanc;
let redis: RedisServer;

before(async () => {
  [orthanc, redis] = await Promise.all([startOrthanc(), RedisServer.start()]);
  await storescu(orthanc, [...CR, ...OTHERS]);
});
after(async () => {
  killWorkers();
  await orthanc?.stop();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Row {
  file: string;
  instance?: { study: string; series: string; sop: string };
  image?: { metadata: { sopInstanceUid?: string } };
  findings?: unknown[];
  verdict?: string;
  error?: string;
}

describe('cxr batch submit --pacs-query', { timeout: 180_000 }, () => {
  it('queues the instances a QIDO-RS search finds; workers retrieve them by WADO-RS; results carry their UIDs', async () => {
    const submit = () => cxr('batch', 'submit', '--pacs', orthanc.dicomweb, '--pacs-query', 'Modality=CR', '--redis', redis.url, '--name', 'cr');
    const first = submit();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.trim(), 'cr');
    assert.match(first.stderr, /3 images .*: 3 queued, 0 already done/);

    const worker = startWorker('--redis', redis.url, '--threads', '1', '--exit-when-idle');
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    // The worker's log names jobs, never UIDs.
    const sops = await Promise.all(CR.map((f) => sopInstanceUid(f)));
    for (const sop of sops) assert.ok(!JSON.stringify(worker.events()).includes(sop), 'no UID in the worker log');

    const out = join(dir, 'cr.jsonl');
    const results = cxr('batch', 'results', 'cr', '--redis', redis.url, '--jsonl', out);
    assert.equal(results.code, 0, results.stderr);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Row);
    assert.deepEqual(rows.map((r) => r.instance?.sop).sort(), [...sops].sort(), 'one row per CR instance, the DX and CT left out');

    // Each exactly as cxr predict scores the same file.
    const predictor = await createPredictor(undefined, { threads: 1 });
    const expected = await predictFiles(predictor, CR);
    await predictor.close();
    for (const row of rows) {
      const i = sops.indexOf(row.instance!.sop);
      assert.equal(row.file, `${orthanc.dicomweb}/studies/${row.instance!.study}/series/${row.instance!.series}/instances/${row.instance!.sop}`);
      assert.equal(row.image?.metadata.sopInstanceUid, row.instance!.sop, 'the film read back is the instance asked for');
      assert.equal(row.verdict, expected[i].prediction?.verdict);
      assert.deepEqual(row.findings, expected[i].prediction?.findings);
    }

    // The same search again: nothing new queued.
    const again = submit();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /3 images .*: 0 queued, 3 already done/);
    const client = redis.client();
    const queue = new Queue(QUEUE_NAME, { connection: client });
    assert.equal(await queue.getWaitingCount(), 0);
    await queue.close();
  });

  it('--store-sr: the workers also store into the PACS the SR cxr pacs writes, holding the batch result\'s values', async () => {
    const submit = cxr('batch', 'submit', '--pacs', orthanc.dicomweb, '--pacs-query', 'Modality=CR', '--store-sr', '--redis', redis.url, '--name', 'cr-sr');
    assert.equal(submit.code, 0, submit.stderr);
    assert.match(submit.stderr, /3 images .*: 3 queued/);
    const worker = startWorker('--redis', redis.url, '--threads', '1', '--exit-when-idle');
    assert.deepEqual(await worker.exited, { code: 0, signal: null });
    const out = join(dir, 'cr-sr.jsonl');
    assert.equal(cxr('batch', 'results', 'cr-sr', '--redis', redis.url, '--jsonl', out).code, 0);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Row);
    const client = new DicomWebClient(orthanc.dicomweb);
    const srs = await readAllSrs(client);
    assert.deepEqual(srs.map((sr) => sr.source?.sop).sort(), rows.map((r) => r.instance!.sop).sort(), 'one SR per instance of the search');
    for (const row of rows) {
      const sr = srs.find((s) => s.source?.sop === row.instance!.sop)!;
      assert.equal(sr.verdict, row.verdict);
      const findings = row.findings as { name: string; probability: number; decision: string | null }[];
      assert.equal(sr.findings.size, findings.length);
      for (const f of findings) {
        assert.equal(sr.findings.get(f.name)?.probability, f.probability, f.name);
        assert.equal(sr.findings.get(f.name)?.decision, f.decision, f.name);
      }
    }
    assert.equal((await client.searchInstances({ Modality: 'OT' })).length, 0, 'no heatmap images: the SR alone');
    const folder = cxr('batch', 'submit', '--pacs', orthanc.dicomweb, '--pacs-query', 'Modality=CR', '--store-sr', '--heatmaps', 'gradcam', '--out', dir, '--redis', redis.url);
    assert.notEqual(folder.code, 0);
    assert.match(folder.stderr, /--store-sr writes the SR `cxr pacs` writes: not with --heatmaps/);
  });

  it('a search that finds nothing, or a query that is not KEY=VALUE, is a clear error', () => {
    const none = cxr('batch', 'submit', '--pacs', orthanc.dicomweb, '--pacs-query', 'Modality=MR', '--redis', redis.url, '--name', 'mr');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /batch mr: no images to submit/);
    const bad = cxr('batch', 'submit', '--pacs', orthanc.dicomweb, '--pacs-query', 'CR', '--redis', redis.url);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /give QIDO-RS matching keys as KEY=VALUE/);
  });
});
