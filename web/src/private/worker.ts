/**
 * Private mode: the server's model file run by onnxruntime-web (WebAssembly) in this worker, with the library's own
 * preprocessing and explanation code, so the image never leaves the browser and the numbers match the server's.
 * Forward-only methods (occlusion) run the model; CAM methods run the model's CAM graph (plain ONNX the server
 * builds: logits, the layer's activation and each finding's gradient there, in one run), fetched on first use.
 */
import * as ort from 'onnxruntime-web/wasm';
import { checkMethod, explainWithRunner } from '../../../src/explain/core.js';
import { CAM_METHODS, type CamMethodName } from '../../../src/explain/cam-methods.js';
import type { GradientRunner, LayerGradients, ModelRunner } from '../../../src/explain/types.js';
import type { CamGraphDescription } from '../../../src/serve/plugins/model.js';
import { type DecodedImage, preprocess } from '../../../src/imaging/browser.js';
import { findingsFromLogits } from '../../../src/outputs/findings.js';
import { fromImage, metadataBatch } from '../../../src/inference/metadata.js';
import { checkInput } from '../../../src/safety/check.js';
import { verdictOf } from '../../../src/safety/flags.js';
import type { FromPrivateWorker, ModelSpec, ToPrivateWorker } from './protocol.js';

// One thread: the page is not cross-origin isolated, and the server's workers also run one thread each.
ort.env.wasm.numThreads = 1;

let model: ModelSpec | undefined;
let session: ort.InferenceSession | undefined;
let camGraph: Promise<{ description: CamGraphDescription; session: ort.InferenceSession }> | undefined;
const post = (message: FromPrivateWorker) => postMessage(message);
/** Requests the viewer gave up on: checked before every run, so a cancelled explanation stops within one run. */
const cancelled = new Set<number>();

self.onmessage = async (event: MessageEvent<ToPrivateWorker>) => {
  const message = event.data;
  if (message.type === 'cancel') {
    cancelled.add(message.id);
    return;
  }
  const id = message.type === 'load' ? undefined : message.id;
  try {
    if (message.type === 'load') await load(message.model);
    else if (message.type === 'predict') await predict(message.id, message.image, message.showRejected);
    else await explain(message.id, message.image, message.method, message.findings);
  } catch (error) {
    post({ type: 'error', id, message: (error as Error).message });
  } finally {
    if (id !== undefined) cancelled.delete(id);
  }
};

/** An ONNX file from the server, checked against the sha256 it was described by. */
async function fetchOnnx(url: string, sha256: string, what: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch the ${what} (${url}: HTTP ${response.status})`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
  if (digest !== sha256) throw new Error(`the ${what} fetched (sha256 ${digest.slice(0, 12)}…) is not the one the server describes (${sha256.slice(0, 12)}…)`);
  return bytes;
}

async function load(spec: ModelSpec): Promise<void> {
  const bytes = await fetchOnnx(spec.url, spec.sha256, 'model');
  session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  model = spec;
  post({ type: 'loaded', backend: 'onnxruntime-web (WebAssembly, 1 thread)' });
}

function loaded(): { session: ort.InferenceSession; model: ModelSpec } {
  if (!session || !model) throw new Error('the model is not loaded yet');
  return { session, model };
}

/** Runs batches of one image's variants; a model with a metadata input gets that image's metadata on every row. */
function runner(id: number, image: DecodedImage, onPass: (images: number) => void): ModelRunner {
  const { session, model } = loaded();
  return {
    labels: model.labels,
    async logits(batch) {
      if (cancelled.has(id)) throw new Error(`request ${id} cancelled`);
      const feeds: Record<string, ort.Tensor> = { [model.io.input]: new ort.Tensor('float32', batch.data, [...batch.dims]) };
      if (model.io.metadata) {
        const rows = metadataBatch(Array(batch.dims[0]).fill(fromImage(image.metadata)));
        feeds[model.io.metadata] = new ort.Tensor('float32', rows.data, [...rows.dims]);
      }
      const outputs = await session.run(feeds, [model.io.logits]);
      onPass(batch.dims[0]);
      return outputs[model.io.logits].data as Float32Array;
    },
  };
}

/** The model's CAM graph in a session of its own, fetched and compiled once (the first CAM explanation pays for it). */
function camSession(): Promise<{ description: CamGraphDescription; session: ort.InferenceSession }> {
  camGraph ??= (async () => {
    const response = await fetch(new URL('/models/current.cam.json', self.location.origin));
    if (!response.ok) throw new Error(`the server cannot give this model's CAM graph (HTTP ${response.status})`);
    const description = (await response.json()) as CamGraphDescription;
    const bytes = await fetchOnnx(description.url, description.sha256, 'CAM graph');
    return { description, session: await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }) };
  })();
  camGraph.catch(() => (camGraph = undefined));
  return camGraph;
}

