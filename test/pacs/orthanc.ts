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

/** Implicit VR little endian: the transfer syntax of a file without a meta header (ACR-NEMA style, as cxr01). */
const IMPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2';

/** A UID element's value in the first 64 KiB of a file (explicit or implicit VR little endian), or undefined. */
function uidElement(bytes: Buffer, group: number, element: number): string | undefined {
  const tag = Buffer.from([group & 0xff, group >> 8, element & 0xff, element >> 8]);
  const at = bytes.indexOf(tag);
  if (at < 0) return undefined;
  const explicit = bytes.toString('latin1', at + 4, at + 6) === 'UI';
  const length = explicit ? bytes.readUInt16LE(at + 6) : bytes.readUInt32LE(at + 4);
  const start = at + 8;
  return bytes.toString('latin1', start, start + length).replace(/[\0 ]+$/, '');
}

/** A file's SOP Class UID and transfer syntax (group 0002 is always explicit VR little endian; no meta header: implicit). */
function presentationOf(file: string): { sopClass: string; syntax: string } {
  const bytes = readFileSync(file).subarray(0, 65536);
  const meta = bytes.toString('latin1', 128, 132) === 'DICM';
  const sopClass = (meta ? uidElement(bytes, 0x0002, 0x0002) : undefined) ?? uidElement(bytes, 0x0008, 0x0016);
  if (!sopClass) throw new Error(`no SOP Class UID in ${file}`);
  return { sopClass, syntax: (meta ? uidElement(bytes, 0x0002, 0x0010) : undefined) ?? IMPLICIT_LITTLE_ENDIAN };
}

/**
 * Sends files to Orthanc with dcmtk's storescu (DIMSE C-STORE) in one association, as a modality sends a study:
 * storescu's configuration file proposes one presentation context per SOP class and transfer syntax among the
 * files, so each goes in its own transfer syntax (by default this storescu proposes uncompressed syntaxes only and
 * fails on compressed files it cannot transcode, JPEG 2000 and JPEG-LS). Throws on any failure.
 */
export async function storescu(orthanc: Pick<RunningOrthanc, 'dicomPort'>, files: readonly string[]): Promise<void> {
  const contexts = [...new Set(files.map((file) => {
    const { sopClass, syntax } = presentationOf(file);
    return `${sopClass}\\${syntax}`;
  }))];
  const syntaxes = [...new Set(contexts.map((c) => c.split('\\')[1]))];
  const config = [
    '[[TransferSyntaxes]]',
    ...syntaxes.flatMap((syntax, i) => [`[Syntax${i}]`, `TransferSyntax1 = ${syntax}`]),
    '[[PresentationContexts]]',
    '[Files]',
    ...contexts.map((c, i) => `PresentationContext${i + 1} = ${c.split('\\')[0]}\\Syntax${syntaxes.indexOf(c.split('\\')[1])}`),
    '[[Profiles]]',
    '[Files]',
    'PresentationContexts = Files',
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'cxr-storescu-'));
  try {
    writeFileSync(join(dir, 'storescu.cfg'), `${config}\n`);
    await run('storescu', ['-xf', join(dir, 'storescu.cfg'), 'Files', '-aec', 'ORTHANC', '127.0.0.1', String(orthanc.dicomPort), ...files]).catch((e: Error & { stderr?: string }) => {
      throw new Error(`storescu failed on ${files.join(', ')}: ${e.stderr ?? e.message}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
