/** The built viewer (Vite output) at /; a clear answer instead of a blank page when it has not been built. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../errors.js';

export default async function web(app: FastifyInstance, options: { root: string }): Promise<void> {
  if (!existsSync(join(options.root, 'index.html'))) {
    app.get('/', async () => {
      throw new HttpError(503, 'CXR_VIEWER_NOT_BUILT', `the viewer is not built (no index.html in ${options.root}); run \`npm run build:web\``);
    });
    return;
  }
  await app.register(fastifyStatic, { root: options.root, index: 'index.html', maxAge: 0 });
}
