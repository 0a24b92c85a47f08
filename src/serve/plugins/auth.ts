/**
 * Bearer-token authentication (`cxr serve --auth FILE`): every /api/ route but the OpenAPI document needs
 * `Authorization: Bearer <token>` with a token whose hash is in the file (tokens.ts). Checked before anything else
 * of the request is read, so an unauthenticated upload costs nothing; /healthz (for load balancers), the viewer's
 * static files and the model file private mode downloads (/models/current.onnx: weights, no patient data) stay
 * open, the viewer asking for a token when the API answers 401. The token itself is never logged:
 * a refusal logs only that one happened, an accepted request the token's label.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../errors.js';
import { hashToken, type TokenFile } from '../tokens.js';

const OPEN_PATHS = new Set(['/api/v1/openapi.json']);

async function auth(app: FastifyInstance, options: { tokens: TokenFile }): Promise<void> {
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0];
    if (!path.startsWith('/api/') || OPEN_PATHS.has(path) || request.method === 'OPTIONS') return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const label = match ? options.tokens.hashes.get(hashToken(match[1])) : undefined;
    if (label === undefined) {
      request.log.warn({ authorization: header ? (match ? 'unknown token' : 'not a bearer token') : 'missing' }, 'refused: not authenticated');
      throw new HttpError(401, 'CXR_UNAUTHORIZED', header ? 'the bearer token is not valid for this server' : 'this server needs an API key: send "Authorization: Bearer <token>" (cxr token create makes one)', {
        'www-authenticate': 'Bearer realm="cxr-lens"',
        connection: 'close',
      });
    }
    request.log.info({ token: label }, 'authenticated');
  });
}

export default fp(auth, { name: 'cxr-auth' });
