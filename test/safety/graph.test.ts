/**
 * The safety subgraph inside a real model (ImageNet MobileNetV2 at 96 px) on real NIH images: ONNX Runtime's
 * scores equal the TypeScript arithmetic, fitting again replaces the subgraph, the explanation-gradient graph still
 * builds, and models whose metadata and graph disagree, or whose metadata is malformed, are refused by name.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { buildGradientGraph } from '../../src/explain/gradient-graph.js';
import { importWeights } from '../../src/models/import/index.js';
import { readModelInfo, setSafety } from '../../src/models/metadata.js';
import { type Model, checkGraph } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { type GaussianModel, type LogisticModel, fitGaussian, logisticProbability, mahalanobisScore, project } from '../../src/safety/detector.js';
import { type ImageOutputs, corrupted, fileSource, runImages } from '../../src/safety/features.js';
import { SAFETY_OUTPUTS, assertSafetyOutputs, attachSafetyGraph, stripSafetyGraph } from '../../src/safety/graph.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const images = readdirSync(sharedDataPath('nih-cxr14-subset', 'images'))
  .sort()
  .slice(0, 40)
  .map((f) => fileSource(sharedDataPath('nih-cxr14-subset', 'images', f)));

let base: Model;
let reference: ImageOutputs;
let gaussian: GaussianModel;
let heads: LogisticModel[];

before(async () => {
  base = importWeights(readFileSync(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx')), 'mobilenetv2-12-int8.onnx', { newHead: true, height: 96, width: 96 }).model;
  reference = await runImages(base, images.slice(0, 30), { threads: 2 });
  gaussian = fitGaussian(reference.pooled, 16);
  heads = [
    { weights: Float64Array.from({ length: 16 }, (_, i) => Math.sin(i + 1)), bias: -0.5 },
    { weights: Float64Array.from({ length: 16 }, (_, i) => Math.cos(i + 1) / 2), bias: 0.25 },
  ];
});

const row = (o: ImageOutputs, i: number) => o.pooled.data.subarray(i * o.pooled.columns, (i + 1) * o.pooled.columns);

describe('the safety subgraph', () => {
  it("computes in ONNX Runtime what the TypeScript detector computes, on seen, unseen and inverted images", async () => {
    const model = attachSafetyGraph(base, gaussian, heads);
    checkGraph(model.graph);
    setSafety(model, { outputs: { ...SAFETY_OUTPUTS }, heads: ['a', 'b'], detector: 'test', checks: [], source: 'test' });
    const sources = [...images.slice(25, 40), ...images.slice(30, 35).map((s, i) => corrupted(s, 'invert', i))];
    const out = await runImages(model, sources, { threads: 2 });
    assert.ok(out.ood && out.heads);
    for (let i = 0; i < sources.length; i++) {
      const expected = mahalanobisScore(gaussian, row(out, i));
      assert.ok(Math.abs(out.ood[i] / expected - 1) < 1e-3, `${sources[i].id}: graph ${out.ood[i]}, TypeScript ${expected}`);
      const z = project(gaussian, row(out, i)).whitened;
      heads.forEach((head, j) => {
        const p = logisticProbability(head, z);
        assert.ok(Math.abs(out.heads!.data[i * 2 + j] - p) < 1e-4, `${sources[i].id} head ${j}: ${out.heads!.data[i * 2 + j]} vs ${p}`);
      });
    }
    // The images the Gaussian was fitted on score lower than their inverted copies.
    const seen = Array.from(out.ood.subarray(0, 5));
    const inverted = Array.from(out.ood.subarray(15));
    assert.ok(Math.max(...seen) < Math.min(...inverted), `seen ${seen}, inverted ${inverted}`);
  });

  it('fitting again replaces the subgraph; stripping gives the original graph back', () => {
    const once = attachSafetyGraph(base, gaussian, heads);
    const twice = attachSafetyGraph(once, fitGaussian(reference.pooled, 8), heads.map((h) => ({ weights: h.weights.slice(0, 8), bias: h.bias })));
    assert.equal(twice.graph.nodes.length, once.graph.nodes.length);
    assert.deepEqual(twice.graph.initializers.get('safety.basis')?.dims, [1280, 8]);
    const stripped = stripSafetyGraph(twice);
    assert.deepEqual(stripped.graph.nodes.map((n) => n.name), base.graph.nodes.map((n) => n.name));
    assert.deepEqual(stripped.graph.outputs.map((o) => o.name), base.graph.outputs.map((o) => o.name));
    assert.deepEqual([...stripped.graph.initializers.keys()], [...base.graph.initializers.keys()]);
  });

  it('the explanation-gradient graph still builds and runs on a model with the subgraph', async () => {
    const model = attachSafetyGraph(base, gaussian, heads);
    const gradient = buildGradientGraph(model, { sources: [readModelInfo(model).io.features], classes: [0, 3] });
    const session = await OrtSession.create(gradient.model, { threads: 2 });
    try {
      const input = new Float32Array(3 * 96 * 96).map((_, i) => Math.sin(i) / 2);
      const out = await session.run({ image: { dtype: 'float32', dims: [1, 3, 96, 96], data: input } });
      assert.ok(Object.values(gradient.outputs.gradients).every((name) => out[name].data.length > 0));
    } finally {
      await session.release();
    }
  });

  it('a model whose safety metadata names outputs its graph lacks is refused by name', () => {
    const model = stripSafetyGraph(attachSafetyGraph(base, gaussian, heads));
    setSafety(model, { outputs: { ...SAFETY_OUTPUTS }, heads: ['rotated'], detector: 'test', checks: [], source: 'test' });
    assert.throws(() => assertSafetyOutputs(model, 'odd.onnx'), /odd\.onnx: its safety metadata names the output "safety\.ood", which the graph does not have/);
  });

  it('refuses features of another width', () => {
    assert.throws(() => attachSafetyGraph(base, fitGaussian({ rows: 10, columns: 4, data: new Float32Array(40).map((_, i) => Math.sin(i * i)) }, 2), []), /the detector was fitted on 4 channels/);
  });
});

describe('calibration and safety metadata are validated on read', () => {
  const withKey = (key: string, value: unknown) => ({ metadata: { ...base.metadata, [key]: typeof value === 'string' ? value : JSON.stringify(value) } });
  const good = {
    outputs: { ood: 'safety.ood', heads: 'safety.heads' },
    heads: ['rotated'],
    detector: 'd',
    source: 's',
    checks: [{ code: 'not-chest-xray', score: 'ood', threshold: 2, direction: 'above', rule: 'r', severity: 'reject' }],
  };
  const cases: [string, string, unknown, RegExp][] = [
    ['calibration', 'cxr.calibration', '{', /m\.onnx: metadata "cxr\.calibration" is not valid JSON/],
    ['calibration', 'cxr.calibration', { method: 'isotonic', source: 's', values: {} }, /has the method "isotonic"; expected "platt" or "temperature"/],
    ['calibration', 'cxr.calibration', { method: 'platt', source: 's', values: { Fracture: { a: 1, b: 0 } } }, /names "Fracture", which is not one of the model's labels/],
    ['calibration', 'cxr.calibration', { method: 'platt', source: 's', values: { Hernia: { a: -1, b: 0 } } }, /gives "Hernia" \{"a":-1,"b":0\}; expected \{ a, b \} with a finite a > 0/],
    ['calibration', 'cxr.calibration', { method: 'platt', source: 's', values: {}, ece: [{ data: 'x' }] }, /"ece" must be a list of \{ data, before, after \}/],
    ['safety', 'cxr.safety', { ...good, outputs: { ood: 'safety.ood' } }, /must name its "ood" and "heads" outputs/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], code: 'upside-down' }] }, /check 1 has the unknown code "upside-down"/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], score: 'head:3' }] }, /check 1 \(not-chest-xray\) reads the unknown score "head:3"/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], threshold: null }] }, /check 1 \(not-chest-xray\) has no finite threshold/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], direction: 'sideways' }] }, /must have the direction "above" or "below"/],
    ['safety', 'cxr.safety', { ...good, checks: [good.checks[0], good.checks[0]] }, /check 2 \(not-chest-xray\) reads the score "ood" at the severity a check before it already has/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], score: 'orientation:rotated' }] }, /reads the orientation network, which the metadata does not store/],
    ['safety', 'cxr.safety', { ...good, checks: [{ ...good.checks[0], score: 'layout' }] }, /reads the thumbnail Gaussian, which the metadata does not store/],
  ];
  for (const [what, key, value, message] of cases) {
    it(`${what}: ${message.source.slice(0, 60)}`, () => {
      assert.throws(() => readModelInfo(withKey(key, value), 'm.onnx'), message);
    });
  }
  it('a valid description reads back as written', () => {
    const info = readModelInfo(withKey('cxr.safety', good), 'm.onnx');
    assert.deepEqual(info.safety, good);
  });
  it('one score may warn at one threshold and reject at a higher one', () => {
    const two = { ...good, checks: [{ ...good.checks[0], severity: 'warning', threshold: 1.5 }, good.checks[0]] };
    assert.deepEqual(readModelInfo(withKey('cxr.safety', two), 'm.onnx').safety, two);
  });
});
