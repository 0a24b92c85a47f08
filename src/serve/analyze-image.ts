/**
 * One analysis as the server answers it: decode, predict, explain and draw, from an upload's bytes. Run by the
 * in-process pool's worker threads (pool-worker.ts) and by `cxr worker` for servers that dispatch through Redis
 * (dispatch-redis-worker.ts), so both give the same answer to the last digit.
 */
import { type Explainer, type ExplanationMethod, renderHeatmap } from '../explain/index.js';
import { decodeImage, type DecodedImage } from '../imaging/index.js';
import type { Predictor } from '../inference/predictor.js';
import { filmPng } from '../outputs/report-film.js';
import type { AnalyzeRequest, ExplanationResult, MapResult } from './analysis.js';
import type { WorkerAnalysis } from './pool.js';

/**
 * `checkCancelled` is called between stages and overlays and throws to stop an analysis nobody waits for any more.
 */
export async function analyzeImage(predictor: Predictor, explainer: Explainer, bytes: Uint8Array, name: string, request: AnalyzeRequest, checkCancelled: () => void): Promise<WorkerAnalysis> {
  const clock = stopwatch();
  let image: DecodedImage;
  try {
    image = await decodeImage(bytes, name);
  } catch (error) {
    // kind 'image': the client's file is at fault, not the server.
    throw Object.assign(error as Error, { kind: 'image' as const });
  }
  const decodeMs = clock();
  checkCancelled();
  const [prediction] = await predictor.predict([image], { showRejected: request.showRejected });
  const predictMs = clock();
  const explanations: ExplanationResult[] = [];
  // A rejected input gets no findings, so nothing to explain either.
  if (request.heatmap !== 'none' && prediction.verdict !== 'rejected') {
    for (const method of request.methods) explanations.push(await explain(explainer, image, method as ExplanationMethod, request, checkCancelled));
  }
  return {
    image: { name, ...prediction.image },
    inputFlags: prediction.inputFlags,
    verdict: prediction.verdict,
    findings: prediction.findings,
    explanations,
    ...(request.film ? { filmPng: `data:image/png;base64,${Buffer.from(await filmPng(image)).toString('base64')}` } : {}),
    timings: { decodeMs, predictMs, explainMs: clock() },
  };
}

async function explain(explainer: Explainer, image: DecodedImage, method: ExplanationMethod, request: AnalyzeRequest, checkCancelled: () => void): Promise<ExplanationResult> {
  const explanation = await explainer.explain(image, { findings: request.findings, method });
  const maps: MapResult[] = [];
  for (const finding of explanation.findings) {
    checkCancelled();
    const entry: MapResult = { finding: finding.finding };
    if (request.heatmap === 'png' || request.heatmap === 'both') {
      const png = await renderHeatmap(image, explanation, finding, { colormap: request.colormap });
      entry.overlayPng = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    }
    if (request.heatmap === 'raw' || request.heatmap === 'both') {
      const { width, height, data } = finding.map;
      entry.raw = { width, height, dtype: 'float32', data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
    }
    maps.push(entry);
  }
  return { method: explanation.method, geometry: explanation.geometry, maps };
}

/** Milliseconds since the previous call. */
function stopwatch(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const elapsed = now - last;
    last = now;
    return Math.round(elapsed * 10) / 10;
  };
}
