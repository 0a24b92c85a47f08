/**
 * k x k convolutions whose weights are computed in the graph (a training step's, read from the flat parameter
 * vector), rewritten to run in ONNX Runtime's blocked channel layout (NCHWc). ORT moves convolutions to that layout
 * itself only when their weights are constants, since it reorders the weights once, ahead of time; with computed
 * weights it runs im2col + GEMM. Here the weights are reordered in the graph (a Reshape + Transpose, 37k values
 * for a DenseNet layer) and the Conv is wrapped in ORT's own ReorderInput / ReorderOutput:
 *   DenseNet-121's 3x3 convolution (128 -> 32 channels, batch 16, 32 x 32) takes 5.3 ms instead of 8.4.
 * Wide convolutions on small images lose in that layout (512 channels at 4 x 4: 14.7 ms instead of 7.7; at 7 x 7:
 * 21.6 instead of 18.3), so only those with at most 8 channels per output pixel are rewritten.
 * Depthwise correlations (a depthwise Conv whose kernel is larger than its output and than 3 x 3: the per-sample
 * weight gradient of a depthwise convolution, autodiff/rules/conv.ts) are rewritten too: ORT's plain kernel copies
 * the input once per output pixel (im2col) for every channel, while its blocked depthwise kernel reads it in place,
 * one vector of channels at a time. Forward 3 x 3 depthwise convolutions keep ORT's own NCHW depthwise kernel.
 * The blocked layout's block size is the CPU's (16 with AVX-512, 8 with AVX2): blocked-layout.ts finds it.
 */
import { type Graph, type Model, type Node, type ValueType, attributeInt, attributeInts, attributeString, inferGraph, int64 } from '../../onnx/index.js';

type Shape = ValueType['shape'];

export const BLOCKED_DOMAIN = 'com.microsoft.nchwc';

/** Rewrites every eligible Conv; returns the graph unchanged where none is. */
export function blockConvolutions(graph: Graph, blockSize: number): Graph {
  const types = inferGraph(graph);
  const initializers = new Map(graph.initializers);
  const nodes: Node[] = [];
  const node = (opType: string, name: string, inputs: string[], attributes: Node['attributes'] = {}, domain = ''): string => {
    nodes.push({ name, opType, domain, inputs, outputs: [name], attributes });
    return name;
  };
  const shapeConstant = (dims: number[]) => {
    const name = `blocked.shape.${dims.join('x')}`;
    if (!initializers.has(name)) initializers.set(name, int64([dims.length], dims));
    return name;
  };
  let rewritten = 0;
  for (const conv of graph.nodes) {
    const weightShape = conv.opType === 'Conv' && !conv.domain ? types.get(conv.inputs[1])?.shape : undefined;
    const outputShape = types.get(conv.outputs[0])?.shape;
    if (!weightShape || !outputShape || !isEligible(conv, weightShape, outputShape, graph, blockSize)) {
      nodes.push(conv);
      continue;
    }
    const [outChannels, inPerGroup, kh, kw] = weightShape as number[];
    const group = attributeInt(conv, 'group', 1);
    const b = blockSize;
    const p = conv.name;
    let filter: string;
    if (group === 1) {
      // OIHW -> [O/b, I/b, kh, kw, b (in), b (out)], the filter layout of ORT's blocked Conv.
      const split = node('Reshape', `${p}.blocked.filter_split`, [conv.inputs[1], shapeConstant([outChannels / b, b, inPerGroup / b, b, kh, kw])]);
      const ordered = node('Transpose', `${p}.blocked.filter_order`, [split], { perm: { kind: 'ints', value: [0, 2, 4, 5, 3, 1] } });
      filter = node('Reshape', `${p}.blocked.filter`, [ordered, shapeConstant([outChannels, inPerGroup, kh, kw])]);
    } else {
      // Depthwise: [C, 1, kh, kw] -> [C/b, kh, kw, b], the filter layout of ORT's blocked depthwise Conv.
      const split = node('Reshape', `${p}.blocked.filter_split`, [conv.inputs[1], shapeConstant([outChannels / b, b, kh * kw])]);
      const ordered = node('Transpose', `${p}.blocked.filter_order`, [split], { perm: { kind: 'ints', value: [0, 2, 1] } });
      filter = node('Reshape', `${p}.blocked.filter`, [ordered, shapeConstant([outChannels, 1, kh, kw])]);
    }
    const input = node('ReorderInput', `${p}.blocked.input`, [conv.inputs[0]], { channels_last: { kind: 'int', value: 0 } }, BLOCKED_DOMAIN);
    const attributes: Node['attributes'] = { kernel_shape: { kind: 'ints', value: [kh, kw] }, group: { kind: 'int', value: group } };
    for (const key of ['pads', 'strides', 'dilations'] as const) if (conv.attributes[key]) attributes[key] = conv.attributes[key];
    const output = node('Conv', `${p}.blocked`, [input, filter, ...conv.inputs.slice(2, 3)], attributes, BLOCKED_DOMAIN);
    nodes.push({ name: `${p}.blocked.output`, opType: 'ReorderOutput', domain: BLOCKED_DOMAIN, inputs: [output], outputs: [conv.outputs[0]], attributes: { channels: { kind: 'int', value: outChannels }, channels_last: { kind: 'int', value: 0 } } });
    rewritten++;
  }
  return rewritten === 0 ? graph : { ...graph, nodes, initializers };
}

/**
 * A 2-D Conv with computed weights whose channel counts fill whole blocks: ungrouped, undilated, k x k (k > 1), with
 * at most 8 channels (in or out) per output pixel; or a depthwise correlation (kernel larger than the output and
 * than 3 x 3, any dilation).
 */
function isEligible(conv: Node, weightShape: Shape, outputShape: Shape, graph: Graph, blockSize: number): boolean {
  if (weightShape.length !== 4 || !weightShape.every((d): d is number => typeof d === 'number')) return false;
  const [outChannels, inPerGroup, kh, kw] = weightShape as number[];
  const [outHeight, outWidth] = outputShape.slice(2);
  if (typeof outHeight !== 'number' || typeof outWidth !== 'number') return false;
  const group = attributeInt(conv, 'group', 1);
  const dilated = attributeInts(conv, 'dilations', [1, 1]).some((d) => d !== 1);
  const shapeFits =
    group === 1
      ? Math.max(inPerGroup, outChannels) <= 8 * outHeight * outWidth && kh * kw > 1 && inPerGroup % blockSize === 0 && !dilated
      : group === outChannels && inPerGroup === 1 && kh * kw > outHeight * outWidth && kh * kw > 9;
  return (
    shapeFits &&
    !graph.initializers.has(conv.inputs[1]) &&
    conv.outputs.length === 1 &&
    attributeString(conv, 'auto_pad', 'NOTSET') === 'NOTSET' &&
    outChannels % blockSize === 0
  );
}

/** The model with the blocked domain imported, where its graph uses it. */
export function withBlockedDomain(model: Model): Model {
  const uses = model.graph.nodes.some((n) => n.domain === BLOCKED_DOMAIN);
  if (!uses || model.opsetImports.some((o) => o.domain === BLOCKED_DOMAIN)) return model;
  return { ...model, opsetImports: [...model.opsetImports, { domain: BLOCKED_DOMAIN, version: 1 }] };
}
