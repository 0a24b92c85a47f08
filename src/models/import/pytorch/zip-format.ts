/** The zip container torch.save writes since PyTorch 1.6: <folder>/data.pkl plus one entry per storage. */
import { type UnzipFileInfo, unzipSync } from 'fflate';
import { CheckpointError } from './errors.js';
import type { StorageBytes } from './materialize.js';
import { type PickledCheckpoint, storageFromPersistentId, unpickleCheckpoint } from './pickled-checkpoint.js';

const END_OF_CENTRAL_DIRECTORY = [0x50, 0x4b, 0x05, 0x06];
const MAX_ZIP_COMMENT = 0xffff;

export function isZip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05);
}

/** A zip's directory sits at its end: without it the file was cut short. */
function hasEndOfCentralDirectory(bytes: Uint8Array): boolean {
  const lowest = Math.max(0, bytes.length - 22 - MAX_ZIP_COMMENT);
  for (let at = bytes.length - 22; at >= lowest; at--) {
    if (END_OF_CENTRAL_DIRECTORY.every((byte, i) => bytes[at + i] === byte)) return true;
  }
  return false;
}

function unzip(bytes: Uint8Array, fileName: string, keep: (info: UnzipFileInfo) => boolean): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, { filter: keep });
  } catch (error) {
    throw new CheckpointError(fileName, 'malformed', `the zip archive is damaged: ${(error as Error).message}`);
  }
}

function listing(names: readonly string[]): string {
  return names.length ? `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}` : 'none';
}

export function readZipCheckpoint(bytes: Uint8Array, fileName: string): PickledCheckpoint {
  if (!hasEndOfCentralDirectory(bytes)) {
    throw new CheckpointError(
      fileName,
      'truncated',
      `a zip archive (torch.save's format) whose end is missing after ${bytes.length} bytes: ` +
        'the file is truncated (an interrupted download or copy?)',
    );
  }
  const names: string[] = [];
  const metadata = unzip(bytes, fileName, (info) => {
    names.push(info.name);
    return /(^|\/)(data\.pkl|byteorder)$/.test(info.name);
  });
  // torch names the folder after the file it saved to, so any folder name is valid.
  const pickleName = names.find((name) => /^[^/]+\/data\.pkl$/.test(name)) ?? names.find((n) => /(^|\/)data\.pkl$/.test(n));
  if (!pickleName) {
    throw new CheckpointError(
      fileName,
      'not-a-checkpoint',
      `a zip archive without data.pkl, so not written by torch.save (entries: ${listing(names)})`,
    );
  }
  const folder = pickleName.slice(0, -'data.pkl'.length);
  if (names.some((name) => name === `${folder}constants.pkl` || name.startsWith(`${folder}code/`))) {
    throw new CheckpointError(
      fileName,
      'torchscript',
      'a TorchScript model (torch.jit.save), not a state dict: in Python, save its weights with ' +
        'torch.save(torch.jit.load(path).state_dict(), "weights.pth")',
    );
  }
  const byteOrder = metadata[`${folder}byteorder`];
  if (byteOrder && new TextDecoder().decode(byteOrder).trim() !== 'little') {
    throw new CheckpointError(fileName, 'unsupported', 'a big-endian checkpoint: re-save it on a little-endian machine');
  }
  const { value, unknownGlobals } = unpickleCheckpoint(metadata[pickleName], 0, fileName, pickleName, (pid) => {
    if (!Array.isArray(pid) || pid[0] !== 'storage') {
      throw new CheckpointError(fileName, 'malformed', `${pickleName} refers to an unknown persistent object`);
    }
    return storageFromPersistentId(pid, fileName);
  });
  return {
    format: 'zip',
    root: value,
    unknownGlobals,
    loadStorages(keys) {
      const entries = new Map([...keys].map((key) => [`${folder}data/${key}`, key]));
      const files = unzip(bytes, fileName, (info) => entries.has(info.name));
      const storages = new Map<string, StorageBytes>();
      for (const [entry, key] of entries) {
        const data = files[entry];
        if (!data) throw new CheckpointError(fileName, 'malformed', `the archive lacks ${entry}, the data of storage '${key}'`);
        // fflate returns a fresh array per entry (copied or inflated), so tensors may keep it.
        storages.set(key, { bytes: data, owned: true });
      }
      return storages;
    },
  };
}
