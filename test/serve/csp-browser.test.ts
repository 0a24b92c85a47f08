/**
 * The server's Content-Security-Policy against the real viewer in Debian's Chromium: analysing a real NIH image in
 * server mode (with its heatmap), then private mode (onnxruntime-web's WebAssembly in a worker) on the PNG and on a
 * real DICOM (the codec WebAssembly in the page) all work, and no CSP violation is reported, neither as a
 * securitypolicyviolation event nor in the console. An inline script injected at the end is refused and reported,
 * which shows the watch would have seen a violation.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { DICOM_IMAGE, makeTestModel, NIH_IMAGE, startServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let page: Page;
const violations: string[] = [];
const consoleLines: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Debian's Chromium is not installed (${CHROMIUM}): apt-get install -y chromium`);
  if (!existsSync(join(REPO_ROOT, 'dist', 'web', 'index.html'))) throw new Error('the viewer is not built: run npm run build:web');
  server = await startServer({ modelPath: makeTestModel(), workers: 1 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // Strings: they run in the page, whose DOM types this Node project does not compile against.
  await page.addInitScript(`
    globalThis.__csp = [];
    globalThis.addEventListener('securitypolicyviolation', (e) => globalThis.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  `);
  const watch = (text: string) => {
    consoleLines.push(text);
    if (/Content.Security.Policy|Refused to/i.test(text)) violations.push(text);
  };
  page.on('console', (message) => watch(message.text()));
  page.on('pageerror', (error) => watch(`page error: ${error.message}`));
  page.on('worker', (worker) => worker.on('console', (message) => watch(`worker: ${message.text()}`)));
});

after(async () => {
  await browser?.close();
  await server?.app.close();
});

async function pageViolations(): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);
}

async function choose(file: string, mode: 'server' | 'private'): Promise<void> {
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector(`main[data-image="${file.split('/').pop()}"][data-analysed-mode="${mode}"][data-state="ready"]`, { timeout: 180_000 });
}

describe('the viewer under the server CSP (Chromium)', () => {
  it('sends the policy with the page', async () => {
    const response = await page.goto(server.url);
    assert.match((await response!.allHeaders())['content-security-policy'] ?? '', /script-src 'self' 'wasm-unsafe-eval'/);
    await page.waitForSelector('.model-card');
  });

  it('server mode: a real NIH image with its heatmap, no violation', async () => {
    await choose(NIH_IMAGE, 'server');
    await page.waitForSelector('main[data-heatmap]', { timeout: 180_000 });
    assert.equal(await page.locator('.findings li').count(), 14);
    assert.deepEqual(await pageViolations(), []);
    assert.deepEqual(violations, [], consoleLines.join('\n'));
  });

  it('private mode (onnxruntime-web WebAssembly in a worker) on the PNG and a real DICOM (codec WebAssembly), no violation', async () => {
    await page.locator('input[value="private"]').check();
    await page.waitForSelector('main[data-analysed-mode="private"][data-state="ready"]', { timeout: 180_000 });
    assert.match(await page.locator('#mode-status').innerText(), /onnxruntime-web/);
    await choose(DICOM_IMAGE, 'private');
    assert.equal(await page.locator('.findings li').count(), 14);
    assert.deepEqual(await pageViolations(), []);
    assert.deepEqual(violations, [], consoleLines.join('\n'));
  });

  it('an injected inline script is refused and reported (the watch works)', async () => {
    await page.evaluate(`(() => {
      const script = document.createElement('script');
      script.textContent = 'globalThis.__inline = true';
      document.head.append(script);
    })()`);
    await page.waitForFunction(() => (globalThis as unknown as { __csp: string[] }).__csp.length > 0, undefined, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __inline?: boolean }).__inline), undefined, 'the inline script did not run');
    assert.match((await pageViolations())[0], /script-src/);
    for (let i = 0; i < 50 && violations.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(violations.some((v) => /Content Security Policy/.test(v)), `the console reported it: ${consoleLines.join('\n')}`);
  });
});
