/**
 * `cxr pacs` without --once keeps watching: after one search of everything it follows Orthanc's change log, so
 * instances sent while it runs get their SR on its next pass; a PACS that is down for a pass is reported and the
 * next pass goes on (the change log's position kept, nothing lost); SIGTERM stops it cleanly.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { basename } from 'node:path';
import { after, test } from 'node:test';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { type RunningOrthanc, startOrthanc, storescu } from './orthanc.js';
import { dicomFiles, readAllSrs, sopInstanceUid, startCxr } from './cli.js';

const [first, second] = dicomFiles().filter((f) => /^cxr0[18]_/.test(basename(f)));
const running: RunningOrthanc[] = [];
after(async () => {
  for (const o of running) await o.stop();
});

async function until(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('watching: new instances are analysed as they arrive, an outage is survived, SIGTERM stops it', async () => {
  let orthanc = await startOrthanc();
  running.push(orthanc);
  const client = new DicomWebClient(orthanc.dicomweb);
  const child = startCxr(['pacs', '--url', orthanc.url, '--interval', '1', '--retries', '1', '--timeout', '5']);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const sops = new Map<string, string>();
  for (const file of [first, second]) sops.set(file, await sopInstanceUid(file));
  const hasSrFor = async (file: string) => (await readAllSrs(client)).some((sr) => sr.source?.sop === sops.get(file));

  await storescu(orthanc, [first]);
  await until(() => hasSrFor(first), 60_000, 'the first SR');
  await until(async () => /now following Orthanc's change log/.test(stderr), 30_000, 'the watcher to follow the change log');
  // The PACS goes away for longer than the retries: the pass fails, the watcher says so and goes on.
  await orthanc.stop(true);
  await until(async () => /pass failed, nothing lost/.test(stderr), 30_000, 'the failed pass to be reported');
  orthanc = await startOrthanc(orthanc);
  running.push(orthanc);
  await storescu(orthanc, [second]);
  await until(() => hasSrFor(second), 60_000, 'the second SR');
  assert.equal((await readAllSrs(client)).length, 2);
  // Found through the change log: that pass looked at the one new instance, not at every instance.
  assert.match(stderr, /: 1 instances, 0 already analysed, 1 to do\n/);
  assert.doesNotMatch(stderr, /: 2 instances/);

  child.kill('SIGTERM');
  const [code, signal] = await once(child, 'exit');
  assert.equal(signal, null);
  assert.equal(code, 0, stderr);
});
