import { createServer } from 'node:http';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExporterError } from '../errors.js';

export interface HttpServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** How long close() waits for in-flight requests before cutting them; default 5000. */
  readonly closeTimeoutMillis?: number;
  /** A connection that has not sent complete request headers by then is closed (408); default 10000. */
  readonly headersTimeoutMillis?: number;
  /** A request not fully received by then is closed (408); default 30000. */
  readonly requestTimeoutMillis?: number;
  /** Connections open at once; beyond it a new connection is closed at once; default 256. */
  readonly maxConnections?: number;
}

/**
 * Limits against slow or half-open clients (slowloris): Node's defaults (headers within 60 s,
 * checked only every 30 s, no connection cap) let a few thousand idle sockets exhaust file
 * descriptors. Scrapers send their headers in one packet, so these cost them nothing.
 */
const SERVER_LIMITS = { headersTimeoutMillis: 10_000, requestTimeoutMillis: 30_000, maxConnections: 256 } as const;

export interface RunningHttpServer {
  /** e.g. http://127.0.0.1:9819 */
  readonly url: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops listening, drops idle keep-alive connections, waits for in-flight requests up to the timeout. Idempotent. */
  close(): Promise<void>;
}

/**
 * Listens with the given request handler (an express app), with header and request timeouts
 * and a connection cap (SERVER_LIMITS). Rejects with
 * HTTP_LISTEN_FAILED when the address cannot be bound (port in use, no permission, bad host).
 */
export function startHttpServer(app: RequestListener, options: HttpServerOptions): Promise<RunningHttpServer> {
  const headersTimeout = options.headersTimeoutMillis ?? SERVER_LIMITS.headersTimeoutMillis;
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, options.requestTimeoutMillis ?? SERVER_LIMITS.requestTimeoutMillis),
      // How often the timeouts above are checked; Node's 30 s would let a slow client stay that long.
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(headersTimeout / 5))),
    },
    app,
  );
  server.maxConnections = options.maxConnections ?? SERVER_LIMITS.maxConnections;
  const closeTimeoutMillis = options.closeTimeoutMillis ?? 5_000;

  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new ExporterError(
          'HTTP_LISTEN_FAILED',
          `cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`,
          { cause: err, details: { host: options.host, port: options.port } },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      const port = (server.address() as AddressInfo).port;
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      let closing: Promise<void> | undefined;
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: () => (closing ??= closeServer()),
      });
    });
  });

  function closeServer(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // Requests still running after the grace period are cut so shutdown stays bounded.
        server.closeAllConnections();
      }, closeTimeoutMillis);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // Keep-alive connections with no request in flight would otherwise hold close() open.
      server.closeIdleConnections();
    });
  }
}
