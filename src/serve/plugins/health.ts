/** GET /healthz: is the server able to analyse images (workers alive), and how loaded is it. */
import type { FastifyInstance } from 'fastify';
import type { InferencePool, PoolStats } from '../pool.js';

export interface HealthBody {
  status: 'ok' | 'unavailable';
  pool: PoolStats;
}

export default async function health(app: FastifyInstance, options: { pool: InferencePool }): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const pool = options.pool.stats;
    const body: HealthBody = { status: pool.workers > 0 ? 'ok' : 'unavailable', pool };
    return reply.code(pool.workers > 0 ? 200 : 503).send(body);
  });
}
