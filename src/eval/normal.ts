/**
 * The standard normal distribution: tail probabilities and quantiles to double precision, for confidence intervals
 * and p-values. erfc is a positive-term series below 1 and a continued fraction above it (no subtraction, so
 * small tails keep their relative precision); the quantile is Acklam's rational guess refined by Halley steps.
 */

const SQRT_PI = Math.sqrt(Math.PI);

/** Below it 1 - erf(x) loses at most a factor 1 / erfc(1) ~ 6 in relative precision; above it the fraction converges fast. */
const SERIES_LIMIT = 1;

/** Complementary error function, erfc(x) = 1 - erf(x), relative error about 1e-15. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SERIES_LIMIT) return 1 - erfSeries(x);
  if (x > 27.3) return 0;
  return erfcContinuedFraction(x);
}

/** exp(-x^2) with x^2 split so that its rounding error does not reach the exponent (as Cody's erfc does). */
function expMinusSquare(x: number): number {
  const head = Math.round(x * 65536) / 65536;
  return Math.exp(-head * head) * Math.exp(-(x - head) * (x + head));
}

/** erf(x) = 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (1 3 5 ... (2n+1)): all terms positive. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / SQRT_PI) * expMinusSquare(x) * sum;
}

/** erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), by the modified Lentz method. */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 2000; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return expMinusSquare(x) / (SQRT_PI * f);
}

/** P(Z <= x). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** P(Z > x), accurate far into the upper tail. */
export function normalSf(x: number): number {
  return 0.5 * erfc(x * Math.SQRT1_2);
}

const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

/** The x with P(Z <= x) = p, for p in (0, 1); -Infinity at 0 and Infinity at 1. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  // Solve in the lower tail, where probabilities are represented exactly, and mirror.
  return p > 0.5 ? -lowerQuantile(1 - p) : lowerQuantile(p);
}

/** The x <= 0 with P(Z <= x) = p, for p <= 0.5. */
function lowerQuantile(p: number): number {
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
  }
  // Halley steps on P(Z <= x) - p; each roughly triples the correct digits.
  for (let i = 0; i < 3; i++) {
    const e = normalCdf(x) - p;
    const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
    x -= u / (1 + (x * u) / 2);
  }
  return x;
}
