/** GET /api/v1/openapi.json: the API's description. */
import type { FastifyInstance } from 'fastify';
import { OPENAPI_DOCUMENT } from '../openapi.js';

export default async function openapi(app: FastifyInstance): Promise<void> {
  app.get('/api/v1/openapi.json', async () => OPENAPI_DOCUMENT);
}
