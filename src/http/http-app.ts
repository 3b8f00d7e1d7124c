import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { errorCodeOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { redact } from '../secrets.js';
import { renderStatusPage } from './status-page.js';
import type { StatusReport } from './status-report.js';

const gzipAsync = promisify(gzip);
const GZIP_MIN_BYTES = 1024;

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready; shown to the prober, so it must say what, never internals. */
  readonly reason?: string;
}

export interface RenderedExposition {
  readonly contentType: string;
  readonly body: string;
  /** The body as runs of bytes to send in order, when the renderer keeps them (no copy of a large body). */
  parts?(): readonly Buffer[];
  /** The body's length in bytes, when the renderer knows it without joining its parts. */
  readonly byteLength?: number;
  /**
   * The body gzip-compressed, when the renderer can do it cheaper (e.g. from a cache): gzip
   * members to send in order, which gzip readers read as one stream (RFC 1952 2.2).
   */
  gzipParts?(): Promise<readonly Buffer[]>;
}

export interface HttpAppDeps {
  readonly metrics: { render(accept?: string): Promise<RenderedExposition> };
  readonly readiness: () => Promise<Readiness>;
  /** What the status page shows; read from the store on each request. */
  readonly status: () => Promise<StatusReport>;
  readonly logger: Logger;
  /** POST /webhooks/pulumi (webhookRouter), when the webhook is served on this port. */
  readonly webhook?: express.Router;
}

/**
 * The exporter's HTTP surface: GET /metrics, /healthz, /readyz, the status page at / and
 * its JSON at /status.json (or / with `Accept: application/json`). /metrics answers 503
 * (never a partial exposition) when the metrics cannot be rendered. POST /webhooks/pulumi
 * when the webhook router is given (see webhook-route.ts).
 * Never listens (see startHttpServer), so tests and the process shell decide where it runs.
 * Unknown paths answer 404 JSON; any error reaches one handler that logs it and answers a
 * bare 500, so no internals leak to the client.
 */
export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = bareApp();

  if (deps.webhook !== undefined) app.use(deps.webhook);

  app.get('/metrics', async (req, res) => {
    let rendered: RenderedExposition;
    try {
      rendered = await deps.metrics.render(req.get('accept'));
    } catch (err) {
      // No partial exposition: a scrape without the pulumi_* series would look healthy while
      // every series went stale. A failed scrape is what Prometheus records as up == 0.
      deps.logger.error({ err, code: errorCodeOf(err) }, 'metrics scrape failed; answering 503 until the metrics can be read again');
      res.status(503).type('text/plain').send(`metrics unavailable: ${errorCodeOf(err)} (see the exporter log)\n`);
      return;
    }
    // res.send would re-format the content type (sorting its parameters); send it verbatim.
    res.status(200).setHeader('Content-Type', rendered.contentType);
    res.setHeader('Vary', 'Accept, Accept-Encoding');
    let plainParts: readonly Buffer[] | undefined;
    const plain = (): readonly Buffer[] => (plainParts ??= rendered.parts?.() ?? [Buffer.from(rendered.body, 'utf8')]);
    // Expositions of large orgs run to megabytes; Prometheus always accepts gzip. The parts are
    // sent as they are, never joined into one more copy of a large body.
    const length = rendered.byteLength ?? plain().reduce((n, p) => n + p.length, 0);
    let payload: readonly Buffer[];
    if (length >= GZIP_MIN_BYTES && req.acceptsEncodings('gzip', 'identity') === 'gzip') {
      payload = rendered.gzipParts ? await rendered.gzipParts() : [await gzipAsync(Buffer.concat(plain()))];
      res.setHeader('Content-Encoding', 'gzip');
    } else {
      payload = plain();
    }
    res.setHeader('Content-Length', payload.reduce((n, p) => n + p.length, 0));
    res.cork();
    for (const part of payload) res.write(part);
    res.end();
  });

  app.get('/healthz', (_req, res) => {
    res.status(200).type('text/plain').send('ok\n');
  });

  app.get('/readyz', async (_req, res) => {
    let readiness: Readiness;
    try {
      readiness = await deps.readiness();
    } catch (err) {
      deps.logger.warn({ err, code: errorCodeOf(err) }, 'readiness check failed');
      readiness = { ready: false, reason: 'the readiness check failed' };
    }
    if (readiness.ready) {
      res.status(200).type('text/plain').send('ready\n');
    } else {
      res
        .status(503)
        .type('text/plain')
        .send(`not ready: ${redact(oneLine(readiness.reason ?? 'unknown reason'))}\n`);
    }
  });

  // Browsers ask for it on every page view; no icon rather than a 404 in their console.
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  app.get('/status.json', async (_req, res) => {
    res.status(200).json(await deps.status());
  });

  app.get('/', async (req, res) => {
    const report = await deps.status();
    if (req.accepts(['html', 'json']) === 'json') {
      res.status(200).json(report);
      return;
    }
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    res.setHeader('Vary', 'Accept');
    res.status(200).type('html').send(renderStatusPage(report));
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });

  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    deps.logger.error({ err, code: errorCodeOf(err), method: req.method, path: req.path }, 'HTTP request failed');
    if (res.headersSent) {
      // Part of the body is out: the only honest signal left is a cut connection.
      res.destroy();
      return;
    }
    res.status(500).json({ error: 'internal error' });
  });

  return app;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** An express app that names no framework, sends no ETags, and marks every answer nosniff and no-store. */
export function bareApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  return app;
}
