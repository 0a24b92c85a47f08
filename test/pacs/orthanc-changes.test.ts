/** Orthanc's change log on a real Orthanc: new instances since a position, deleted ones left out, and a server without one. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { OrthancChanges } from '../../src/pacs/orthanc-changes.js';
import { DICOM_DIR, type RunningOrthanc, startOrthanc } from './orthanc.js';

const read = (name: string) => new Uint8Array(readFileSync(join(DICOM_DIR, name)));

describe("Orthanc's change log", () => {
  let orthanc: RunningOrthanc;
  before(async () => {
    orthanc = await startOrthanc();
  });
  after(async () => orthanc?.stop());

  test('the instances stored since the position, as search results; a deleted one is left out', async () => {
    const client = new DicomWebClient(orthanc.dicomweb);
    await client.store([read('cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm')]);
    const changes = (await OrthancChanges.open(client))!;
    assert.ok(changes && changes.position > 0, 'opened at the end of the log');
    assert.deepEqual((await changes.newInstances()).instances, []);
    const stored = await client.store([read('cxr10_DX_CANINE_lateral_thorax_MONO1_8bit_ExplicitLE_highdicom.dcm'), read('neg2_CR_hip_MONO2_10bit_JPEGExtended_RG2.dcm')]);
    const { instances, last } = await changes.newInstances();
    assert.deepEqual(DicomWebClient.refs(instances).map((r) => r.sop).sort(), [...stored.stored].sort());
    assert.ok(last > changes.position);
    // One of them deleted before it is looked at: left out, not an error.
    const [id] = (await (await fetch(`${orthanc.url}/tools/lookup`, { method: 'POST', body: stored.stored[0] })).json()) as { ID: string }[];
    await fetch(`${orthanc.url}/instances/${id.ID}`, { method: 'DELETE' });
    assert.deepEqual(DicomWebClient.refs((await changes.newInstances()).instances).map((r) => r.sop), [stored.stored[1]]);
  });

  test('a server without a change log (another PACS) is told apart', async () => {
    const server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = new DicomWebClient(`http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`);
      assert.equal(await OrthancChanges.open(client), undefined);
    } finally {
      server.close();
    }
  });
});
