/**
 * Localisation scoring: boxes from maps, IoU and IoBB, the pointing game, on hand-made maps; then the whole
 * pipeline on NIH's real boxes and images (../shared/data): which local images have boxes, an oracle map that
 * must score perfectly through the real geometry, and a random-map baseline that must match its expectation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_LOCALIZATION,
  Explainer,
  WANG_2017_LOCALIZATION,
  boxOnGrid,
  boxedImageFiles,
  evaluateLocalization,
  iobb,
  iou,
  localizationOptions,
  localizationToHtml,
  mapOnImageGrid,
  readBoxedImages,
  regionBoxes,
  scoreCase,
  summarize,
} from '../../src/explain/index.js';
import { boxToModel, computeGeometry } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { readFixture, sharedDataPath } from '../helpers/fixtures.js';

const options = localizationOptions();

describe('boxes from maps and overlap measures', () => {
  it('each 8-connected region above the level gets its bounding box; the level is relative to the maximum', () => {
    // 6 x 4 map: a diagonal pair (connected through a corner) and a separate weaker blob.
    const map = new Float32Array(24);
    map[0 * 6 + 0] = 10;
    map[1 * 6 + 1] = 8;
    map[3 * 6 + 4] = 3;
    map[3 * 6 + 5] = 3;
    assert.deepEqual(regionBoxes(map, 6, 4, 0.5), [{ x: 0, y: 0, width: 2, height: 2, cells: 2 }]);
    assert.deepEqual(regionBoxes(map, 6, 4, 0.25), [
      { x: 0, y: 0, width: 2, height: 2, cells: 2 },
      { x: 4, y: 3, width: 2, height: 1, cells: 2 },
    ]);
    assert.deepEqual(regionBoxes(new Float32Array(24), 6, 4, 0.5), [], 'an all-zero map predicts nothing');
  });

  it('IoU and IoBB (intersection over the predicted box)', () => {
    const truth = { x: 0, y: 0, width: 4, height: 4 };
    const inner = { x: 1, y: 1, width: 2, height: 2 };
    assert.equal(iou(inner, truth), 4 / 16);
    assert.equal(iobb(inner, truth), 1, 'a small box inside the truth has IoBB 1');
    assert.equal(iobb(truth, inner), 4 / 16);
    assert.equal(iou({ x: 2, y: 0, width: 4, height: 4 }, truth), 8 / 24);
    assert.equal(iou({ x: 4, y: 0, width: 1, height: 1 }, truth), 0, 'touching edges do not overlap');
  });

  it('scores a case: pointing, best overlaps per truth box, false positives per threshold; summaries count boxes', () => {
    const grid = 8;
    const map = new Float32Array(grid * grid);
    for (let y = 2; y < 4; y++) for (let x = 2; x < 4; x++) map[y * grid + x] = 1; // a blob on the first truth box
    map[7 * grid + 7] = 0.5; // a weaker spot far away: a box at 60/255 only
    const truth = [
      { x: 2, y: 2, width: 2, height: 2 },
      { x: 5, y: 0, width: 2, height: 2 },
    ];
    const score = scoreCase(map, grid, truth, options);
    assert.equal(score.pointing, true);
    assert.deepEqual(score.peak, { x: 2.5, y: 2.5 });
    assert.deepEqual(score.bestIou, [1, 0]);
    assert.deepEqual(score.bestIobb, [1, 0]);
    assert.equal(score.predicted.length, 3, 'two boxes at 60/255 (blob and spot), one at 180/255');
    assert.deepEqual(score.falsePositivesIou, [1, 1, 1], 'the far spot matches nothing');
    const summary = summarize([score], options);
    assert.equal(summary.boxes, 2);
    assert.equal(summary.iou['0.5'], 0.5, 'one of two truth boxes localised');
    assert.equal(summary.pointing, 1);
    assert.equal(summary.afpIobb['0.1'], 1);
    // Only the largest region per level: the far spot (1 cell) loses to the blob (4 cells).
    const largest = scoreCase(map, grid, truth, localizationOptions({ boxRule: 'largest' }));
    assert.deepEqual(largest.predicted, [
      { x: 2, y: 2, width: 2, height: 2 },
      { x: 2, y: 2, width: 2, height: 2 },
    ]);
    assert.deepEqual(largest.falsePositivesIou, [0, 0, 0]);
  });

  it('maps over a padded model input land on the right part of the image', () => {
    // A 2:1 image padded into a square 8 x 8 model input: content rows 2..5.
    const geometry = computeGeometry(200, 100, { width: 8, height: 8, resize: 'pad' });
    const map = new Float32Array(64);
    map[3 * 8 + 6] = 1; // model cell (6, 3): the right part of the image, upper half of the content
    const onGrid = mapOnImageGrid({ width: 8, height: 8, data: map }, geometry, 16);
    const top = onGrid.indexOf(Math.max(...onGrid));
    const [x, y] = [top % 16, Math.floor(top / 16)];
    assert.ok(x >= 11 && x <= 14 && y >= 3 && y <= 7, `peak at ${x}, ${y}`);
    assert.deepEqual(boxOnGrid({ x: 512, y: 256, width: 256, height: 128, space: { width: 1024, height: 1024 } }, 16), { x: 8, y: 4, width: 4, height: 2 });
  });

  it('refuses meaningless settings', () => {
    assert.throws(() => localizationOptions({ grid: 1 }), /grid must be a whole number in 2\.\.4096, got 1/);
    assert.throws(() => localizationOptions({ iouThresholds: [0.1, 1.5] }), /IoU thresholds must be numbers strictly between 0 and 1/);
    assert.throws(() => localizationOptions({ boxLevels: [] }), /box levels/);
    assert.throws(() => localizationOptions({ boxRule: 'biggest' as never }), /box rule must be "regions" or "largest", got "biggest"/);
    assert.throws(() => scoreCase(new Float32Array(4), 2, [], options), /at least one ground-truth box/);
  });

  it('the published table has all 8 findings at every threshold of Wang et al.\'s Table 4', () => {
    assert.deepEqual(Object.keys(WANG_2017_LOCALIZATION.iobb), ['0.1', '0.25', '0.5', '0.75', '0.9']);
    for (const row of Object.values(WANG_2017_LOCALIZATION.iobb)) {
      assert.equal(Object.keys(row.accuracy).length, 8);
      assert.ok(Object.values(row.accuracy).every((v) => v >= 0 && v <= 1));
    }
    assert.equal(WANG_2017_LOCALIZATION.iobb['0.1'].accuracy.Cardiomegaly, 0.9931);
  });
});

describe('on NIH\'s real boxes and images', () => {
  const boxesCsv = sharedDataPath('nih-meta', 'BBox_List_2017.csv');
  const folders = [sharedDataPath('nih-cxr14-subset', 'images-1024'), sharedDataPath('nih-cxr14-subset', 'images'), sharedDataPath('nih-cxr14-64px', 'images')];

  it('finds the local images that have official boxes: six of the 512 px subset, nine 64 px, none of the 1024 px set', async () => {
    const files = await boxedImageFiles(boxesCsv, folders);
    const count = (folder: string) => files.filter((f) => f.path.startsWith(folder)).length;
    assert.deepEqual([count(folders[0]), count(folders[1]), count(folders[2])], [0, 6, 9]);
    assert.ok(files.every((f) => f.boxes.every((b) => b.space.width === 1024)));
    await assert.rejects(boxedImageFiles(boxesCsv, [sharedDataPath('no-such-folder')]), /no-such-folder: not a folder of images/);
  });

  it('an oracle map (the truth box itself, through the model geometry) scores perfectly; random maps score their expectation', async () => {
    const images = await readBoxedImages(await boxedImageFiles(boxesCsv, folders));
    const spec = { width: 224, height: 224, resize: 'pad' as const };
    let cases = 0;
    for (const { image, boxes } of images) {
      const geometry = computeGeometry(image.width, image.height, spec);
      for (const box of boxes) {
        const inModel = boxToModel(geometry, box, box.space);
        const map = new Float32Array(224 * 224);
        for (let y = Math.ceil(inModel.y); y < inModel.y + inModel.height - 1; y++) for (let x = Math.ceil(inModel.x); x < inModel.x + inModel.width - 1; x++) map[y * 224 + x] = 1;
        const score = scoreCase(mapOnImageGrid({ width: 224, height: 224, data: map }, geometry, options.grid), options.grid, [boxOnGrid(box, options.grid)], options);
        assert.equal(score.pointing, true, `${box.finding}`);
        assert.ok(score.bestIou[0] > 0.85, `${box.finding}: IoU ${score.bestIou[0]}`);
        cases++;
      }
    }
    assert.equal(cases, 15);
  });

  it('the whole run on a random-weight model: every case scored, a random baseline near the boxes\' area share, a report', async () => {
    const { model } = importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: 96, width: 96 });
    const explainer = await Explainer.create(model, { threads: 2 });
    try {
      const images = await readBoxedImages(await boxedImageFiles(boxesCsv, folders));
      const report = await evaluateLocalization(explainer, images, { methods: ['gradcam'], randomDraws: 200, seed: 3 });
      const [m] = report.methods;
      assert.equal(report.images, 15);
      assert.equal(report.boxes, 15);
      assert.deepEqual(report.findings, ['Atelectasis', 'Cardiomegaly', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia']);
      assert.equal(m.cases.length, 15);
      assert.equal(m.overall.cases, 15);
      assert.deepEqual(Object.keys(m.overall.iobb), DEFAULT_LOCALIZATION.iobbThresholds.map(String));
      // A random map's maximum falls anywhere: its hit rate is about the boxes' mean share of the image.
      const areaShare = images.reduce((s, { boxes }) => s + (boxes[0].width * boxes[0].height) / (1024 * 1024), 0) / images.length;
      assert.ok(Math.abs(m.random.pointing.mean - areaShare) < 0.06, `random pointing ${m.random.pointing.mean} vs box area share ${areaShare}`);
      assert.ok(m.random.pointing.sd > 0);
      const html = localizationToHtml(report);
      assert.match(html, /Wang 2017 \(CVPR\)/);
      assert.match(html, /random maps \(all\)/);
      assert.match(html, /00001369_000\.png/);
    } finally {
      await explainer.close();
    }
  });
});
