/**
 * Reverse-mode autodiff over the project's ONNX graphs: one gradient rule per op and the differentiation that
 * applies them, depending on onnx/ only. What is built with it lives with its user: training-step graphs in
 * train/step/, explanation graphs in explain/.
 */
export { addGradients, type GradientRequest } from './gradients.js';
export { registerGradient, differentiableOps, type GradientRule, type GradientContext } from './registry.js';
export { pruneGraph, withPoolingIndices } from './forward.js';
