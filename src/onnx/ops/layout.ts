/** Shape rules for ops that move data around: reshapes, concatenation, slicing, padding, gathering, scattering. */
import type { Dim, ValueType } from '../ir.js';
import { type InferenceContext, constantInts, normalizeAxis, product, registerOp } from '../shape-inference.js';
import { type HostTensor, elementCount, int64, tensor } from '../tensor.js';

const int64Of = (values: number[], dims: number[] = [values.length]): HostTensor => int64(dims, values);
const knownInts = (t: HostTensor | undefined): number[] | undefined =>
  t && (t.dtype === 'int64' || t.dtype === 'int32') ? Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)) : undefined;

registerOp('Concat', {
  attributes: { axis: 'int' },
  infer(ctx) {
    const first = ctx.input(0);
    const rank = first.shape.length;
    const axis = normalizeAxis(ctx, ctx.int('axis', 0), rank);
    const shape: Dim[] = [...first.shape];
    let total: Dim = 0;
    ctx.inputs.forEach((t, i) => {
      if (!t) throw ctx.fail(`input ${i} is missing`);
      if (t.shape.length !== rank) throw ctx.fail(`input ${i} has rank ${t.shape.length}, input 0 has ${rank}`);
      if (t.dtype !== first.dtype) throw ctx.fail(`input ${i} is ${t.dtype}, input 0 is ${first.dtype}`);
      t.shape.forEach((d, k) => {
        if (k !== axis && typeof d === 'number' && typeof shape[k] === 'number' && d !== shape[k]) {
          throw ctx.fail(`input ${i} [${t.shape.join(', ')}] does not match input 0 [${first.shape.join(', ')}] outside axis ${axis}`);
        }
      });
      const d = t.shape[axis];
      total = typeof total === 'number' && typeof d === 'number' ? total + d : '?';
    });
    shape[axis] = total;
    return [{ dtype: first.dtype, shape }];
  },
  fold(ctx) {
    const parts = ctx.inputs.map((_, i) => knownInts(ctx.constant(i)));
    if (parts.some((p) => p === undefined) || ctx.input(0).shape.length !== 1) return undefined;
    return [int64Of(parts.flatMap((p) => p ?? []))];
  },
});

registerOp('Split', {
  attributes: { axis: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const axis = normalizeAxis(ctx, ctx.int('axis', 0), x.shape.length);
    const count = ctx.node.outputs.length;
    const d = x.shape[axis];
    let sizes = constantInts(ctx, 1);
    if (!sizes) {
      if (typeof d !== 'number') return Array.from({ length: count }, () => ({ dtype: x.dtype, shape: x.shape.map((s, k) => (k === axis ? '?' : s)) }));
      if (d % count !== 0) throw ctx.fail(`axis ${axis} of size ${d} does not split evenly into ${count} outputs`);
      sizes = Array(count).fill(d / count);
    }
    if (sizes.length !== count) throw ctx.fail(`split sizes [${sizes.join(', ')}] do not match ${count} outputs`);
    if (typeof d === 'number' && sizes.reduce((a, b) => a + b, 0) !== d) throw ctx.fail(`split sizes [${sizes.join(', ')}] do not add up to ${d}`);
    return sizes.map((size) => ({ dtype: x.dtype, shape: x.shape.map((s, k) => (k === axis ? size : s)) }));
  },
});

registerOp('Slice', {
  attributes: {},
  infer(ctx) {
    const x = ctx.input(0);
    const starts = constantInts(ctx, 1);
    const ends = constantInts(ctx, 2);
    if (!starts || !ends) return [{ dtype: x.dtype, shape: x.shape.map(() => '?') }];
    const axes = constantInts(ctx, 3) ?? starts.map((_, i) => i);
    const steps = constantInts(ctx, 4) ?? starts.map(() => 1);
    const shape: Dim[] = [...x.shape];
    axes.forEach((rawAxis, i) => {
      const axis = normalizeAxis(ctx, rawAxis, x.shape.length);
      const d = x.shape[axis];
      if (typeof d !== 'number') {
        shape[axis] = '?';
        return;
      }
      const step = steps[i];
      if (step === 0) throw ctx.fail('a slice step cannot be 0');
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
      const [lo, hi] = step > 0 ? [0, d] : [-1, d - 1];
      const start = clamp(starts[i], lo, hi);
      const end = clamp(ends[i], lo, hi);
      shape[axis] = Math.max(0, Math.ceil((end - start) / step));
    });
    return [{ dtype: x.dtype, shape }];
  },
});

registerOp('Pad', {
  attributes: { mode: 'string' },
  infer(ctx) {
    const x = ctx.input(0);
    const pads = constantInts(ctx, 1);
    if (!pads) return [{ dtype: x.dtype, shape: x.shape.map(() => '?') }];
    const rank = x.shape.length;
    if (pads.length !== 2 * rank) throw ctx.fail(`pads has ${pads.length} values, a rank-${rank} input needs ${2 * rank}`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + rank] : d)) }];
  },
});

