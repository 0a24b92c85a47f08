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
export { BaseCam, GradCam, GradCamPlusPlus, HiResCam, LayerCam, ModelScoredCam, XGradCam, firstComponentProjection, reduceChannels, type CamForward, type CamOptions } from './cam.js';
export { CAM_METHODS, camMethod, isCamMethod, type CamMethodName } from './cam-methods.js';
export { EigenCam } from './eigencam.js';
export { ScoreCam, upsampleAlignCorners } from './scorecam.js';
export { AblationCam } from './ablationcam.js';
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
export { blockOutputs, buildCamGraph, buildHeadGraph, buildInputGradientGraph, defaultLayer, layerNames, resolveLayer, type HeadGraph } from './graphs.js';
export { colourScaleSvg, downsampleMap, renderHeatmap, renderHeatmaps, type RenderOptions, type Rendered } from './render.js';
export { gaussianBlur, percentile, readableMap, type ReadableOptions } from './readable.js';
export {
  DEFAULT_LOCALIZATION,
  boxOnGrid,
  iobb,
  iou,
  localizationOptions,
  mapOnImageGrid,
  peak,
  regionBoxes,
  scoreCase,
  summarize,
  type CaseScore,
  type LocalizationOptions,
  type LocalizationScores,
  type Rect,
} from './localize.js';
export {
  belowRandom,
  evaluateLocalization,
  randomizationStep,
  type BoxedImage,
  type CaseResult,
  type FaithfulnessSummary,
  type LocalizationReport,
  type LocalizeEvalOptions,
  type MethodReport,
  type RandomBaseline,
  type RandomizationStep,
  type TruthBox,
} from './localize-eval.js';
export { boxedImageFiles, readBoxedImages, type BoxedImageFile } from './localize-files.js';
export { localizationToHtml, randomizationLines } from './localize-report.js';
export { WANG_2017_LOCALIZATION, type PublishedLocalization } from './published-localization.js';
export { blurred, curveArea, deletionInsertion, importanceOrder, type Curve, type Faithfulness, type FaithfulnessOptions } from './faithfulness.js';
export { cascadeBlocks, randomizedModel, spearman } from './randomization.js';
export { ROAD_FRACTIONS, linearImpute, noisyLinearImpute, road, type Road, type RoadOptions } from './road.js';
