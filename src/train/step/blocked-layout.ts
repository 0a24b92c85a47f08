/**
 * ONNX Runtime's blocked channel layout (NCHWc) block size on this machine, for blocked-convolutions.ts:
 * found by running that rewrite against a plain Conv, since it depends on the CPU (16 with AVX-512, 8 with AVX2)
 * and on ORT's internal filter layout. None where ORT has no blocked kernels or the layout does not match.
 */
import ort from '../../runtime/ort.js';
import { blockConvolutions, withBlockedDomain } from './blocked-convolutions.js';
import { type Graph, type Model, createModel, encodeModel, float32 } from '../../onnx/index.js';

let probed: Promise<number | undefined> | undefined;

/** The block size for which `blockConvolutions` gives the plain Conv's results, or undefined. Probed once. */
export function probeBlockSize(): Promise<number | undefined> {
  probed ??= (async () => {
    for (const candidate of [16, 8]) if (await matchesPlainConv(candidate)) return candidate;
    return undefined;
  })();
  return probed;
}

async function matchesPlainConv(blockSize: number): Promise<boolean> {
  const [batch, channels, size] = [2, 32, 5];
  const plain: Graph = {
    name: 'probe',
    nodes: [{ name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: { kernel_shape: { kind: 'ints', value: [3, 3] }, pads: { kind: 'ints', value: [1, 1, 1, 1] } } }],
    inputs: [
      { name: 'x', type: { dtype: 'float32', shape: [batch, channels, size, size] } },
      { name: 'w', type: { dtype: 'float32', shape: [channels, channels, 3, 3] } },
    ],
    outputs: [{ name: 'y', type: { dtype: 'float32', shape: [batch, channels, size, size] } }],
    initializers: new Map(),
    valueInfo: [],
  };
  const x = float32([batch, channels, size, size], Array.from({ length: batch * channels * size * size }, (_, i) => Math.sin(i)));
  const w = float32([channels, channels, 3, 3], Array.from({ length: channels * channels * 9 }, (_, i) => Math.cos(i * 0.7)));
  const run = async (model: Model) => {
    const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, logSeverityLevel: 4 });
    try {
      const feeds = { x: new ort.Tensor('float32', x.data, x.dims), w: new ort.Tensor('float32', w.data, w.dims) };
      return (await session.run(feeds)).y.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  try {
    const expected = await run(createModel(plain));
    const got = await run(withBlockedDomain(createModel(blockConvolutions(plain, blockSize))));
    return got.length === expected.length && got.every((v, i) => Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])));
  } catch {
    return false;
  }
}
