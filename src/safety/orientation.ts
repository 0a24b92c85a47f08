/**
 * How a film is turned, by comparison rather than by an absolute score. A small network u scores how "upright
 * chest X-ray" a 32 x 32 thumbnail looks; it is applied to the thumbnail under each of the 16 symmetries of the
 * square with and without inversion (8 turns and mirrorings x 2 polarities), and a softmax over the 16 scores says
 * which symmetry makes the film upright. An upright bedside film full of wires is still more upright than itself
 * turned by 180 degrees, so unusual films keep their answer where an absolute "rotated" score fails them; a photo
 * has no clear winner. Pure TypeScript on the decoded image (browser-safe): the server, the CLI and private mode
 * compute the same numbers from the weights stored in the model.
 */
import type { DecodedImage } from '../imaging/image.js';
import { resample } from '../imaging/resample.js';
import { seededRandom, shuffleInPlace } from '../random.js';
import { decodeFloats, encodeFloats } from './encoding.js';

export const THUMBNAIL = 32;
const PIXELS = THUMBNAIL * THUMBNAIL;

/**
 * Symmetry g = inverted * 8 + mirrored * 4 + quarterTurns: the thumbnail turned clockwise by quarterTurns * 90
 * degrees, then mirrored left-right, then its intensities negated. g = 0 is the identity.
 */
export const SYMMETRIES = 16;

/** Where each output pixel of symmetry g reads from, for g < 8 (inversion only changes the sign). */
const SOURCE_INDEX: Int32Array[] = Array.from({ length: 8 }, (_, g) => {
  const turns = g % 4;
  const mirrored = g >= 4;
  const n = THUMBNAIL;
  const index = new Int32Array(PIXELS);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      // Undo the mirror, then the clockwise turns, to find the source pixel of output (x, y).
      let sx = mirrored ? n - 1 - x : x;
      let sy = y;
      for (let t = 0; t < turns; t++) [sx, sy] = [sy, n - 1 - sx];
      index[y * n + x] = sy * n + sx;
    }
  }
  return index;
});

/** The image's thumbnail on [0, 1], THUMBNAIL x THUMBNAIL, the whole image squeezed to a square. */
export function rawThumbnail(image: Pick<DecodedImage, 'pixels' | 'width' | 'height' | 'maxValue'>): Float32Array {
  const grid = resample(image.pixels, image.width, image.height, THUMBNAIL, THUMBNAIL);
  for (let i = 0; i < grid.length; i++) grid[i] /= image.maxValue;
  return grid;
}

/** Zero mean and unit variance, so exposure does not matter and inversion is negation. */
export function standardise(values: Float32Array): Float32Array {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2;
  const scale = 1 / Math.sqrt(variance / values.length + 1e-6);
  return Float32Array.from(values, (v) => (v - mean) * scale);
}

export function thumbnail(image: Pick<DecodedImage, 'pixels' | 'width' | 'height' | 'maxValue'>): Float32Array {
  return standardise(rawThumbnail(image));
}

/** The thumbnail under symmetry g. */
export function applySymmetry(t: Float32Array, g: number): Float32Array {
  return symmetryInto(t, g, new Float32Array(PIXELS));
}

function symmetryInto(t: Float32Array, g: number, out: Float32Array): Float32Array {
  const index = SOURCE_INDEX[g % 8];
  const sign = g >= 8 ? -1 : 1;
  for (let i = 0; i < PIXELS; i++) out[i] = sign * t[index[i]];
  return out;
}

/** u(t) = w2 . relu(W1 t + b1): the weights the model stores. */
export interface OrientationNet {
  hidden: number;
  /** [hidden, THUMBNAIL^2] row-major. */
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
}

function score(net: OrientationNet, x: Float32Array, hidden?: Float32Array): number {
  let u = 0;
  for (let h = 0; h < net.hidden; h++) {
    let z = net.b1[h];
    const row = h * PIXELS;
    for (let i = 0; i < PIXELS; i++) z += net.w1[row + i] * x[i];
    const a = z > 0 ? z : 0;
    if (hidden) hidden[h] = a;
    u += net.w2[h] * a;
  }
  return u;
}

