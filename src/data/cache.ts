/**
 * The preprocessed image cache: every image decoded and resized once to the model's uint8 pixels, stored in one
 * binary file (slot i = bytes [i * H * W, (i + 1) * H * W)) beside a JSON index, and streamed back in batches.
 * The cache is reused while its key matches: a hash of the image list (id, path, size, mtime), the pixel-shaping
 * part of the preprocessing spec (height, width, resize: mean/std and channels are applied after the cache, so
 * changing them does not rebuild it) and the pipeline version; otherwise it is rebuilt.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readSync, statSync } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { allocateFloat32, normalizationTables, normalizeInto } from '../imaging/preprocess.js';
import { validatePreprocessingSpec, type PreprocessingSpec } from '../imaging/spec.js';
import { tensor, type HostTensor } from '../onnx/tensor.js';
import type { CacheTask, CacheTaskResult } from './cache-worker.js';
import { modelPixelsOfFile } from './cache-worker.js';
import type { SkippedRow } from './report.js';

/** Bump when decoding or resizing changes what a cache holds for the same inputs. */
export const CACHE_PIPELINE_VERSION = 'decodeImageFile+toModelPixels/1';
const INDEX_FORMAT = 'cxr-lens-image-cache';

/** What the cache needs of a record; `source` (a dataset record's) makes errors name the CSV row. */
export interface CacheSource {
  id: string;
  imagePath: string;
  source?: { file: string; row: number };
}

export interface CacheProgress {
  /** Images decoded (or skipped) so far. */
  done: number;
  total: number;
  skipped: number;
}

export interface ImageCacheOptions {
  /** Folder for the cache files (created if missing). */
  folder: string;
  /** Base name of the files: `<name>.bin` and `<name>.json` (default "images"). */
  name?: string;
  spec: PreprocessingSpec;
  /** Worker threads decoding in parallel (default 2). */
  workers?: number;
  onProgress?: (progress: CacheProgress) => void;
  /** `error` (default): the first unreadable image throws; `skip`: it is left out and listed in `skipped`. */
  onBadImage?: 'error' | 'skip';
}

interface CacheIndex {
  format: typeof INDEX_FORMAT;
  key: string;
  pipeline: string;
  height: number;
  width: number;
  resize: PreprocessingSpec['resize'];
  /** The id in each slot; null where the image was skipped (its bytes are zeros). */
  ids: (string | null)[];
  skipped: SkippedRow[];
}

export class ImageCache {
  /** Bytes of one image: height * width. */
  readonly imageBytes: number;
  private readonly slots = new Map<string, number>();
  private handle?: Promise<FileHandle>;

  private constructor(
    readonly binPath: string,
    readonly indexPath: string,
    private readonly index: CacheIndex,
    /** True when an existing cache matched and nothing was decoded. */
    readonly reused: boolean,
  ) {
    this.imageBytes = index.height * index.width;
    index.ids.forEach((id, slot) => {
      if (id !== null) this.slots.set(id, slot);
    });
  }

