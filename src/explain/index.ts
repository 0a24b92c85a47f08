/** Explanations: which regions of the image drove each finding, renderings of them, and how far to trust them. */
export * from './types.js';
export { Explainer } from './explainer.js';
export {
  EXPLANATION_METHODS,
  FORWARD_ONLY_METHODS,
  checkMethod,
  explainWithRunner,
  findingIndices,
  isExplanationMethod,
  type ExplainOptions,
  type ExplanationMethod,
  type PreparedImage,
} from './core.js';
export { BaseCam, CAM_METHODS, GradCam, GradCamPlusPlus, HiResCam, LayerCam, XGradCam, camMethod, isCamMethod, type CamMethodName } from './cam.js';
export {
  INPUT_GRADIENT_METHODS,
  InputGradient,
  InputGradientMethod,
  IntegratedGradients,
  SmoothGrad,
  inputGradientMethod,
  isInputGradientMethod,
  type InputGradientMethodName,
  type IntegratedGradientsOptions,
  type SmoothGradOptions,
} from './input-gradients.js';
export { occlusionMaps, type OcclusionOptions } from './occlusion.js';
export { blockOutputs, buildCamGraph, buildInputGradientGraph, defaultLayer, layerNames, resolveLayer } from './graphs.js';
export { renderHeatmap, type RenderOptions } from './render.js';
