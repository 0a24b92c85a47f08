/**
 * One inference worker thread: its own ONNX Runtime sessions (a Predictor, and an Explainer for its explain graphs),
 * one analysis at a time (analyze-image.ts). Decoding, preprocessing, inference, explanation and PNG encoding all
 * happen here, off the server's event loop. Messages are described by pool.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from '../api.js';
import { Explainer } from '../explain/index.js';
import { Predictor } from '../inference/predictor.js';
import { OrtSession } from '../runtime/session.js';
import { analyzeImage } from './analyze-image.js';
import { CONTROL_CANCEL, CONTROL_IN_RUN, type FromWorker, type ToWorker, type WorkerInit } from './pool.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

/**
 * Cooperative cancellation: the pool writes the id of an analysis to stop into shared memory; this worker checks
 * it before and after every ONNX Runtime run (every session in this thread goes through OrtSession.run, so the
 * check is wrapped around it here rather than threaded through the prediction and explanation code) and between
 * overlays. It also says when it is inside a run, the one moment the pool must not terminate it.
 */
const control = new Int32Array(init.control);
let current = 0;
/** ONNX Runtime runs of the current analysis, reported after each (progress of slow explanations). */
let runs = 0;
class Cancelled extends Error {
  readonly kind = 'cancelled';
}
function checkCancelled(): void {
  if (current !== 0 && Atomics.load(control, CONTROL_CANCEL) === current) throw new Cancelled(`analysis ${current} cancelled`);
}
const run = OrtSession.prototype.run;
OrtSession.prototype.run = async function (this: OrtSession, ...args: Parameters<typeof run>) {
  checkCancelled();
  Atomics.store(control, CONTROL_IN_RUN, 1);
  try {
    return await run.apply(this, args);
  } finally {
    Atomics.store(control, CONTROL_IN_RUN, 0);
    checkCancelled();
    if (current !== 0) post({ type: 'progress', id: current, runs: ++runs });
  }
};

try {
  const { model, path } = loadModel(init.modelPath);
  const predictor = await Predictor.create(model, { threads: init.threads, batchSize: 1, source: path });
  const explainer = await Explainer.create(model, { threads: init.threads, source: path });
  // The explain graph for Grad-CAM-style methods is built once here, so no request pays for it. A model the
  // autodiff cannot differentiate still serves predictions and occlusion; gradient methods then fail per request
  // with the reason.
  await explainer.prepare(['gradcam']).catch(() => undefined);
  port.on('message', (message: ToWorker) => {
    current = message.id;
    runs = 0;
    analyzeImage(predictor, explainer, message.bytes, message.name, message.request, checkCancelled).then(
      (result) => post({ type: 'done', id: message.id, result }),
      (error: unknown) => post({ type: 'failed', id: message.id, kind: (error as { kind?: 'image' | 'cancelled' }).kind ?? 'internal', message: (error as Error).message }),
    ).finally(() => {
      current = 0;
    });
  });
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'init-error', message: (error as Error).message });
}
