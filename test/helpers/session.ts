/** One-off ONNX Runtime runs for tests. */
import type { HostTensor, Model } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';

/** Runs a model once in a session of its own, released afterwards. */
export async function runOnce(model: Model | Uint8Array, feeds: Record<string, HostTensor>, threads = 1): Promise<Record<string, HostTensor>> {
  const session = await OrtSession.create(model, { threads });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}
