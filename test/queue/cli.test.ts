/**
 * `cxr batch` and `cxr worker` as users run them, on real NIH films and a real redis-server: help with examples,
 * an unreachable Redis named with retries, a worker with another model refusing, and a batch's results read back
 * with exactly `cxr predict --csv`'s columns and numbers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';
import { cxr, killWorkers, startWorker } from './processes.js';
import { RedisServer } from './redis.js';

const NIH = ['00000075_000.png', '00000100_000.png', '00000129_000.png', '00000211_000.png', '00000353_000.png'];
const dir = mkdtempSync(join(tmpdir(), 'cxr-queue-cli-'));
const images = join(dir, 'images');
const otherModel = join(dir, 'other.onnx');
let server: RedisServer;

before(async () => {
  mkdirSync(images);
  for (const name of NIH) copyFileSync(sharedDataPath('nih-cxr14-subset', 'images', name), join(images, name));
  writeFileSync(join(images, 'truncated.png'), readFileSync(sharedDataPath('nih-cxr14-subset', 'images', NIH[0])).subarray(0, 2000));
  // The same network with one more doc_string field (protobuf: the last one wins): a valid model, another file.
  writeFileSync(otherModel, Buffer.concat([readFileSync(DEFAULT_MODEL_PATH), Buffer.from([0x32, 0x01, 0x78])]));
  server = await RedisServer.start();
});
after(async () => {
  killWorkers();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cxr batch and cxr worker', { timeout: 120_000 }, () => {
  it('--help lists them, and each teaches with examples; --heatmaps is checked before anything is queued', () => {
    const help = cxr('--help');
    for (const command of ['batch', 'worker']) assert.match(help.stdout, new RegExp(`\\n  ${command} `));
    for (const sub of [['batch', 'submit'], ['batch', 'status'], ['batch', 'results'], ['worker']]) {
      const run = cxr(...sub, '--help');
      assert.equal(run.code, 0);
      assert.match(run.stdout, /--redis <url>[\s\S]*Examples:\n  \$ cxr /, sub.join(' '));
    }
    const unpaired = cxr('batch', 'submit', images, '--redis', server.url, '--heatmaps', 'gradcam');
    assert.equal(unpaired.code, 1);
    assert.match(unpaired.stderr, /--heatmaps and --out go together/);
    assert.match(cxr('batch', 'submit', images, '--redis', server.url, '--heatmaps', 'magic', '--out', dir).stderr, /unknown explanation method "magic"; choose one of gradcam/);
  });

  it('an unreachable Redis: retries with back-off said on stderr, then exit 1 naming the server', () => {
    const url = `redis://127.0.0.1:${server.port + 1}`;
    const run = cxr('batch', 'status', 'any', '--redis', url);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`cxr: cannot reach Redis at ${url} \\(.*ECONNREFUSED.*\\); retrying in 0\\.5 s \\(attempt 2 of 5\\)`));
    assert.match(run.stderr, new RegExp(`cxr: error: cannot reach Redis at ${url} after 5 attempts: .*ECONNREFUSED`));
  });

  it('submit, a refusing worker, the right worker, status and results: cxr predict --csv\'s rows', async () => {
    const submitted = cxr('batch', 'submit', images, '--redis', server.url, '--backoff', '50');
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    assert.match(id, /^batch-\d{8}-\d{6}-[a-z0-9]+$/);
    assert.match(submitted.stderr, /6 images for model sha256 [0-9a-f]{12}…: 6 queued, 0 already done/);

    const wrong = startWorker('--redis', server.url, '--model', otherModel, '--threads', '1', '--exit-when-idle');
    assert.deepEqual(await wrong.exited, { code: 0, signal: null });
    assert.equal(wrong.events().filter((e) => e.event === 'completed').length, 0);
    const refused = cxr('batch', 'status', id, '--redis', server.url);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /0 of 6 done, 6 failed, 0 pending/);
    assert.match(refused.stdout, /refused: the batch is for model sha256 [0-9a-f]{12}…, this worker has/);

    const again = cxr('batch', 'submit', images, '--redis', server.url, '--name', id);
    assert.match(again.stderr, /0 queued, 0 already done, 6 failed ones sent round again/);
    const right = startWorker('--redis', server.url, '--threads', '1', '--concurrency', '2', '--exit-when-idle');
    assert.deepEqual(await right.exited, { code: 0, signal: null });
    for (const e of right.events()) assert.ok(!JSON.stringify(e).includes('.png'), 'logs name jobs, never files');

    const status = cxr('batch', 'status', id, '--redis', server.url);
    assert.equal(status.code, 1, 'one image failed');
    assert.match(status.stdout, /5 of 6 done, 1 failed, 0 pending \(100\.0% finished\)\nrate [\d.]+ images\/s, took \d+ s/);
    assert.match(status.stdout, /failures \(job, reason\):\n  #5 [\w.-]+: image: /);

    // On a terminal (util-linux's script gives it one) --watch draws the progress bar, then the summary.
    const onTty = spawnSync('script', ['-qec', `${process.execPath} ${join(REPO_ROOT, 'bin', 'cxr.js')} batch status ${id} --redis ${server.url} --watch`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, CXR_NO_REEXEC: '1' },
    });
    assert.match(onTty.stdout, new RegExp(`batch ${id} \\[[█]+\\] 6/6 \\| 100%`));
    assert.match(onTty.stdout, /5 of 6 done, 1 failed, 0 pending/);

    const csv = join(dir, 'batch.csv');
    const results = cxr('batch', 'results', id, '--redis', server.url, '--csv', csv);
    assert.equal(results.code, 1, 'a failure is reported');
    assert.match(results.stderr, /5 results, 1 failures, 0 pending/);
    const predicted = join(dir, 'predict.csv');
    cxr('predict', images, '--csv', predicted, '--threads', '1');
    const ours = readFileSync(csv, 'utf8').split('\n');
    const theirs = readFileSync(predicted, 'utf8').split('\n');
    assert.equal(ours.length, theirs.length);
    for (const [i, line] of ours.entries()) {
      if (line.includes('truncated.png')) assert.match(line, /^[^,]+truncated\.png,{17}"?image: /);
      else assert.equal(line, theirs[i]);
    }
    assert.match(cxr('batch', 'results', id, '--redis', server.url).stderr, /say where to write the results: --csv FILE and\/or --jsonl FILE/);
  });
});
