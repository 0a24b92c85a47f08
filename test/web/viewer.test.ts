/**
 * The viewer end to end in a real browser: Debian's Chromium driven by playwright-core against `cxr serve`.
 * Upload a real NIH image, read the findings, overlay heatmaps (switch finding, opacity), use the keyboard,
 * download the report, then private mode (onnxruntime-web in the page, nothing uploaded) on the PNG and on a real
 * DICOM, with probabilities equal to the server's. Then the first screen at a glance, on a laptop's 1366 x 768 with
 * the default model (validated thresholds and input checks): image and findings side by side, positive calls marked
 * by colour and icon, thresholds with their rules, the model panel folded, input-check banners above the findings.
 * Screenshots and reports go to dist/test-artifacts/web/ (the at-a-glance one also to /tmp/viewer.png).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { ModelCard } from '../../src/serve/index.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';
import { DICOM_IMAGE, makeTestModel, NIH_IMAGE, NIH_IMAGE_2 as NIH_IMAGE_FOR_WARNING, postForm, startServer } from '../serve/helpers.js';

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
  // The `findings` field of every analysis that asks for heatmaps, in order (multipart bodies with a file are not
  // visible to request events, so the page's fetch records them).
  await page.addInitScript(`{
    window.explainedFindings = [];
    const send = window.fetch.bind(window);
    window.fetch = (url, init) => {
      if (init && init.body instanceof FormData && init.body.has('methods')) window.explainedFindings.push(init.body.get('findings'));
      return send(url, init);
    };
  }`);
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
  it('opens with the research notice and the model card folded; opened, the card gives the weights description', async () => {
    await page.goto(server.url);
    await page.waitForSelector('.model-card');
    assert.match(await page.locator('.notice').innerText(), /Research use only; not for clinical decisions/);
    assert.equal(await page.locator('details.model-card').getAttribute('open'), null, 'the model panel starts folded');
    await page.locator('.model-card summary').click();
    assert.equal((await page.getByTestId('weights').innerText()).split('\n')[0], card.weights);
    await page.locator('.model-card summary').click();
    assert.equal(await page.locator('details.model-card').getAttribute('open'), null, 'folded again');
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

  it('asks the server for the finding on screen only; a colour bar says what the colours mean; the film is untouched below the cut-off', async () => {
    const [first, second] = await page.locator('.findings li').evaluateAll((lis) => lis.slice(0, 2).map((li) => li.getAttribute('data-finding')!));
    assert.deepEqual(await page.evaluate('window.explainedFindings'), [first, second], 'one request per finding shown, each for that finding alone');
    const caption = await page.locator('.colour-bar figcaption').innerText();
    assert.match(caption, new RegExp(`drove ${second.replace(/_/g, ' ')} \\(gradcam\\), on this map's own range`));
    assert.match(caption, /Below 30% the film is left as it is/);
    const [same, total]: [number, number] = await page.evaluate(`(async () => {
      await new Promise(requestAnimationFrame);
      const [original, overlay] = document.querySelectorAll('.pane canvas');
      const a = original.getContext('2d').getImageData(0, 0, original.width, original.height).data;
      const b = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
      let same = 0;
      for (let i = 0; i < a.length; i += 4) if (a[i] === b[i] && a[i + 1] === b[i + 1] && a[i + 2] === b[i + 2]) same++;
      return [same, a.length / 4];
    })()`);
    assert.ok(same > 0.01 * total && same < total, `${same} of ${total} overlay pixels equal the film`);
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
    // A real PDF (the library's report, as `cxr explain --report` writes it): text poppler extracts, the film and
    // the heatmaps of the selected finding and the two most probable others (computed for the report when they
    // were not on screen yet) as embedded images.
    const pdfPath = join(ARTIFACTS, 'report.pdf');
    const text = execFileSync('pdftotext', ['-layout', pdfPath, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
    assert.match(text, /Research use only; not for clinical decisions\. Heatmaps show what drove the model/);
    assert.match(text, /Finding Probability Threshold Rule Decision/);
    assert.ok(text.includes(card.sha256), 'the model\'s sha256');
    const findings = await readFindings();
    for (const [name, probability] of findings) assert.ok(text.includes(`${name.replace(/_/g, ' ')}`) && text.includes(`${(probability * 100).toFixed(1)}%`), `${name} and its probability in the PDF's text`);
    const starred = card.labels.map((label) => label.replace(/_/g, ' ')).filter((name) => text.includes(` ${name} * `));
    assert.equal(starred.length, 3, `three findings marked as shown with heatmaps: ${text}`);
    for (const name of starred) assert.ok(text.includes(`${name} (gradcam)`), `${name}'s heatmap panel`);
    const images = execFileSync('pdfimages', ['-list', pdfPath], { encoding: 'utf8' }).trim().split('\n').slice(2);
    assert.equal(images.length, 4, 'the film and three heatmaps embedded');
    const explained = (await page.evaluate('window.explainedFindings')) as string[];
    const top = [...findings].sort((a, b) => b[1] - a[1]).map(([name]) => name);
    for (const name of top.slice(0, 2)) assert.ok(explained.includes(name), `${name}'s heatmap was computed for the report`);
  });

  it('SmoothGrad: progress in the status line; choosing another finding while it runs aborts the older request, which the server cancels', async () => {
    const pool = async () => ((await (await fetch(`${server.url}/healthz`)).json()) as { pool: { cancelled: number; busy: number } }).pool;
    const before = await pool();
    const method = page.getByLabel('Method');
    const shown = await page.locator('.findings li button[aria-pressed="true"]').evaluate((b) => b.closest('li')!.getAttribute('data-finding')!);
    const requested = ((await page.evaluate('window.explainedFindings')) as string[]).length;
    await method.selectOption('smoothgrad');
    // The server's progress lines reach the status line while the first finding's SmoothGrad runs.
    let status = '';
    for (let i = 0; i < 600 && !/smoothgrad for .* running on the server: \d+ model runs/.test(status); i++) status = await (await sleep(100), page.locator('.status').innerText());
    assert.match(status, /smoothgrad for .* running on the server: \d+ model runs, \d+\.\d s/);
    const other = [...(await readFindings()).keys()].find((name) => name !== shown)!;
    await page.locator(`.findings li[data-finding="${other}"] button`).click();
    await page.waitForSelector('main[data-heatmap="smoothgrad"][data-state="ready"]', { timeout: 180_000 });
    assert.deepEqual(((await page.evaluate('window.explainedFindings')) as string[]).slice(requested), [shown, other], 'one request each, the second for the finding chosen meanwhile');
    let after = await pool();
    for (let i = 0; i < 50 && after.cancelled === before.cancelled; i++) after = await (await sleep(100), pool());
    assert.equal(after.cancelled, before.cancelled + 1, 'the first request was aborted and the server cancelled it');
    assert.equal(after.busy, 0);
    assert.match(await page.locator('.status').innerText(), new RegExp(`smoothgrad heatmap of ${other.replace(/_/g, ' ')}`));
    await overlayWhen((d) => d > 1, 'the SmoothGrad map of the finding chosen last');
    await method.selectOption('gradcam');
    await page.waitForSelector('main[data-heatmap="gradcam"][data-state="ready"]', { timeout: 60_000 });
  });

  it('closing the page while SmoothGrad runs frees the server\'s worker at once, not at the analysis timeout', async () => {
    const pool = async () => ((await (await fetch(`${server.url}/healthz`)).json()) as { pool: { cancelled: number; busy: number } }).pool;
    const before = await pool();
    const other = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await other.goto(server.url);
    await other.setInputFiles('#file-input', NIH_IMAGE);
    await other.waitForSelector('main[data-image="00000075_000.png"][data-state="ready"]', { timeout: 120_000 });
    await other.getByLabel('Method').selectOption('smoothgrad');
    let status = '';
    for (let i = 0; i < 600 && !/running on the server: \d+ model runs/.test(status); i++) status = await (await sleep(100), other.locator('.status').innerText());
    assert.match(status, /running on the server: \d+ model runs/);
    const closed = performance.now();
    await other.close();
    let after = await pool();
    while ((after.busy > 0 || after.cancelled === before.cancelled) && performance.now() - closed < 10_000) after = await (await sleep(50), pool());
    const freedMs = performance.now() - closed;
    console.log(`# page closed mid-SmoothGrad: worker free ${Math.round(freedMs)} ms later`);
    assert.equal(after.cancelled, before.cancelled + 1, 'the server cancelled the closed page\'s analysis');
    assert.equal(after.busy, 0);
    assert.ok(freedMs < 5000, `freed ${Math.round(freedMs)} ms after the page closed`);
  });

  it('private mode: the same model in the browser, nothing uploaded, probabilities equal to the server within 1e-4', async () => {
    const server = await readFindings();
    const postsBefore = uploads.length;
    await page.locator('input[value="private"]').check();
    await page.waitForSelector('main[data-analysed-mode="private"][data-state="ready"]', { timeout: 180_000 });
    assert.deepEqual(uploads.slice(postsBefore), [], 'private mode sends no POST');
    assert.match(await page.locator('#mode-status').innerText(), /onnxruntime-web/);
    assert.equal(await page.locator('main').getAttribute('data-heatmap'), 'gradcam', 'Grad-CAM runs in the browser too (the CAM graph in onnxruntime-web)');
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

/** A box on the page, as Playwright measures it (CSS pixels, relative to the viewport). */
interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