/**
 * The forward runner plus layer gradients from the CAM graph, read as the server's Explainer reads them
 * ([channels, height, width] per finding; a channels-last layer transposed). Input gradients stay server-only.
 */
function gradientRunner(id: number, image: DecodedImage, onPass: (images: number) => void, cam: { description: CamGraphDescription; session: ort.InferenceSession }): GradientRunner {
  const { model } = loaded();
  const { description } = cam;
  const forward = runner(id, image, onPass);
  return {
    ...forward,
    defaultLayer: description.layer,
    async layerGradients(input, labels, layer): Promise<LayerGradients> {
      if (layer !== undefined && layer !== description.layer) throw new Error(`private mode reads the default layer (${description.layer}) only, not ${layer}`);
      if (cancelled.has(id)) throw new Error(`request ${id} cancelled`);
      const feeds: Record<string, ort.Tensor> = { [model.io.input]: new ort.Tensor('float32', input.data as Float32Array, [...input.dims]) };
      if (model.io.metadata) {
        const rows = metadataBatch([fromImage(image.metadata)]);
        feeds[model.io.metadata] = new ort.Tensor('float32', rows.data, [...rows.dims]);
      }
      const { outputs } = description;
      const out = await cam.session.run(feeds, [outputs.logits, outputs.activation, outputs.gradient]);
      onPass(1);
      const activation = out[outputs.activation];
      const dims = activation.dims as readonly number[];
      const [channels, height, width] = description.layout === 'NHWC' ? [dims[3], dims[1], dims[2]] : [dims[1], dims[2], dims[3]];
      const size = channels * height * width;
      const gradients = out[outputs.gradient].data as Float32Array;
      const nchw = (data: Float32Array) => (description.layout === 'NHWC' ? channelsFirst(data, height, width, channels) : data);
      return {
        layer: description.layer,
        logits: out[outputs.logits].data as Float32Array,
        dims: [channels, height, width],
        activation: nchw(activation.data as Float32Array),
        gradients: labels.map((label) => {
          const k = description.labels.indexOf(label);
          return nchw(gradients.subarray(k * size, (k + 1) * size));
        }),
      };
    },
    inputGradients() {
      throw new Error('input-gradient methods run on the server only');
    },
  };
}

/** [height, width, channels] -> [channels, height, width]. */
function channelsFirst(data: Float32Array, height: number, width: number, channels: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let p = 0; p < height * width; p++) for (let c = 0; c < channels; c++) out[c * height * width + p] = data[p * channels + c];
  return out;
}

function input(image: DecodedImage) {
  const { preprocessing } = loaded().model;
  const { tensor, geometry } = preprocess(image, preprocessing);
  return { tensor, geometry, batch: { dtype: 'float32' as const, dims: [1, ...tensor.dims], data: tensor.data } };
}

/** The same pass as the server's Predictor: logits and the safety outputs, the input checks, then the findings. */
async function predict(id: number, image: DecodedImage, showRejected: boolean): Promise<void> {
  const started = performance.now();
  const { session, model } = loaded();
  const { batch } = input(image);
  const feeds: Record<string, ort.Tensor> = { [model.io.input]: new ort.Tensor('float32', batch.data, [...batch.dims]) };
  if (model.io.metadata) {
    const rows = metadataBatch([fromImage(image.metadata)]);
    feeds[model.io.metadata] = new ort.Tensor('float32', rows.data, [...rows.dims]);
  }
  const safety = model.safety;
  const heads = safety?.heads.length ? [safety.outputs.heads] : [];
  const outputs = await session.run(feeds, [model.io.logits, ...(safety ? [safety.outputs.ood, ...heads] : [])]);
  const scores = safety ? { ood: (outputs[safety.outputs.ood].data as Float32Array)[0], heads: heads.length ? (outputs[heads[0]].data as Float32Array) : undefined } : {};
  const { flags } = checkInput(image, scores, safety);
  const verdict = verdictOf(flags, showRejected);
  const findings = verdict === 'rejected' ? [] : findingsFromLogits(model.labels, outputs[model.io.logits].data as Float32Array, model);
  post({ type: 'prediction', id, findings, inputFlags: flags, verdict, ms: performance.now() - started });
}

async function explain(id: number, image: DecodedImage, method: string, findings: string[]): Promise<void> {
  const started = performance.now();
  const { preprocessing } = loaded().model;
  const { tensor, geometry } = input(image);
  let passes = 0;
  const onPass = (images: number) => post({ type: 'progress', id, passes: (passes += images) });
  const run = CAM_METHODS.includes(method as CamMethodName) ? gradientRunner(id, image, onPass, await camSession()) : runner(id, image, onPass);
  // The library's own front door: methods needing input gradients are refused there ("server only").
  const explanation = await explainWithRunner(run, { tensor, geometry }, preprocessing, { method: checkMethod(method), findings });
  post({ type: 'explanation', id, method, geometry, maps: explanation.findings.map((f) => ({ finding: f.finding, map: f.map })), ms: performance.now() - started });
}
