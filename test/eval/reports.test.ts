/** The CSV and HTML writers on a real-labels evaluation: complete, parseable, self-contained and escaped. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCsv } from '../../src/data/csv.js';
import { evaluationToCsv } from '../../src/eval/csv.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { evaluationToHtml } from '../../src/eval/html.js';
import { nihSubsetInput } from './real-data.js';

describe('reports', async () => {
  const input = await nihSubsetInput();
  const result = evaluate(input, { bootstrap: { resamples: 200 } });

  it('CSV: one row per finding and a mean row, numbers at full precision', () => {
    const csv = parseCsv(evaluationToCsv(result), 'metrics.csv');
    assert.equal(csv.rows.length, 15);
    const col = (name: string) => csv.header.indexOf(name);
    result.classes.forEach((k, i) => {
      assert.equal(csv.rows[i][col('label')], k.label);
      assert.equal(Number(csv.rows[i][col('auroc')]), k.auroc);
      assert.equal(Number(csv.rows[i][col('delong_lower')]), k.delong!.lower);
      assert.equal(Number(csv.rows[i][col('bootstrap_upper')]), k.bootstrap!.upper);
      assert.equal(Number(csv.rows[i][col('published_chexnet')]), result.comparison!.rows[i].published.chexnet);
    });
    const mean = csv.rows[14];
    assert.equal(mean[col('label')], 'mean');
    assert.equal(Number(mean[col('auroc')]), result.summary.meanAuroc);
    assert.equal(mean[col('published_wang2017-cvpr')], '');
  });

  it('HTML: self-contained (nothing fetched, no scripts), every finding plotted, sources and caveats shown', () => {
    const html = evaluationToHtml(result, { inputs: ['predictions: test.csv'], generatedAt: '2024-01-01T00:00:00Z' });
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    for (const pattern of [/<script/i, /\ssrc=/i, /<link/i, /url\(/i, /@import/i, /<iframe/i]) assert.doesNotMatch(html, pattern);
    assert.equal((html.match(/<svg class="plot"/g) ?? []).length, 14 * 3);
    for (const k of result.classes) assert.match(html, new RegExp(`<h3>${k.label}</h3>`));
    assert.match(html, /CheXNet used a random patient-wise split/);
    assert.match(html, /UNVERIFIED/);
    assert.match(html, /Mean AUROC <b>0\.\d{3}<\/b> \(95% bootstrap CI/);
  });

  it('HTML escapes every text that comes from the data', () => {
    const c = 2;
    const hostile = evaluate(
      { labels: ['<img onerror=x>', 'A&B "quoted"'], probabilities: [0.1, 0.9, 0.8, 0.2, 0.3, 0.6, 0.7, 0.4], targets: [0, 1, 1, 0, 0, 1, 1, 0], ids: ['1', '2', '3', '4'] },
      { bootstrap: false, thresholds: { kind: 'fixed', values: {}, source: '<b>file</b>.json' } },
    );
    const html = evaluationToHtml(hostile, { title: '</title><script>', inputs: ['<i>x</i>'] });
    assert.doesNotMatch(html, /<img onerror|<script>|<b>file<\/b>|<i>x<\/i>/);
    assert.match(html, /&lt;img onerror=x&gt;/);
    assert.match(html, /A&amp;B &quot;quoted&quot;/);
    assert.match(html, /&lt;b&gt;file&lt;\/b&gt;\.json/);
    assert.equal(hostile.labels.length, c);
  });
});
