/**
 * Grad-CAM in private mode: the viewer's own private-mode worker (dist/web, onnxruntime-web WebAssembly) in
 * Debian's Chromium runs the model's CAM graph, which the server builds (explain/graphs.ts) and serves as plain
 * ONNX, and gives the same map as the server's Explainer (ONNX Runtime in Node) for a real NIH film with the
 * default model: max |browser - server| / max |server| below 1e-4. The same decoded pixels go to both, so the
 * comparison is of the explanation alone.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { decodeImageFile } from '../../src/imaging/index.js';
import type { ModelCard } from '../../src/serve/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';
import { NIH_IMAGE, postForm, startServer } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ASSETS = join(REPO_ROOT, 'dist', 'web', 'assets');
const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'default.onnx');
const FINDINGS = ['Effusion', 'Cardiomegaly'];

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let page: Page;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian's Chromium is not installed (${CHROMIUM} is missing): apt-get install -y chromium`);
  if (!existsSync(ASSETS)) throw new Error('the viewer is not built: run npm run build:web');
  server = await startServer({ modelPath: DEFAULT_MODEL, workers: 1 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  page = await browser.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(server.url);
});

after(async () => {
  await browser?.close();
  await server?.app.close();
});

/** Runs the built private-mode worker in the page: loads the model as the viewer does, then explains. */
async function explainInBrowser(method: string, findings: string[]): Promise<{ maps?: { finding: string; data: number[]; width: number; height: number }[]; error?: string }> {
  const worker = readdirSync(ASSETS).find((name) => /^worker-.*\.js$/.test(name));
  assert.ok(worker, 'the private-mode worker is in the build');
  const card = server.card as ModelCard;
  const model = { url: card.modelUrl, sha256: card.sha256, labels: card.labels, preprocessing: card.preprocessing, io: card.io, thresholds: card.thresholds ?? undefined, calibration: card.calibration ?? undefined, safety: card.inputChecks ?? undefined };
  const image = await decodeImageFile(NIH_IMAGE);
  const plain = { ...image, pixels: Array.from(image.pixels), wide: image.pixels instanceof Uint16Array };
  // A string: it runs in the page, whose DOM types this Node project does not compile against.
  return page.evaluate(`(async ({ url, model, image, method, findings }) => {
    const worker = new Worker(url, { type: 'module' });
    const next = () => new Promise((resolve) => {
      worker.onmessage = (event) => event.data.type === 'progress' ? undefined : resolve(event.data);
    });
    worker.postMessage({ type: 'load', model });
    const loaded = await next();
    if (loaded.type !== 'loaded') return { error: loaded.message };
    const pixels = image.wide ? new Uint16Array(image.pixels) : new Uint8Array(image.pixels);
    worker.postMessage({ type: 'explain', id: 1, image: { ...image, pixels }, method, findings });
    const reply = await next();
    worker.terminate();
    if (reply.type !== 'explanation') return { error: reply.message };
    return { maps: reply.maps.map((m) => ({ finding: m.finding, width: m.map.width, height: m.map.height, data: Array.from(m.map.data) })) };
  })(${JSON.stringify({ url: `/assets/${worker}`, model, image: plain, method, findings })})`);
}

describe('private-mode Grad-CAM in Chromium', () => {
  it('equals the server\'s Grad-CAM to 1e-4 (relative to the map\'s maximum) on a real NIH film with the default model', async () => {
    const local = await explainInBrowser('gradcam', FINDINGS);
    assert.equal(local.error, undefined, local.error);
    const { status, body } = await postForm(server.url, [
      { name: 'image', value: new Uint8Array(readFileSync(NIH_IMAGE)), filename: 'film.png' },
      { name: 'methods', value: 'gradcam' },
      { name: 'heatmap', value: 'raw' },
      { name: 'findings', value: FINDINGS.join(',') },
    ]);
    assert.equal(status, 200, JSON.stringify(body));
    for (const finding of FINDINGS) {
      const raw = (body.explanations[0].maps as { finding: string; raw: { width: number; height: number; data: string } }[]).find((m) => m.finding === finding)!.raw;
      const bytes = Buffer.from(raw.data, 'base64');
      const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      const browserMap = local.maps!.find((m) => m.finding === finding)!;
      assert.deepEqual([browserMap.width, browserMap.height], [raw.width, raw.height]);
      const max = Math.max(...expected);
      assert.ok(max > 0 && Math.min(...expected) < max, `${finding}: the server's map is not flat (max ${max})`);
      const error = relativeError(browserMap.data, expected);
      console.log(`${finding}: ${raw.width}x${raw.height} map, browser vs server max abs diff / max = ${error.toExponential(2)}`);
      assert.ok(error < 1e-4, `${finding}: relative difference ${error}`);
    }
  });

  it('input-gradient methods still say they run on the server only', async () => {
    const local = await explainInBrowser('smoothgrad', ['Effusion']);
    assert.match(local.error ?? '', /server only/);
  });
});
