/**
 * The memory layout of a model's 4-D activations, for code that reads them as feature maps (the CAM family).
 * Convolutions give [batch, channels, height, width] (NCHW), the default; a layer that keeps channels last, as a
 * vision transformer's stages do ([batch, height, width, channels]), declares it, and readers transpose through
 * the declaration (the idea of pytorch-grad-cam's reshape_transform) instead of silently reading H as C.
 */
import type { HostTensor, Model } from '../onnx/index.js';
import { float32 } from '../onnx/index.js';

export type ActivationLayout = 'NCHW' | 'NHWC';

const LAYOUTS_KEY = 'cxr.layouts';

/** Metadata declaring the layout of activations that are not NCHW. */
export function layoutsMetadata(layouts: Record<string, ActivationLayout>): Record<string, string> {
  return Object.keys(layouts).length ? { [LAYOUTS_KEY]: JSON.stringify(layouts) } : {};
}

/** How the named activation is laid out: as declared, else NCHW. */
export function activationLayout(model: Pick<Model, 'metadata'>, name: string): ActivationLayout {
  const text = model.metadata[LAYOUTS_KEY];
  const declared = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>)[name];
  if (declared === undefined) return 'NCHW';
  if (declared !== 'NCHW' && declared !== 'NHWC') throw new Error(`activation "${name}" declares the unknown layout ${JSON.stringify(declared)}`);
  return declared;
}

/** [batch, channels, height, width] of a 4-D activation in `layout`. */
export function nchwDims(dims: readonly number[], layout: ActivationLayout): [number, number, number, number] {
  const [n, a, b, c] = dims;
  return layout === 'NCHW' ? [n, a, b, c] : [n, c, a, b];
}

/** Rows of an activation in `layout`, reordered to NCHW (a copy; NCHW input is returned as it is). */
export function toNchw(data: Float32Array, dims: readonly number[], layout: ActivationLayout): Float32Array {
  if (layout === 'NCHW') return data;
  const [rows, height, width, channels] = dims;
  const out = new Float32Array(data.length);
  const plane = height * width;
  for (let r = 0; r < rows; r++) {
    const base = r * plane * channels;
    for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) out[base + c * plane + p] = data[base + p * channels + c];
  }
  return out;
}

/** An NCHW batch [rows, channels, height, width] in `layout`, to feed back into the network after that layer. */
export function fromNchw(batch: HostTensor<'float32'>, layout: ActivationLayout): HostTensor<'float32'> {
  if (layout === 'NCHW') return batch;
  const [rows, channels, height, width] = batch.dims;
  const out = float32([rows, height, width, channels]);
  const plane = height * width;
  for (let r = 0; r < rows; r++) {
    const base = r * plane * channels;
    for (let c = 0; c < channels; c++) for (let p = 0; p < plane; p++) out.data[base + p * channels + c] = batch.data[base + c * plane + p];
  }
  return out;
}
