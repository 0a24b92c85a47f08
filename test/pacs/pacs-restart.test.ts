/**
 * Crashes and outages mid-run: `cxr pacs` killed with SIGKILL in the middle of a batch, then run again, leaves
 * every instance with exactly one SR and every positive finding with exactly one heatmap; a PACS that goes down
 * mid-run and comes back is waited for (retries with back-off) and the run completes with nothing lost.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { type RunningOrthanc, startOrthanc, storescu } from './orthanc.js';
import { cxr, dicomFiles, readAllSrs, startCxr } from './cli.js';

/** The CR/DX files, one per SOP Instance UID (cxr07 repeats cxr06's), without the CT. */
const FILES = dicomFiles().filter((f) => !/neg4_CT|cxr07_/.test(f));

async function count(client: DicomWebClient, modality: string): Promise<number> {
  return (await client.searchInstances({ Modality: modality })).length;
}

/** Resolves once `condition` holds (polled every 25 ms), or throws after `ms`. */
async function until(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every source instance has exactly one SR; every positive finding exactly one heatmap, and no heatmap is extra. */
async function assertExactlyOnce(client: DicomWebClient): Promise<void> {
  const srs = await readAllSrs(client);
  const sources = srs.map((s) => s.source?.sop);
  assert.equal(srs.length, FILES.length);
  assert.equal(new Set(sources).size, FILES.length, 'one SR per instance');
  const positives = srs.flatMap((s) => [...s.findings.values()].filter((f) => f.decision === 'positive'));
  assert.ok(positives.every((f) => f.heatmaps.length === 1));
  assert.equal(await count(client, 'OT'), positives.length, 'one heatmap per positive finding, none left over');
}

describe('cxr pacs survives crashes and outages', () => {
  const running: RunningOrthanc[] = [];
  after(async () => {
    for (const o of running) await o.stop();
  });

  test('kill -9 in the middle of a batch, run again: every instance has exactly one SR', async () => {
    const orthanc = await startOrthanc();
    running.push(orthanc);
    await storescu(orthanc, FILES);
    const client = new DicomWebClient(orthanc.dicomweb);
    const child = startCxr(['pacs', '--url', orthanc.url, '--once', '--batch-size', '2']);
    await until(async () => (await count(client, 'SR')) >= 1, 60_000, 'the first SR');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const before = await count(client, 'SR');
    assert.ok(before >= 1 && before < FILES.length, `killed mid-run (${before} of ${FILES.length} SRs stored)`);
    const again = await cxr(['pacs', '--url', orthanc.url, '--once']);
    assert.match(again.stdout, new RegExp(`analysed ${FILES.length - before} of ${FILES.length} instances \\(${before} were done before\\)`));
    await assertExactlyOnce(client);
  });

  test('the PACS goes down mid-run and comes back: the run waits for it and completes, nothing lost', async () => {
    let orthanc = await startOrthanc();
    running.push(orthanc);
    await storescu(orthanc, FILES);
    const client = new DicomWebClient(orthanc.dicomweb);
    const child = startCxr(['pacs', '--url', orthanc.url, '--once', '--batch-size', '2', '--retries', '8']);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await until(async () => (await count(client, 'SR')) >= 1, 60_000, 'the first SR');
    await orthanc.stop(true);
    await new Promise((r) => setTimeout(r, 1500));
    orthanc = await startOrthanc(orthanc);
    running.push(orthanc);
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    assert.match(stderr, /PACS (search|retrieve|store): could not be reached \(\w+\); try 2 of 9 in 0.5 s/);
    assert.match(stdout, new RegExp(`of ${FILES.length} instances`));
    await assertExactlyOnce(client);
  });
});
