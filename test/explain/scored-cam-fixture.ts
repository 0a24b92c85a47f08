/** The Eigen-CAM / Score-CAM / Ablation-CAM reference (scripts/fixtures/make_scored_cam_parity.py) and the model it was made with. */
import { Explainer, explainWithRunner, type ExplainOptions, type Explanation } from '../../src/explain/index.js';
import { computeGeometry } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { readFixture } from '../helpers/fixtures.js';
import { parityInput } from '../helpers/numeric.js';

export interface ScoredCamCase {
  method: 'eigencam' | 'scorecam' | 'ablationcam';
  class: number;
  height: number;
  width: number;
  map: number[];
  torch_float32_error: number;
}

export const reference = JSON.parse(new TextDecoder().decode(readFixture('explain', 'scored-cams.json'))) as { size: number; layer: string; channels: number; cases: ScoredCamCase[] };

/** The zoo's random-weight MobileNetV2 at the fixture's size, and a function explaining the fixture's input with it. */
export async function parityExplainer(): Promise<{ explainer: Explainer; explain: (options: ExplainOptions) => Promise<Explanation> }> {
  const { size } = reference;
  const { model } = importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: size, width: size });
  const explainer = await Explainer.create(model, { threads: 2 });
  const prepared = { tensor: { dims: [3, size, size] as [number, number, number], data: parityInput(3 * size * size) }, geometry: computeGeometry(size, size, { width: size, height: size, resize: 'stretch' }) };
  return { explainer, explain: (options) => explainWithRunner(explainer.runner({ metadata: {} }), prepared, explainer.info.preprocessing, options) };
}