  get key(): string {
    return this.index.key;
  }
  get height(): number {
    return this.index.height;
  }
  get width(): number {
    return this.index.width;
  }
  /** Number of slots (records given when it was built, skipped ones included). */
  get size(): number {
    return this.index.ids.length;
  }
  /** Images that could not be read, with the reason, when built with onBadImage 'skip'. */
  get skipped(): readonly SkippedRow[] {
    return this.index.skipped;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  slotOf(id: string): number {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new Error(`${this.indexPath}: image "${id}" is not in the cache`);
    return slot;
  }

  /** Opens an existing cache, or builds it (all images decoded by worker threads) when it is missing or stale. */
  static async open(records: readonly CacheSource[], options: ImageCacheOptions): Promise<ImageCache> {
    const spec = validatePreprocessingSpec(options.spec);
    if (records.length === 0) throw new Error('image cache: no records to cache');
    const onBadImage = options.onBadImage ?? 'error';
    if (onBadImage !== 'error' && onBadImage !== 'skip') throw new Error(`onBadImage must be "error" or "skip", got ${JSON.stringify(onBadImage)}`);
    mkdirSync(options.folder, { recursive: true });
    const name = options.name ?? 'images';
    const binPath = join(options.folder, `${name}.bin`);
    const indexPath = join(options.folder, `${name}.json`);

    const { key, missing } = await cacheKey(records, spec);
    const existing = await readIndex(indexPath, binPath);
    if (existing !== undefined && existing.key === key) return new ImageCache(binPath, indexPath, existing, true);

    const skipped: SkippedRow[] = [];
    for (const [slot, reason] of missing) {
      const problem = describeImage(records[slot], reason);
      if (onBadImage === 'error') throw new Error(problem);
      skipped.push(skipEntry(records[slot], reason));
    }
    const index: CacheIndex = {
      format: INDEX_FORMAT,
      key,
      pipeline: CACHE_PIPELINE_VERSION,
      height: spec.height,
      width: spec.width,
      resize: spec.resize,
      ids: records.map((r) => r.id),
      skipped,
    };
    await buildBinary(records, spec, binPath, index, options, new Set(missing.keys()));
    // The index is written last: a cache whose build was interrupted has no matching index and is rebuilt.
    await writeFile(`${indexPath}.tmp`, JSON.stringify(index));
    await rename(`${indexPath}.tmp`, indexPath);
    return new ImageCache(binPath, indexPath, index, false);
  }

  /** The model pixels of the given slots, one image after another ([B, H, W] uint8). */
  read(slots: ArrayLike<number>, into = unfilledBytes(slots.length * this.imageBytes)): Promise<Uint8Array> {
    return this.fill(slots, into, false);
  }

  /**
   * Streams batches of model pixels in the given slot order, reading the next batch while the caller works on the
   * current one. The first batch, which the caller can only wait for, is read on this thread: a read handed to
   * libuv's thread pool costs a thread hand-off and wake-up each way.
   */
  async *batches(order: ArrayLike<number>, batchSize: number): AsyncGenerator<{ slots: number[]; pixels: Uint8Array }> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`image cache: batch size must be a whole number >= 1, got ${batchSize}`);
    const slotsOf = (start: number) => Array.from({ length: Math.min(batchSize, order.length - start) }, (_, k) => order[start + k]);
    const bytesOf = (slots: number[]) => unfilledBytes(slots.length * this.imageBytes);
    let start = 0;
    let pending = order.length > 0 ? this.fill(slotsOf(0), bytesOf(slotsOf(0)), true) : undefined;
    while (pending !== undefined) {
      const slots = slotsOf(start);
      const pixels = await pending;
      start += batchSize;
      pending = start < order.length ? this.fill(slotsOf(start), bytesOf(slotsOf(start)), false) : undefined;
      yield { slots, pixels };
    }
  }

  /** Reads the slots into `into`, runs of consecutive slots with one call each; `now`: on this thread. */
  private async fill(slots: ArrayLike<number>, into: Uint8Array, now: boolean): Promise<Uint8Array> {
    if (into.length !== slots.length * this.imageBytes) throw new Error(`image cache: buffer holds ${into.length} bytes, ${slots.length} images need ${slots.length * this.imageBytes}`);
    const handle = await this.open();
    const reads: Promise<unknown>[] = [];
    for (let i = 0; i < slots.length; ) {
      let j = i + 1;
      while (j < slots.length && slots[j] === slots[j - 1] + 1) j++;
      const first = slots[i];
      if (!Number.isInteger(first) || first < 0 || slots[j - 1] >= this.size) throw new Error(`image cache: slot ${slots[j - 1]} is outside 0..${this.size - 1}`);
      const args = [into, i * this.imageBytes, (j - i) * this.imageBytes, first * this.imageBytes, this.binPath] as const;
      if (now) readExactlyNow(handle, ...args);
      else reads.push(readExactly(handle, ...args));
      i = j;
    }
    await Promise.all(reads);
    return into;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) await (await handle).close();
  }

  private open(): Promise<FileHandle> {
    this.handle ??= open(this.binPath, 'r');
    return this.handle;
  }
}

/**
 * Model pixels of a batch ([B, H, W] uint8) -> the normalised model input [B, C, H, W] float32. Written straight
 * into one tensor with the tables imaging's `normalize` uses ((v / 255 - mean) / std in float32; the tests check
 * the two agree bit for bit), instead of a fresh array per image and a copy.
 */
export function batchTensor(pixels: Uint8Array, spec: PreprocessingSpec): HostTensor<'float32'> {
  validatePreprocessingSpec(spec);
  const plane = spec.height * spec.width;
  if (pixels.length % plane !== 0) throw new Error(`batchTensor: ${pixels.length} bytes is not a whole number of ${spec.height}x${spec.width} images`);
  const count = pixels.length / plane;
  const data = allocateFloat32(count * spec.channels * plane);
  const tables = normalizationTables(spec);
  for (let b = 0; b < count; b++) normalizeInto(pixels, b * plane, spec, tables, data, b * spec.channels * plane, true);
  return tensor('float32', [count, spec.channels, spec.height, spec.width], data);
}

async function cacheKey(records: readonly CacheSource[], spec: PreprocessingSpec): Promise<{ key: string; missing: Map<number, string> }> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ pipeline: CACHE_PIPELINE_VERSION, height: spec.height, width: spec.width, resize: spec.resize }));
  const missing = new Map<number, string>();
  const seen = new Set<string>();
  for (let slot = 0; slot < records.length; slot++) {
    const { id, imagePath } = records[slot];
    if (seen.has(id)) throw new Error(`image cache: image id "${id}" is given twice`);
    seen.add(id);
    let fingerprint: string;
    try {
      // On this thread: awaiting a thread-pool stat per image costs a thread hand-off each, one after another.
      const info = statSync(imagePath);
      fingerprint = `${info.size}:${info.mtimeMs}`;
    } catch (error) {
      missing.set(slot, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message);
      fingerprint = 'missing';
    }
    hash.update(`\n${id}\t${imagePath}\t${fingerprint}`);
  }
  return { key: hash.digest('hex'), missing };
}

