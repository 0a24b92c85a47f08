/**
 * The viewer's PACS panel in a real browser (Debian's Chromium via playwright-core) against `cxr serve --pacs` and a
 * real Orthanc fed by storescu: search by patient ID, open an instance that `cxr pacs`'s processor has analysed
 * (the findings view as for an upload, and "stored result from <date>" with the same probabilities and its
 * heatmaps), and one it has not. A server without --pacs shows no panel.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { loadModel } from '../../src/api.js';
import { Analyser } from '../../src/pacs/analyse.js';
import { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { PacsProcessor } from '../../src/pacs/processor.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { DICOM_DIR, type RunningOrthanc, startOrthanc, storescu } from '../pacs/orthanc.js';
import { startServer } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'dist', 'test-artifacts', 'web');
const WEB_BUILD = join(REPO_ROOT, 'dist', 'web', 'index.html');
/** A DX film with positive findings (so stored heatmaps), analysed by cxr pacs before the test; a CR film, not analysed. */
const ANALYSED = join(DICOM_DIR, 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm');
const NOT_ANALYSED = join(DICOM_DIR, 'cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm');

function newest(folder: string): number {
  return Math.max(...readdirSync(folder, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(folder, e.name)) : statSync(join(folder, e.name)).mtimeMs)));
}

describe('the viewer opens studies from the PACS', () => {
  let orthanc: RunningOrthanc;
  let server: Awaited<ReturnType<typeof startServer>>;
  let browser: Browser;
  let page: Page;

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Debian's Chromium is not installed (${CHROMIUM} is missing): apt-get install -y chromium`);
    if (!existsSync(WEB_BUILD) || newest(join(REPO_ROOT, 'web', 'src')) > statSync(WEB_BUILD).mtimeMs) throw new Error('the viewer build is missing or older than web/src: run npm run build:web');
    mkdirSync(ARTIFACTS, { recursive: true });
    orthanc = await startOrthanc();
    await storescu(orthanc, [ANALYSED]);
    const analyser = await Analyser.create(loadModel(), { heatmaps: 'gradcam', heatmapSide: 512 });
    try {
      await new PacsProcessor(new DicomWebClient(orthanc.dicomweb), analyser).processPending();
    } finally {
      await analyser.close();
    }
    await storescu(orthanc, [NOT_ANALYSED]);
    server = await startServer({ workers: 1, pacsDicomweb: orthanc.dicomweb });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  });
  after(async () => {
    await browser?.close();
    await server?.app.close();
    await orthanc?.stop();
  });

  const findingsOnScreen = async () =>
    new Map(await page.locator('.side .findings li').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-finding')!, Number(li.getAttribute('data-probability'))] as const)));

  /** Fills the search form (empty fields cleared) and waits for the answer's rows. */
  async function search(fields: { patientId?: string; from?: string }) {
    await page.fill('.pacs-search input[name=patientId]', fields.patientId ?? '');
    await page.fill('.pacs-search input[name=from]', fields.from ?? '');
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/v1/pacs/search'));
    await page.click('.pacs-search button[type=submit]');
    assert.equal((await answered).status(), 200);
    await page.locator('.pacs-results').waitFor();
  }

  it('searches by patient ID or study date and lists the studies with their instances, marking the analysed one', async () => {
    await page.goto(server.url);
    await page.locator('.pacs-panel').waitFor();
    await search({ patientId: 'Covid0000' });
    assert.equal(await page.locator('.pacs-instance').count(), 1);
    assert.equal(await page.locator('.pacs-instance[data-stored=true]').count(), 1);
    assert.match(await page.locator('.pacs-results tbody tr').innerText(), /DX[\s\S]*Covid0000/, 'modality and patient ID shown on screen');
    await search({ from: '2004-08-26' });
    assert.equal(await page.locator('.pacs-instance[data-stored=false]').count(), 1);
    assert.match(await page.locator('.pacs-results tbody tr').innerText(), /2004-08-26[\s\S]*CR[\s\S]*9RG1/);
    await search({ patientId: 'nobody' });
    assert.match(await page.locator('.pacs-results').innerText(), /No study matches/);
  });

  it('opens the analysed instance: the findings view as for an upload, and its stored result with the same probabilities and heatmaps', async () => {
    await search({ patientId: 'Covid0000' });
    await page.click('.pacs-instance[data-stored=true]');
    // Opened like a dropped file, named by what the list shows (modality; this file has no study date nor instance number).
    await page.waitForSelector('main[data-image="PACS DX"][data-state="ready"]', { timeout: 30_000 });
    await page.locator('.stored-result').waitFor();
    assert.match(await page.locator('.stored-result h3').innerText(), /^Stored result from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    const stored = new Map(await page.locator('.stored-result li[data-finding]').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-finding')!, Number(li.getAttribute('data-probability'))] as const)));
    const live = await findingsOnScreen();
    assert.equal(stored.size, 14);
    assert.deepEqual([...live.keys()].sort(), [...stored.keys()].sort());
    for (const [name, p] of stored) assert.ok(Math.abs(live.get(name)! - p) < 1e-6, `${name}: on screen ${live.get(name)}, stored ${p}`);
    const positives = await page.locator('.stored-result li.positive').count();
    assert.ok(positives > 0, 'this film has positive findings');
    await page.locator('.stored-heatmaps img').nth(positives - 1).waitFor();
    assert.equal(await page.locator('.stored-heatmaps img').count(), positives);
    // A string: it runs in the page, whose DOM types this Node project does not compile against.
    const drawn = (await page.evaluate(`Promise.all([...document.querySelectorAll('.stored-heatmaps img')].map((img) => img.decode().then(() => img.naturalWidth)))`)) as number[];
    assert.ok(drawn.every((w) => w > 0 && w <= 512), `heatmaps drawn at ${drawn.join(', ')} px`);
    await page.screenshot({ path: join(ARTIFACTS, 'pacs-stored.png') });
  });

  it('opens the other instance: findings computed now, and no stored result', async () => {
    await search({ from: '2004-08-26' });
    await page.click('.pacs-instance[data-stored=false]');
    await page.locator('.stored-none').waitFor();
    await page.waitForSelector('main[data-image="PACS CR 2004-08-26 #3"][data-state="ready"]', { timeout: 30_000 });
    assert.equal((await findingsOnScreen()).size, 14);
  });

  it('a PACS that went down: the panel says so, naming the PACS, in seconds', async () => {
    await orthanc.stop(true);
    const started = Date.now();
    await page.fill('.pacs-search input[name=patientId]', 'Covid0000');
    await page.click('.pacs-search button[type=submit]');
    await page.locator('.pacs-panel [role=alert]').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('.pacs-panel [role=alert]').innerText(), /the PACS at http:\/\/127\.0\.0\.1:\d+ could not be reached \(ECONNREFUSED\)/);
    assert.ok(Date.now() - started < 5000);
  });

  it('a server without --pacs shows no PACS panel', async () => {
    const plain = await startServer({ workers: 1 });
    try {
      const other = await browser.newPage();
      await other.goto(plain.url);
      await other.locator('[data-testid=model-card]').waitFor();
      await other.waitForLoadState('networkidle');
      assert.equal(await other.locator('.pacs-panel').count(), 0);
    } finally {
      await plain.app.close();
    }
  });
});
