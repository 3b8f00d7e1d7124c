import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { PulumiClient, statusPathKind, type PulumiClientOptions } from '../../../src/pulumi/pulumi-client.js';
import { collect, rejection } from '../../helpers/pulumi-client.js';
import { queryOf, sendJson, startLocalServer, type Handler, type LocalServer } from './local-server.js';

const TOKEN = 'pul-0123456789abcdef0123456789abcdef01234567';
const ref = { org: 'acme', project: 'web', stack: 'prod' };

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(handler: Handler): Promise<LocalServer> {
  server = await startLocalServer(handler);
  return server;
}

function clientFor(url: string, extra: Partial<PulumiClientOptions> = {}): PulumiClient {
  return new PulumiClient({
    baseUrl: url,
    accessToken: TOKEN,
    version: '1.2.3',
    retryBaseDelayMillis: 1,
    retryMaxDelayMillis: 5,
    sleep: async () => undefined,
    ...extra,
  });
}

function entry(version: number, startTime = 1_000 + version * 10): unknown {
  return {
    info: { kind: 'update', startTime, endTime: startTime + 5, result: 'succeeded', version, resourceChanges: { create: 1 } },
    updateID: `u-${version}`,
    version,
    requestedBy: { name: 'n', githubLogin: 'g' },
  };
}

/** A history of `count` updates (versions 1..count) served newest first with real paging. */
function historyHandler(count: () => number, startOf: (v: number) => number = (v) => 1_000 + v * 10): Handler {
  return (req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams;
    const page = Number(q.get('page'));
    const size = Number(q.get('pageSize'));
    const versions = Array.from({ length: count() }, (_, i) => count() - i);
    const slice = versions.slice((page - 1) * size, page * size);
    sendJson(res, 200, { updates: slice.map((v) => entry(v, startOf(v))), itemsPerPage: size, total: count() });
  };
}

