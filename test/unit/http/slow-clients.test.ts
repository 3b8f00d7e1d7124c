import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../../src/http/http-app.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from '../../../src/http/http-server.js';

const running: RunningHttpServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function serve(options: Partial<HttpServerOptions>): Promise<RunningHttpServer> {
  const app = createHttpApp({
    metrics: { render: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'up_like 1\n' }) },
    readiness: () => Promise.resolve({ ready: true }),
    status: () => Promise.resolve({ version: 'test', generatedAt: '2024-01-01T00:00:00.000Z', ready: true, orgs: [], recentUpdates: [], failingStacks: [], inProgress: [] }),
    logger: pino({ level: 'silent' }, new Writable({ write: (_c, _e, done) => done() })),
  });
  const server = await startHttpServer(app, { host: '127.0.0.1', port: 0, ...options });
  running.push(server);
  return server;
}

interface SlowClient {
  readonly closedAtMs: Promise<number>;
}

/** A client that connects and then sends part of a request (or nothing) and waits. */
function slowClient(port: number, partial: boolean): SlowClient {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  if (partial) socket.write('GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Slow: ');
  return { closedAtMs: new Promise((resolve) => socket.once('close', () => resolve(Date.now()))) };
}

describe('the metrics server against slow and half-open clients', () => {
  it('closes connections that do not finish their request headers within the headers timeout', async () => {
    const server = await serve({ headersTimeoutMillis: 500 });
    const started = Date.now();
    const clients = Array.from({ length: 300 }, (_, i) => slowClient(server.port, i % 2 === 0));
    const closed = await Promise.all(clients.map((c) => c.closedAtMs));
    const slowest = Math.max(...closed) - started;
    expect(slowest).toBeGreaterThanOrEqual(400);
    expect(slowest).toBeLessThan(3_000);
  });

  it('closes connections beyond the cap at once and serves again once the slow ones are gone', async () => {
    const server = await serve({ headersTimeoutMillis: 700, maxConnections: 50 });
    const started = Date.now();
    const clients = Array.from({ length: 120 }, () => slowClient(server.port, false));
    const closed = (await Promise.all(clients.map((c) => c.closedAtMs))).map((at) => at - started);
    // 70 over the cap are dropped before the headers timeout could have closed any of them.
    expect(closed.filter((ms) => ms < 400).length).toBeGreaterThanOrEqual(70);
    expect(Math.max(...closed)).toBeLessThan(3_000);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('up_like 1\n');
  });

  it('serves 20 concurrent scrapers while 100 slow clients hold connections', async () => {
    const server = await serve({ headersTimeoutMillis: 5_000 });
    for (let i = 0; i < 100; i++) slowClient(server.port, i % 2 === 0);
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${server.url}/metrics`);
        return { status: res.status, body: await res.text() };
      }),
    );
    expect(answers.every((a) => a.status === 200 && a.body === 'up_like 1\n')).toBe(true);
  });
});
