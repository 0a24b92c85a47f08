/**
 * The CAM methods by name: the gradient family of cam.ts, and one file per method beyond it (Eigen-CAM from the
 * activation alone, Score-CAM and Ablation-CAM from forward passes). A new CAM is its class plus one entry here.
 */
import { AblationCam } from './ablationcam.js';
import { type BaseCam, GradCam, GradCamPlusPlus, HiResCam, LayerCam, type ModelScoredCam, XGradCam } from './cam.js';
import { EigenCam } from './eigencam.js';
import { ScoreCam } from './scorecam.js';

const CAMS = {
  gradcam: new GradCam(),
  'gradcam++': new GradCamPlusPlus(),
  hirescam: new HiResCam(),
  layercam: new LayerCam(),
  xgradcam: new XGradCam(),
  eigencam: new EigenCam(),
  scorecam: new ScoreCam(),
  ablationcam: new AblationCam(),
} satisfies Record<string, BaseCam | ModelScoredCam>;

export type CamMethodName = keyof typeof CAMS;

export const CAM_METHODS = Object.keys(CAMS) as CamMethodName[];

export function isCamMethod(method: string): method is CamMethodName {
  return Object.hasOwn(CAMS, method);
}

export function camMethod(name: CamMethodName): BaseCam | ModelScoredCam {
  return CAMS[name];
}
