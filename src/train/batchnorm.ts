/**
 * Giving back BatchNorm statistics to weights that lost them. Files whose BatchNorms were folded into their
 * convolutions (int8 model-zoo files, PyTorch's default ONNX export) import with identity BatchNorms: exact for
 * inference, but a training step normalises with batch statistics, which would rescale every channel of the
 * pretrained network. From real images we measure each folded layer's per-channel mean m and standard deviation s
 * and set mean = m, variance = s^2 - eps, weight = s, bias = m + b: the same function in inference, and training-
 * mode normalisation that starts where the pretrained network was.
 */
import { type HostTensor, type Model, type ValueType, attributeFloat, float32, inferGraph } from '../onnx/index.js';
import { OrtSession } from '../runtime/session.js';

export interface UnfoldResult {
  /** BatchNorm nodes given statistics. */
  layers: string[];
  images: number;
}

/** The BatchNorms set to the identity at import: weight 1, mean 0, variance 1 - eps, any bias. */
export function identityBatchNorms(model: Model): string[] {
  const all = (t: HostTensor | undefined, value: number) => !!t && (t.data as Float32Array).every((v) => v === Math.fround(value));
  return model.graph.nodes
    .filter((node) => {
      if (node.opType !== 'BatchNormalization') return false;
      const [, w, , m, v] = node.inputs.map((n) => model.graph.initializers.get(n));
      return all(w, 1) && all(m, 0) && all(v, 1 - attributeFloat(node, 'epsilon', 1e-5));
    })
    .map((node) => node.name);
}

/** Measures the identity BatchNorms' inputs over `batches` and rewrites their parameters in place. */
export async function unfoldBatchNorms(model: Model, batches: Iterable<Record<string, HostTensor>>, threads?: number): Promise<UnfoldResult> {
  const names = new Set(identityBatchNorms(model));
  const nodes = model.graph.nodes.filter((n) => names.has(n.name));
  if (nodes.length === 0) return { layers: [], images: 0 };
  const types = inferGraph(model.graph);
  const probe: Model = {
    ...model,
    graph: { ...model.graph, outputs: nodes.map((n) => ({ name: n.inputs[0], type: types.get(n.inputs[0]) as ValueType })) },
  };
  const session = await OrtSession.create(probe, { threads });
  const sums = nodes.map(() => new Float64Array(0));
  const squares = nodes.map(() => new Float64Array(0));
  const counts = nodes.map(() => 0);
  let images = 0;
  try {
    for (const feeds of batches) {
      const outputs = await session.run(feeds);
      nodes.forEach((node, k) => {
        const t = outputs[node.inputs[0]];
        const [n, c] = t.dims;
        const plane = t.dims.slice(2).reduce((a, b) => a * b, 1);
        if (sums[k].length === 0) {
          sums[k] = new Float64Array(c);
          squares[k] = new Float64Array(c);
        }
        const data = t.data as Float32Array;
        for (let i = 0; i < n; i++) {
          for (let ch = 0; ch < c; ch++) {
            let s = 0;
            let q = 0;
            const base = (i * c + ch) * plane;
            for (let p = 0; p < plane; p++) {
              const v = data[base + p];
              s += v;
              q += v * v;
            }
            sums[k][ch] += s;
            squares[k][ch] += q;
          }
        }
        counts[k] += n * plane;
        if (k === 0) images += n;
      });
    }
  } finally {
    await session.release();
  }
  if (images === 0) throw new Error('unfoldBatchNorms: no images to measure');
  nodes.forEach((node, k) => {
    const eps = attributeFloat(node, 'epsilon', 1e-5);
    const [, wName, bName, mName, vName] = node.inputs;
    const bias = model.graph.initializers.get(bName)?.data as Float32Array;
    const c = bias.length;
    const plane = counts[k];
    const weight = new Float32Array(c);
    const newBias = new Float32Array(c);
    const mean = new Float32Array(c);
    const variance = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) {
      const m = sums[k][ch] / plane;
      const s2 = Math.max(0, squares[k][ch] / plane - m * m);
      if (s2 <= eps * 10) {
        // A (nearly) constant channel: keep the identity, there is nothing to normalise.
        weight[ch] = 1;
        variance[ch] = 1 - eps;
        newBias[ch] = bias[ch];
        continue;
      }
      const s = Math.sqrt(s2);
      mean[ch] = m;
      variance[ch] = s2 - eps;
      weight[ch] = s;
      newBias[ch] = m + bias[ch];
    }
    model.graph.initializers.set(wName, float32([c], weight));
    model.graph.initializers.set(bName, float32([c], newBias));
    model.graph.initializers.set(mName, float32([c], mean));
    model.graph.initializers.set(vName, float32([c], variance));
  });
  return { layers: nodes.map((n) => n.name), images };
}
