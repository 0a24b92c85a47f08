/**
 * The numbers behind the model-feature checks, fitted on pooled feature vectors of real images:
 * - a Gaussian of the training distribution in probabilistic-PCA form (top-k principal directions, each with its
 *   variance, plus one shared variance for everything else), whose Mahalanobis distance is the out-of-distribution
 *   score (the distance keeps working when there are fewer images than feature channels, unlike a full covariance);
 * - small L2-regularised logistic heads on the whitened principal coordinates (rotated vs upright, inverted vs not).
 * The same arithmetic runs as ONNX nodes inside the model (graph.ts); the TypeScript versions here fit the numbers
 * and check the graph.
 */
import { CholeskyDecomposition, EigenvalueDecomposition, Matrix } from 'ml-matrix';

/** Row-major [rows, columns] feature vectors. */
export interface FeatureMatrix {
  rows: number;
  columns: number;
  data: Float32Array;
}

export interface GaussianModel {
  /** [C] mean of the training features. */
  mean: Float32Array;
  /** [C, k] row-major: column j is the j-th principal direction (unit length). */
  basis: Float32Array;
  /** [k] variance along each principal direction. */
  variances: Float32Array;
  /** Mean variance of the directions left out (PPCA's noise variance), floored to stay positive. */
  residualVariance: number;
  channels: number;
  components: number;
}

/**
 * Fits the PPCA Gaussian with `components` principal directions (fewer when the data has fewer images). The
 * eigen-decomposition runs on the smaller of the covariance and the Gram matrix.
 */
export function fitGaussian(x: FeatureMatrix, components: number): GaussianModel {
  const { rows: n, columns: c } = x;
  if (n < 3) throw new Error(`fitting the feature distribution needs at least 3 images, got ${n}`);
  const mean = new Float64Array(c);
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) mean[j] += x.data[i * c + j];
  for (let j = 0; j < c; j++) mean[j] /= n;
  const centred = new Float64Array(n * c);
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) centred[i * c + j] = x.data[i * c + j] - mean[j];
  const k = Math.min(components, n - 2, c - 1);
  if (k < 1) throw new Error(`cannot fit ${components} components to ${n} images of ${c} features`);

  let values: number[];
  let vectors: Float64Array[];
  if (n <= c) {
    // Gram matrix G = X X^T / (n - 1): its eigenvectors u give the covariance's as X^T u / sqrt((n - 1) lambda).
    const gram = symmetricProduct(centred, n, c, 'rows');
    const top = topEigen(gram, n, k);
    values = top.values;
    vectors = top.vectors.map((u, i) => {
      const v = new Float64Array(c);
      for (let r = 0; r < n; r++) {
        const w = u[r];
        if (w === 0) continue;
        for (let j = 0; j < c; j++) v[j] += centred[r * c + j] * w;
      }
      const norm = Math.sqrt(v.reduce((s, a) => s + a * a, 0)) || 1;
      for (let j = 0; j < c; j++) v[j] /= norm;
      return v;
    });
  } else {
    const covariance = symmetricProduct(centred, n, c, 'columns');
    const top = topEigen(covariance, c, k);
    values = top.values;
    vectors = top.vectors;
  }
  let total = 0;
  for (let i = 0; i < centred.length; i++) total += centred[i] * centred[i];
  total /= n - 1;
  const kept = values.reduce((a, b) => a + b, 0);
  // Floor: a tiny fraction of the mean variance per channel, so a degenerate residual cannot divide by zero.
  const floor = (total / c) * 1e-3;
  const residualVariance = Math.max(floor, (total - kept) / (c - k));
  const basis = new Float32Array(c * k);
  vectors.forEach((v, col) => {
    for (let j = 0; j < c; j++) basis[j * k + col] = v[j];
  });
  return {
    mean: Float32Array.from(mean),
    basis,
    variances: Float32Array.from(values, (v) => Math.max(v, floor)),
    residualVariance,
    channels: c,
    components: k,
  };
}

/** X X^T / (n - 1) ('rows', n x n) or X^T X / (n - 1) ('columns', c x c) of a row-major n x c matrix. */
function symmetricProduct(x: Float64Array, n: number, c: number, of: 'rows' | 'columns'): Float64Array {
  const size = of === 'rows' ? n : c;
  const out = new Float64Array(size * size);
  if (of === 'rows') {
    for (let a = 0; a < n; a++) {
      for (let b = a; b < n; b++) {
        let s = 0;
        for (let j = 0; j < c; j++) s += x[a * c + j] * x[b * c + j];
        out[a * n + b] = out[b * n + a] = s / (n - 1);
      }
    }
  } else {
    for (let r = 0; r < n; r++) {
      for (let a = 0; a < c; a++) {
        const xa = x[r * c + a];
        if (xa === 0) continue;
        for (let b = a; b < c; b++) out[a * c + b] += xa * x[r * c + b];
      }
    }
    for (let a = 0; a < c; a++) {
      for (let b = a; b < c; b++) out[b * c + a] = out[a * c + b] = out[a * c + b] / (n - 1);
    }
  }
  return out;
}

