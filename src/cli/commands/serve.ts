/** `cxr serve` (and `npm start`): the viewer and the HTTP API on this machine, with the default or a given model. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { displayRedisUrl } from '../../queue/index.js';
import { buildServer } from '../../serve/index.js';
import { DEFAULTS } from '../../serve/options.js';
import { nonNegativeInt, positiveInt } from '../options.js';

interface ServeCliOptions {
  model?: string;
  host: string;
  port: number;
  workers?: number;
  threads: number;
  queue: number;
  admissionWait: number;
  maxUploadMb: number;
  timeout: number;
  workerMaxRss?: number;
  saveUploads?: string;
  cors: string[];
  allowHost: string[];
  auth?: string;
  tlsCert?: string;
  tlsKey?: string;
  pacs?: string;
  dicomweb: string;
  pacsTimeout: number;
  redis?: string;
  logLevel: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`port must be 0..65535, got "${value}"`);
  return n;
}

function httpUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // named below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new InvalidArgumentError(`--pacs must be an http or https URL such as http://127.0.0.1:8042, got "${value}"`);
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('start the web viewer and the HTTP API (POST /api/v1/analyze) on this machine')
    .option('-m, --model <file>', 'cxr-lens model (.onnx); default: the embedded default model')
    .option('--host <address>', 'address to listen on (0.0.0.0 exposes it to the network)', '127.0.0.1')
    .option('-p, --port <n>', 'port (0 picks a free one)', port, 8080)
    .option('-w, --workers <n>', 'inference worker threads (default: the number of cores)', positiveInt('workers'))
    .option('-t, --threads <n>', 'ONNX Runtime threads per worker', positiveInt('threads'), DEFAULTS.threadsPerWorker)
    .option('-q, --queue <n>', 'analyses allowed to wait for a worker; more get 503 + Retry-After', nonNegativeInt('queue'), DEFAULTS.queueLimit)
    .option('--admission-wait <ms>', 'with the queue full, how long a request waits (its upload unread) for a place before 503; 0 refuses at once', nonNegativeInt('admission wait'), DEFAULTS.admissionWaitMs)
    .option('--max-upload-mb <n>', 'largest accepted image upload in MB', positiveInt('max upload'), DEFAULTS.maxUploadBytes / 1024 / 1024)
    .option('--timeout <seconds>', 'an analysis taking longer (waiting included) answers 504', positiveInt('timeout'), DEFAULTS.analysisTimeoutMs / 1000)
    .option('--worker-max-rss <MB>', "replace a worker after an analysis that leaves the server's resident memory above this many MB (between analyses, never during one; default: never)", positiveInt('worker max rss'))
    .option('--save-uploads <folder>', 'keep every decoded upload there, named by a server-generated id (logged as savedAs), mode 0600; undecodable uploads are not kept (default: never written to disk)')
    .option('--cors <origin>', 'let pages from this origin (scheme://host[:port]) call the API; repeatable (default: no cross-origin calls)', collect, [])
    .option('--allow-host <name>', 'on a loopback address, also answer requests for this host name (e.g. behind a reverse proxy); repeatable', collect, [])
    .option('--auth <tokens.txt>', 'require a bearer token (API key) on every API call; the file holds token hashes made by `cxr token create`')
    .option('--tls-cert <cert.pem>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key')
    .option('--tls-key <key.pem>', 'the private key of --tls-cert')
    .option('--pacs <url>', 'a PACS web server (e.g. Orthanc at http://127.0.0.1:8042): the viewer then searches it, opens its instances and shows the results `cxr pacs` stored there', httpUrl)
    .option('--dicomweb <path>', 'path of the DICOMweb root on the --pacs server', '/dicom-web')
    .option('--pacs-timeout <seconds>', 'deadline of one request to the PACS (one retry; then 502 or 504)', positiveInt('pacs timeout'), DEFAULTS.pacsTimeoutMs / 1000)
    .addOption(new Option('--redis <url>', 'send analyses to the `cxr worker`s sharing this Redis (redis://host:port) instead of in-process workers; servers behind a load balancer then share one fleet').env('CXR_REDIS'))
    .option('--log-level <level>', 'JSON log level: fatal, error, warn, info, debug or silent', 'info')
    .addHelpText(
      'after',
      `
Logs are JSON lines (pino) on stdout, one per request with its request id; client file names, DICOM free text
and patient fields (name, ID, birth date, accession number) are never logged, nor are API tokens. Uploaded images stay in memory unless --save-uploads is given. On a loopback address
(the default) only requests naming loopback in their Host header are answered (DNS rebinding), and cross-origin
POSTs are refused unless their origin is given with --cors. Research use only; not for clinical decisions.

Examples:
  $ cxr serve                                   the default model, viewer at http://127.0.0.1:8080
  $ cxr serve --model chexnet.onnx --port 3000  another model, on port 3000
  $ curl -F image=@chest.png -F heatmap=none http://127.0.0.1:3000/api/v1/analyze
  $ cxr token create --file tokens.txt --label pacs-bridge     prints a new API key once
  $ cxr serve --host 0.0.0.0 --auth tokens.txt --tls-cert cert.pem --tls-key key.pem
  $ curl -H "Authorization: Bearer cxr_..." -F image=@chest.png https://host:8080/api/v1/analyze
  $ cxr serve --pacs http://127.0.0.1:8042        the viewer's PACS panel: search, open, stored results
  $ cxr serve --redis redis://10.0.0.5:6379 --model chexnet.onnx   analyses run on the cxr worker --redis fleet`,
    )
    .action(async (options: ServeCliOptions) => {
      const { app, card, options: resolved } = await buildServer({
        modelPath: options.model,
        workers: options.workers,
        threadsPerWorker: options.threads,
        queueLimit: options.queue,
        admissionWaitMs: options.admissionWait,
        maxUploadBytes: options.maxUploadMb * 1024 * 1024,
        analysisTimeoutMs: options.timeout * 1000,
        workerMaxRssMb: options.workerMaxRss,
        saveUploadsTo: options.saveUploads,
        corsOrigins: options.cors,
        allowedHosts: options.allowHost,
        authTokensFile: options.auth,
        tlsCertFile: options.tlsCert,
        tlsKeyFile: options.tlsKey,
        pacsDicomweb: options.pacs === undefined ? undefined : new URL(options.dicomweb, options.pacs.endsWith('/') ? options.pacs : `${options.pacs}/`).href,
        pacsTimeoutMs: options.pacsTimeout * 1000,
        redisUrl: options.redis,
        logLevel: options.logLevel,
      });
      const address = await app.listen({ host: options.host, port: options.port });
      const stop = () => void app.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.stderr.write(
        `cxr-lens viewer: ${address}/  (model ${card.file}: ${card.architecture}; weights: ${card.weights})\n` +
          (resolved.redisUrl
            ? `  analyses go to the cxr workers on Redis at ${displayRedisUrl(resolved.redisUrl)}, queue ${resolved.queueLimit}`
            : `  ${resolved.workers} workers x ${resolved.threadsPerWorker} thread(s), queue ${resolved.queueLimit}` +
              `${resolved.workerMaxRssMb ? `, workers replaced above ${resolved.workerMaxRssMb} MB resident` : ''}`) +
          `; API at ${address}/api/v1/openapi.json\n` +
          '  Research use only; not for clinical decisions.\n',
      );
      if (!resolved.authTokensFile && !isLoopbackHost(options.host)) {
        process.stderr.write(`  warning: listening on ${options.host} without --auth: anyone who can reach this address can use the API\n`);
      }
    });
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
