import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { errorCodeOf } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { redact } from '../secrets.js';

const gzipAsync = promisify(gzip);
const GZIP_MIN_BYTES = 1024;

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready; shown to the prober, so it must say what, never internals. */
  readonly reason?: string;
}

export interface HttpStatus {
  readonly version: string;
  readonly lastPoll?: {
    readonly result: string;
    /** ISO 8601. */
    readonly finishedAt: string;
    readonly durationSeconds: number;
  };
}

export interface RenderedExposition {
  readonly contentType: string;
  readonly body: string;
  /** The body as bytes, when the renderer keeps them (saves encoding a large body again). */
  bytes?(): Buffer;
  /** The body gzip-compressed, when the renderer can do it cheaper (e.g. from a cache). */
  gzip?(): Promise<Buffer>;
}

export interface HttpAppDeps {
  readonly metrics: { render(accept?: string): Promise<RenderedExposition> };
  readonly readiness: () => Promise<Readiness>;
  readonly status: () => HttpStatus;
  readonly logger: Logger;
}

/**
 * The exporter's HTTP surface: GET /metrics, /healthz, /readyz and a landing page at /.
 * Never listens (see startHttpServer), so tests and the process shell decide where it runs.
 * Unknown paths answer 404 JSON; any error reaches one handler that logs it and answers a
 * bare 500, so no internals leak to the client.
 */
export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  app.get('/metrics', async (req, res) => {
    const rendered = await deps.metrics.render(req.get('accept'));
    // res.send would re-format the content type (sorting its parameters); send it verbatim.
    res.status(200).setHeader('Content-Type', rendered.contentType);
    res.setHeader('Vary', 'Accept, Accept-Encoding');
    let payload = rendered.bytes?.() ?? Buffer.from(rendered.body, 'utf8');
    // Expositions of large orgs run to megabytes; Prometheus always accepts gzip.
    if (payload.length >= GZIP_MIN_BYTES && req.acceptsEncodings('gzip', 'identity') === 'gzip') {
      payload = rendered.gzip ? await rendered.gzip() : await gzipAsync(payload);
      res.setHeader('Content-Encoding', 'gzip');
    }
    res.setHeader('Content-Length', payload.length);
    res.end(payload);
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

  app.get('/', (_req, res) => {
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    res.status(200).type('html').send(landingPage(deps.status()));
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

function landingPage(status: HttpStatus): string {
  const last = status.lastPoll;
  const poll = last
    ? `<p>Last poll: <strong>${escapeHtml(last.result)}</strong> at ${escapeHtml(last.finishedAt)} ` +
      `(${escapeHtml(formatSeconds(last.durationSeconds))} s)</p>`
    : '<p>Last poll: none yet</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pulumi update exporter</title>
</head>
<body>
<h1>Pulumi update exporter</h1>
<p>Version ${escapeHtml(status.version)}</p>
${poll}
<ul>
<li><a href="metrics">metrics</a></li>
<li><a href="healthz">healthz</a></li>
<li><a href="readyz">readyz</a></li>
</ul>
</body>
</html>
`;
}

function formatSeconds(s: number): string {
  return Number.isFinite(s) ? String(Math.round(s * 1000) / 1000) : '?';
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}
