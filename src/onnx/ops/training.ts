/** Shape rules for ops that only training graphs use. */
import { registerOp } from '../shape-inference.js';
import { dtypeFromOnnxCode } from '../tensor.js';

// Fresh uniform noise shaped like the input (dropout masks); `dtype` defaults to the input's type.
registerOp('RandomUniformLike', {
  attributes: { dtype: 'int', high: 'float', low: 'float', seed: 'float' },
  infer(ctx) {
    const x = ctx.input(0);
    const code = ctx.int('dtype', 0);
    return [{ dtype: code === 0 ? x.dtype : dtypeFromOnnxCode(code), shape: [...x.shape] }];
  },
});
