/**
 * Every error answer is the same JSON (ErrorBody) with the request id. Client errors keep their message (it names
 * the problem); unexpected server errors are logged in full and answered without internals.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type ErrorBody, HttpError } from '../errors.js';

async function errors(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    const expected = statusCode < 500 || error instanceof HttpError;
    if (expected) request.log.info({ statusCode, code: error.code, reason: error.message }, 'request refused');
    else request.log.error({ err: error }, 'request failed');
    const body: ErrorBody = {
      statusCode,
      error: STATUS_CODES[statusCode] ?? 'Error',
      code: error.code ?? 'CXR_INTERNAL',
      message: expected ? error.message : `internal error; the server log has the details under request id ${request.id}`,
      requestId: request.id,
    };
    if (error instanceof HttpError) reply.headers(error.headers);
    return reply.code(statusCode).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      statusCode: 404,
      error: 'Not Found',
      code: 'CXR_NOT_FOUND',
      message: `no route for ${request.method} ${request.url.split('?')[0]}`,
      requestId: request.id,
    };
    return reply.code(404).send(body);
  });
}

export default fp(errors, { name: 'cxr-errors' });
