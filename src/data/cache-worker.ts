/** Worker thread of the image cache: decodes an image file and resizes it to the spec's uint8 model pixels. */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeImageFile } from '../imaging/decode.js';
import { toModelPixels } from '../imaging/preprocess.js';
import type { PreprocessingSpec } from '../imaging/spec.js';

export interface CacheTask {
  slot: number;
  path: string;
}

export type CacheTaskResult = { slot: number; pixels: Uint8Array } | { slot: number; error: string };

/** The work of one image, shared by the worker and the in-thread path. */
export async function modelPixelsOfFile(path: string, spec: PreprocessingSpec): Promise<Uint8Array> {
  return toModelPixels(await decodeImageFile(path), spec).pixels;
}

if (parentPort !== null && (workerData as { cacheWorker?: boolean } | null)?.cacheWorker === true) {
  const port = parentPort;
  const spec = (workerData as { spec: PreprocessingSpec }).spec;
  port.on('message', (task: CacheTask) => {
    modelPixelsOfFile(task.path, spec).then(
      (pixels) => port.postMessage({ slot: task.slot, pixels } satisfies CacheTaskResult, [pixels.buffer as ArrayBuffer]),
      (error: unknown) => port.postMessage({ slot: task.slot, error: (error as Error).message } satisfies CacheTaskResult),
    );
  });
}