describe('PulumiClient requests', () => {
  it('sends the token, API version, gzip, JSON content type and its own User-Agent', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { stacks: [] }));
    await clientFor(s.url).listStacks('acme');
    const h = s.requests[0]?.headers;
    expect(h?.['authorization']).toBe(`token ${TOKEN}`);
    expect(h?.['accept']).toBe('application/vnd.pulumi+8');
    expect(h?.['accept-encoding']).toBe('gzip');
    expect(h?.['content-type']).toBe('application/json');
    expect(h?.['user-agent']).toBe('pulumi-update-exporter/1.2.3');
    expect(s.requests[0]?.method).toBe('GET');
  });

  it('URL-encodes org, project, stack, update id and continuation token', async () => {
    const odd = { org: 'my org', project: 'pro/j', stack: 'st#ack%' };
    const s = await serve((req, res) => {
      if (req.url?.includes('/events')) sendJson(res, 200, { events: [], continuationToken: null });
      else sendJson(res, 200, { updates: [], itemsPerPage: 5, total: 0 });
    });
    const c = clientFor(s.url);
    await c.listUpdates(odd, 1, 5);
    await collect(c.engineEvents(odd, 'id/1?', { continuationToken: 'a+b/c=&d' }));
    expect(s.requests[0]?.url).toBe('/api/stacks/my%20org/pro%2Fj/st%23ack%25/updates?output-type=service&page=1&pageSize=5');
    expect(s.requests[1]?.url).toBe('/api/stacks/my%20org/pro%2Fj/st%23ack%25/update/id%2F1%3F/events?continuationToken=a%2Bb%2Fc%3D%26d');
  });

  it('keeps the path prefix of a self-hosted backend URL', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { stacks: [] }));
    await clientFor(`${s.url}/pulumi/`).listStacks('acme');
    expect(s.requests[0]?.url).toBe('/pulumi/api/user/stacks?organization=acme&maxResults=500');
  });

  it('decodes a gzip-compressed response', async () => {
    const body = gzipSync(JSON.stringify({ stacks: [{ orgName: 'acme', projectName: 'web', stackName: 'prod', resourceCount: 3 }] }));
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      res.end(body);
    });
    expect(await clientFor(s.url).listStacks('acme')).toEqual([{ ...ref, resourceCount: 3 }]);
  });

  it('rejects an empty token and a backend URL that is not http(s)', () => {
    expect(() => new PulumiClient({ baseUrl: 'http://127.0.0.1', accessToken: ' ', version: '1' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_MISSING_TOKEN' }),
    );
    expect(() => new PulumiClient({ baseUrl: 'not a url', accessToken: TOKEN, version: '1' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => new PulumiClient({ baseUrl: 'ftp://x', accessToken: TOKEN, version: '1' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('listStacks', () => {
  it('follows continuation tokens until the token is absent, null or empty', async () => {
    for (const last of [{}, { continuationToken: null }, { continuationToken: '' }]) {
      const s = await serve((req, res) => {
        const token = queryOf({ method: '', url: req.url ?? '', headers: {} }).get('continuationToken');
        const row = (n: string) => ({ orgName: 'acme', projectName: 'web', stackName: n, lastUpdate: 100 });
        if (token === null) sendJson(res, 200, { stacks: [row('a'), row('b')], continuationToken: 't 1' });
        else if (token === 't 1') sendJson(res, 200, { stacks: [row('c')], continuationToken: 't2' });
        else sendJson(res, 200, { stacks: [row('d')], ...last });
      });
      const stacks = await clientFor(s.url).listStacks('acme');
      expect(stacks.map((x) => x.stack)).toEqual(['a', 'b', 'c', 'd']);
      expect(stacks[0]).toEqual({ org: 'acme', project: 'web', stack: 'a', lastUpdate: 100 });
      expect(s.requests.map((r) => queryOf(r).get('organization'))).toEqual(['acme', 'acme', 'acme']);
      expect(s.requests[1]?.url).toContain('continuationToken=t%201');
      await s.close();
      server = undefined;
    }
  });

  it('fails with API_PAGING_LOOP when a token comes back a second time', async () => {
    const s = await serve((req, res) => {
      const token = new URL(req.url ?? '', 'http://x').searchParams.get('continuationToken');
      const row = { orgName: 'acme', projectName: 'web', stackName: `s${token ?? ''}` };
      sendJson(res, 200, { stacks: [row], continuationToken: token === 'B' ? 'A' : token === 'A' ? 'B' : 'A' });
    });
    const err = await rejection(clientFor(s.url).listStacks('acme'));
    expect(err.code).toBe('API_PAGING_LOOP');
    expect(err.message).toContain('/api/user/stacks');
    expect(s.requests).toHaveLength(3);
  });
});

describe('history', () => {
  it('asks for one page in the service format and maps it', async () => {
    const s = await serve(historyHandler(() => 3));
    const page = await clientFor(s.url).listUpdates(ref, 1, 2);
    expect(queryOf(s.requests[0] ?? { method: '', url: '', headers: {} }).get('output-type')).toBe('service');
    expect(page.total).toBe(3);
    expect(page.itemsPerPage).toBe(2);
    expect(page.updates.map((u) => u.version)).toEqual([3, 2]);
    expect(page.updates[0]).toMatchObject({ updateId: 'u-3', stack: ref, endTime: 1_035, requestedBy: { name: 'n', githubLogin: 'g' } });
  });

  it('rejects a page number below 1 without a request', async () => {
    const s = await serve(historyHandler(() => 3));
    const err = await rejection(clientFor(s.url).listUpdates(ref, 0, 10));
    expect(err.code).toBe('INTERNAL');
    expect(s.requests).toHaveLength(0);
  });

  it('historySince stops at the first version at or below afterVersion without fetching further pages', async () => {
    const s = await serve(historyHandler(() => 25));
    const c = clientFor(s.url, { historyPageSize: 10 });
    expect((await c.historySince(ref, { afterVersion: 18 })).map((u) => u.version)).toEqual([25, 24, 23, 22, 21, 20, 19]);
    expect(s.requests).toHaveLength(1);
    expect((await c.historySince(ref, { afterVersion: 12 })).map((u) => u.version)).toHaveLength(13);
    expect(s.requests).toHaveLength(3);
  });

  it('historySince reads the whole history when there is no floor, stopping at a short page or the total', async () => {
    const s = await serve(historyHandler(() => 25));
    const all = await clientFor(s.url, { historyPageSize: 10 }).historySince(ref, { afterVersion: 0 });
    expect(all.map((u) => u.version)).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
    expect(s.requests.map((r) => queryOf(r).get('page'))).toEqual(['1', '2', '3']);
    await s.close();

    const exact = await serve(historyHandler(() => 20));
    await clientFor(exact.url, { historyPageSize: 10 }).historySince(ref, { afterVersion: 0 });
    expect(exact.requests).toHaveLength(2);
  });

  it('historySince stops at the first update that started before notBeforeSeconds', async () => {
    const s = await serve(historyHandler(() => 25));
    const got = await clientFor(s.url, { historyPageSize: 10 }).historySince(ref, { afterVersion: 0, notBeforeSeconds: 1_000 + 14 * 10 });
    expect(got.map((u) => u.version)).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14]);
    expect(s.requests).toHaveLength(2);
  });

  it('historySince does not repeat an update that shifted to the next page while paging', async () => {
    let count = 12;
    const inner = historyHandler(() => count);
    const s = await serve((req, res, i) => {
      inner(req, res, i);
      if (i === 0) count = 13; // an update lands between the two page reads
    });
    const got = await clientFor(s.url, { historyPageSize: 10 }).historySince(ref, { afterVersion: 0 });
    expect(got.map((u) => u.version)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });
});

describe('engineEvents', () => {
  const pre = (n: number) => ({
    timestamp: 100 + n,
    type: 'resourcePreEvent',
    resourcePreEvent: { metadata: { op: 'create', urn: `urn:${n}`, type: 't', old: null, new: null, provider: '' } },
  });

  it('pages through a completed update until the token is null, always on the /update/ route', async () => {
    const pages: Record<string, unknown> = {
      '': { events: [pre(1), pre(2)], continuationToken: 'p2' },
      p2: { events: [pre(3)], continuationToken: 'p3' },
      p3: { events: [{ timestamp: 200, type: 'summaryEvent', summaryEvent: { maybeCorrupt: false, durationSeconds: 3, resourceChanges: { create: 3 }, PolicyPacks: {} } }], continuationToken: null },
    };
    const s = await serve((req, res) => {
      const token = new URL(req.url ?? '', 'http://x').searchParams.get('continuationToken') ?? '';
      sendJson(res, 200, pages[token]);
    });
    const got = await collect(clientFor(s.url).engineEvents(ref, 'abc'));
    expect(got.map((p) => p.events.length)).toEqual([2, 1, 1]);
    expect(got.map((p) => p.continuationToken)).toEqual(['p2', 'p3', null]);
    expect(got[0]?.events[0]).toMatchObject({ type: 'resourcePreEvent', timestamp: 101, metadata: { urn: 'urn:1' } });
    expect(got[2]?.events[0]).toMatchObject({ type: 'summaryEvent', resourceChanges: { create: 3 } });
    expect(s.requests.every((r) => r.url.startsWith('/api/stacks/acme/web/prod/update/abc/events'))).toBe(true);
  });

  it('sends type and urn filters as query parameters', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { events: null, continuationToken: null }));
    const got = await collect(clientFor(s.url).engineEvents(ref, 'abc', { types: [3, 5], urn: 'urn:pulumi:prod::web::t::n' }));
    expect(got).toEqual([{ events: [], continuationToken: null }]);
    const q = queryOf(s.requests[0] ?? { method: '', url: '', headers: {} });
    expect(q.getAll('type')).toEqual(['3', '5']);
    expect(q.get('urn')).toBe('urn:pulumi:prod::web::t::n');
  });

  it('stops a running update at a repeated token with no new events, and resumes from it later', async () => {
    let produced = 2;
    const s = await serve((req, res) => {
      const token = new URL(req.url ?? '', 'http://x').searchParams.get('continuationToken');
      const from = token === null ? 0 : Number(token);
      const events = Array.from({ length: produced - from }, (_, i) => pre(from + i));
      sendJson(res, 200, { events, continuationToken: String(produced) });
    });
    const c = clientFor(s.url);
    const first = await collect(c.engineEvents(ref, 'run', { inProgress: true }));
    expect(first.map((p) => p.events.length)).toEqual([2]);
    expect(first[0]?.continuationToken).toBe('2');
    expect(s.requests).toHaveLength(2);

    const idle = await collect(c.engineEvents(ref, 'run', { inProgress: true, continuationToken: '2' }));
    expect(idle).toEqual([]);

    produced = 5;
    const resumed = await collect(c.engineEvents(ref, 'run', { inProgress: true, continuationToken: '2' }));
    expect(resumed.map((p) => p.events.length)).toEqual([3]);
    expect(resumed[0]?.events[0]).toMatchObject({ metadata: { urn: 'urn:2' } });
  });

  it('fails with API_PAGING_LOOP when a completed update repeats its token', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { events: [], continuationToken: 'same' }));
    const err = await rejection(collect(clientFor(s.url).engineEvents(ref, 'abc')));
    expect(err.code).toBe('API_PAGING_LOOP');
    expect(err.message).toContain('/api/stacks/{org}/{project}/{stack}/update/{updateID}/events');
    expect(s.requests).toHaveLength(2);
  });

  it('turns a malformed event into API_MALFORMED_RESPONSE naming the endpoint and the event', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, { events: [pre(1), { timestamp: 1, resourcePreEvent: { metadata: { op: 'create' } } }], continuationToken: null }),
    );
    const err = await rejection(collect(clientFor(s.url).engineEvents(ref, 'abc')));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('GET /api/stacks/{org}/{project}/{stack}/update/{updateID}/events');
    expect(err.message).toMatch(/events\.1: resourcePreEvent: metadata\.urn/);
    expect(err.details).toMatchObject({ endpoint: 'engineEvents', status: 200 });
  });
});

