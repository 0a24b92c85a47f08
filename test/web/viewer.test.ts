/**
 * The viewer end to end in a real browser: Debian's Chromium driven by playwright-core against `cxr serve`.
 * Upload a real NIH image, read the findings, overlay heatmaps (switch finding, opacity), use the keyboard,
 * download the report, then private mode (onnxruntime-web in the page, nothing uploaded) on the PNG and on a real
 * DICOM, with probabilities equal to the server's. Screenshots and reports go to dist/test-artifacts/web/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { ModelCard } from '../../src/serve/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { DICOM_IMAGE, makeTestModel, NIH_IMAGE, postForm, startServer } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'dist', 'test-artifacts', 'web');
const WEB_BUILD = join(REPO_ROOT, 'dist', 'web', 'index.html');

/** The newest modification time under a folder. */
function newest(folder: string): number {
  return Math.max(...readdirSync(folder, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(folder, e.name)) : statSync(join(folder, e.name)).mtimeMs)));
}

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let page: Page;
let card: ModelCard;
const uploads: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Debian's Chromium is not installed (${CHROMIUM} is missing); the browser tests need it: apt-get install -y chromium (.ci/run does this)`);
  }
  if (!existsSync(WEB_BUILD)) throw new Error(`the viewer is not built (${WEB_BUILD} is missing): run npm run build:web`);
  if (newest(join(REPO_ROOT, 'web', 'src')) > statSync(WEB_BUILD).mtimeMs) throw new Error('the viewer build is older than web/src: run npm run build:web');
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ modelPath: makeTestModel(), workers: 2 });
  card = server.card;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (request.method() === 'POST') uploads.push(request.url());
  });
});

after(async () => {
  await browser?.close();
  await server?.app.close();
});

const screenshot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

async function readFindings(): Promise<Map<string, number>> {
  const items = await page.locator('.findings li').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-finding')!, Number(li.getAttribute('data-probability'))] as const));
  return new Map(items);
}

/** Mean absolute difference between the original pane and the overlay pane, after the next frame is drawn. */
async function overlayDifference(): Promise<number> {
  // A string: it runs in the page, whose DOM types this Node project does not compile against.
  return page.evaluate(`(async () => {
    await new Promise(requestAnimationFrame);
    const [original, overlay] = document.querySelectorAll('.pane canvas');
    const a = original.getContext('2d').getImageData(0, 0, original.width, original.height).data;
    const b = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
    return sum / a.length;
  })()`);
}

/** Polls the overlay difference until `done` holds (the canvas is redrawn a frame or two after a change). */
async function overlayWhen(done: (difference: number) => boolean, what: string): Promise<number> {
  let difference = NaN;
  for (let i = 0; i < 100; i++) {
    difference = await overlayDifference();
    if (done(difference)) return difference;
    await sleep(100);
  }
  throw new Error(`the overlay never showed ${what} (last difference ${difference})`);
}

async function choose(file: string, mode: 'server' | 'private'): Promise<void> {
  const name = file.split('/').pop()!;
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector(`main[data-image="${name}"][data-analysed-mode="${mode}"][data-state="ready"]`, { timeout: 180_000 });
}

