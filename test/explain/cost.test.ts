/**
 * Cost that fits the request: explaining one finding runs the gradient graph for that finding's rows only, and the
 * rows grow with the findings asked (SmoothGrad's noisy copies and Integrated Gradients' path points are per
 * finding). Counted on the default model's own runner with a real NIH film.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, explainWithRunner, type GradientRunner } from '../../src/explain/index.js';
import { decodeImageFile, type DecodedImage } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

describe('only the asked-for findings are computed', () => {
  let explainer: Explainer;
  let image: DecodedImage;
  before(async () => {
    explainer = await Explainer.create(loadModel(DEFAULT_MODEL_PATH).model, { threads: 2 });
    image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
  });
  after(() => explainer?.close());

  /** The explainer's runner, recording the label of every gradient row and every occluded forward row. */
  function counting(): { runner: GradientRunner; gradientLabels: number[]; forwardRows: number[] } {
    const inner = explainer.runner(image);
    const gradientLabels: number[] = [];
    const forwardRows: number[] = [];
    const runner: GradientRunner = {
      ...inner,
      logits: (batch) => (forwardRows.push(batch.dims[0]), inner.logits(batch)),
      inputGradients: (batch, labels) => (gradientLabels.push(...labels), inner.inputGradients(batch, labels)),
    };
    return { runner, gradientLabels, forwardRows };
  }

  for (const [method, perFinding] of [['smoothgrad', 6], ['integrated-gradients', 5]] as const) {
    it(`${method}: ${perFinding} gradient rows per finding asked, each for that finding`, async () => {
      const options = { method, smoothgrad: { samples: 6 }, integratedGradients: { steps: 5 } };
      const labels = explainer.labels;
      const one = counting();
      const single = await explainWithRunner(one.runner, explainer.prepareImage(image), explainer.info.preprocessing, { ...options, findings: ['Effusion'] });
      assert.deepEqual(single.findings.map((f) => f.finding), ['Effusion']);
      assert.deepEqual(one.gradientLabels, Array(perFinding).fill(labels.indexOf('Effusion')));
      const three = counting();
      await explainWithRunner(three.runner, explainer.prepareImage(image), explainer.info.preprocessing, { ...options, findings: ['Effusion', 'Mass', 'Hernia'] });
      assert.equal(three.gradientLabels.length, 3 * perFinding);
      assert.deepEqual([...new Set(three.gradientLabels)].sort((a, b) => a - b), ['Effusion', 'Mass', 'Hernia'].map((f) => labels.indexOf(f)).sort((a, b) => a - b));
    });
  }

  it('occlusion: the same forward passes for one finding or several (each pass scores every finding), a map only for those asked', async () => {
    const one = counting();
    const single = await explainWithRunner(one.runner, explainer.prepareImage(image), explainer.info.preprocessing, { method: 'occlusion', findings: ['Effusion'], occlusion: { patch: 56 } });
    const two = counting();
    const pair = await explainWithRunner(two.runner, explainer.prepareImage(image), explainer.info.preprocessing, { method: 'occlusion', findings: ['Effusion', 'Mass'], occlusion: { patch: 56 } });
    assert.equal(single.findings.length, 1);
    assert.equal(pair.findings.length, 2);
    assert.deepEqual(one.forwardRows, two.forwardRows);
  });
});
