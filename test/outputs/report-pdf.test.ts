/**
 * The PDF report on a real NIH film with the default model, read back with Debian's poppler-utils: `cxr explain
 * --report` writes a PDF whose text (findings, probabilities, thresholds, rules, decisions, input checks, model
 * hash, disclaimer) pdftotext extracts, and whose film and heatmaps pdfimages lists as embedded images.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HeatmapsNotReadyError, reportPdf } from '../../src/outputs/report-pdf.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

const NIH_IMAGE = sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png');
const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'default.onnx');

function tool(command: string, args: string[]): string {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(run.status, 0, `${command} ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

describe('the PDF report', () => {
  it('cxr explain --report: pdftotext reads the findings table, input checks, model hash and disclaimer; pdfimages lists the film and each heatmap', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cxr-report-'));
    const report = join(dir, 'report.pdf');
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), 'explain', NIH_IMAGE, '--finding', 'Effusion', 'Cardiomegaly', '--threads', '1', '-o', join(dir, 'out'), '--report', report, '--json'], {
      encoding: 'utf8',
      env: { ...process.env, CXR_NO_REEXEC: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    const explained = new Set((JSON.parse(run.stdout) as { findings: { finding: string }[] }).findings.map((f) => f.finding));
    assert.deepEqual([...explained], ['Effusion', 'Cardiomegaly']);
    const predicted = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), 'predict', NIH_IMAGE, '--threads', '1', '--json'], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
    assert.equal(predicted.status, 0, predicted.stderr);
    const findings = (JSON.parse(predicted.stdout) as { findings: { name: string; probability: number; threshold: number | null; thresholdRule: string | null; decision: string | null }[] }).findings;
    assert.equal(findings.length, 14);
    assert.equal(readFileSync(report).subarray(0, 5).toString(), '%PDF-');

    const text = tool('pdftotext', ['-layout', report, '-']).replace(/\s+/g, ' ');
    assert.match(text, /Research use only; not for clinical decisions\. Heatmaps show what drove the model/);
    assert.match(text, /Finding Probability Threshold Rule Decision/);
    assert.match(text, /Input checks: accepted/);
    assert.ok(text.includes(createHash('sha256').update(readFileSync(DEFAULT_MODEL)).digest('hex')), 'the model file\'s sha256');
    // Every finding of the model, with the probability, threshold, rule and decision `cxr predict` gives; a star
    // on the explained ones.
    for (const f of findings) {
      const threshold = f.threshold === null ? '- -' : `${(f.threshold * 100).toFixed(1)}% ${f.thresholdRule}`;
      const row = `${f.name.replace(/_/g, ' ')}${explained.has(f.name) ? ' *' : ''} ${(f.probability * 100).toFixed(1)}% ${threshold} ${f.decision ?? 'no decision'}`;
      assert.ok(text.includes(row), `the row "${row}" in the extracted text`);
    }
    assert.ok(findings.some((f) => f.decision === 'positive') && findings.some((f) => f.decision === null), 'this film has positive calls and findings without a decision');
    assert.match(text, /Effusion \(gradcam\).*Cardiomegaly \(gradcam\)/);
    assert.match(text, /weakest 30% strongest/);

    const images = tool('pdfimages', ['-list', report]).trim().split('\n').slice(2).map((line) => line.trim().split(/\s+/));
    assert.equal(images.length, 3, 'the film and two heatmaps');
    for (const [, , type, width, height, colour] of images) {
      assert.equal(type, 'image');
      assert.deepEqual([width, height], ['512', '512'], 'at the film\'s own size');
      assert.equal(colour, 'rgb');
    }
  });

  it('refuses a report with findings but no heatmap (callers wait for the heatmaps)', async () => {
    const finding = { name: 'Effusion', probability: 0.2, logit: -1.4, calibrated: false, threshold: null, thresholdRule: null, thresholdInterval: null, decision: null, decisionNote: 'no thresholds' };
    await assert.rejects(
      reportPdf({
        notice: 'Research use only.',
        createdAt: new Date(),
        analysedBy: 'here',
        model: { file: 'm.onnx', architecture: 'a', weights: 'w', sha256: '0', software: '0', thresholdRule: null },
        image: { name: 'x.png', width: 1, height: 1, format: 'png', notes: [] },
        verdict: 'accepted',
        inputFlags: [],
        findings: [finding],
        filmPng: new Uint8Array(),
        heatmaps: [],
        colormap: 'turbo',
        cutoff: 0.3,
      }),
      HeatmapsNotReadyError,
    );
  });
});