describe('previews and status', () => {
  it('asks for the latest previews newest first explicitly', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, {
        updates: [{ info: { kind: 'Pupdate', startTime: 50, endTime: 55, result: 'succeeded', version: 4 }, updateID: 'p-1', version: 4 }],
        itemsPerPage: 1,
        total: 9,
      }),
    );
    const page = await clientFor(s.url).latestPreviews(ref, 1, 1);
    expect(s.requests[0]?.url).toBe('/api/stacks/acme/web/prod/updates/latest/previews?asc=false&page=1&pageSize=1');
    expect(page).toMatchObject({ total: 9, updates: [{ updateId: 'p-1', kind: 'Pupdate', version: 4 }] });
  });

  it('pages the previews of a version newest first down to the start-time floor', async () => {
    // Five previews of version 7, started at 100..500, served two per page (shared pulumi-api.md 2.5).
    const starts = [500, 400, 300, 200, 100];
    const s = await serve((req, res) => {
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const page = Number(q.get('page'));
      const size = Number(q.get('pageSize'));
      const slice = starts.slice((page - 1) * size, page * size);
      sendJson(res, 200, {
        updates: slice.map((t) => ({ info: { kind: 'Pupdate', startTime: t, endTime: t + 5, result: 'succeeded' }, updateID: `p-${t}`, version: 7 })),
        itemsPerPage: size,
        total: starts.length,
      });
    });
    const c = clientFor(s.url, { historyPageSize: 2 });
    const got = await c.previewsSince(ref, { version: 7, notBeforeSeconds: 250 });
    expect(got.map((u) => [u.updateId, u.kind, u.version])).toEqual([
      ['p-500', 'Pupdate', 7],
      ['p-400', 'Pupdate', 7],
      ['p-300', 'Pupdate', 7],
    ]);
    expect(s.requests.map((r) => r.url)).toEqual([
      '/api/stacks/acme/web/prod/updates/7/previews?asc=false&page=1&pageSize=2',
      '/api/stacks/acme/web/prod/updates/7/previews?asc=false&page=2&pageSize=2',
    ]);
    const latest = await c.previewsSince(ref, {});
    expect(latest).toHaveLength(5);
    expect(s.requests.at(-1)?.url).toBe('/api/stacks/acme/web/prod/updates/latest/previews?asc=false&page=3&pageSize=2');
  });

  it('pages previews past a full page when the service reports no total', async () => {
    const starts = [500, 400, 300];
    const s = await serve((req, res) => {
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const page = Number(q.get('page'));
      const slice = starts.slice((page - 1) * 2, page * 2);
      sendJson(res, 200, { updates: slice.map((t) => ({ info: { kind: 'Pupdate', startTime: t, endTime: t + 5, result: 'succeeded' }, updateID: `p-${t}`, version: 2 })) });
    });
    const got = await clientFor(s.url, { historyPageSize: 2 }).previewsSince(ref, {});
    expect(got.map((u) => u.updateId)).toEqual(['p-500', 'p-400', 'p-300']);
    expect(s.requests).toHaveLength(2);
  });

  it('rejects a previews answer holding a history update as malformed, naming the entry', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, {
        updates: [
          { info: { kind: 'Prefresh', startTime: 50, endTime: 55, result: 'succeeded' }, updateID: 'p-1', version: 4 },
          { info: { kind: 'update', startTime: 40, endTime: 45, result: 'succeeded' }, updateID: 'u-4', version: 4 },
        ],
        itemsPerPage: 10,
        total: 2,
      }),
    );
    const err = await rejection(clientFor(s.url).previewsSince(ref, { version: 4 }));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.message).toContain('GET /api/stacks/{org}/{project}/{stack}/updates/{version}/previews');
    expect(err.message).toContain('updates.1: kind "update" is not a preview kind');
    expect(err.details).toMatchObject({ endpoint: 'versionPreviews' });
  });

  it('rejects a previews entry without an update id as malformed', async () => {
    const s = await serve((_req, res) =>
      sendJson(res, 200, { updates: [{ info: { kind: 'Pupdate', startTime: 50, endTime: 55, result: 'succeeded' }, version: 4 }] }),
    );
    const err = await rejection(clientFor(s.url).previewsSince(ref, {}));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.message).toContain('updates.0.updateID');
  });

  it('probes the status route of the update kind', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { status: 'running', events: [], continuationToken: 'c1' }));
    const c = clientFor(s.url);
    expect(await c.updateStatus(ref, 'refresh', 'u 1')).toEqual({ status: 'running', continuationToken: 'c1' });
    await c.updateStatus(ref, 'Pupdate', 'u2');
    expect(s.requests.map((r) => r.url)).toEqual([
      '/api/stacks/acme/web/prod/refresh/u%201',
      '/api/stacks/acme/web/prod/preview/u2',
    ]);
  });

  it('maps every kind to a status route that exists', () => {
    expect(['update', 'preview', 'refresh', 'destroy', 'Pdestroy', 'import', 'rename', 'x'].map(statusPathKind)).toEqual([
      'update',
      'preview',
      'refresh',
      'destroy',
      'preview',
      'update',
      'update',
      'update',
    ]);
  });
});
