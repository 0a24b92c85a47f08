/** What both on-disk formats yield: the unpickled object and access to the raw storage bytes it refers to. */
import { CheckpointError } from './errors.js';
import type { StorageBytes } from './materialize.js';
import { PickleError, PickleGlobal, type UnpickleHooks, type UnpickleResult, unpickle } from './pickle.js';
import { StorageRef, resolveTorchGlobal, storageDType } from './torch-globals.js';

export interface PickledCheckpoint {
  format: 'zip' | 'legacy';
  root: unknown;
  unknownGlobals: string[];
  /** The bytes of the named storages (the zip format decompresses only these). */
  loadStorages(keys: ReadonlySet<string>): ReadonlyMap<string, StorageBytes>;
}

/** Unpickles with torch's globals, turning pickle failures into checkpoint errors that say where they happened. */
export function unpickleCheckpoint(
  bytes: Uint8Array,
  start: number,
  fileName: string,
  where: string,
  persistentLoad: UnpickleHooks['persistentLoad'],
): UnpickleResult {
  try {
    return unpickle(bytes, start, { resolveGlobal: resolveTorchGlobal, persistentLoad });
  } catch (error) {
    if (!(error instanceof PickleError)) throw error;
    const reason = error.truncated ? 'truncated' : 'malformed';
    const advice = error.truncated ? ' (the file is incomplete: an interrupted download or copy?)' : '';
    throw new CheckpointError(fileName, reason, `${where}: ${error.message}${advice}`);
  }
}

/**
 * The storage a persistent id ('storage', storage class, key, location, element count[, legacy view]) names.
 * Throws for storage classes this reader cannot decode (complex, quantized).
 */
export function storageFromPersistentId(pid: unknown[], fileName: string): StorageRef {
  const [, storageClass, key, , numel, view] = pid;
  const dtype = storageDType(storageClass);
  if (!dtype) {
    const name = storageClass instanceof PickleGlobal ? storageClass.qualifiedName : typeof storageClass;
    throw new CheckpointError(
      fileName,
      'unsupported',
      `tensors with storage type ${name} are not supported (only float, integer and bool tensors are)`,
    );
  }
  if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw new CheckpointError(fileName, 'malformed', `a storage reference has an invalid key or size: ${String(key)}`);
  }
  // Storage views existed only before PyTorch 1.0: (view key, element offset, element count) of a root storage.
  if (Array.isArray(view)) {
    const [, offset, count] = view;
    if (typeof offset !== 'number' || typeof count !== 'number' || offset + count > numel) {
      throw new CheckpointError(fileName, 'malformed', `storage view of '${key}' lies outside it`);
    }
    return new StorageRef(key, dtype, count, offset);
  }
  return new StorageRef(key, dtype, numel);
}
