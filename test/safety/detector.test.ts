/**
 * The detector's arithmetic: the PPCA Gaussian from the Gram matrix (fewer images than channels) equals the one
 * from the covariance matrix, with every direction kept it is the full-covariance Mahalanobis distance, and the
 * logistic heads satisfy their optimality condition. Correlated data drawn from a seeded generator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CholeskyDecomposition, EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { createRng } from '../../src/imaging/augment.js';
import { type FeatureMatrix, fitGaussian, fitLogistic, logisticProbability, mahalanobisScore, project } from '../../src/safety/detector.js';

/** rows x columns samples of x = A z + mean with z standard normal: a known, correlated Gaussian. */
function sample(rows: number, columns: number, seed: number): { data: FeatureMatrix; covariance: Float64Array; mean: Float64Array } {
  const rng = createRng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const a = Float64Array.from({ length: columns * columns }, (_, i) => (i % (columns + 1) === 0 ? 1 + (i % 7) : 0.3 * normal()));
  const mean = Float64Array.from({ length: columns }, () => normal());
  const data = new Float32Array(rows * columns);
  for (let r = 0; r < rows; r++) {
    const z = Array.from({ length: columns }, normal);
    for (let i = 0; i < columns; i++) {
      let v = mean[i];
      for (let j = 0; j < columns; j++) v += a[i * columns + j] * z[j];
      data[r * columns + i] = v;
    }
  }
  const covariance = new Float64Array(columns * columns);
  for (let i = 0; i < columns; i++) for (let j = 0; j < columns; j++) for (let k = 0; k < columns; k++) covariance[i * columns + j] += a[i * columns + k] * a[j * columns + k];
  return { data: { rows, columns, data }, covariance, mean };
}

const row = (m: FeatureMatrix, i: number) => m.data.subarray(i * m.columns, (i + 1) * m.columns);

describe('PPCA Gaussian', () => {
  it('from fewer images than channels (the Gram-matrix path) gives the covariance matrix\'s top eigenpairs', () => {
    const { data } = sample(15, 20, 1);
    const g = fitGaussian(data, 6);
    const c = data.columns;
    const mean = new Float64Array(c);
    for (let i = 0; i < data.rows; i++) for (let j = 0; j < c; j++) mean[j] += data.data[i * c + j] / data.rows;
    const cov = Matrix.zeros(c, c);
    for (let i = 0; i < data.rows; i++) {
      for (let a = 0; a < c; a++) for (let b = 0; b < c; b++) cov.set(a, b, cov.get(a, b) + ((data.data[i * c + a] - mean[a]) * (data.data[i * c + b] - mean[b])) / (data.rows - 1));
    }
    const evd = new EigenvalueDecomposition(cov, { assumeSymmetric: true });
    const order = evd.realEigenvalues.map((_, i) => i).sort((a, b) => evd.realEigenvalues[b] - evd.realEigenvalues[a]);
    for (let k = 0; k < 6; k++) {
      const reference = evd.eigenvectorMatrix.getColumn(order[k]);
      assert.ok(Math.abs(g.variances[k] / evd.realEigenvalues[order[k]] - 1) < 1e-6, `variance ${k}`);
      let dot = 0;
      for (let j = 0; j < c; j++) dot += g.basis[j * g.components + k] * reference[j];
      assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-5, `direction ${k}: |cos| = ${Math.abs(dot)}`);
    }
    // The left-out variance is shared evenly by the remaining directions.
    const rest = evd.realEigenvalues.reduce((a, b) => a + b, 0) - order.slice(0, 6).reduce((a, i) => a + evd.realEigenvalues[i], 0);
    assert.ok(Math.abs(g.residualVariance / (rest / (c - 6)) - 1) < 1e-6);
  });

  it('with every direction kept, the score is the full-covariance Mahalanobis distance / channels', () => {
    const c = 8;
    const { data } = sample(400, c, 2);
    const g = fitGaussian(data, c - 1);
    // The sample covariance, inverted directly.
    const mean = new Float64Array(c);
    for (let i = 0; i < data.rows; i++) for (let j = 0; j < c; j++) mean[j] += data.data[i * c + j] / data.rows;
    const cov = Matrix.zeros(c, c);
    for (let i = 0; i < data.rows; i++) {
      for (let a = 0; a < c; a++) for (let b = 0; b < c; b++) cov.set(a, b, cov.get(a, b) + ((data.data[i * c + a] - mean[a]) * (data.data[i * c + b] - mean[b])) / (data.rows - 1));
    }
    const solver = new CholeskyDecomposition(cov);
    for (let i = 0; i < 5; i++) {
      const d = Matrix.columnVector(Array.from(row(data, i), (v, j) => v - mean[j]));
      const full = d.transpose().mmul(solver.solve(d)).get(0, 0);
      const ours = mahalanobisScore(g, row(data, i)) * c;
      assert.ok(Math.abs(ours / full - 1) < 1e-4, `image ${i}: ${ours} vs ${full}`);
    }
  });

  it('training samples score about 1, far points much more', () => {
    const { data } = sample(300, 30, 3);
    const g = fitGaussian(data, 10);
    let mean = 0;
    for (let i = 0; i < data.rows; i++) mean += mahalanobisScore(g, row(data, i)) / data.rows;
    assert.ok(Math.abs(mean - 1) < 0.1, `mean score ${mean}`);
    const far = Float32Array.from(row(data, 0), (v) => v + 20);
    assert.ok(mahalanobisScore(g, far) > 10);
  });

  it('refuses too few images', () => {
    assert.throws(() => fitGaussian({ rows: 2, columns: 4, data: new Float32Array(8) }, 2), /at least 3 images, got 2/);
  });
});

describe('logistic heads', () => {
  it('meet the optimality condition: the gradient of the penalised log-loss is zero', () => {
    const { data } = sample(200, 6, 4);
    const g = fitGaussian(data, 5);
    const x = new Float32Array(200 * 5);
    const y = new Uint8Array(200);
    for (let i = 0; i < 200; i++) {
      const z = project(g, row(data, i)).whitened;
      x.set(z, i * 5);
      y[i] = z[0] + 0.5 * z[1] + 0.3 * Math.sin(i) > 0 ? 1 : 0;
    }
    const l2 = 1;
    const head = fitLogistic({ rows: 200, columns: 5, data: x }, y, l2);
    const gradient = new Float64Array(6);
    for (let i = 0; i < 200; i++) {
      const residual = logisticProbability(head, x.subarray(i * 5, (i + 1) * 5)) - y[i];
      for (let j = 0; j < 5; j++) gradient[j] += residual * x[i * 5 + j];
      gradient[5] += residual;
    }
    for (let j = 0; j < 5; j++) gradient[j] += l2 * head.weights[j];
    for (const v of gradient) assert.ok(Math.abs(v) < 1e-8, `gradient ${Array.from(gradient)}`);
    assert.ok(head.weights[0] > head.weights[1] && head.weights[1] > 0);
  });

  it('needs both classes', () => {
    assert.throws(() => fitLogistic({ rows: 3, columns: 1, data: new Float32Array(3) }, [1, 1, 1], 1), /both classes, got 3 of 3 positive/);
  });
});
