/** `cxr explain` and `cxr localize-eval` as users run them (bin/cxr.js in a child process), on real NIH images and a DICOM. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { importWeights } from '../../src/models/import/index.js';
import { writeModelFile } from '../../src/onnx/index.js';
import { REPO_ROOT, readFixture, sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-explain-'));
const model = join(dir, 'mobilenet.onnx');
const NIH_1024 = sharedDataPath('nih-cxr14-subset', 'images-1024', '00000001_000.png');
const DICOM = sharedDataPath('dicom', 'cxr06_CR_chest_PA_MONO2_8bit_JPEGBaseline_SIIM.dcm');

function cxr(...args: string[]) {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

before(() => {
  writeModelFile(model, importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: 96, width: 96 }).model);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cxr explain', () => {
  it('writes an overlay PNG per finding at the original 1024 px resolution and a JSON with raw maps and probabilities', async () => {
    const out = join(dir, 'two');
    const run = cxr('explain', NIH_1024, '--model', model, '--finding', 'Effusion', 'Mass', '--method', 'gradcam++', '--contour', '0.5', '--cutoff', '0.6', '--out', out);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /gradcam\+\+ on features, logit target/);
    const doc = JSON.parse(readFileSync(join(out, 'explanation.json'), 'utf8'));
    assert.deepEqual(doc.findings.map((f: { finding: string }) => f.finding), ['Effusion', 'Mass']);
    assert.equal(doc.layer, 'features');
    assert.equal(doc.colourScale, 'colour-scale.svg');
    assert.match(readFileSync(join(out, 'colour-scale.svg'), 'utf8'), /Below 60% the film is left as it is/);
    for (const f of doc.findings) {
      const { data, info } = await sharp(join(out, f.overlay)).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [1024, 1024, 3]);
      let gray = 0;
      for (let i = 0; i < data.length; i += 3) if (data[i] === data[i + 1] && data[i + 1] === data[i + 2]) gray++;
      assert.ok(gray > 0.3 * 1024 * 1024, `--cutoff 0.6 leaves the film as it is below 60% of the map's range (${gray} gray pixels)`);
      assert.deepEqual([f.map.width, f.map.height], [3, 3]);
      assert.equal(f.map.data.length, 9);
      assert.ok(Math.abs(f.probability - 1 / (1 + Math.exp(-f.logit))) < 1e-12);
    }
    const predicted = JSON.parse(cxr('predict', NIH_1024, '--model', model, '--json').stdout);
    const effusion = predicted.findings.find((f: { name: string }) => f.name === 'Effusion');
    assert.ok(Math.abs(effusion.probability - doc.findings[0].probability) < 1e-6, 'the same probability as cxr predict');
  });

  it('--all explains every finding; raw maps of gradient methods are downsampled to --raw-size; DICOM overlays keep the DICOM size', async () => {
    const all = cxr('explain', DICOM, '--model', model, '--all', '--method', 'gradient', '--raw-size', '24', '--json', '--out', join(dir, 'all'));
    assert.equal(all.code, 0, all.stderr);
    const doc = JSON.parse(all.stdout);
    assert.equal(doc.findings.length, 14);
    assert.deepEqual([doc.findings[0].map.width, doc.findings[0].map.height, doc.findings[0].map.fullWidth], [24, 24, 96]);
    const png = await sharp(join(dir, 'all', doc.findings[0].overlay)).metadata();
    assert.deepEqual([png.width, png.height], [doc.image.width, doc.image.height]);
    assert.equal(doc.image.format, 'dicom');
  });

  it('without --finding explains the three most probable findings of a model without thresholds', () => {
    const run = cxr('explain', NIH_1024, '--model', model, '--json', '--out', join(dir, 'default'));
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout);
    const predicted = JSON.parse(cxr('predict', NIH_1024, '--model', model, '--json').stdout);
    const top = [...predicted.findings].sort((a, b) => b.probability - a.probability).slice(0, 3).map((f: { name: string }) => f.name);
    assert.deepEqual(doc.findings.map((f: { finding: string }) => f.finding), top);
  });

  it('without --model: the default model\'s calibrated probabilities and decisions (as cxr predict gives them) and its input checks', async () => {
    // A film the default model calls positive for some findings (at specificity 0.90 many films have none).
    const film = sharedDataPath('nih-cxr14-subset', 'images-1024', '00000002_000.png');
    const run = cxr('explain', film, '--json', '--out', join(dir, 'embedded'));
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.verdict, 'accepted');
    const predicted = JSON.parse(cxr('predict', film, '--json').stdout);
    const positive = predicted.findings.filter((f: { decision: string }) => f.decision === 'positive').map((f: { name: string }) => f.name);
    assert.ok(positive.length > 0);
    assert.deepEqual(doc.findings.map((f: { finding: string }) => f.finding), positive, 'the findings called positive');
    for (const f of doc.findings) {
      const p = predicted.findings.find((q: { name: string }) => q.name === f.finding);
      assert.ok(Math.abs(f.probability - p.probability) < 1e-6, f.finding);
      assert.deepEqual([f.threshold, f.decision], [p.threshold, 'positive']);
    }

    const blank = join(dir, 'blank.png');
    await sharp({ create: { width: 512, height: 512, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(blank);
    const rejected = cxr('explain', blank, '--out', join(dir, 'blank'));
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /blank\.png: the input checks rejected this image: .*--show-rejected/);
    assert.equal(existsSync(join(dir, 'blank', 'explanation.json')), false);
    const shown = cxr('explain', blank, '--show-rejected', '--out', join(dir, 'blank'));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /NOT TO BE TRUSTED/);
    assert.equal(JSON.parse(readFileSync(join(dir, 'blank', 'explanation.json'), 'utf8')).verdict, 'rejected-shown');
  });

  it('--list-layers shows the default first; --help teaches with examples', () => {
    const layers = cxr('explain', NIH_1024, '--model', model, '--list-layers');
    assert.equal(layers.code, 0, layers.stderr);
    assert.match(layers.stdout, /^features {2}\(default\)\nfeatures\.17\.conv\.3\n/);
    assert.match(cxr('explain', '--help').stdout, /Examples:[\s\S]*--method gradcam\+\+/);
    assert.match(cxr('--help').stdout, /\n {2}explain [\s\S]*\n {2}localize-eval /);
  });

  it('fails clearly on unknown findings, methods and layers (listing the valid ones) and on unreadable images', () => {
    const text = join(dir, 'not-an-image.png');
    writeFileSync(text, 'hello');
    const cases: [string[], RegExp][] = [
      [['--finding', 'Pneumonitis'], /no finding "Pneumonitis"; it knows Atelectasis, Cardiomegaly, .*Hernia/],
      [['--method', 'gradcam3'], /unknown explanation method "gradcam3"; choose one of gradcam, gradcam\+\+, hirescam, /],
      [['--layer', 'features.42'], /layer "features\.42" is not a tensor of the model; the default is "features", the blocks end at /],
      [['--finding', 'Mass', '--all'], /either --finding or --all/],
      [['--opacity', '2'], /opacity must be a number between 0 and 1, got "2"/],
      [['--baseline', 'white'], /baseline must be black, mean or a gray level/],
    ];
    for (const [args, message] of cases) {
      const run = cxr('explain', NIH_1024, '--model', model, '--out', join(dir, 'bad'), ...args);
      assert.notEqual(run.code, 0, args.join(' '));
      assert.match(run.stderr, message);
    }
    const bad = cxr('explain', text, '--model', model, '--out', join(dir, 'bad'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not-an-image\.png/);
    assert.equal(existsSync(join(dir, 'bad', 'explanation.json')), false);
  });
});

describe('cxr localize-eval', () => {
  it('scores the real boxed NIH images and writes a JSON and an HTML report', () => {
    const out = join(dir, 'localize');
    const run = cxr(
      'localize-eval',
      '--model', model,
      '--boxes', sharedDataPath('nih-meta', 'BBox_List_2017.csv'),
      '--images', sharedDataPath('nih-cxr14-subset', 'images'), sharedDataPath('nih-cxr14-64px', 'images'),
      '--methods', 'gradcam,hirescam',
      '--draws', '10',
      '--out', out,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /15 images, 15 boxes/);
    assert.match(run.stdout, /gradcam on features: pointing/);
    assert.match(run.stdout, /hirescam on features: pointing/);
    assert.match(run.stdout, /\nnote: gradcam, hirescam gave identical maps on every case, by construction: at features the gradient/);
    const report = JSON.parse(readFileSync(join(out, 'localization.json'), 'utf8'));
    assert.equal(report.methods.length, 2);
    const warnings = report.methods.flatMap((m: { warnings: string[] }) => m.warnings.map((w) => `  WARNING ${w}`));
    assert.deepEqual(run.stdout.split('\n').filter((l) => l.startsWith('  WARNING ')), warnings, 'every below-random score of the JSON is printed');
    assert.equal(report.model.file, model);
    assert.match(readFileSync(join(out, 'localization.html'), 'utf8'), /<h2>hirescam/);
    const unknown = cxr('localize-eval', '--model', model, '--boxes', sharedDataPath('nih-meta', 'BBox_List_2017.csv'), '--images', dir, '--methods', 'gradcam,sharpcam');
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown explanation method "sharpcam"/);
    const none = cxr('localize-eval', '--model', model, '--boxes', sharedDataPath('nih-meta', 'BBox_List_2017.csv'), '--images', dir);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /none of the images in .*BBox_List_2017\.csv is in /);
  });
});
