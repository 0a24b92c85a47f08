/** `cxr serve` as users start it (bin/cxr.js in a child process): it listens, answers, and stops on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { makeTestModel } from './helpers.js';

const CXR = join(REPO_ROOT, 'bin', 'cxr.js');

describe('cxr serve', () => {
  it('without --model and without a default model: a clear error', { skip: existsSync(DEFAULT_MODEL_PATH) && 'this installation has a default model' }, () => {
    const run = spawnSync(process.execPath, [CXR, 'serve', '--port', '0'], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /cxr: error: no model given, and this installation has no default model \(models\/default\.onnx\).*--model/);
  });

  it('rejects a bad option value naming it', () => {
    const run = spawnSync(process.execPath, [CXR, 'serve', '--port', '70000'], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /port must be 0\.\.65535, got "70000"/);
  });

  it('--model: prints the address and the model, serves the API, logs JSON, stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CXR, 'serve', '--model', makeTestModel(), '--port', '0', '--workers', '1'], { env: { ...process.env, CXR_NO_REEXEC: '1' } });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const address = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const match = stderr.match(/cxr-lens viewer: (http:\/\/127\.0\.0\.1:\d+)\//);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`cxr serve exited with ${code}: ${stderr}`)));
    });
    try {
      assert.match(stderr, /mobilenet_v2; weights: imported from mobilenetv2-12-int8\.onnx.*new classifier head/);
      assert.match(stderr, /Research use only; not for clinical decisions/);
      const card = (await (await fetch(`${address}/api/v1/model`)).json()) as { architecture: string };
      assert.equal(card.architecture, 'mobilenet_v2');
      assert.equal((await fetch(`${address}/healthz`)).status, 200);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; reqId?: string });
    assert.ok(lines.some((l) => l.msg === 'request completed' && typeof l.reqId === 'string'), 'JSON request logs on stdout');
  });
});
