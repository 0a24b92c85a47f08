/**
 * A real Orthanc for the PACS tests: Debian's /usr/sbin/Orthanc with its DICOMweb plugin, on loopback, with its
 * configuration and storage in a temp folder of its own; and dcmtk's storescu to send it files over DIMSE.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sharedDataPath } from '../helpers/fixtures.js';

const run = promisify(execFile);

export const ORTHANC = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';
export const DICOM_DIR = sharedDataPath('dicom');

export interface RunningOrthanc {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The DICOMweb root, url + /dicom-web */
  dicomweb: string;
  dicomPort: number;
  httpPort: number;
  dir: string;
  process: ChildProcess;
  /** Stops this Orthanc (SIGTERM, SIGKILL after 5 s); `keep` leaves the storage for a restart. */
  stop(keep?: boolean): Promise<void>;
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts an Orthanc and waits until /system answers (at most 30 s); given ports or folder (a stopped one's) are reused. */
export async function startOrthanc(reuse: Partial<Pick<RunningOrthanc, 'httpPort' | 'dicomPort' | 'dir'>> = {}): Promise<RunningOrthanc> {
  const dir = reuse.dir ?? mkdtempSync(join(tmpdir(), 'cxr-orthanc-'));
  const httpPort = reuse.httpPort ?? (await freePort());
  const dicomPort = reuse.dicomPort ?? (await freePort());
  const config = {
    Name: 'cxr-lens-test',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'storage'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: 'ORTHANC',
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(config));
  const child = spawn(ORTHANC, [join(dir, 'orthanc.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited with ${child.exitCode} at start:\n${log}`);
    try {
      if ((await fetch(`${url}/system`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Orthanc did not answer /system within 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dicomweb: `${url}/dicom-web`,
    httpPort,
    dicomPort,
    dir,
    process: child,
    async stop(keep = false) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * storescu's option proposing a file's own transfer syntax: this dcmtk's storescu otherwise proposes only
 * uncompressed syntaxes and fails on compressed files it cannot transcode (JPEG 2000, JPEG-LS).
 */
const PROPOSE: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': '-xy',
  '1.2.840.10008.1.2.4.51': '-xx',
  '1.2.840.10008.1.2.4.57': '-xs',
  '1.2.840.10008.1.2.4.70': '-xs',
  '1.2.840.10008.1.2.4.80': '-xt',
  '1.2.840.10008.1.2.4.81': '-xu',
  '1.2.840.10008.1.2.4.90': '-xv',
  '1.2.840.10008.1.2.4.91': '-xw',
  '1.2.840.10008.1.2.5': '-xr',
};

/**
 * The transfer syntax in a file's meta header (group 0002 is always explicit VR little endian), or undefined for a
 * file without one (ACR-NEMA style, as cxr01).
 */
function transferSyntax(file: string): string | undefined {
  const bytes = readFileSync(file).subarray(0, 4096);
  if (bytes.toString('latin1', 128, 132) !== 'DICM') return undefined;
  const at = bytes.indexOf(Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49]), 132);
  if (at < 0) return undefined;
  const length = bytes.readUInt16LE(at + 6);
  return bytes.toString('latin1', at + 8, at + 8 + length).replace(/[\0 ]+$/, '');
}

/**
 * Sends files to Orthanc with dcmtk's storescu (DIMSE C-STORE): one association per transfer syntax, in the order
 * given within each; throws on any failure.
 */
export async function storescu(orthanc: Pick<RunningOrthanc, 'dicomPort'>, files: readonly string[]): Promise<void> {
  const groups = new Map<string, string[]>();
  for (const file of files) {
    const syntax = transferSyntax(file);
    const propose = (syntax && PROPOSE[syntax]) || '';
    groups.set(propose, [...(groups.get(propose) ?? []), file]);
  }
  for (const [propose, group] of groups) {
    await run('storescu', [...(propose ? [propose] : []), '-aec', 'ORTHANC', '127.0.0.1', String(orthanc.dicomPort), ...group]).catch((e: Error & { stderr?: string }) => {
      throw new Error(`storescu failed on ${group.join(', ')}: ${e.stderr ?? e.message}`);
    });
  }
}
