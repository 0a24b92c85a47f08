/**
 * The format torch.save wrote before PyTorch 1.6 (and still writes with _use_new_zipfile_serialization=False):
 * five things back to back: a pickled magic number, the protocol version (1001), a sys_info dict, the pickled object,
 * the pickled list of storage keys; then each storage's raw bytes, in that order, after an 8-byte element count.
 */
import { CheckpointError } from './errors.js';
import type { StorageBytes } from './materialize.js';
import { PickleGlobal } from './pickle.js';
import { type PickledCheckpoint, storageFromPersistentId, unpickleCheckpoint } from './pickled-checkpoint.js';
import { STORAGE_ELEMENT_SIZE, type StorageDType } from './torch-globals.js';

const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

/** A pickle starts with PROTO and a protocol number; torch.save uses protocol 2 unless told otherwise. */
export function isPickle(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

export function readLegacyCheckpoint(bytes: Uint8Array, fileName: string): PickledCheckpoint {
  const refuse = (): never => {
    throw new CheckpointError(fileName, 'malformed', 'the header of the legacy format holds a persistent id');
  };
  const magic = unpickleCheckpoint(bytes, 0, fileName, 'the magic number', refuse);
  if (magic.value !== MAGIC_NUMBER) {
    throw new CheckpointError(
      fileName,
      'not-a-checkpoint',
      "a Python pickle, but not one written by torch.save (it does not start with PyTorch's magic number)",
    );
  }
  const protocol = unpickleCheckpoint(bytes, magic.end, fileName, 'the protocol version', refuse);
  if (protocol.value !== PROTOCOL_VERSION) {
    throw new CheckpointError(fileName, 'unsupported', `legacy checkpoint protocol ${String(protocol.value)} is unknown`);
  }
  const sysInfo = unpickleCheckpoint(bytes, protocol.end, fileName, 'sys_info', refuse);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new CheckpointError(fileName, 'unsupported', 'a big-endian checkpoint: re-save it on a little-endian machine');
  }

  const storageTypes = new Map<string, StorageDType>();
  const main = unpickleCheckpoint(bytes, sysInfo.end, fileName, 'the pickled checkpoint', (pid) => {
    if (!Array.isArray(pid)) throw new CheckpointError(fileName, 'malformed', 'a persistent id is not a tuple');
    // torch.save(model) in this format names each module class through a persistent id.
    if (pid[0] === 'module' && pid[1] instanceof PickleGlobal) return pid[1];
    if (pid[0] !== 'storage') {
      throw new CheckpointError(fileName, 'malformed', `unknown persistent id type ${String(pid[0])}`);
    }
    const storage = storageFromPersistentId(pid, fileName);
    if (!storageTypes.has(storage.key)) storageTypes.set(storage.key, storage.dtype);
    return storage;
  });
  const keyList = unpickleCheckpoint(bytes, main.end, fileName, 'the storage key list', refuse);
  const keys = keyList.value;
  if (!Array.isArray(keys) || !keys.every((key): key is string => typeof key === 'string')) {
    throw new CheckpointError(fileName, 'malformed', 'the storage key list is not a list of strings');
  }

  const storages = new Map<string, StorageBytes>();
  let at = keyList.end;
  keys.forEach((key, index) => {
    const dtype = storageTypes.get(key);
    if (!dtype) throw new CheckpointError(fileName, 'malformed', `storage '${key}' is listed but never used`);
    const which = `storage ${index + 1} of ${keys.length} ('${key}')`;
    if (at + 8 > bytes.length) {
      throw new CheckpointError(fileName, 'truncated', `the file ends at byte ${bytes.length}, before ${which}: it is truncated`);
    }
    const count = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigInt64(0, true);
    const length = Number(count) * STORAGE_ELEMENT_SIZE[dtype];
    const start = at + 8;
    if (count < 0n || start + length > bytes.length) {
      throw new CheckpointError(
        fileName,
        'truncated',
        `the file ends inside ${which}, which needs ${length} bytes from byte ${start} but the file has ${bytes.length}: it is truncated`,
      );
    }
    storages.set(key, { bytes: bytes.subarray(start, start + length), owned: false });
    at = start + length;
  });

  return { format: 'legacy', root: main.value, unknownGlobals: main.unknownGlobals, loadStorages: () => storages };
}
