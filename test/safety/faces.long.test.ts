/**
 * The input checks through every face, on real files: `cxr calibrate` fits them (and calibration, thresholds) on
 * NIH's 64 px images split by patient; `cxr predict` prints flags and withholds findings; the HTTP API fills
 * inputFlags and verdict and honours showRejected; the viewer's private mode (onnxruntime-web, same model file)
 * raises the same flags with the same scores as the server. The rejected inputs: a real hip DICOM (its Body Part
 * tag) and a real NIH image replaced by noise (written as PNG): both refused whatever the model's features say.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { decodeImageFile } from '../../src/imaging/index.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { noise } from '../../src/safety/corrupt.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';
import { writePng } from '../imaging/png-writer.js';
import { assertMatchesSpec, postForm, startServer } from '../serve/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-safety-faces-'));
const base = join(dir, 'base.onnx');
const calibrated = join(dir, 'calibrated.onnx');
const noisePng = join(dir, 'noise.png');
const hip = sharedDataPath('dicom', readdirSync(sharedDataPath('dicom')).find((f) => f.startsWith('neg2'))!);
const nihImage = sharedDataPath('nih-cxr14-subset', 'images', '00000100_000.png');
const data = `nih:${sharedDataPath('nih-cxr14-64px', 'labels.csv')}:${sharedDataPath('nih-cxr14-64px', 'images')}`;
let calibrateRun: ReturnType<typeof cxr>;

function cxr(...args: string[]) {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

before(async () => {
  const imported = cxr('import', sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), '--new-head', '--size', '64', '-o', base);
  assert.equal(imported.code, 0, imported.stderr);
  const image = noise(await decodeImageFile(nihImage), 11);
  writeFileSync(noisePng, writePng(image.width, image.height, 8, 0, image.pixels));
  calibrateRun = cxr(
    'calibrate', '--model', base, '--data', data, '--split', '0.6,0.2,0.2', '--synthetic', '10', '--threads', '2',
    '--negatives', `natural photographs=${sharedDataPath('natural-photos')}`, '--threshold-rule', 'sensitivity:0.9', '--out', calibrated,
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cxr calibrate', () => {
  it('writes a calibrated model with checks and a report, and summarises what was measured', () => {
    assert.equal(calibrateRun.code, 0, calibrateRun.stderr);
    assert.match(calibrateRun.stdout, /mean ECE on the held-out test split: [\d.]+ before, [\d.]+ after calibration/);
    assert.match(calibrateRun.stdout, /thresholds: sensitivity:0\.9 for \d+ of 14 findings/);
    assert.match(calibrateRun.stdout, /natural photographs: [\d.]+% rejected, out-of-distribution AUROC [\d.]+/);
    const info = readModelInfo(readModelFile(calibrated), calibrated);
    assert.equal(info.thresholds?.rule, 'sensitivity:0.9');
    assert.ok(info.calibration && info.safety);
    const report = readFileSync(join(dir, 'calibrated.calibration.md'), 'utf8');
    for (const section of ['## Calibration', '## Operating points', '## Input checks']) assert.ok(report.includes(section), section);
    const json = JSON.parse(readFileSync(join(dir, 'calibrated.calibration.json'), 'utf8'));
    for (const p of json.operatingPoints) assert.ok(p.stated.sensitivity >= 0.9 && p.reproduced.sensitivity === p.stated.sensitivity, p.label);
  });

  it('says what is wrong with its options and data', () => {
    const cases: [string[], RegExp][] = [
      [['--model', base, '--out', join(dir, 'x.onnx')], /give the labelled data: --config <recipe> or --data/],
      [['--model', base, '--data', data, '--out', base], /--out must differ from --model/],
      [['--model', join(dir, 'missing.onnx'), '--data', data, '--out', join(dir, 'x.onnx')], /missing\.onnx: .*(no such file|ENOENT)/i],
      [['--model', base, '--data', data, '--split', '0.5,0.5', '--out', join(dir, 'x.onnx')], /three fractions adding up to 1/],
      [['--model', base, '--data', data, '--negatives', 'photos', '--out', join(dir, 'x.onnx')], /expected kind=folder or kind=file/],
      [['--model', base, '--data', data, '--card', join(dir, 'no-card.json'), '--out', join(dir, 'x.onnx')], /--card .*no-card\.json: .*(no such file|ENOENT)/i],
      [['--model', base, '--data', data, '--card', data.split(':')[1], '--out', join(dir, 'x.onnx')], /--card .*: .*(JSON|not a cxr train model card)/],
      [['--model', base, '--data', data, '--negatives-manifest', data.split(':')[1], '--out', join(dir, 'x.onnx')], /--negatives-manifest .*: expected a CSV with the columns kind,path/],
      [['--model', base, '--data', data, '--add', 'nih-only', '--out', join(dir, 'x.onnx')], /--add expects format:labels\.csv\[:images\]/],
      [['--model', base, '--data', data, '--negatives-manifest', join(dir, 'none.csv'), '--out', join(dir, 'x.onnx')], /--negatives-manifest .*none\.csv: .*(no such file|ENOENT)/i],
      [['--model', base, '--data', data, '--threshold-rule', 'median', '--out', join(dir, 'x.onnx')], /unknown threshold rule "median"/],
      [['--model', base, '--data', data, '--method', 'isotonic', '--out', join(dir, 'x.onnx')], /expected platt or temperature, got "isotonic"/],
      [['--model', base, '--data', 'nih:nowhere.csv', '--out', join(dir, 'x.onnx')], /nowhere\.csv/],
    ];
    for (const [args, message] of cases) {
      const run = cxr('calibrate', ...args);
      assert.notEqual(run.code, 0, args.join(' '));
      assert.match(run.stderr, message, args.join(' '));
    }
    assert.match(cxr('calibrate', '--help').stdout, /Examples:[\s\S]*--negatives/);
  });
});

describe('cxr predict with the checks', () => {
  it('withholds the findings of rejected inputs, gives the reasons, and shows them marked on request', () => {
    const run = cxr('predict', noisePng, hip, '--model', calibrated, '--json');
    assert.equal(run.code, 0, run.stderr);
    const [noisy, dicom] = JSON.parse(run.stdout).images;
    for (const entry of [noisy, dicom]) {
      assert.equal(entry.verdict, 'rejected');
      assert.deepEqual(entry.findings, []);
    }
    const smooth = noisy.inputFlags.find((f: { score: number | null; rule: string }) => f.score !== null && f.rule.includes('neighbour-pixel correlation'));
    assert.ok(smooth && smooth.code === 'not-chest-xray' && smooth.score < smooth.threshold, JSON.stringify(noisy.inputFlags));
    assert.ok(dicom.inputFlags.some((f: { rule: string }) => f.rule === 'DICOM tag BodyPartExamined (0018,0015) = "HIP"'));
    assert.match(run.stderr, /2 of 2 inputs were rejected by the input checks/);

    const shown = JSON.parse(cxr('predict', noisePng, '--model', calibrated, '--json', '--show-rejected').stdout);
    assert.equal(shown.verdict, 'rejected-shown');
    assert.equal(shown.findings.length, 14);
    assert.ok(shown.findings.every((f: { thresholdRule: string | null; threshold: number | null }) => f.threshold === null || f.thresholdRule === 'sensitivity:0.9'));

    const table = cxr('predict', hip, '--model', calibrated);
    assert.match(table.stdout, /REJECTED: the DICOM file shows the hip, not the chest \(Body Part Examined HIP\)/);
    assert.match(table.stdout, /no findings: the input checks rejected this image/);
    const csvPath = join(dir, 'out.csv');
    cxr('predict', hip, nihImage, '--model', calibrated, '--csv', csvPath);
    const [header, hipRow] = readFileSync(csvPath, 'utf8').trim().split('\n');
    // A DICOM among the inputs adds its UIDs after the error column (bdf3517).
    assert.match(header, /^file,Atelectasis,.*,Hernia,verdict,flags,error,study_instance_uid,series_instance_uid,sop_instance_uid$/);
    assert.match(hipRow, /^[^,]+,,,,,,,,,,,,,,,rejected,[^,]*not-chest-xray[^,]*,"?rejected by the input checks: the DICOM file shows the hip/);
  });
});

describe('the API and the viewer', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let browser: Browser | undefined;
  before(async () => {
    server = await startServer({ modelPath: calibrated, workers: 1 });
  });
  after(async () => {
    await browser?.close();
    await server?.app.close();
  });

  it('the model card carries the calibration and the input checks', async () => {
    const card = (await (await fetch(`${server.url}/api/v1/model`)).json()) as { calibration: { method: string }; inputChecks: { checks: unknown[]; measured: { kind: string }[] } };
    assertMatchesSpec('/api/v1/model', 'get', 200, card);
    assert.equal(card.calibration.method, 'platt');
    assert.ok(card.inputChecks.checks.length >= 6);
    assert.ok(card.inputChecks.measured.some((m) => m.kind === 'natural photographs'));
  });

  it('answers rejected inputs with flags, no findings and no heatmaps, unless showRejected=true', async () => {
    const upload = (file: string, fields: { name: string; value: string }[] = []) =>
      postForm(server.url, [{ name: 'image', value: new Uint8Array(readFileSync(file)), filename: file.split('/').pop() }, { name: 'methods', value: 'occlusion' }, ...fields]);
    const rejected = await upload(hip);
    assert.equal(rejected.status, 200);
    assertMatchesSpec('/api/v1/analyze', 'post', 200, rejected.body);
    assert.equal(rejected.body.verdict, 'rejected');
    assert.deepEqual(rejected.body.findings, []);
    assert.deepEqual(rejected.body.explanations, []);
    assert.ok(rejected.body.inputFlags.some((f: { code: string; severity: string }) => f.code === 'not-chest-xray' && f.severity === 'reject'));

    const shown = await upload(noisePng, [{ name: 'showRejected', value: 'true' }, { name: 'heatmap', value: 'none' }]);
    assertMatchesSpec('/api/v1/analyze', 'post', 200, shown.body);
    assert.equal(shown.body.verdict, 'rejected-shown');
    assert.equal(shown.body.findings.length, 14);

    const bad = await upload(noisePng, [{ name: 'showRejected', value: 'yes' }]);
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /showRejected must be true or false, got "yes"/);
  });

  it("private mode in the browser raises the server's flags with the server's scores, and shows findings anyway on request", async (t) => {
    const chromiumPath = '/usr/bin/chromium';
    const build = join(REPO_ROOT, 'dist', 'web', 'index.html');
    if (!existsSync(chromiumPath)) throw new Error(`Debian's Chromium is not installed (${chromiumPath}); apt-get install -y chromium`);
    if (!existsSync(build) || statSync(build).mtimeMs < statSync(join(REPO_ROOT, 'web', 'src', 'components', 'InputChecks.tsx')).mtimeMs) {
      throw new Error('the viewer is not built or older than web/src: run npm run build:web');
    }
    const server_ = (await postForm(server.url, [{ name: 'image', value: new Uint8Array(readFileSync(noisePng)), filename: 'noise.png' }, { name: 'heatmap', value: 'none' }])).body;
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.url);
    await page.waitForSelector('.model-card');
    // The model panel names each kind of check once, however many scores and severities it has.
    const checksLine = (await page.locator('.model-card dt', { hasText: 'Input checks' }).locator('xpath=following-sibling::dd[1]').textContent()) ?? '';
    const codes = checksLine.split(';')[0].split(', ');
    assert.ok(codes.includes('not-chest-xray'), checksLine);
    assert.equal(new Set(codes).size, codes.length, `input checks listed with repeats: ${checksLine}`);
    await page.locator('input[value="private"]').check();
    await page.setInputFiles('#file-input', noisePng);
    await page.waitForSelector('main[data-analysed-mode="private"][data-state="ready"] .input-checks[data-verdict="rejected"]', { timeout: 180_000 });
    const flags = await page.locator('.input-checks li').evaluateAll((items) => items.map((li) => li.getAttribute('data-flag')));
    assert.deepEqual(flags, server_.inputFlags.map((f: { code: string }) => f.code));
    assert.equal(await page.locator('.findings li').count(), 0, 'no findings for a rejected image');
    // The scores in the messages: the same to the printed precision.
    const texts = await page.locator('.input-checks li').allTextContents();
    server_.inputFlags.forEach((f: { message: string }, i: number) => assert.ok(texts[i].includes(f.message), `${texts[i]} / ${f.message}`));
    await page.getByRole('button', { name: /Show findings anyway/ }).click();
    await page.waitForSelector('.input-checks[data-verdict="rejected-shown"]', { timeout: 180_000 });
    assert.equal(await page.locator('.findings li').count(), 14);
    t.diagnostic(texts.join(' | '));
  });
});