function topEigen(symmetric: Float64Array, size: number, k: number): { values: number[]; vectors: Float64Array[] } {
  const rows = Array.from({ length: size }, (_, i) => symmetric.subarray(i * size, (i + 1) * size));
  const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const order = values.map((_, i) => i).sort((a, b) => values[b] - values[a]).slice(0, k);
  const vectors = evd.eigenvectorMatrix;
  return { values: order.map((i) => values[i]), vectors: order.map((i) => Float64Array.from(vectors.getColumn(i))) };
}

/** Whitened principal coordinates of one feature vector: (v_j . (f - mean)) / sqrt(variance_j), and the residual. */
export function project(model: GaussianModel, feature: ArrayLike<number>): { whitened: Float64Array; projectedSquares: number; distanceSquares: number } {
  const { channels: c, components: k } = model;
  const d = new Float64Array(c);
  let distanceSquares = 0;
  for (let j = 0; j < c; j++) {
    d[j] = feature[j] - model.mean[j];
    distanceSquares += d[j] * d[j];
  }
  const whitened = new Float64Array(k);
  let projectedSquares = 0;
  for (let col = 0; col < k; col++) {
    let p = 0;
    for (let j = 0; j < c; j++) p += d[j] * model.basis[j * k + col];
    projectedSquares += p * p;
    whitened[col] = p / Math.sqrt(model.variances[col]);
  }
  return { whitened, projectedSquares, distanceSquares };
}

/**
 * The out-of-distribution score: PPCA's squared Mahalanobis distance divided by the number of channels, so that
 * training images score about 1 on average.
 */
export function mahalanobisScore(model: GaussianModel, feature: ArrayLike<number>): number {
  const { whitened, projectedSquares, distanceSquares } = project(model, feature);
  let inside = 0;
  for (const z of whitened) inside += z * z;
  const outside = Math.max(0, distanceSquares - projectedSquares) / model.residualVariance;
  return (inside + outside) / model.channels;
}

export interface LogisticModel {
  weights: Float64Array;
  bias: number;
}

/**
 * L2-regularised logistic regression by Newton's method (the penalty `l2` on the weights, not the bias). Needs both
 * classes; stops when the step is below 1e-10 or after 50 iterations.
 */
export function fitLogistic(x: FeatureMatrix, labels: ArrayLike<number>, l2: number): LogisticModel {
  const { rows: n, columns: k } = x;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] === 1 ? 1 : 0;
  if (positives === 0 || positives === n) throw new Error(`a logistic head needs both classes, got ${positives} of ${n} positive`);
  const dim = k + 1;
  const w = new Float64Array(dim);
  w[k] = Math.log(positives / (n - positives));
  for (let iteration = 0; iteration < 50; iteration++) {
    const gradient = new Float64Array(dim);
    const hessian = new Float64Array(dim * dim);
    for (let i = 0; i < n; i++) {
      const row = x.data.subarray(i * k, (i + 1) * k);
      let z = w[k];
      for (let j = 0; j < k; j++) z += w[j] * row[j];
      const p = 1 / (1 + Math.exp(-z));
      const residual = p - labels[i];
      const weight = Math.max(p * (1 - p), 1e-10);
      for (let a = 0; a < dim; a++) {
        const xa = a === k ? 1 : row[a];
        gradient[a] += residual * xa;
        for (let b = a; b < dim; b++) hessian[a * dim + b] += weight * xa * (b === k ? 1 : row[b]);
      }
    }
    for (let a = 0; a < k; a++) {
      gradient[a] += l2 * w[a];
      hessian[a * dim + a] += l2;
    }
    hessian[k * dim + k] += 1e-9;
    for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) hessian[a * dim + b] = hessian[b * dim + a];
    const h = new Matrix(Array.from({ length: dim }, (_, a) => hessian.subarray(a * dim, (a + 1) * dim)));
    const step = new CholeskyDecomposition(h).solve(Matrix.columnVector(Array.from(gradient))).getColumn(0);
    let largest = 0;
    for (let a = 0; a < dim; a++) {
      w[a] -= step[a];
      largest = Math.max(largest, Math.abs(step[a]));
    }
    if (largest < 1e-10) break;
  }
  return { weights: w.slice(0, k), bias: w[k] };
}

export function logisticProbability(model: LogisticModel, x: ArrayLike<number>): number {
  let z = model.bias;
  for (let j = 0; j < model.weights.length; j++) z += model.weights[j] * x[j];
  return 1 / (1 + Math.exp(-z));
}
