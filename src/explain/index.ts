/** Explanations: which regions of the image drove each finding, and renderings of them. */
export * from './types.js';
export { Explainer, EXPLANATION_METHODS, type ExplainOptions, type ExplanationMethod } from './explainer.js';
export { occlusionMaps, type OcclusionOptions } from './occlusion.js';
export { renderHeatmap, type RenderOptions } from './render.js';