registerOp('Reshape', {
  attributes: { allowzero: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const target = constantInts(ctx, 1);
    if (!target) {
      const rank = ctx.input(1).shape[0];
      return [{ dtype: x.dtype, shape: typeof rank === 'number' ? Array(rank).fill('?') : [] }];
    }
    const shape: Dim[] = target.map((d, i) => (d === 0 && ctx.int('allowzero', 0) === 0 ? x.shape[i] : d));
    const inferred = shape.indexOf(-1);
    if (shape.filter((d) => d === -1).length > 1) throw ctx.fail(`the target shape [${target.join(', ')}] has more than one -1`);
    const total = product(x.shape);
    if (inferred >= 0) {
      const known = product(shape.filter((_, i) => i !== inferred));
      shape[inferred] = typeof total === 'number' && typeof known === 'number' ? total / known : '?';
      if (!Number.isInteger(shape[inferred]) && shape[inferred] !== '?') {
        throw ctx.fail(`cannot reshape [${x.shape.join(', ')}] (${String(total)} values) to [${target.join(', ')}]`);
      }
    }
    const outTotal = product(shape);
    if (typeof total === 'number' && typeof outTotal === 'number' && total !== outTotal) {
      throw ctx.fail(`cannot reshape [${x.shape.join(', ')}] (${total} values) to [${target.join(', ')}]`);
    }
    return [{ dtype: x.dtype, shape }];
  },
});

registerOp('Flatten', {
  attributes: { axis: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const axis = ctx.int('axis', 1);
    const a = axis < 0 ? axis + x.shape.length : axis;
    if (a < 0 || a > x.shape.length) throw ctx.fail(`axis ${axis} is out of range for rank ${x.shape.length}`);
    // A single dimension keeps its name (the batch stays "batch"), so later broadcasts can match it.
    const merged = (dims: Dim[]) => (dims.length === 1 ? dims[0] : product(dims));
    return [{ dtype: x.dtype, shape: [merged(x.shape.slice(0, a)), merged(x.shape.slice(a))] }];
  },
});

registerOp('Transpose', {
  attributes: { perm: 'ints' },
  infer(ctx) {
    const x = ctx.input(0);
    const perm = ctx.ints('perm', x.shape.map((_, i) => x.shape.length - 1 - i));
    if (perm.length !== x.shape.length || new Set(perm).size !== perm.length) throw ctx.fail(`perm [${perm.join(', ')}] is not a permutation of rank ${x.shape.length}`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[normalizeAxis(ctx, p, x.shape.length)]) }];
  },
});

function squeezeShape(ctx: InferenceContext, x: ValueType): Dim[] {
  const axes = constantInts(ctx, 1);
  if (!axes) return x.shape.filter((d) => d !== 1);
  const drop = new Set(axes.map((a) => normalizeAxis(ctx, a, x.shape.length)));
  for (const a of drop) if (typeof x.shape[a] === 'number' && x.shape[a] !== 1) throw ctx.fail(`axis ${a} has size ${x.shape[a]}, not 1`);
  return x.shape.filter((_, i) => !drop.has(i));
}

registerOp('Squeeze', {
  attributes: {},
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: squeezeShape(ctx, ctx.input(0)) }],
  fold(ctx) {
    const v = knownInts(ctx.constant(0));
    return v ? [int64Of(v, squeezeShape(ctx, ctx.input(0)).map(Number))] : undefined;
  },
});

function unsqueezeShape(ctx: InferenceContext, x: ValueType): Dim[] {
  const axes = constantInts(ctx, 1);
  if (!axes) throw ctx.fail('axes must be a constant');
  const rank = x.shape.length + axes.length;
  const inserted = new Set(axes.map((a) => normalizeAxis(ctx, a, rank)));
  const rest = [...x.shape];
  return Array.from({ length: rank }, (_, i) => (inserted.has(i) ? 1 : (rest.shift() as Dim)));
}

registerOp('Unsqueeze', {
  attributes: {},
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: unsqueezeShape(ctx, ctx.input(0)) }],
  fold(ctx) {
    const v = knownInts(ctx.constant(0));
    return v ? [int64Of(v, unsqueezeShape(ctx, ctx.input(0)).map(Number))] : undefined;
  },
});

