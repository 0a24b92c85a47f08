/** GET /api/v1/model (the model card) and the model file itself, which the viewer's private mode runs in the browser. */
import type { FastifyInstance } from 'fastify';
import type { ModelCard } from '../model-card.js';

export default async function model(app: FastifyInstance, options: { card: ModelCard; bytes: Uint8Array }): Promise<void> {
  const { card, bytes } = options;
  app.get('/api/v1/model', async () => card);
  app.get(card.modelUrl, async (_request, reply) =>
    reply
      .type('application/octet-stream')
      .header('etag', `"${card.sha256}"`)
      .header('cache-control', 'no-cache')
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
  );
}
