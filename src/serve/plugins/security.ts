/**
 * What keeps a browser from being turned against the server or the viewer:
 *
 * - Security headers on every answer (@fastify/helmet): a Content-Security-Policy the viewer and its private mode
 *   satisfy (scripts, workers, styles and fetches from this origin only; WebAssembly compilation for onnxruntime-web
 *   and the DICOM codecs, 'wasm-unsafe-eval', but no eval; images also from data: and blob: URLs for overlays and
 *   reports; no plugins, no framing, no <base>), X-Content-Type-Options nosniff, X-Frame-Options DENY and
 *   Referrer-Policy no-referrer. Strict-Transport-Security only when the server itself speaks HTTPS (--tls-cert):
 *   over plain HTTP browsers ignore it.
 * - DNS rebinding: while listening on a loopback address, a request must name loopback in its Host header
 *   (localhost, 127.0.0.1 or [::1] with the server's port, or a name given with --allow-host); a page on
 *   evil.example whose name was re-pointed at 127.0.0.1 is answered 403.
 * - Cross-origin writes: a POST (any method but GET, HEAD and OPTIONS) whose Origin is neither this server nor a
 *   configured CORS origin is answered 403 before its body is read.
 * - CORS is off unless origins are configured (--cors): those get Access-Control-Allow-Origin and their
 *   preflights are answered.
 */
import helmet from '@fastify/helmet';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../errors.js';

export interface SecurityOptions {
  /** Origins (scheme://host[:port]) allowed to call the API from their pages; none by default. */
  corsOrigins?: readonly string[];
  /** Host names accepted besides loopback's while listening on loopback (e.g. a reverse proxy's public name). */
  allowedHosts?: readonly string[];
  /** The server speaks HTTPS (sends Strict-Transport-Security). */
  https?: boolean;
}

/** The Content-Security-Policy of every answer, as helmet directives. */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  // onnxruntime-web and the DICOM codecs compile WebAssembly; nothing evaluates JavaScript from strings.
  scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
  scriptSrcAttr: ["'none'"],
  workerSrc: ["'self'"],
  connectSrc: ["'self'"],
  // Heatmap overlays arrive as data: URLs; reports are drawn to blob: URLs.
  imgSrc: ["'self'", 'data:', 'blob:'],
  styleSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

/** The origins given, normalised (scheme://host[:port], lower case); throws naming one that is not an origin. */
export function parseOrigins(origins: readonly string[]): string[] {
  return origins.map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new Error(`CORS origin "${origin}" is not a URL; give scheme://host[:port], e.g. https://viewer.example.org`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin.replace(/\/$/, '').toLowerCase()) {
      throw new Error(`CORS origin "${origin}" must be just scheme://host[:port] (no path, query or user), e.g. https://viewer.example.org`);
    }
    return url.origin;
  });
}

async function security(app: FastifyInstance, options: SecurityOptions): Promise<void> {
  const corsOrigins = new Set(parseOrigins(options.corsOrigins ?? []));
  const allowedHosts = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));

  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: options.https ? { maxAge: 180 * 24 * 3600 } : false,
  });

  /** The Host values a loopback-bound server accepts, or null when it is not bound to loopback. */
  let accepted: Set<string> | null | undefined;
  const acceptedHosts = (): Set<string> | null => {
    if (accepted !== undefined) return accepted;
    const address = app.server.address() as AddressInfo | string | null;
    // Not listening (tests injecting requests) or on a socket file: nothing to check against.
    if (!address || typeof address === 'string') return null;
    if (!isLoopbackAddress(address.address)) return (accepted = null);
    const names = [...LOOPBACK_NAMES.map((n) => `${n}:${address.port}`), ...(address.port === 80 ? LOOPBACK_NAMES : [])];
    return (accepted = new Set(names));
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const host = request.headers.host?.toLowerCase();
    const loopback = acceptedHosts();
    if (loopback && host !== undefined && !loopback.has(host) && !allowedHosts.has(host.replace(/:\d+$/, ''))) {
      throw new HttpError(403, 'CXR_HOST_NOT_ALLOWED', `this server listens on loopback and answers only requests for ${[...loopback].join(', ')}${allowedHosts.size ? ` or ${[...allowedHosts].join(', ')}` : ''}; Host was "${host.slice(0, 100)}"`, { connection: 'close' });
    }
    const origin = request.headers.origin;
    const corsAllowed = origin !== undefined && corsOrigins.has(origin.toLowerCase());
    if (corsAllowed) {
      reply.header('access-control-allow-origin', origin);
      reply.header('vary', 'Origin');
      reply.header('access-control-expose-headers', 'x-request-id, retry-after');
      if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
        reply.header('access-control-allow-methods', 'GET, POST');
        reply.header('access-control-allow-headers', 'content-type, x-request-id');
        reply.header('access-control-max-age', '600');
        await reply.code(204).send();
        return reply;
      }
    }
    if (!SAFE_METHODS.has(request.method) && origin !== undefined && !corsAllowed && !sameOrigin(origin, host)) {
      throw new HttpError(403, 'CXR_CROSS_ORIGIN', `cross-origin requests from ${origin.slice(0, 100)} are not allowed${corsOrigins.size ? '' : ' (this server allows none; see --cors)'}`, { connection: 'close' });
    }
  });
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host.toLowerCase() === host;
  } catch {
    return false; // "null" (sandboxed frames, file: pages) and anything malformed
  }
}

export default fp(security, { name: 'cxr-security' });
