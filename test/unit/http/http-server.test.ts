import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { startHttpServer } from '../../../src/http/http-server.js';
import { isExporterError } from '../../../src/errors.js';

const hasIpv6Loopback = Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === '::1'));

const hello = (_req: unknown, res: { end(body: string): void }): void => res.end('hello');

/** One GET on a keep-alive agent; resolves with the body. */
function get(url: string, agent?: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startHttpServer', () => {
  it('listens on the asked host with a free port and reports its URL', async () => {
    const server = await startHttpServer(hello, { host: '127.0.0.1', port: 0 });
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      expect(await get(`${server.url}/`)).toBe('hello');
    } finally {
      await server.close();
    }
  });

  it('rejects with HTTP_LISTEN_FAILED when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const err: unknown = await startHttpServer(hello, { host: '127.0.0.1', port }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isExporterError(err) && err.code).toBe('HTTP_LISTEN_FAILED');
      expect((err as Error).message).toContain('EADDRINUSE');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('closes promptly despite idle keep-alive connections, and close is idempotent', async () => {
    const agent = new Agent({ keepAlive: true });
    const server = await startHttpServer(hello, { host: '127.0.0.1', port: 0, closeTimeoutMillis: 60_000 });
    expect(await get(`${server.url}/`, agent)).toBe('hello');
    // With a 60 s grace period, only dropping the idle connection lets this finish in time.
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await expect(get(`${server.url}/`)).rejects.toThrow();
    agent.destroy();
  });

  it('cuts requests still running when the close timeout passes', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((r) => (arrived = r));
    const server = await startHttpServer(
      () => {
        arrived(); // never answers
      },
      { host: '127.0.0.1', port: 0, closeTimeoutMillis: 50 },
    );
    const pending = get(`${server.url}/`).then(
      () => 'answered',
      () => 'cut',
    );
    await requestArrived;
    await server.close();
    expect(await pending).toBe('cut');
  });

  it.skipIf(!hasIpv6Loopback)('brackets an IPv6 host in the URL', async () => {
    const server = await startHttpServer(hello, { host: '::1', port: 0 });
    try {
      expect(server.url).toBe(`http://[::1]:${server.port}`);
    } finally {
      await server.close();
    }
  });
});