async function box(locator: ReturnType<Page['locator']>): Promise<Box> {
  const b = await locator.boundingBox();
  assert.ok(b, 'the element is laid out');
  return b;
}

/** The first screen as a radiologist meets it: the default model (thresholds, calibration, input checks), a laptop screen. */
describe('the first screen at a glance (default model, 1366 x 768)', () => {
  const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'default.onnx');
  const PHOTO = sharedDataPath('natural-photos', 'chelsea.png');
  let glance: Awaited<ReturnType<typeof startServer>>;
  let view: Page;

  before(async () => {
    glance = await startServer({ modelPath: DEFAULT_MODEL, workers: 1 });
    view = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    view.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await view.goto(glance.url);
    await view.waitForSelector('.model-card');
  });

  after(async () => {
    await view?.close();
    await glance?.app.close();
  });

  async function open(file: string): Promise<void> {
    await view.setInputFiles('#file-input', file);
    await view.waitForSelector(`main[data-image="${file.split('/').pop()}"][data-state="ready"]`, { timeout: 180_000 });
  }

  it('a real NIH image: image left, findings right, both in the first viewport; positives marked by colour and icon; thresholds with rules; model panel folded', async () => {
    assert.equal(await view.locator('details.model-card').getAttribute('open'), null, 'the model panel starts folded');
    assert.equal(await view.locator('.model-card dl').isVisible(), false);
    await open(NIH_IMAGE);
    assert.equal(await view.evaluate('window.scrollY'), 0);
    await view.screenshot({ path: '/tmp/viewer.png' });
    await view.screenshot({ path: join(ARTIFACTS, '06-glance-1366x768.png') });

    // Side by side, nothing to scroll: the image's panes left of the findings, overlapping vertically, all on screen.
    const image = await box(view.locator('.viewer-panes'));
    const findings = await box(view.locator('section.findings'));
    const rows = view.locator('.findings li');
    assert.equal(await rows.count(), 14);
    const lastRow = await box(rows.last());
    assert.ok(image.x + image.width <= findings.x, `image (right edge ${image.x + image.width}) left of the findings (${findings.x})`);
    assert.ok(image.y < findings.y + findings.height && findings.y < image.y + image.height, 'image and findings side by side, not stacked');
    assert.ok(image.width >= 600 && image.height >= 380, `the image is large (${image.width} x ${image.height})`);
    assert.ok(image.y + image.height <= 768, `the image fits the first screen (bottom ${image.y + image.height})`);
    assert.ok(findings.y < 300 && lastRow.y + lastRow.height <= 768, `every finding on the first screen (last row bottom ${lastRow.y + lastRow.height})`);

    // Positives first, each call distinct by class, colour and icon; every decided row states its threshold and rule.
    const { body } = await postForm(glance.url, [{ name: 'image', value: new Uint8Array(readFileSync(NIH_IMAGE)) }, { name: 'heatmap', value: 'none' }]);
    const api = new Map((body.findings as { name: string; probability: number; threshold: number | null; thresholdRule: string | null; decision: string | null }[]).map((f) => [f.name, f]));
    const shown = await rows.evaluateAll((lis) => lis.map((li) => ({ name: li.getAttribute('data-finding')!, decision: li.getAttribute('data-decision')! })));
    const decisions = shown.map((r) => r.decision);
    assert.ok(decisions.includes('positive') && decisions.includes('negative'), `this image has positive and negative calls: ${decisions}`);
    assert.deepEqual(decisions, [...decisions].sort((a, b) => ['positive', 'negative', 'none'].indexOf(a) - ['positive', 'negative', 'none'].indexOf(b)), 'positives listed first');
    for (const r of shown) assert.equal(r.decision, api.get(r.name)!.decision ?? 'none', `${r.name}: the API's decision`);
    assert.equal(await rows.first().locator('button').getAttribute('aria-pressed'), 'true', 'the first positive is selected for its heatmap');

    const positive = view.locator('.findings li[data-decision="positive"]').first();
    const negative = view.locator('.findings li[data-decision="negative"]').first();
    const look = (row: typeof positive) =>
      row.evaluate((li) => {
        const style = (element: unknown) => li.ownerDocument.defaultView!.getComputedStyle(element as typeof li);
        const button = li.querySelector('button.finding')!;
        const icon = li.querySelector('svg.decision-icon')!;
        const buttonStyle = style(button);
        return {
          classes: button.className,
          background: buttonStyle.backgroundColor,
          edge: buttonStyle.borderLeftColor,
          iconLabel: icon.getAttribute('aria-label'),
          iconRole: icon.getAttribute('role'),
          iconColour: style(icon).color,
          iconShape: icon.innerHTML,
          call: li.querySelector('.finding-call')!.textContent,
          weight: style(li.querySelector('.finding-name')!).fontWeight,
        };
      });
    const [pos, neg] = [await look(positive), await look(negative)];
    assert.match(pos.classes, /\bpositive\b/);
    assert.match(neg.classes, /\bnegative\b/);
    assert.notEqual(pos.background, neg.background, 'row colour differs');
    assert.notEqual(pos.edge, neg.edge, 'row edge colour differs');
    assert.notEqual(pos.iconColour, neg.iconColour, 'icon colour differs');
    assert.notEqual(pos.iconShape, neg.iconShape, 'icon shape differs');
    assert.deepEqual([pos.iconRole, pos.iconLabel, neg.iconLabel], ['img', 'positive', 'negative'], 'icons are labelled for screen readers');
    assert.deepEqual([pos.call, neg.call], ['positive', 'negative']);
    assert.ok(Number(pos.weight) > Number(neg.weight), 'positive names are bold');

    for (const row of [positive, negative]) {
      const name = (await row.getAttribute('data-finding'))!;
      const f = api.get(name)!;
      const text = await row.locator('.finding-decision').innerText();
      assert.ok(text.startsWith(`≥ ${(f.threshold! * 100).toFixed(1)}% · `), `${name}: "${text}" states the threshold`);
      const expected = f.thresholdRule === 'youden' ? "Youden's J" : f.thresholdRule!.replace(':', ' ');
      assert.ok(text.includes(expected.split(' ')[0]), `${name}: "${text}" states the rule (${f.thresholdRule})`);
      assert.equal(await row.locator('.finding-value').innerText(), `${(f.probability * 100).toFixed(1)}%`);
    }
    // Findings with too few validation positives have no decision; the summary counts them apart.
    assert.match(await view.getByTestId('findings-summary').innerText(), /^\d+ positive of \d+ decided(, \d+ no decision)?$/);

    // Accepted, no flags: the banner is one quiet line above the findings; the model panel opens on request.
    const banner = await box(view.locator('.input-checks'));
    assert.equal(await view.locator('.input-checks').getAttribute('data-verdict'), 'accepted');
    assert.ok(banner.y + banner.height <= findings.y && banner.height < 60, 'a slim banner above the findings');
    await view.locator('.model-card summary').click();
    assert.equal(await view.locator('.model-card dl').isVisible(), true, 'the model panel is still reachable');
    await view.locator('.model-card summary').click();
  });

  it('a narrow screen stacks the findings under the image', async () => {
    await view.setViewportSize({ width: 700, height: 1000 });
    const image = await box(view.locator('.viewer-panes'));
    const findings = await box(view.locator('section.findings'));
    assert.ok(findings.y >= image.y + image.height, `stacked (findings top ${findings.y}, image bottom ${image.y + image.height})`);
    await view.screenshot({ path: join(ARTIFACTS, '07-glance-narrow.png'), fullPage: true });
    await view.setViewportSize({ width: 1366, height: 768 });
  });

  it('a natural photograph: the banner says it was rejected, with the reason, above the findings area, which holds none', async () => {
    await open(PHOTO);
    const checks = view.locator('.input-checks');
    assert.equal(await checks.getAttribute('data-verdict'), 'rejected');
    assert.equal(await checks.getAttribute('role'), 'alert');
    assert.match(await checks.locator('h2').innerText(), /^Rejected by the input checks: no findings for this image\./);
    // Several checks may refuse a photograph (colour, layout, features): each gives its reason.
    const reasons = await checks.locator('li[data-flag="not-chest-xray"]').allInnerTexts();
    assert.ok(reasons.length >= 1, 'at least one not-chest-xray reason');
    assert.match(reasons.join('\n'), /in colour|not laid out like a frontal chest X-ray|does not look like the frontal chest X-rays/);
    assert.equal(await view.locator('.findings li').count(), 0);
    assert.match(await view.locator('section.findings').innerText(), /input checks rejected this image/);
    const banner = await box(checks);
    const findings = await box(view.locator('section.findings'));
    assert.ok(banner.y + banner.height <= findings.y, `the banner (bottom ${banner.y + banner.height}) above the findings area (top ${findings.y})`);
    assert.ok(banner.y + banner.height <= 768, 'the banner on the first screen');
    assert.equal(await view.locator('.banner-icon').getAttribute('aria-label'), 'rejected');
    await view.screenshot({ path: join(ARTIFACTS, '08-glance-rejected.png') });
    await view.screenshot({ path: '/tmp/viewer-rejected.png' });

    await view.getByRole('button', { name: 'Show findings anyway (not to be trusted)' }).click();
    await view.waitForSelector('main[data-state="ready"] .input-checks[data-verdict="rejected-shown"]', { timeout: 180_000 });
    assert.equal(await view.locator('.findings li').count(), 14);
    assert.equal(await view.locator('section.findings').getAttribute('data-caution'), 'untrusted');
    assert.match(await view.locator('.findings-caution').innerText(), /not to be trusted/);
  });

  it('a warning (here a possibly mirrored film) is shown above findings that are still listed, marked; no-decision notes and calibration are shown when the API gives them', async () => {
    // The server's answer with a warning flag and the optional per-finding fields added, as newer servers send them.
    await view.route('**/api/v1/analyze', async (route) => {
      // Heatmap requests stream JSON lines (progress, then the result); only the prediction is rewritten.
      if (route.request().headers().accept?.includes('application/x-ndjson')) return route.continue();
      const response = await route.fetch();
      const body = await response.json();
      body.inputFlags = [{ code: 'mirrored', severity: 'warning', message: 'the film may be mirrored (heart on the right): check the side marker', score: 0.81, threshold: 0.7, rule: 'test rule' }];
      body.verdict = 'accepted';
      const hernia = body.findings.find((f: { name: string }) => f.name === 'Hernia');
      if (hernia) Object.assign(hernia, { threshold: null, thresholdRule: null, decision: null, decisionNote: 'withheld: too few validation positives', calibrated: false });
      await route.fulfill({ response, json: body });
    });
    try {
      await open(NIH_IMAGE_FOR_WARNING);
      const checks = view.locator('.input-checks');
      assert.equal(await checks.getAttribute('data-verdict'), 'accepted');
      assert.match(await checks.locator('h2').innerText(), /raised warnings/);
      assert.match(await checks.locator('li[data-flag="mirrored"]').innerText(), /^Warning: the film may be mirrored/);
      assert.equal(await view.locator('.banner-icon').getAttribute('aria-label'), 'warning');
      assert.equal(await view.locator('.findings li').count(), 14);
      assert.equal(await view.locator('section.findings').getAttribute('data-caution'), 'warning');
      const banner = await box(checks);
      const findings = await box(view.locator('section.findings'));
      assert.ok(banner.y + banner.height <= findings.y, 'the warning above the findings');
      const hernia = view.locator('.findings li[data-finding="Hernia"]');
      assert.equal(await hernia.getAttribute('data-decision'), 'none');
      assert.equal(await hernia.locator('.finding-call').innerText(), 'NO DECISION');
      assert.equal(await hernia.locator('.finding-decision').innerText(), 'withheld: too few validation positives');
      assert.match(await hernia.locator('.finding-name').innerText(), /uncalibrated/);
      assert.equal(await hernia.locator('svg.decision-icon').getAttribute('aria-label'), 'no decision');
      await view.screenshot({ path: join(ARTIFACTS, '09-glance-warning.png') });
    } finally {
      await view.unroute('**/api/v1/analyze');
    }
  });
});