registerOp('Expand', {
  attributes: {},
  infer(ctx) {
    const x = ctx.input(0);
    const target = constantInts(ctx, 1);
    if (!target) {
      // Known rank, unknown sizes: an axis of x other than 1 keeps its size (the target can only be 1 or equal there).
      const length = ctx.input(1).shape[0];
      if (typeof length !== 'number') throw ctx.fail('the target shape needs a known length');
      const rank = Math.max(length, x.shape.length);
      return [{ dtype: x.dtype, shape: Array.from({ length: rank }, (_, i) => x.shape[x.shape.length - rank + i] ?? 1).map((d) => (d === 1 ? '?' : d)) }];
    }
    const rank = Math.max(target.length, x.shape.length);
    const shape: Dim[] = [];
    for (let i = 0; i < rank; i++) {
      const a = x.shape[x.shape.length - rank + i] ?? 1;
      const b = target[target.length - rank + i] ?? 1;
      if (a !== 1 && b !== 1 && a !== b) throw ctx.fail(`cannot expand [${x.shape.join(', ')}] to [${target.join(', ')}]`);
      shape.push(a === 1 ? b : a);
    }
    return [{ dtype: x.dtype, shape }];
  },
});

registerOp('Tile', {
  attributes: {},
  infer(ctx) {
    const x = ctx.input(0);
    const repeats = constantInts(ctx, 1);
    if (!repeats) return [{ dtype: x.dtype, shape: x.shape.map(() => '?') }];
    if (repeats.length !== x.shape.length) throw ctx.fail(`repeats has ${repeats.length} values for rank ${x.shape.length}`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d * repeats[i] : d)) }];
  },
});

registerOp('Gather', {
  attributes: { axis: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const indices = ctx.input(1);
    const axis = normalizeAxis(ctx, ctx.int('axis', 0), x.shape.length);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)] }];
  },
  fold(ctx) {
    const data = knownInts(ctx.constant(0));
    const idx = knownInts(ctx.constant(1));
    if (!data || !idx || ctx.input(0).shape.length !== 1) return undefined;
    const n = data.length;
    return [int64Of(idx.map((i) => data[i < 0 ? i + n : i]), ctx.input(1).shape.map(Number))];
  },
});

registerOp('GatherElements', {
  attributes: { axis: 'int' },
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: [...ctx.input(1).shape] }],
});

registerOp('ScatterElements', {
  attributes: { axis: 'int', reduction: 'string' },
  infer(ctx) {
    const x = ctx.input(0);
    if (ctx.input(2).dtype !== x.dtype) throw ctx.fail(`updates are ${ctx.input(2).dtype}, data is ${x.dtype}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
});

registerOp('Shape', {
  attributes: { start: 'int', end: 'int' },
  infer: (ctx) => [{ dtype: 'int64', shape: [ctx.input(0).shape.slice(ctx.int('start', 0), ctx.attribute('end') ? ctx.int('end', 0) : undefined).length] }],
  fold(ctx) {
    const shape = ctx.input(0).shape.slice(ctx.int('start', 0), ctx.attribute('end') ? ctx.int('end', 0) : undefined);
    return shape.every((d) => typeof d === 'number') ? [int64Of(shape as number[])] : undefined;
  },
});

registerOp('Size', { attributes: {}, infer: () => [{ dtype: 'int64', shape: [] }] });

registerOp('Constant', {
  attributes: { value: 'tensor' },
  infer(ctx) {
    const value = ctx.attribute('value');
    if (value?.kind !== 'tensor') throw ctx.fail('only the "value" tensor attribute is supported');
    return [{ dtype: value.value.dtype, shape: [...value.value.dims] }];
  },
  fold(ctx) {
    const value = ctx.attribute('value');
    return value?.kind === 'tensor' ? [value.value] : undefined;
  },
});

registerOp('ConstantOfShape', {
  attributes: { value: 'tensor' },
  infer(ctx) {
    const shape = constantInts(ctx, 0);
    const value = ctx.attribute('value');
    const dtype = value?.kind === 'tensor' ? value.value.dtype : 'float32';
    return [{ dtype, shape: shape ?? Array(Number(ctx.input(0).shape[0])).fill('?') }];
  },
  fold(ctx) {
    const shape = constantInts(ctx, 0);
    const value = ctx.attribute('value');
    if (!shape || value?.kind !== 'tensor' || value.value.dtype !== 'int64' || elementCount(shape) > 64) return undefined;
    const t = tensor('int64', shape);
    t.data.fill((value.value.data as BigInt64Array)[0]);
    return [t];
  },
});

registerOp('Resize', {
  attributes: {
    mode: 'string',
    coordinate_transformation_mode: 'string',
    nearest_mode: 'string',
    cubic_coeff_a: 'float',
    exclude_outside: 'int',
    extrapolation_value: 'float',
  },
  infer(ctx) {
    const x = ctx.input(0);
    const sizes = constantInts(ctx, 3);
    if (sizes) return [{ dtype: x.dtype, shape: sizes }];
    const scalesTensor = ctx.constant(2);
    if (scalesTensor && scalesTensor.data.length > 0) {
      const scales = Array.from(scalesTensor.data as Float32Array);
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]) : d)) }];
    }
    return [{ dtype: x.dtype, shape: x.shape.map(() => '?') }];
  },
});
