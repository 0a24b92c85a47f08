/**
 * Where an analysis runs. Server mode uploads the image to the cxr server this page came from; private mode runs
 * the same model file in this browser (a worker with onnxruntime-web) and sends nothing. Both give the same shapes.
 */
import type { GridMap } from '../../src/explain/types.js';
import type { DecodedImage, Geometry } from '../../src/imaging/browser.js';
import type { AnalyzeResponse, FindingResult, ImageResult, InputFlag, InputVerdict } from '../../src/serve/analysis.js';
import type { ErrorBody } from '../../src/serve/errors.js';
import type { ModelCard } from '../../src/serve/model-card.js';
import { decodeRawMap } from './render.js';
import { BROWSER_METHODS, type FromPrivateWorker, type ToPrivateWorker } from './private/protocol.js';

export type Mode = 'server' | 'private';

export interface Upload {
  bytes: Uint8Array;
  name: string;
}

export interface PredictionView {
  /** Where it was computed. */
  mode: Mode;
  findings: FindingResult[];
  inputFlags: InputFlag[];
  /** `rejected`: no findings (the flags say why); `rejected-shown`: findings on request, not to be trusted. */
  verdict: InputVerdict;
  image: ImageResult;
  requestId?: string;
  ms: number;
}

export interface ExplanationView {
  method: string;
  geometry: Geometry;
  maps: Map<string, GridMap>;
  ms: number;
}

export interface Engine {
  mode: Mode;
  /** Which explanation methods this engine can run. */
  methods: string[];
  /** `showRejected`: give findings even when the input checks reject the image. */
  predict(upload: Upload, image: DecodedImage, showRejected: boolean): Promise<PredictionView>;
  /**
   * Maps of the given findings only: a slow method costs per finding, and the viewer shows one at a time. Aborting
   * `signal` stops the work (the server's worker is freed) and rejects.
   */
  explain(upload: Upload, image: DecodedImage, method: string, findings: string[], onProgress: (text: string) => void, signal?: AbortSignal): Promise<ExplanationView>;
}

const TOKEN_KEY = 'cxr-lens-api-token';

/**
 * fetch() for the API: a server started with --auth answers 401 without a token, and the viewer then asks for one
 * (kept for this tab only, in sessionStorage) and tries once more.
 */
export async function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  };
  const response = await send();
  if (response.status !== 401) return response;
  const token = window.prompt('This cxr-lens server needs an API key (made with `cxr token create`). Paste it here:')?.trim();
  if (!token) return response;
  sessionStorage.setItem(TOKEN_KEY, token);
  return send();
}

export async function fetchModelCard(): Promise<ModelCard> {
  const response = await apiFetch('/api/v1/model');
  if (!response.ok) throw new Error(`cannot read the model card (HTTP ${response.status})`);
  return response.json() as Promise<ModelCard>;
}

export class ServerEngine implements Engine {
  readonly mode = 'server';
  readonly methods: string[];

  constructor(card: ModelCard) {
    this.methods = card.explanationMethods;
  }

  /**
   * One analysis. With `onProgress` the server streams JSON lines (a progress line per run of the model, then the
   * result), so a slow method shows how far it is; aborting `signal` closes the connection, which stops the work.
   */
  private async post(upload: Upload, fields: Record<string, string>, signal?: AbortSignal, onProgress?: (progress: { runs: number; elapsedMs: number }) => void): Promise<AnalyzeResponse> {
    const form = new FormData();
    form.append('image', new Blob([upload.bytes as BlobPart]), upload.name);
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    const response = await apiFetch('/api/v1/analyze', { method: 'POST', body: form, signal, headers: onProgress ? { accept: 'application/x-ndjson' } : {} });
    if (!response.ok || !onProgress) {
      const body = (await response.json()) as AnalyzeResponse | ErrorBody;
      if (response.ok) return body as AnalyzeResponse;
      const retry = response.headers.get('retry-after');
      throw new Error(`${(body as ErrorBody).message}${retry ? ` (retry in ${retry} s)` : ''}`);
    }
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let pending = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error('the server closed the analysis without an answer');
      pending += value;
      let end;
      while ((end = pending.indexOf('\n')) >= 0) {
        const line = JSON.parse(pending.slice(0, end)) as { type: string; runs: number; elapsedMs: number; body: AnalyzeResponse | ErrorBody };
        pending = pending.slice(end + 1);
        if (line.type === 'progress') onProgress(line);
        else if (line.type === 'result') return line.body as AnalyzeResponse;
        else if (line.type === 'error') throw new Error((line.body as ErrorBody).message);
      }
    }
  }

  async predict(upload: Upload, _image: DecodedImage, showRejected: boolean): Promise<PredictionView> {
    const started = performance.now();
    const body = await this.post(upload, { heatmap: 'none', showRejected: String(showRejected) });
    return { mode: 'server', findings: body.findings, inputFlags: body.inputFlags, verdict: body.verdict, image: body.image, requestId: body.requestId, ms: performance.now() - started };
  }

  async explain(upload: Upload, _image: DecodedImage, method: string, findings: string[], onProgress: (text: string) => void, signal?: AbortSignal): Promise<ExplanationView> {
    const started = performance.now();
    onProgress(`${method} for ${findings.join(', ').replace(/_/g, ' ')} running on the server…`);
    // Only asked for after a prediction was given (accepted, or shown on request), so rejected inputs are shown too.
    const what = `${method} for ${findings.join(', ').replace(/_/g, ' ')}`;
    const body = await this.post(upload, { methods: method, heatmap: 'raw', findings: findings.join(','), showRejected: 'true' }, signal, ({ runs, elapsedMs }) =>
      onProgress(`${what} running on the server: ${runs} model runs, ${(elapsedMs / 1000).toFixed(1)} s`),
    );
    const [explanation] = body.explanations;
    const maps = new Map(explanation.maps.map((m) => [m.finding, decodeRawMap(m.raw!)]));
    return { method, geometry: explanation.geometry, maps, ms: performance.now() - started };
  }
}

