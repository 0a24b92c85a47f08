/**
 * GET /api/v1/model (the model card) and the model file itself, which the viewer's private mode runs in the browser;
 * and, for private mode's CAM methods, the model's CAM graph (one run: logits, the default layer's activation and
 * every finding's gradient there; explain/graphs.ts) as plain ONNX with a description of its outputs. Like the
 * model file they are weights, no patient data, and stay open under --auth.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { buildCamGraph, defaultLayer } from '../../explain/index.js';
import { activationLayout, type ActivationLayout } from '../../models/layouts.js';
import { decodeModel, encodeModel } from '../../onnx/index.js';
import type { ModelCard } from '../model-card.js';

export const CAM_GRAPH_URL = '/models/current.cam.onnx';
export const CAM_GRAPH_DESCRIPTION_URL = '/models/current.cam.json';

/** What the browser needs to run the CAM graph as the server's Explainer does. */
export interface CamGraphDescription {
  url: string;
  sha256: string;
  layer: string;
  layout: ActivationLayout;
  /** Label indices whose gradients the graph outputs, in output order (all of the model's). */
  labels: number[];
  outputs: { logits: string; activation: string; gradient: string };
}

export default async function model(app: FastifyInstance, options: { card: ModelCard; bytes: Uint8Array }): Promise<void> {
  const { card, bytes } = options;
  app.get('/api/v1/model', async () => card);
  app.get(card.modelUrl, async (_request, reply) => sendOnnx(reply, bytes, card.sha256));

  // Built on first request and kept (not at start: only private mode's CAM methods need it); a model the autodiff
  // cannot differentiate answers an error with the reason, and the next request tries again.
  let camGraph: { description: CamGraphDescription; bytes: Uint8Array } | undefined;
  const cam = () => {
    if (!camGraph) {
      const decoded = decodeModel(bytes);
      const layer = defaultLayer(decoded);
      const graph = buildCamGraph(decoded, layer, card.labels.map((_, i) => i));
      const encoded = encodeModel(graph.model);
      const sha256 = createHash('sha256').update(encoded).digest('hex');
      camGraph = { bytes: encoded, description: { url: CAM_GRAPH_URL, sha256, layer, layout: activationLayout(decoded, layer), labels: graph.labels, outputs: graph.outputs } };
    }
    return camGraph;
  };
  app.get(CAM_GRAPH_DESCRIPTION_URL, async (_request, reply) => reply.header('cache-control', 'no-cache').send(cam().description));
  app.get(CAM_GRAPH_URL, async (_request, reply) => {
    const { bytes: graph, description } = cam();
    return sendOnnx(reply, graph, description.sha256);
  });
}

function sendOnnx(reply: FastifyReply, bytes: Uint8Array, sha256: string) {
  return reply
    .type('application/octet-stream')
    .header('etag', `"${sha256}"`)
    .header('cache-control', 'no-cache')
    .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}
