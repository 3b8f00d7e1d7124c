import { afterEach, describe, expect, it } from 'vitest';
import { PulumiClient, STACK_PAGE_MAX_RESULTS } from '../../../src/pulumi/pulumi-client.js';
import { rejection } from '../../helpers/pulumi-client.js';
import { queryOf, sendJson, startLocalServer, type Handler, type LocalServer } from './local-server.js';

const TOKEN = 'pul-1111222233334444555566667777888899990000';

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function stackRow(i: number): unknown {
  return { id: `id-${i}`, orgName: 'acme', projectName: `p${i % 7}`, stackName: `s${i}`, lastUpdate: 1_700_000_000 + i, resourceCount: 3 };
}

/** A stack listing of `total` stacks paged by maxResults (clamped to `max`), or by `defaultPage` without it. */
function listing(total: number, options: { max: number; defaultPage: number; refuseMaxResults?: boolean }): Handler {
  return (req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams;
    const asked = q.get('maxResults');
    if (asked !== null && options.refuseMaxResults) return sendJson(res, 400, { code: 400, message: 'unknown parameter maxResults' });
    const size = asked === null ? options.defaultPage : Math.min(Number(asked), options.max);
    const offset = Number(q.get('continuationToken') ?? '0');
    const end = Math.min(total, offset + size);
    const stacks = Array.from({ length: end - offset }, (_, k) => stackRow(offset + k));
    sendJson(res, 200, { stacks, ...(end < total ? { continuationToken: String(end) } : {}) });
  };
}

function client(url: string): PulumiClient {
  return new PulumiClient({ baseUrl: url, accessToken: TOKEN, version: '0', retryBaseDelayMillis: 1 });
}

describe('stack listing page size', () => {
  it('asks for the largest page (maxResults) and makes ceil(stacks / page) calls', async () => {
    const total = 2_345;
    server = await startLocalServer(listing(total, { max: 1_000, defaultPage: 10 }));
    const stacks = await client(server.url).listStacks('acme');
    expect(stacks).toHaveLength(total);
    expect(server.requests).toHaveLength(Math.ceil(total / STACK_PAGE_MAX_RESULTS));
    expect(server.requests.map((r) => queryOf(r).get('maxResults'))).toEqual(server.requests.map(() => String(STACK_PAGE_MAX_RESULTS)));
    expect(queryOf(server.requests[1]!).get('continuationToken')).toBe(String(STACK_PAGE_MAX_RESULTS));
  });

  it('follows a server that clamps maxResults to a smaller page', async () => {
    server = await startLocalServer(listing(1_234, { max: 100, defaultPage: 10 }));
    const stacks = await client(server.url).listStacks('acme');
    expect(stacks).toHaveLength(1_234);
    expect(server.requests).toHaveLength(13);
  });

  it('falls back to the server default page once a server refuses maxResults, and stops sending it', async () => {
    server = await startLocalServer(listing(25, { max: 1_000, defaultPage: 10, refuseMaxResults: true }));
    const c = client(server.url);
    expect(await c.listStacks('acme')).toHaveLength(25);
    // One refused call, then three pages without maxResults.
    expect(server.requests.map((r) => queryOf(r).has('maxResults'))).toEqual([true, false, false, false]);
    expect(await c.listStacks('acme')).toHaveLength(25);
    expect(server.requests.slice(4).every((r) => !queryOf(r).has('maxResults'))).toBe(true);
    expect(server.requests).toHaveLength(7);
  });

  it('keeps sending maxResults when a 400 has another cause (the same call fails without it too)', async () => {
    server = await startLocalServer((_req, res) => sendJson(res, 400, { code: 400, message: 'bad organization' }));
    const c = client(server.url);
    const err = await rejection(c.listStacks('acme'));
    expect(err.code).toBe('API_HTTP_ERROR');
    await rejection(c.listStacks('acme'));
    expect(server.requests.map((r) => queryOf(r).has('maxResults'))).toEqual([true, false, true, false]);
  });
});
