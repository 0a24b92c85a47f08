/**
 * Every error answer is the same JSON (ErrorBody) with the request id. Client errors keep their message (it names
 * the problem); unexpected server errors are logged in full and answered without internals. A known path asked
 * with a method it does not serve answers 405 with Allow, other unknown paths 404.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type ErrorBody, HttpError } from '../errors.js';

async function errors(app: FastifyInstance): Promise<void> {
  // Every route's exact path and methods (wildcard routes, the viewer's static files, are left out: a POST to a
  // file path stays 404).
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    if (/[*:]/.test(route.url)) return;
    const methods = methodsByPath.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) {
      methods.add(method);
      if (method === 'GET') methods.add('HEAD');
    }
    methodsByPath.set(route.url, methods);
  });

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    const expected = statusCode < 500 || error instanceof HttpError;
    // The reason without the client's file name (HttpError.subject), which is only for the client.
    if (expected) request.log.info({ statusCode, code: error.code, reason: error.message }, 'request refused');
    else request.log.error({ err: error }, 'request failed');
    const body: ErrorBody = {
      statusCode,
      error: STATUS_CODES[statusCode] ?? 'Error',
      code: error.code ?? 'CXR_INTERNAL',
      message: expected ? (error instanceof HttpError ? error.answer : error.message) : `internal error; the server log has the details under request id ${request.id}`,
      requestId: request.id,
    };
    if (error instanceof HttpError) reply.headers(error.headers);
    return reply.code(statusCode).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = methodsByPath.get(path);
    if (allowed && !allowed.has(request.method)) {
      const allow = [...allowed].sort().join(', ');
      const body: ErrorBody = {
        statusCode: 405,
        error: 'Method Not Allowed',
        code: 'CXR_METHOD_NOT_ALLOWED',
        message: `${path.slice(0, 200)} answers ${allow}, not ${request.method}`,
        requestId: request.id,
      };
      return reply.code(405).header('allow', allow).send(body);
    }
    const body: ErrorBody = {
      statusCode: 404,
      error: 'Not Found',
      code: 'CXR_NOT_FOUND',
      message: `no route for ${request.method} ${path.slice(0, 200)}`,
      requestId: request.id,
    };
    return reply.code(404).send(body);
  });
}

export default fp(errors, { name: 'cxr-errors' });
