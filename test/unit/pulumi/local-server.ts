import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as received (still URL-encoded). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface LocalServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

/** A throwaway HTTP server on 127.0.0.1 with an OS-chosen port that records every request. */
export async function startLocalServer(handler: Handler): Promise<LocalServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** The query parameters of a recorded request. */
export function queryOf(r: RecordedRequest): URLSearchParams {
  return new URL(r.url, 'http://x').searchParams;
}

/** Injected time: `now` only moves when the code under test sleeps. */
export function fakeTime(start = 1_700_000_000_000): { now: () => number; sleep: (ms: number) => Promise<void>; sleeps: number[] } {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

/**
 * `serve` starts a local server that is closed after each test of the calling file; responses
 * pushed to `held` (requests left unanswered) are destroyed first.
 */
export function serversPerTest(): { serve: (handler: Handler) => Promise<LocalServer>; held: ServerResponse[] } {
  const servers: LocalServer[] = [];
  const held: ServerResponse[] = [];
  afterEach(async () => {
    for (const r of held.splice(0)) r.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return {
    held,
    serve: async (handler) => {
      const s = await startLocalServer(handler);
      servers.push(s);
      return s;
    },
  };
}
