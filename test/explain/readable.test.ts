/**
 * Readable maps on real NIH films with radiologists' boxes, explained by the embedded default model: every method's
 * map, as rendered, is neither speckle nor a tint over the whole film (coverage above the cut-off and spatial
 * entropy within bounds), and the overlay leaves the film's pixels exactly as they are below the cut-off. The raw
 * gradient maps fail the same bounds, so the bounds are what the post-processing changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, boxedImageFiles, colourScaleSvg, readBoxedImages, readableMap, renderHeatmap, type BoxedImage } from '../../src/explain/index.js';
import { DEFAULT_CUTOFF, colormapTable, heatmapToSource, overlayHeatmap } from '../../src/imaging/index.js';
import sharp from 'sharp';
import { sharedDataPath } from '../helpers/fixtures.js';
import { COVERAGE, ENTROPY, coverage, levelsOnFilm, spatialEntropy } from './map-quality.js';

const METHODS = ['gradcam', 'gradcam++', 'hirescam', 'layercam', 'xgradcam', 'eigencam', 'ablationcam', 'gradient', 'smoothgrad', 'integrated-gradients'] as const;

describe('the colour scale written beside the overlays', () => {
  it('is the colour map\'s own entries from the cut-off up, with the cut-off and its meaning in words', () => {
    const svg = colourScaleSvg('jet', { cutoff: 0.5, method: 'gradcam' });
    const stops = [...svg.matchAll(/stop-color="#([0-9a-f]{6})"/g)].map((m) => m[1]);
    const table = colormapTable('jet');
    const hex = (q: number) => [0, 1, 2].map((k) => table[3 * q + k].toString(16).padStart(2, '0')).join('');
    assert.equal(stops.length, 256 - 128);
    assert.deepEqual([stops[0], stops.at(-1)], [hex(128), hex(255)]);
    assert.match(svg, />50%</);
    assert.match(svg, /drove the finding \(gradcam\)/);
  });
});

describe('readable maps of the default model on NIH films with boxes', () => {
  let explainer: Explainer;
  let images: BoxedImage[];
  before(async () => {
    const { model, path } = loadModel(DEFAULT_MODEL_PATH);
    explainer = await Explainer.create(model, { threads: 2, source: path });
    images = await readBoxedImages(await boxedImageFiles(sharedDataPath('nih-meta', 'BBox_List_2017.csv'), [sharedDataPath('nih-cxr14-subset', 'images')]));
  });
  after(() => explainer?.close());

  it('the feature stride is read from the model: 224 px input over a 7 x 7 last feature map', () => {
    assert.equal(explainer.featureStride, 32);
  });

  it('every method, every film: not speckle, not a tint, and the film pixel-identical below the cut-off', async (t) => {
    assert.equal(images.length, 6, 'the six 512 px subset films with official boxes');
    const rawSmoothGradCoverage: number[] = [];
    const rawIgCoverage: number[] = [];
    for (const { name, image, boxes } of images) {
      const finding = boxes[0].finding;
      const gray = Uint8Array.from(image.pixels, (v) => (v * 255) / image.maxValue);
      for (const method of METHODS) {
        const explanation = await explainer.explain(image, { method, findings: [finding], smoothgrad: { samples: 8 }, integratedGradients: { steps: 8 } });
        const { map } = explanation.findings[0];
        const levels = levelsOnFilm(readableMap(map, method, { featureStride: explanation.featureStride }), explanation, image.width, image.height);
        const covered = coverage(levels);
        const entropy = spatialEntropy(levels, image.width, image.height);
        t.diagnostic(`${name} ${finding} ${method}: coverage ${(100 * covered).toFixed(1)}%, entropy ${entropy.toFixed(3)}`);
        assert.ok(covered >= COVERAGE[0] && covered <= COVERAGE[1], `${name} ${method}: ${(100 * covered).toFixed(1)}% of the film drawn`);
        assert.ok(entropy >= ENTROPY[0] && entropy <= ENTROPY[1], `${name} ${method}: spatial entropy ${entropy.toFixed(3)}`);
        if (method === 'smoothgrad') rawSmoothGradCoverage.push(coverage(levelsOnFilm(map, explanation, image.width, image.height)));
        if (method === 'integrated-gradients') rawIgCoverage.push(coverage(levelsOnFilm(map, explanation, image.width, image.height)));

        const rgb = overlayHeatmap(image, levels, { opacity: 0.5 });
        let below = 0;
        let changed = 0;
        for (let i = 0; i < levels.length; i++) {
          const same = rgb[3 * i] === gray[i] && rgb[3 * i + 1] === gray[i] && rgb[3 * i + 2] === gray[i];
          if (levels[i] < DEFAULT_CUTOFF) {
            below++;
            if (!same) assert.fail(`${name} ${method}: pixel ${i} below the cut-off is (${rgb.subarray(3 * i, 3 * i + 3).join(', ')}), the film is ${gray[i]}`);
          } else if (!same) changed++;
        }
        assert.ok(below > 0 && changed > 0.5 * (levels.length - below), `${name} ${method}: ${below} film pixels kept, ${changed} coloured`);
      }
    }
    t.diagnostic(`raw maps: SmoothGrad covers ${rawSmoothGradCoverage.map((c) => (100 * c).toFixed(1)).join(', ')}%; Integrated Gradients ${rawIgCoverage.map((c) => (100 * c).toFixed(1)).join(', ')}%`);
    assert.ok(rawSmoothGradCoverage.every((c) => c < COVERAGE[0]), 'raw SmoothGrad maps are speckle: below the coverage bound');
    assert.ok(rawIgCoverage.every((c) => c > COVERAGE[1]), 'raw signed Integrated Gradients maps tint the whole film: above the coverage bound');
  });

  it('occlusion\'s map is readable too, and renderHeatmap applies the method\'s post-processing (raw: true does not)', async () => {
    const { image, boxes } = images[0];
    const explanation = await explainer.explain(image, { method: 'occlusion', findings: [boxes[0].finding] });
    const finding = explanation.findings[0];
    const levels = levelsOnFilm(readableMap(finding.map, 'occlusion'), explanation, image.width, image.height);
    const covered = coverage(levels);
    assert.ok(covered >= COVERAGE[0] && covered <= COVERAGE[1], `occlusion covers ${(100 * covered).toFixed(1)}%`);
    const decoded = async (png: Uint8Array) => new Uint8Array((await sharp(png).raw().toBuffer()).buffer);
    const rendered = await decoded(await renderHeatmap(image, explanation, finding));
    assert.deepEqual(rendered, overlayHeatmap(image, levels));
    const raw = await decoded(await renderHeatmap(image, explanation, finding, { raw: true }));
    assert.deepEqual(raw, overlayHeatmap(image, heatmapToSource(finding.map.data, finding.map.width, finding.map.height, explanation.geometry)));
    assert.notDeepEqual(raw, rendered);
  });
});