async function readIndex(indexPath: string, binPath: string): Promise<CacheIndex | undefined> {
  try {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as CacheIndex;
    if (index.format !== INDEX_FORMAT || !Array.isArray(index.ids)) return undefined;
    const info = await stat(binPath);
    return info.size === index.ids.length * index.height * index.width ? index : undefined;
  } catch {
    return undefined;
  }
}

async function buildBinary(
  records: readonly CacheSource[],
  spec: PreprocessingSpec,
  binPath: string,
  index: CacheIndex,
  options: ImageCacheOptions,
  alreadySkipped: Set<number>,
): Promise<void> {
  const imageBytes = spec.height * spec.width;
  const temporary = `${binPath}.tmp`;
  const handle = await open(temporary, 'w');
  const workerCount = Math.max(1, Math.min(options.workers ?? 2, records.length));
  const workers = Array.from(
    { length: workerCount },
    () => new Worker(new URL('./cache-worker.js', import.meta.url), { workerData: { cacheWorker: true, spec } }),
  );
  let done = alreadySkipped.size;
  const total = records.length;
  const report = () => options.onProgress?.({ done, total, skipped: index.skipped.length });
  try {
    await handle.truncate(total * imageBytes);
    report();
    const queue = records.map((_, slot) => slot).filter((slot) => !alreadySkipped.has(slot));
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let writing = 0;
      let failed = false;
      const fail = (error: Error) => {
        if (!failed) reject(error);
        failed = true;
      };
      const finishIfDone = () => {
        if (!failed && done === total && writing === 0) resolve();
      };
      const feed = (worker: Worker) => {
        if (failed || next >= queue.length) return;
        const slot = queue[next++];
        worker.postMessage({ slot, path: records[slot].imagePath } satisfies CacheTask);
      };
      for (const worker of workers) {
        worker.on('message', (result: CacheTaskResult) => {
          if (failed) return;
          if ('error' in result) {
            if ((options.onBadImage ?? 'error') === 'error') return fail(new Error(describeImage(records[result.slot], result.error)));
            index.ids[result.slot] = null;
            index.skipped.push(skipEntry(records[result.slot], result.error));
            done++;
            report();
            feed(worker);
            return finishIfDone();
          }
          if (result.pixels.length !== imageBytes) return fail(new Error(`image cache: worker returned ${result.pixels.length} bytes for slot ${result.slot}`));
          writing++;
          handle.write(result.pixels, 0, imageBytes, result.slot * imageBytes).then(() => {
            writing--;
            done++;
            report();
            finishIfDone();
          }, fail);
          feed(worker);
        });
        worker.on('error', fail);
        worker.on('exit', (code) => {
          if (done < total) fail(new Error(`image cache: a decoding worker stopped (exit code ${code}) before the cache was complete`));
        });
        // Two tasks in flight per worker keep it busy while the main thread writes.
        feed(worker);
        feed(worker);
      }
      finishIfDone();
    });
    for (const slot of alreadySkipped) index.ids[slot] = null;
    index.skipped.sort((a, b) => (a.row ?? 0) - (b.row ?? 0));
    await handle.close();
    await rename(temporary, binPath);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/** Bytes that `read` overwrites entirely (or throws), so not zeroed first. */
function unfilledBytes(length: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
}

function readExactlyNow(handle: FileHandle, into: Uint8Array, offset: number, length: number, position: number, path: string): void {
  let read = 0;
  while (read < length) {
    const bytesRead = readSync(handle.fd, into, offset + read, length - read, position + read);
    if (bytesRead === 0) throw new Error(`${path}: cache file ends early at byte ${position + read} (rebuild it)`);
    read += bytesRead;
  }
}

async function readExactly(handle: FileHandle, into: Uint8Array, offset: number, length: number, position: number, path: string): Promise<void> {
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(into, offset + read, length - read, position + read);
    if (bytesRead === 0) throw new Error(`${path}: cache file ends early at byte ${position + read} (rebuild it)`);
    read += bytesRead;
  }
}

function describeImage(record: CacheSource, reason: string): string {
  const where = record.source !== undefined ? `${record.source.file}, row ${record.source.row}: ` : '';
  // Imaging's messages already start with the path; others get it added.
  return `${where}image "${record.id}": ${reason.includes(record.imagePath) ? reason : `${record.imagePath}: ${reason}`}`;
}

function skipEntry(record: CacheSource, reason: string): SkippedRow {
  return { file: record.source?.file ?? record.imagePath, row: record.source?.row, column: 'image', value: record.imagePath, reason };
}

export { modelPixelsOfFile };