export class PrivateEngine implements Engine {
  readonly mode = 'private';
  readonly methods: string[];
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (m: FromPrivateWorker) => void; reject: (e: Error) => void; progress?: (passes: number) => void }>();

  private constructor(
    private readonly worker: Worker,
    card: ModelCard,
    readonly backend: string,
  ) {
    this.methods = card.explanationMethods.filter((m) => BROWSER_METHODS.includes(m));
    worker.onmessage = (event: MessageEvent<FromPrivateWorker>) => {
      const message = event.data;
      if (!('id' in message) || message.id === undefined) return;
      const entry = this.waiting.get(message.id);
      if (!entry) return;
      if (message.type === 'progress') return entry.progress?.(message.passes);
      this.waiting.delete(message.id);
      if (message.type === 'error') entry.reject(new Error(message.message));
      else entry.resolve(message);
    };
  }

  /** Starts the worker and loads the server's model file into onnxruntime-web (checked against the card's sha256). */
  static async start(card: ModelCard): Promise<PrivateEngine> {
    const worker = new Worker(new URL('./private/worker.ts', import.meta.url), { type: 'module' });
    const backend = await new Promise<string>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<FromPrivateWorker>) => {
        if (event.data.type === 'loaded') resolve(event.data.backend);
        else if (event.data.type === 'error') reject(new Error(event.data.message));
      };
      worker.onerror = (event) => reject(new Error(`the private-mode worker failed: ${event.message}`));
      const model = {
        url: card.modelUrl,
        sha256: card.sha256,
        labels: card.labels,
        preprocessing: card.preprocessing,
        io: card.io,
        thresholds: card.thresholds ?? undefined,
        calibration: card.calibration ?? undefined,
        safety: card.inputChecks ?? undefined,
      };
      const message: ToPrivateWorker = { type: 'load', model };
      worker.postMessage(message);
    });
    return new PrivateEngine(worker, card, backend);
  }

  /** One request to the worker; aborting `signal` tells the worker to stop it (it checks between runs) and rejects. */
  private call(message: ToPrivateWorker & { id: number }, progress?: (passes: number) => void, signal?: AbortSignal): Promise<FromPrivateWorker> {
    return new Promise((resolve, reject) => {
      this.waiting.set(message.id, { resolve, reject, progress });
      this.worker.postMessage(message);
      signal?.addEventListener('abort', () => {
        if (!this.waiting.delete(message.id)) return;
        this.worker.postMessage({ type: 'cancel', id: message.id } satisfies ToPrivateWorker);
        reject(new Error('aborted'));
      }, { once: true });
    });
  }

  async predict(upload: Upload, image: DecodedImage, showRejected: boolean): Promise<PredictionView> {
    const reply = await this.call({ type: 'predict', id: this.nextId++, image, showRejected });
    if (reply.type !== 'prediction') throw new Error(`unexpected reply ${reply.type}`);
    const { width, height, format, notes, metadata } = image;
    return { mode: 'private', findings: reply.findings, inputFlags: reply.inputFlags, verdict: reply.verdict, image: { name: upload.name, width, height, format, notes, metadata }, ms: reply.ms };
  }

  async explain(_upload: Upload, image: DecodedImage, method: string, findings: string[], onProgress: (text: string) => void, signal?: AbortSignal): Promise<ExplanationView> {
    onProgress(`${method} running in this browser…`);
    const reply = await this.call({ type: 'explain', id: this.nextId++, image, method, findings }, (passes) =>
      onProgress(`${method} running in this browser: ${passes} forward passes`),
    signal);
    if (reply.type !== 'explanation') throw new Error(`unexpected reply ${reply.type}`);
    return { method, geometry: reply.geometry, maps: new Map(reply.maps.map((m) => [m.finding, m.map])), ms: reply.ms };
  }

  close(): void {
    this.worker.terminate();
  }
}
