/**
 * Separable resampling of one-channel images in pure TypeScript, with the coefficients of PIL's
 * `Image.resize(..., BILINEAR)`: a triangle filter widened by the scale factor when downscaling (antialiased,
 * area-like) and plain bilinear interpolation when upscaling. Weights are precomputed once per axis.
 */

/** Source rectangle in continuous pixel coordinates (pixel i covers [i, i + 1)). */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

interface AxisWeights {
  /** First source index used by each output index. */
  start: Int32Array;
  /** Number of source samples used by each output index. */
  count: Int32Array;
  /** `size` weights per output index, normalised to sum 1. */
  weights: Float32Array;
  size: number;
}

const triangle = (x: number) => {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
};

/** PIL's precompute_coeffs for the bilinear (triangle, support 1) filter over the source span [in0, in1). */
function axisWeights(inSize: number, outSize: number, in0: number, in1: number): AxisWeights {
  const scale = (in1 - in0) / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * size);
  for (let o = 0; o < outSize; o++) {
    const center = in0 + (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let total = 0;
    const row = o * size;
    for (let i = lo; i < hi; i++) {
      const w = triangle((i - center + 0.5) / filterScale);
      weights[row + i - lo] = w;
      total += w;
    }
    if (total > 0) for (let k = 0; k < hi - lo; k++) weights[row + k] /= total;
    start[o] = lo;
    count[o] = Math.max(0, hi - lo);
  }
  return { start, count, weights, size };
}

/**
 * Working buffers of `resample`, kept between calls (it is synchronous, so one caller at a time per thread):
 * an image's rows are megabytes of short-lived floats otherwise, which the garbage collector then chases.
 */
const scratchBuffers: Float32Array[] = [new Float32Array(0), new Float32Array(0)];

/** Largest scratch buffer kept between calls (16 MiB); a larger need gets a buffer of its own. */
const MAX_KEPT = 2 ** 22;

/** Scratch buffer `which` (0: the horizontal pass's output, 1: source lines) with room for `length` values. */
function scratch(which: number, length: number): Float32Array {
  if (scratchBuffers[which].length >= length) return scratchBuffers[which];
  const buffer = new Float32Array(length);
  if (length <= MAX_KEPT) scratchBuffers[which] = buffer;
  return buffer;
}

/**
 * Resamples the `box` of a `width` x `height` one-channel image to `outWidth` x `outHeight`. Values keep their
 * scale (no rounding). Output pixels whose filter window lies entirely outside the source are 0.
 */
