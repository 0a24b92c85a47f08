/** `cxr serve` as users start it (bin/cxr.js in a child process): it listens, answers, and stops on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { makeTestModel } from './helpers.js';

const CXR = join(REPO_ROOT, 'bin', 'cxr.js');

/** Starts `cxr serve` with the given arguments; resolves once it prints its address. */
async function startServe(args: string[]) {
  const child = spawn(process.execPath, [CXR, 'serve', ...args], { env: { ...process.env, CXR_NO_REEXEC: '1' } });
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
  const stop = () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    return exited;
  };
  return { address, stop, output: () => ({ stdout, stderr }) };
}

describe('cxr serve', () => {
  it('without --model (npm start): serves the embedded default model with its thresholds and checks', async () => {
    const { address, stop } = await startServe(['--port', '0', '--workers', '1']);
    try {
      const card = (await (await fetch(`${address}/api/v1/model`)).json()) as {
        architecture: string;
        labels: string[];
        thresholds: { rule: string; values: Record<string, number>; withheld?: Record<string, string> };
        calibration: unknown;
        inputChecks: unknown;
      };
      assert.equal(card.architecture, 'mobilenet_v2');
      assert.equal(card.labels.length, 14);
      // The rule the model file stores; every finding has a threshold or the reason it has none.
      assert.equal(card.thresholds.rule, readModelInfo(readModelFile(DEFAULT_MODEL_PATH)).thresholds?.rule);
      assert.deepEqual([...Object.keys(card.thresholds.values), ...Object.keys(card.thresholds.withheld ?? {})].sort(), [...card.labels].sort());
      assert.ok(card.calibration && card.inputChecks, 'calibrated, with input checks');
    } finally {
      assert.equal(await stop(), 0);
    }
  });

  it('rejects a bad option value naming it', () => {
    const run = spawnSync(process.execPath, [CXR, 'serve', '--port', '70000'], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /port must be 0\.\.65535, got "70000"/);
  });

  it('--model: prints the address and the model, serves the API, logs JSON, stops cleanly on SIGTERM', async () => {
    const { address, stop, output } = await startServe(['--model', makeTestModel(), '--port', '0', '--workers', '1']);
    try {
      const { stderr } = output();
      assert.match(stderr, /mobilenet_v2; weights: imported from mobilenetv2-12-int8\.onnx.*new classifier head/);
      assert.match(stderr, /Research use only; not for clinical decisions/);
      const card = (await (await fetch(`${address}/api/v1/model`)).json()) as { architecture: string };
      assert.equal(card.architecture, 'mobilenet_v2');
      assert.equal((await fetch(`${address}/healthz`)).status, 200);
    } finally {
      assert.equal(await stop(), 0);
    }
    const lines = output().stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; reqId?: string });
    assert.ok(lines.some((l) => l.msg === 'request completed' && typeof l.reqId === 'string'), 'JSON request logs on stdout');
  });
});
