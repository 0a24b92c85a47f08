/**
 * GET /healthz: is the server able to analyse images, and how loaded is it. 200 "ok" while a new analysis would
 * start soon; 503 "degraded" while every worker is busy and analyses wait (or the queue is full), so a load balancer
 * sends work elsewhere and a monitor sees the saturation; 503 "unavailable" with no worker alive.
 */
import type { FastifyInstance } from 'fastify';
import type { AdmissionGate } from '../admission.js';
import type { AnalysisDispatcher } from '../dispatch.js';
import type { PoolStats } from '../pool.js';

export interface HealthBody {
  status: 'ok' | 'degraded' | 'unavailable';
  pool: PoolStats;
  admission: AdmissionGate['stats'];
}

export default async function health(app: FastifyInstance, options: { pool: AnalysisDispatcher; admission: AdmissionGate }): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const pool = options.pool.stats;
    const status = pool.workers === 0 ? 'unavailable' : options.pool.saturated || options.pool.full ? 'degraded' : 'ok';
    const body: HealthBody = { status, pool, admission: options.admission.stats };
    if (status !== 'ok') reply.header('retry-after', String(options.pool.retryAfterSeconds()));
    return reply.code(status === 'ok' ? 200 : 503).send(body);
  });
}
