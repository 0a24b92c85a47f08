/**
 * Redis connections for the queue. An unreachable Redis is a normal event for a fleet (a restart, a failover), so
 * every connection retries with back-off and says so through `onRetry`, naming the server (never its password):
 * one-shot commands give up after a few tries with a clear error, workers wait for Redis for as long as it takes.
 */
import { Redis } from 'ioredis';

export interface RedisConnectOptions {
  /** Connection attempts before giving up; default 5. Workers pass Infinity. */
  attempts?: number;
  /** Told before each wait for a retry (the message names the server and the error). */
  onRetry?: (message: string) => void;
}

/** The URL as it may be shown: any password replaced. */
export function displayRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new Error(`--redis ${displayRedisUrl(url)}: not a URL (expected redis://host:port, e.g. redis://127.0.0.1:6379)`);
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`--redis ${displayRedisUrl(url)}: expected a redis:// or rediss:// URL`);
}

/** Back-off between attempts: 0.5 s doubling to at most 10 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, attempt - 1));
}

/**
 * A connection that is ready for commands, or a rejection naming the server and the last error once `attempts`
 * have failed. The connection keeps reconnecting after later outages (ioredis queues commands meanwhile, which
 * BullMQ workers need: maxRetriesPerRequest null).
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<Redis> {
  checkUrl(url);
  const shown = displayRedisUrl(url);
  const attempts = options.attempts ?? 5;
  let lastError = 'connection closed';
  let everReady = false;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => {
      // After the first success the connection is someone's working link: it always comes back.
      if (times >= attempts && !everReady) return null;
      const delay = retryDelayMs(times);
      options.onRetry?.(`cannot reach Redis at ${shown} (${lastError}); retrying in ${(delay / 1000).toFixed(1)} s (attempt ${times + 1}${Number.isFinite(attempts) ? ` of ${attempts}` : ''})`);
      return delay;
    },
  });
  // Without a listener ioredis prints every failed attempt itself; the retry message above says it once, plainly.
  redis.on('error', (error: Error) => {
    lastError = error.message || (error as NodeJS.ErrnoException).code || String(error);
  });
  // An outage later on must not be described by the last one's error.
  redis.on('ready', () => (lastError = 'connection closed'));
  await new Promise<void>((resolve, reject) => {
    const ready = () => {
      redis.off('end', end);
      resolve();
    };
    const end = () => {
      redis.off('ready', ready);
      reject(new Error(`cannot reach Redis at ${shown} after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${lastError}`));
    };
    redis.once('ready', ready);
    redis.once('end', end);
  });
  everReady = true;
  return redis;
}
