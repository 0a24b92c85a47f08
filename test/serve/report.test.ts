/**
 * POST /api/v1/report on a real server with the default model and a real NIH film: a PDF whose text pdftotext
 * extracts (findings table, input checks, model hash, disclaimer) and whose film and heatmaps pdfimages lists,
 * made only with its heatmaps (methods=none is refused).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { NIH_IMAGE, startServer } from './helpers.js';

const IMAGE = new Uint8Array(readFileSync(NIH_IMAGE));
let server: Awaited<ReturnType<typeof startServer>>;

before(async () => {
  server = await startServer({ modelPath: join(REPO_ROOT, 'models', 'default.onnx'), workers: 1 });
});
after(() => server?.app.close());

async function report(fields: Record<string, string>): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const form = new FormData();
  form.append('image', new Blob([IMAGE]), 'film.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(`${server.url}/api/v1/report`, { method: 'POST', body: form });
  return { status: response.status, type: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
}

/** pdftotext's text (spaces collapsed) and pdfimages' rows of a PDF. */
function read(bytes: Buffer): { text: string; images: string[][] } {
  const path = join(mkdtempSync(join(tmpdir(), 'cxr-report-')), 'report.pdf');
  writeFileSync(path, bytes);
  const text = spawnSync('pdftotext', ['-layout', path, '-'], { encoding: 'utf8' });
  const images = spawnSync('pdfimages', ['-list', path], { encoding: 'utf8' });
  assert.equal(text.status, 0, text.stderr);
  assert.equal(images.status, 0, images.stderr);
  return { text: text.stdout.replace(/\s+/g, ' '), images: images.stdout.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/)) };
}

describe('POST /api/v1/report', () => {
  it('answers a PDF with the findings table and the heatmaps of the positive calls (none named)', async () => {
    const { status, type, bytes } = await report({});
    assert.equal(status, 200, bytes.toString());
    assert.equal(type, 'application/pdf');
    const { text, images } = read(bytes);
    assert.match(text, /Finding Probability Threshold Rule Decision/);
    assert.match(text, /Input checks: accepted/);
    assert.ok(text.includes(server.card.sha256));
    assert.match(text, /Research use only; not for clinical decisions\. Heatmaps show what drove the model/);
    // The positive calls the analysis of the same film makes: each marked in the table, each with its heatmap.
    const form = new FormData();
    form.append('image', new Blob([IMAGE]), 'film.png');
    form.append('heatmap', 'none');
    const analysis = (await (await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', body: form })).json()) as { findings: { name: string; decision: string | null }[] };
    const positives = analysis.findings.filter((f) => f.decision === 'positive').map((f) => f.name.replace(/_/g, ' '));
    assert.ok(positives.length > 0, 'the default model calls something positive on this film');
    for (const name of positives) {
      assert.match(text, new RegExp(`${name} \\* [\\d.]+% [\\d.]+% specificity:0\\.9 positive`));
      assert.ok(text.includes(`${name} (gradcam)`), name);
    }
    assert.equal(images.length, 1 + positives.length, "the film and each positive call's heatmap");
    for (const row of images) assert.deepEqual(row.slice(3, 5), ['512', '512']);
  });

  it('draws the findings named with the method named; refuses methods=none and a file that is no image', async () => {
    const named = await report({ findings: 'Cardiomegaly', methods: 'eigencam' });
    assert.equal(named.status, 200);
    const { text, images } = read(named.bytes);
    assert.match(text, /Cardiomegaly \(eigencam\)/);
    assert.equal(images.length, 2);
    const none = await report({ methods: 'none' });
    assert.equal(none.status, 400);
    assert.match(JSON.parse(none.bytes.toString()).message, /needs its heatmaps/);
    const form = new FormData();
    form.append('image', new Blob([new TextEncoder().encode('%PDF-1.7 not a film')]), 'notes.pdf');
    const notImage = await fetch(`${server.url}/api/v1/report`, { method: 'POST', body: form });
    assert.equal(notImage.status, 415);
    assert.match(((await notImage.json()) as { message: string }).message, /not a PNG, JPEG or DICOM image \(first bytes 25 50 44 46 2d 31 2e 37\)/);
  });
});
