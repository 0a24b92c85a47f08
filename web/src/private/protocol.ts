/** Messages between the viewer and its private-mode worker (which runs the model with onnxruntime-web). */
import { CAM_METHODS } from '../../../src/explain/cam-methods.js';
import { FORWARD_ONLY_METHODS } from '../../../src/explain/core.js';
import type { GridMap } from '../../../src/explain/types.js';
import type { DecodedImage, Geometry, PreprocessingSpec } from '../../../src/imaging/browser.js';
import type { Finding } from '../../../src/outputs/findings.js';
import type { Calibration, SafetyInfo, Thresholds } from '../../../src/models/metadata.js';
import type { InputFlag, InputVerdict } from '../../../src/safety/flags.js';

export interface ModelSpec {
  url: string;
  sha256: string;
  labels: string[];
  preprocessing: PreprocessingSpec;
  io: { input: string; logits: string; metadata?: string };
  /** The model's validated thresholds and the rule that chose them, where it has them. */
  thresholds?: Pick<Thresholds, 'rule' | 'values'>;
  /** The model's calibration, where it has one. */
  calibration?: Pick<Calibration, 'values'>;
  /** The input checks' outputs and thresholds (the same file's safety subgraph), where it has them. */
  safety?: SafetyInfo;
}

export type ToPrivateWorker =
  | { type: 'load'; model: ModelSpec }
  | { type: 'predict'; id: number; image: DecodedImage; showRejected: boolean }
  | { type: 'explain'; id: number; image: DecodedImage; method: string; findings: string[] }
  /** Stop request `id` at its next run (the viewer moved on). */
  | { type: 'cancel'; id: number };

export type FromPrivateWorker =
  | { type: 'loaded'; backend: string }
  | { type: 'prediction'; id: number; findings: Finding[]; inputFlags: InputFlag[]; verdict: InputVerdict; ms: number }
  | { type: 'progress'; id: number; passes: number }
  | { type: 'explanation'; id: number; method: string; geometry: Geometry; maps: { finding: string; map: GridMap }[]; ms: number }
  | { type: 'error'; id?: number; message: string };

/**
 * Methods the browser can run: forward passes of the inference model, and the CAM methods that read the CAM graph
 * (and forward passes, Score-CAM). Ablation-CAM (the network cut at the layer) and input-gradient methods need
 * graphs that run on the server only.
 */
export const BROWSER_METHODS: readonly string[] = [...FORWARD_ONLY_METHODS, ...CAM_METHODS.filter((m) => m !== 'ablationcam')];
