/**
 * Slow explanations on a real server with the default model and a real NIH film: a client that accepts
 * application/x-ndjson gets progress lines in order (one per ONNX Runtime run) ending with the result; a client that
 * goes away mid-SmoothGrad frees the (only) worker at its next run, long before the analysis would have ended.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { NIH_IMAGE, postForm, startServer } from './helpers.js';

const DEFAULT_MODEL = join(REPO_ROOT, 'models', 'default.onnx');
const IMAGE = new Uint8Array(readFileSync(NIH_IMAGE));

let server: Awaited<ReturnType<typeof startServer>>;

before(async () => {
  server = await startServer({ modelPath: DEFAULT_MODEL, workers: 1 });
});
after(() => server?.app.close());

interface Line {
  type: string;
  at: number;
  [key: string]: any;
}

/** POSTs an analysis asking for progress; `onLine` sees each JSON line as it arrives (with its arrival time). */
async function streamed(fields: Record<string, string>, signal?: AbortSignal, onLine?: (line: Line) => void): Promise<{ status: number; type: string | null; lines: Line[] }> {
  const form = new FormData();
  form.append('image', new Blob([IMAGE]), 'film.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', body: form, headers: { accept: 'application/x-ndjson' }, signal });
  const lines: Line[] = [];
  const decoder = new TextDecoder();
  let pending = '';
  try {
    for await (const chunk of response.body!) {
      pending += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = { ...JSON.parse(pending.slice(0, newline)), at: performance.now() } as Line;
        pending = pending.slice(newline + 1);
        lines.push(line);
        onLine?.(line);
      }
    }
  } catch (error) {
    if (!signal?.aborted) throw error;
  }
  return { status: response.status, type: response.headers.get('content-type'), lines };
}

const health = async () => (await (await fetch(`${server.url}/healthz`)).json()) as { pool: { busy: number; cancelled: number; completed: number; recycled: number } };

describe('slow explanations: progress and abort', () => {
  let runMs = 0;

  it('SmoothGrad for one finding streams progress lines in order, then the result with that finding\'s map only', async () => {
    const started = performance.now();
    const { status, type, lines } = await streamed({ methods: 'smoothgrad', findings: 'Effusion', heatmap: 'raw' });
    assert.equal(status, 200);
    assert.match(type ?? '', /^application\/x-ndjson/);
    assert.equal(lines[0].type, 'accepted');
    const progress = lines.filter((l) => l.type === 'progress');
    assert.ok(progress.length >= 4, `a progress line per run (prediction and SmoothGrad's batches): ${progress.length}`);
    progress.forEach((p, i) => assert.equal(p.runs, i + 1, 'runs counted in order'));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].elapsedMs >= progress[i - 1].elapsedMs);
    const last = lines.at(-1)!;
    assert.equal(last.type, 'result');
    assert.deepEqual(last.body.explanations[0].maps.map((m: { finding: string }) => m.finding), ['Effusion']);
    assert.equal(last.body.findings.length, 14, 'probabilities for every finding');
    assert.equal(lines.filter((l) => l.type === 'result').length, 1);
    // The longest wait between two runs: how late a cancellation can be noticed.
    runMs = Math.max(...progress.map((p, i) => p.at - (i ? progress[i - 1].at : started)));
    console.log(`# smoothgrad, 1 finding: ${progress.length} runs in ${Math.round(performance.now() - started)} ms, longest run ${Math.round(runMs)} ms`);
  });

  it('a client that leaves mid-SmoothGrad (14 findings) frees the worker at its next run: the next request is served within about a run', async () => {
    const before = await health();
    const controller = new AbortController();
    let abortedAt = 0;
    const slow = streamed({ methods: 'smoothgrad', heatmap: 'raw' }, controller.signal, (line) => {
      // Leave once SmoothGrad itself is running (the prediction was run 1).
      if (line.type === 'progress' && line.runs === 2 && !abortedAt) {
        abortedAt = performance.now();
        controller.abort();
      }
    });
    await slow;
    assert.ok(abortedAt > 0, 'the client saw SmoothGrad running before it left');
    const next = await postForm(server.url, [{ name: 'image', value: IMAGE, filename: 'film.png' }, { name: 'heatmap', value: 'none' }]);
    const servedMs = performance.now() - abortedAt;
    assert.equal(next.status, 200);
    const after = await health();
    assert.equal(after.pool.cancelled, before.pool.cancelled + 1, 'the analysis was cancelled');
    assert.equal(after.pool.recycled, before.pool.recycled, 'the worker stopped it itself, at a run boundary (no termination)');
    assert.equal(after.pool.busy, 0);
    // 14 findings x 25 noisy copies: 44 runs of 8; the client left after the first, so ~43 runs were saved.
    console.log(`# left mid-SmoothGrad (44 runs of ~${Math.round(runMs)} ms): next request answered ${Math.round(servedMs)} ms after leaving`);
    assert.ok(servedMs < Math.max(2000, 2 * runMs), `the worker was free ${Math.round(servedMs)} ms after the client left (one run takes up to ${Math.round(runMs)} ms)`);
  });

  it('an error after the stream started is the last line, with the usual error body', async () => {
    const { status, lines } = await streamed({ methods: 'gradcam', findings: 'Effusion' }, undefined);
    assert.equal(status, 200);
    assert.equal(lines.at(-1)!.type, 'result', 'a good request ends with its result');
    const form = new FormData();
    form.append('image', new Blob([IMAGE.subarray(0, 200)]), 'cut.png');
    const response = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', body: form, headers: { accept: 'application/x-ndjson' } });
    const text = await response.text();
    const last = JSON.parse(text.trim().split('\n').at(-1)!);
    assert.equal(last.type, 'error');
    assert.equal(last.body.statusCode, 422);
    assert.equal(last.body.code, 'CXR_UNREADABLE_IMAGE');
    assert.match(last.body.message, /^cut\.png: /);
  });
});