/** Softmax over the 16 symmetries: p[g] is the probability that symmetry g makes the film upright. */
export function symmetryProbabilities(net: OrientationNet, t: Float32Array): Float64Array {
  const u = Float64Array.from({ length: SYMMETRIES }, (_, g) => score(net, applySymmetry(t, g)));
  return softmax(u);
}

function softmax(u: Float64Array): Float64Array {
  const top = Math.max(...u);
  const e = u.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** What the 16 probabilities say, grouped by what a user is told. */
export interface OrientationScores {
  /** Upright as given (the identity). */
  upright: number;
  /** Upright once turned by 90, 180 or 270 degrees (with or without a mirror or inversion). */
  rotated: number;
  /** Upright once mirrored left-right only: the heart on the right, a flipped film or dextrocardia. */
  mirrored: number;
  /** Upright once its intensities are inverted (bones dark), any turn. */
  inverted: number;
  /** The largest of the 16: how sure the network is of any orientation at all. */
  confidence: number;
}

export function orientationScores(p: ArrayLike<number>): OrientationScores {
  let rotated = 0;
  let inverted = 0;
  let confidence = 0;
  for (let g = 0; g < SYMMETRIES; g++) {
    if (g % 4 !== 0) rotated += p[g];
    if (g >= 8) inverted += p[g];
    confidence = Math.max(confidence, p[g]);
  }
  return { upright: p[0], rotated, mirrored: p[4], inverted, confidence };
}

export interface OrientationFitOptions {
  hidden?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** L2 penalty on the weights (decoupled, AdamW-style). */
  weightDecay?: number;
  seed?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

/**
 * Fits u on upright real films: each film's 16 symmetries, trained (Adam, cross-entropy) to pick the identity.
 * Every epoch sees each film once, reframed at random (`reframe`: zoom, collimation-like frames, shift, gamma), so
 * the network cannot key on one exposure or one framing. `films` are raw thumbnails (rawThumbnail).
 */
export function fitOrientation(films: readonly Float32Array[], options: OrientationFitOptions = {}): OrientationNet {
  if (films.length < 20) throw new Error(`fitting the orientation check needs at least 20 upright films, got ${films.length}`);
  const hidden = options.hidden ?? 32;
  const epochs = options.epochs ?? 40;
  const batchSize = options.batchSize ?? 32;
  const rate = options.learningRate ?? 2e-3;
  const decay = options.weightDecay ?? 1e-4;
  const random = seededRandom(options.seed ?? 0);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const net: OrientationNet = {
    hidden,
    w1: Float32Array.from({ length: hidden * PIXELS }, () => gaussian() * Math.sqrt(2 / PIXELS)),
    b1: new Float32Array(hidden),
    w2: Float32Array.from({ length: hidden }, () => gaussian() * Math.sqrt(1 / hidden)),
  };
  const parameters = [net.w1, net.b1, net.w2];
  const grads = parameters.map((p) => new Float32Array(p.length));
  const m = parameters.map((p) => new Float32Array(p.length));
  const v = parameters.map((p) => new Float32Array(p.length));
  let step = 0;
  const order = films.map((_, i) => i);
  const activations = Array.from({ length: SYMMETRIES }, () => new Float32Array(hidden));
  const inputs = Array.from({ length: SYMMETRIES }, () => new Float32Array(PIXELS));
  for (let epoch = 0; epoch < epochs; epoch++) {
    shuffleInPlace(order, random);
    let total = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const batch = order.slice(start, start + batchSize);
      for (const g of grads) g.fill(0);
      for (const i of batch) {
        const t = standardise(reframe(films[i], random));
        const u = new Float64Array(SYMMETRIES);
        for (let g = 0; g < SYMMETRIES; g++) {
          symmetryInto(t, g, inputs[g]);
          u[g] = score(net, inputs[g], activations[g]);
        }
        const p = softmax(u);
        total -= Math.log(Math.max(p[0], 1e-12));
        for (let g = 0; g < SYMMETRIES; g++) {
          const du = (p[g] - (g === 0 ? 1 : 0)) / batch.length;
          // Symmetries the network already rules out contribute nothing worth a pass over the weights.
          if (Math.abs(du) < 1e-7) continue;
          const a = activations[g];
          const x = inputs[g];
          for (let h = 0; h < hidden; h++) {
            grads[2][h] += du * a[h];
            if (a[h] <= 0) continue;
            const dz = du * net.w2[h];
            grads[1][h] += dz;
            const row = h * PIXELS;
            for (let k = 0; k < PIXELS; k++) grads[0][row + k] += dz * x[k];
          }
        }
      }
      step++;
      const correction1 = 1 - 0.9 ** step;
      const correction2 = 1 - 0.999 ** step;
      parameters.forEach((p, j) => {
        const g = grads[j];
        for (let k = 0; k < p.length; k++) {
          m[j][k] = 0.9 * m[j][k] + 0.1 * g[k];
          v[j][k] = 0.999 * v[j][k] + 0.001 * g[k] * g[k];
          p[k] -= rate * ((m[j][k] / correction1) / (Math.sqrt(v[j][k] / correction2) + 1e-8) + decay * p[k]);
        }
      });
    }
    options.onEpoch?.(epoch, total / films.length);
  }
  return net;
}

/**
 * A raw thumbnail as another site might frame it: zoomed in up to 15%, or shrunk into a frame of collimation or
 * padding (bright or dark, as film borders are), shifted by up to 2 pixels, and passed through a random gamma.
 */
export function reframe(t: Float32Array, random: () => number): Float32Array {
  const n = THUMBNAIL;
  const framed = random() < 0.5;
  const scale = framed ? 0.65 + 0.35 * random() : 1 + 0.15 * random();
  const border = random() < 0.5 ? 0.8 + 0.2 * random() : 0.15 * random();
  const slack = Math.max(0, n - n * scale);
  const ox = (framed ? random() * slack : (n - n * scale) / 2) + Math.floor(random() * 5) - 2;
  const oy = (framed ? random() * slack : (n - n * scale) / 2) + Math.floor(random() * 5) - 2;
  const gamma = Math.exp((random() - 0.5) * 0.8);
  const out = new Float32Array(PIXELS);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const sx = (x + 0.5 - ox) / scale - 0.5;
      const sy = (y + 0.5 - oy) / scale - 0.5;
      let value = border;
      if (sx > -0.5 && sy > -0.5 && sx < n - 0.5 && sy < n - 0.5) {
        const x0 = Math.min(n - 1, Math.max(0, Math.floor(sx)));
        const y0 = Math.min(n - 1, Math.max(0, Math.floor(sy)));
        const x1 = Math.min(n - 1, x0 + 1);
        const y1 = Math.min(n - 1, y0 + 1);
        const fx = Math.min(1, Math.max(0, sx - x0));
        const fy = Math.min(1, Math.max(0, sy - y0));
        const top = t[y0 * n + x0] * (1 - fx) + t[y0 * n + x1] * fx;
        const bottom = t[y1 * n + x0] * (1 - fx) + t[y1 * n + x1] * fx;
        value = top * (1 - fy) + bottom * fy;
      }
      out[y * n + x] = Math.max(0, value) ** gamma;
    }
  }
  return out;
}

/** The weights as they are stored in the model's metadata. */
export function encodeOrientationNet(net: OrientationNet): { hidden: number; thumbnail: number; weights: string } {
  const all = new Float32Array(net.w1.length + net.b1.length + net.w2.length);
  all.set(net.w1, 0);
  all.set(net.b1, net.w1.length);
  all.set(net.w2, net.w1.length + net.b1.length);
  return { hidden: net.hidden, thumbnail: THUMBNAIL, weights: encodeFloats(all) };
}

export function decodeOrientationNet(stored: { hidden: number; thumbnail: number; weights: string }): OrientationNet {
  if (stored.thumbnail !== THUMBNAIL) throw new Error(`the orientation check was fitted on ${stored.thumbnail} px thumbnails; this version uses ${THUMBNAIL}`);
  const h = stored.hidden;
  const all = decodeFloats(stored.weights, h * PIXELS + 2 * h, 'the orientation check\'s weights');
  return { hidden: h, w1: all.subarray(0, h * PIXELS), b1: all.subarray(h * PIXELS, h * PIXELS + h), w2: all.subarray(h * PIXELS + h) };
}
