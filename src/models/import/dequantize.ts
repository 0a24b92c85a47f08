/** ONNX linear (de)quantisation of constant tensors: x = (q - zero_point) * scale, per tensor or per axis. */
import { type HostTensor, float32 } from '../../onnx/index.js';

export function dequantize(q: HostTensor, scale: HostTensor, zeroPoint: HostTensor | undefined, axis: number): HostTensor {
  const values = q.data as ArrayLike<number>;
  const scales = scale.data as Float32Array;
  const zeros = zeroPoint ? (zeroPoint.data as ArrayLike<number>) : undefined;
  const out = new Float32Array(values.length);
  if (scales.length === 1) {
    const z = zeros ? Number(zeros[0]) : 0;
    for (let i = 0; i < out.length; i++) out[i] = (Number(values[i]) - z) * scales[0];
    return float32(q.dims, out);
  }
  const a = axis < 0 ? axis + q.dims.length : axis;
  if (q.dims[a] !== scales.length) {
    throw new Error(`per-axis scale has ${scales.length} values but axis ${a} of the tensor [${q.dims.join(', ')}] has ${q.dims[a]}`);
  }
  const inner = q.dims.slice(a + 1).reduce((x, y) => x * y, 1);
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / inner) % scales.length;
    out[i] = (Number(values[i]) - (zeros ? Number(zeros[c]) : 0)) * scales[c];
  }
  return float32(q.dims, out);
}

/** QLinearConv's int32 bias is quantised with scale input_scale * weight_scale (per output channel) and zero point 0. */
export function dequantizeBias(bias: HostTensor, inputScale: HostTensor, weightScale: HostTensor): HostTensor {
  const b = bias.data as Int32Array;
  const s = (inputScale.data as Float32Array)[0];
  const w = weightScale.data as Float32Array;
  return float32(bias.dims, Array.from(b, (v, i) => v * s * (w.length === 1 ? w[0] : w[i])));
}
