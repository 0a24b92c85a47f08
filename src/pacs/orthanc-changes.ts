/**
 * Orthanc's change log (GET /changes, its REST API beside DICOMweb): the instances stored since a position. A
 * watcher that follows it asks the PACS about new instances only, instead of searching every instance each pass.
 * The position lives in memory only: a restarted `cxr pacs` searches everything once (what is done is read from
 * the PACS) and follows the log from where it stood when that search began, so nothing stored meanwhile is missed.
 */
import type { DicomJson } from './dicom-json.js';
import { type DicomWebClient, PacsError } from './dicomweb.js';

const PAGE = 1000;

interface Change {
  ChangeType: string;
  ID: string;
  Seq: number;
}

export class OrthancChanges {
  private constructor(
    private readonly client: DicomWebClient,
    /** The last change already taken into account. */
    public position: number,
  ) {}

  /** The log at its current end, or undefined when the server has none (a PACS that is not Orthanc). */
  static async open(client: DicomWebClient): Promise<OrthancChanges | undefined> {
    let answer: unknown;
    try {
      answer = await client.getJson('changes', '/changes?last');
    } catch (e) {
      if (e instanceof PacsError && e.kind === 'http' && e.status !== undefined && e.status < 500) return undefined;
      throw e;
    }
    return new OrthancChanges(client, lastOf(answer));
  }

  /**
   * The search results (DICOM JSON, as QIDO-RS gives them) of the instances stored since `position`, and the
   * position after them; an instance deleted since is left out. The caller moves `position` on once they are done.
   */
  async newInstances(): Promise<{ instances: DicomJson[]; last: number }> {
    const ids: string[] = [];
    let last = this.position;
    for (;;) {
      const page = await this.client.getJson('changes', `/changes?since=${last}&limit=${PAGE}`);
      const changes = changesOf(page);
      ids.push(...changes.filter((c) => c.ChangeType === 'NewInstance').map((c) => c.ID));
      last = Math.max(last, lastOf(page));
      if ((page as { Done?: boolean }).Done || changes.length === 0) break;
    }
    const instances: DicomJson[] = [];
    for (const id of ids) {
      let sop: unknown;
      try {
        sop = ((await this.client.getJson('changes', `/instances/${encodeURIComponent(id)}`)) as { MainDicomTags?: { SOPInstanceUID?: unknown } }).MainDicomTags?.SOPInstanceUID;
      } catch (e) {
        if (e instanceof PacsError && e.status === 404) continue; // deleted since it was stored
        throw e;
      }
      if (typeof sop !== 'string') throw new PacsError('changes: an instance of the change log has no SOP Instance UID', 'malformed');
      instances.push(...(await this.client.searchInstances({ SOPInstanceUID: sop })));
    }
    return { instances, last };
  }
}

function lastOf(answer: unknown): number {
  const last = (answer as { Last?: unknown } | null)?.Last;
  if (typeof last !== 'number' || !Number.isInteger(last) || last < 0) throw new PacsError('changes: the answer has no "Last" position', 'malformed');
  return last;
}

function changesOf(answer: unknown): Change[] {
  const changes = (answer as { Changes?: unknown } | null)?.Changes;
  if (!Array.isArray(changes)) throw new PacsError('changes: the answer has no "Changes" list', 'malformed');
  return changes as Change[];
}