export function resample(
  src: Uint8Array | Uint16Array | Float32Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  box: Box = { x0: 0, y0: 0, x1: width, y1: height },
): Float32Array {
  if (src.length !== width * height) throw new Error(`resample: ${src.length} values for a ${width}x${height} image`);
  if (!(outWidth >= 1 && outHeight >= 1) || !Number.isInteger(outWidth) || !Number.isInteger(outHeight)) {
    throw new Error(`resample: invalid output size ${outWidth}x${outHeight}`);
  }
  if (!(box.x1 > box.x0 && box.y1 > box.y0)) throw new Error(`resample: empty source box ${JSON.stringify(box)}`);
  const horizontal = axisWeights(width, outWidth, box.x0, box.x1);
  const vertical = axisWeights(height, outHeight, box.y0, box.y1);

  // Horizontal pass only over the source rows the vertical pass will read.
  let rowLo = height;
  let rowHi = 0;
  for (let o = 0; o < outHeight; o++) {
    if (vertical.count[o] === 0) continue;
    rowLo = Math.min(rowLo, vertical.start[o]);
    rowHi = Math.max(rowHi, vertical.start[o] + vertical.count[o]);
  }
  const rows = Math.max(0, rowHi - rowLo);
  const temp = scratch(0, rows * outWidth);
  const hw = horizontal.weights;
  const hStart = horizontal.start;
  const hCount = horizontal.count;
  const hSize = horizontal.size;
  // Each source row is first copied into one Float32Array, so the hot loop reads a single array type
  // (keeps V8's element access monomorphic whatever the source type).
  // Eight rows per sweep share each weight load and the loop overhead.
  const lines = scratch(1, 8 * width);
  for (let r = 0; r < rows; r += 8) {
    const take = Math.min(8, rows - r);
    // With fewer than 8 rows left, the other lines hold earlier rows' values, which are summed but never stored.
    lines.set(src.subarray((rowLo + r) * width, (rowLo + r + take) * width));
    const dstRow = r * outWidth;
    for (let o = 0; o < outWidth; o++) {
      const first = hStart[o];
      const n = hCount[o];
      const k = o * hSize;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      for (let i = 0, j = first; i < n; i++, j++) {
        const w = hw[k + i];
        s0 += lines[j] * w;
        s1 += lines[width + j] * w;
        s2 += lines[2 * width + j] * w;
        s3 += lines[3 * width + j] * w;
        s4 += lines[4 * width + j] * w;
        s5 += lines[5 * width + j] * w;
        s6 += lines[6 * width + j] * w;
        s7 += lines[7 * width + j] * w;
      }
      const at = dstRow + o;
      temp[at] = s0;
      if (take > 1) temp[at + outWidth] = s1;
      if (take > 2) temp[at + 2 * outWidth] = s2;
      if (take > 3) temp[at + 3 * outWidth] = s3;
      if (take > 4) temp[at + 4 * outWidth] = s4;
      if (take > 5) temp[at + 5 * outWidth] = s5;
      if (take > 6) temp[at + 6 * outWidth] = s6;
      if (take > 7) temp[at + 7 * outWidth] = s7;
    }
  }

  const out = new Float32Array(outWidth * outHeight);
  const vw = vertical.weights;
  const fround = Math.fround;
  for (let o = 0; o < outHeight; o++) {
    const n = vertical.count[o];
    const k = o * vertical.size;
    const firstRow = vertical.start[o] - rowLo;
    const dstRow = o * outWidth;
    if (n === 2) {
      // Upsampling (heatmaps onto the image) always blends two rows: one pass instead of two over the output.
      const [w0, w1] = [vw[k], vw[k + 1]];
      const row0 = firstRow * outWidth;
      const row1 = row0 + outWidth;
      for (let x = 0; x < outWidth; x++) out[dstRow + x] = temp[row0 + x] * w0 + temp[row1 + x] * w1;
      continue;
    }
    if (n === 0) continue;
    // Each output value is summed in float32 over the rows in order (fround after every addition, as adding into
    // the Float32Array would round), two columns at a time in registers instead of a pass over the row per tap.
    const first = firstRow * outWidth;
    let x = 0;
    for (; x + 1 < outWidth; x += 2) {
      let s0 = 0;
      let s1 = 0;
      for (let i = 0, t = first + x; i < n; i++, t += outWidth) {
        const w = vw[k + i];
        s0 = fround(s0 + temp[t] * w);
        s1 = fround(s1 + temp[t + 1] * w);
      }
      out[dstRow + x] = s0;
      out[dstRow + x + 1] = s1;
    }
    if (x < outWidth) {
      let s0 = 0;
      for (let i = 0, t = first + x; i < n; i++, t += outWidth) s0 = fround(s0 + temp[t] * vw[k + i]);
      out[dstRow + x] = s0;
    }
  }
  return out;
}

/**
 * A gray image resampled to `outWidth` x `outHeight`, rounded and clamped back to its own integer type. Done in
 * bands of 256 output rows (the filter reads past a band's box, so the result is the whole-image resample's), so
 * the float buffers are a few MiB however large the image.
 */
export function resizeGray<T extends Uint8Array | Uint16Array>(pixels: T, width: number, height: number, outWidth: number, outHeight: number): T {
  const eight = pixels instanceof Uint8Array;
  const out = eight ? new Uint8Array(outWidth * outHeight) : new Uint16Array(outWidth * outHeight);
  const top = eight ? 255 : 65535;
  const scale = height / outHeight;
  const band = 256;
  for (let y = 0; y < outHeight; y += band) {
    const rows = Math.min(band, outHeight - y);
    const box = { x0: 0, x1: width, y0: y * scale, y1: y + rows === outHeight ? height : (y + rows) * scale };
    const resized = resample(pixels, width, height, outWidth, rows, box);
    const base = y * outWidth;
    for (let i = 0; i < resized.length; i++) {
      const v = Math.round(resized[i]);
      out[base + i] = v < 0 ? 0 : v > top ? top : v;
    }
  }
  return out as T;
}