describe('the viewer in Chromium', () => {
  it('opens with the research notice and the model card, weights description included', async () => {
    await page.goto(server.url);
    await page.waitForSelector('.model-card');
    assert.match(await page.locator('.notice').innerText(), /Research use only; not for clinical decisions/);
    assert.equal((await page.getByTestId('weights').innerText()).split('\n')[0], card.weights);
    await screenshot('01-opened');
  });

  it('server mode: a real NIH image gives the sorted findings with the API probabilities, and a heatmap overlay', async () => {
    await choose(NIH_IMAGE, 'server');
    const shown = await readFindings();
    const probabilities = [...shown.values()];
    assert.equal(shown.size, 14);
    assert.deepEqual(probabilities, [...probabilities].sort((a, b) => b - a), 'sorted by probability');
    const { body } = await postForm(server.url, [{ name: 'image', value: new Uint8Array(readFileSync(NIH_IMAGE)) }, { name: 'heatmap', value: 'none' }]);
    for (const f of body.findings as { name: string; probability: number }[]) assert.equal(shown.get(f.name), f.probability);
    assert.equal(await page.locator('.finding-decision', { hasText: 'no validated threshold' }).count(), 14);
    assert.deepEqual(await page.locator('.controls select').first().locator('option').allInnerTexts(), card.explanationMethods);
    assert.equal(await page.locator('main').getAttribute('data-heatmap'), 'gradcam');
    const top = await page.locator('.findings li').first().getAttribute('data-finding');
    assert.equal(await page.locator('.findings li').first().locator('button').getAttribute('aria-pressed'), 'true');
    assert.match(await page.locator('.pane figcaption').nth(1).innerText(), new RegExp(`${top!.replace(/_/g, ' ')} · gradcam`));
    await overlayWhen((d) => d > 1, 'a heatmap over the original');
    await screenshot('02-server-analysis');
  });

  it('switching finding changes the overlay; opacity 0 shows the bare image, 1 the strongest overlay', async () => {
    const before = await overlayDifference();
    const second = page.locator('.findings li').nth(1);
    await second.locator('button').click();
    assert.equal(await second.locator('button').getAttribute('aria-pressed'), 'true');
    const after = await overlayWhen((d) => d !== before && d > 1, 'a different map for a different finding');
    const opacity = page.locator('input[type="range"]').first();
    await opacity.fill('0');
    await overlayWhen((d) => d === 0, 'the bare image at opacity 0');
    await opacity.fill('1');
    await overlayWhen((d) => d > after, 'a stronger overlay at opacity 1 than at 0.5');
    await opacity.fill('0.6');
    await screenshot('03-other-finding');
  });

  it('is keyboard accessible: findings are buttons, the viewer zooms with +, the opacity slider moves with arrows', async () => {
    const third = page.locator('.findings li').nth(2).locator('button');
    await third.focus();
    await page.keyboard.press('Enter');
    assert.equal(await third.getAttribute('aria-pressed'), 'true');
    await page.locator('.viewer-panes').focus();
    await page.keyboard.press('+');
    assert.equal(await page.locator('.zoom-level').innerText(), '125%');
    await page.keyboard.press('0');
    assert.equal(await page.locator('.zoom-level').innerText(), '100%');
    const opacity = page.locator('input[type="range"]').first();
    await opacity.focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await opacity.inputValue(), '0.55');
  });

  it('downloads the report as PNG and PDF', async () => {
    const save = async (label: string, name: string) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: label }).click()]);
      const path = join(ARTIFACTS, name);
      await download.saveAs(path);
      return { bytes: readFileSync(path), suggested: download.suggestedFilename() };
    };
    const png = await save('Download PNG', 'report.png');
    assert.equal(png.suggested, 'cxr-report-00000075_000.png');
    assert.equal(png.bytes.subarray(1, 4).toString('latin1'), 'PNG');
    assert.deepEqual([png.bytes.readUInt32BE(16), png.bytes.readUInt32BE(20)], [1240, 1754]);
    const pdf = await save('Download PDF', 'report.pdf');
    assert.equal(pdf.bytes.subarray(0, 5).toString('latin1'), '%PDF-');
    assert.ok(pdf.bytes.length > png.bytes.length / 2, 'the PDF holds the report page');
  });

  it('private mode: the same model in the browser, nothing uploaded, probabilities equal to the server within 1e-4', async () => {
    const server = await readFindings();
    const postsBefore = uploads.length;
    await page.locator('input[value="private"]').check();
    await page.waitForSelector('main[data-analysed-mode="private"][data-state="ready"]', { timeout: 180_000 });
    assert.deepEqual(uploads.slice(postsBefore), [], 'private mode sends no POST');
    assert.match(await page.locator('#mode-status').innerText(), /onnxruntime-web/);
    assert.equal(await page.locator('main').getAttribute('data-heatmap'), 'occlusion');
    const local = await readFindings();
    for (const [name, p] of server) assert.ok(Math.abs(local.get(name)! - p) < 1e-4, `${name}: browser ${local.get(name)} vs server ${p}`);
    await overlayWhen((d) => d > 1, 'the heatmap computed in the browser');
    await screenshot('04-private-mode');
  });

  it('private mode on a real DICOM (JPEG 2000, decoded by the codec WebAssembly in the page) matches the server', async () => {
    const postsBefore = uploads.length;
    await choose(DICOM_IMAGE, 'private');
    assert.deepEqual(uploads.slice(postsBefore), []);
    const local = await readFindings();
    const { body } = await postForm(server.url, [{ name: 'image', value: new Uint8Array(readFileSync(DICOM_IMAGE)) }, { name: 'heatmap', value: 'none' }]);
    for (const f of body.findings as { name: string; probability: number }[]) {
      assert.ok(Math.abs(local.get(f.name)! - f.probability) < 1e-4, `${f.name}: browser ${local.get(f.name)} vs server ${f.probability}`);
    }
    await screenshot('05-private-dicom');
  });
});
