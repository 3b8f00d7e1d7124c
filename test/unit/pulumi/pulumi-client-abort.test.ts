import { describe, expect, it } from 'vitest';
import { PulumiClient } from '../../../src/pulumi/pulumi-client.js';
import { collect, rejection } from '../../helpers/pulumi-client.js';
import { sendJson, serversPerTest, type Handler, type LocalServer } from './local-server.js';

const TOKEN = 'pul-0123456789abcdef0123456789abcdef01234567';
const ref = { org: 'acme', project: 'web', stack: 'prod' };

const { serve, held } = serversPerTest();

/** Accepts every request and never answers. */
const silent: Handler = (_req, res) => {
  held.push(res);
};

async function untilRequests(s: LocalServer, n: number): Promise<void> {
  while (s.requests.length < n) await new Promise((r) => setTimeout(r, 5));
}

function client(url: string): PulumiClient {
  // Real timers: the point is that waits end when the signal aborts, not that time is faked.
  return new PulumiClient({ baseUrl: url, accessToken: TOKEN, version: '0', requestTimeoutMillis: 30_000, maxAttempts: 4 });
}

describe('abort signal', () => {
  it('ends a request the server never answers at once with API_ABORTED', async () => {
    const s = await serve(silent);
    const stop = new AbortController();
    const started = Date.now();
    const listing = client(s.url).listStacks('acme', { signal: stop.signal });
    await untilRequests(s, 1);
    stop.abort();
    const err = await rejection(listing);
    expect(err.code).toBe('API_ABORTED');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(s.requests).toHaveLength(1);
  });

  it('ends a retry wait (Retry-After: 20 s) at once instead of sleeping it out', async () => {
    const s = await serve((_req, res) => sendJson(res, 503, { code: 503, message: 'busy' }, { 'Retry-After': '20' }));
    const stop = new AbortController();
    const started = Date.now();
    const p = client(s.url).listUpdates(ref, 1, 10, { signal: stop.signal });
    await untilRequests(s, 1);
    setTimeout(() => stop.abort(), 50);
    const err = await rejection(p);
    expect(err.code).toBe('API_ABORTED');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(s.requests).toHaveLength(1);
  });

  it('stops an engine-events stream between pages and makes no further request', async () => {
    const stop = new AbortController();
    const s = await serve((_req, res, i) => sendJson(res, 200, { events: [], continuationToken: `t${i + 1}` }));
    const pages = client(s.url).engineEvents(ref, 'u-1', { signal: stop.signal });
    let read = 0;
    const err = await rejection(
      (async () => {
        for await (const _page of pages) {
          read += 1;
          if (read === 2) stop.abort();
        }
      })(),
    );
    expect(err.code).toBe('API_ABORTED');
    expect(s.requests).toHaveLength(2);
  });

  it('rejects without any request when the signal is already aborted', async () => {
    const s = await serve(silent);
    const err = await rejection(collect(client(s.url).engineEvents(ref, 'u-1', { signal: AbortSignal.abort() })));
    expect(err.code).toBe('API_ABORTED');
    expect(s.requests).toHaveLength(0);
  });
});
