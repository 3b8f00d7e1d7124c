import type { ServerResponse } from 'node:http';
import { inspect } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PulumiClient, type PulumiClientOptions } from '../../../src/pulumi/pulumi-client.js';
import { recordingObserver, rejection } from '../../helpers/pulumi-client.js';
import { fakeTime, sendJson, serversPerTest, startLocalServer, type Handler } from './local-server.js';

const TOKEN = 'pul-fedcba9876543210fedcba9876543210fedcba98';
const ref = { org: 'acme', project: 'web', stack: 'prod' };
const EMPTY_HISTORY = { updates: [], itemsPerPage: 10, total: 0 };

const { serve, held } = serversPerTest();

function clientFor(url: string, extra: Partial<PulumiClientOptions> = {}): PulumiClient {
  const time = fakeTime();
  return new PulumiClient({
    baseUrl: url,
    accessToken: TOKEN,
    version: '0.0.1',
    maxAttempts: 4,
    retryBaseDelayMillis: 100,
    retryMaxDelayMillis: 30_000,
    sleep: time.sleep,
    now: time.now,
    random: () => 0.5,
    ...extra,
  });
}

/** Answers with the statuses in order, then 200 with `ok`. */
function sequence(statuses: Array<number | [number, Record<string, string>]>, ok: unknown = EMPTY_HISTORY): Handler {
  return (_req, res, i) => {
    const step = statuses[i];
    if (step === undefined) return sendJson(res, 200, ok);
    const [status, headers] = Array.isArray(step) ? step : [step, {}];
    sendJson(res, status, { code: status, message: `status ${status}` }, headers);
  };
}

describe('retries', () => {
  it('retries 429, 500, 502, 503 and 504 and then succeeds, reporting every attempt', async () => {
    const s = await serve(sequence([429, 500, 502, 503, 504]));
    const observer = recordingObserver();
    const time = fakeTime();
    const page = await clientFor(s.url, { maxAttempts: 6, observer, sleep: time.sleep, now: time.now }).listUpdates(ref, 1, 10);
    expect(page.total).toBe(0);
    expect(s.requests).toHaveLength(6);
    expect(observer.requests).toEqual(['429', '500', '502', '503', '504', '200'].map((c) => `listUpdates:${c}`));
    expect(observer.retries).toEqual(['429', '5xx', '5xx', '5xx', '5xx'].map((r) => `listUpdates:${r}`));
    expect(time.sleeps).toHaveLength(5);
  });

  it('grows the backoff exponentially up to the cap and stops after maxAttempts', async () => {
    const s = await serve((_req, res) => sendJson(res, 503, { code: 503, message: 'busy' }, { 'X-Pulumi-Request-ID': 'req-77' }));
    const time = fakeTime();
    const err = await rejection(
      clientFor(s.url, { maxAttempts: 6, retryBaseDelayMillis: 100, retryMaxDelayMillis: 1_000, random: () => 0.999999, sleep: time.sleep, now: time.now }).listUpdates(
        ref,
        1,
        10,
      ),
    );
    expect(time.sleeps).toEqual([99, 199, 399, 799, 999]);
    expect(s.requests).toHaveLength(6);
    expect(err.code).toBe('API_SERVER_ERROR');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('busy');
    expect(err.message).toContain('req-77');
    expect(err.message).toContain('after 6 attempts');
    expect(err.details).toMatchObject({ endpoint: 'listUpdates', status: 503, attempts: 6, requestId: 'req-77' });
  });

  it('draws every delay with full jitter below the exponential ceiling', async () => {
    const s = await serve((_req, res) => sendJson(res, 500, {}));
    const draws = [0, 0.25, 0.9, 0.5, 0.1];
    const time = fakeTime();
    await rejection(
      clientFor(s.url, {
        maxAttempts: 6,
        retryBaseDelayMillis: 1_000,
        retryMaxDelayMillis: 10_000,
        random: () => draws.shift() ?? 0,
        sleep: time.sleep,
        now: time.now,
      }).listStacks('acme'),
    );
    expect(time.sleeps).toEqual([0, 500, 3_600, 4_000, 1_000]);
  });

  it('honours Retry-After in seconds', async () => {
    const s = await serve(sequence([[429, { 'Retry-After': '3' }]]));
    const time = fakeTime();
    await clientFor(s.url, { sleep: time.sleep, now: time.now }).listUpdates(ref, 1, 10);
    expect(time.sleeps).toEqual([3_000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const start = Date.UTC(2025, 5, 1, 10, 0, 0);
    const s = await serve(sequence([[429, { 'Retry-After': new Date(start + 7_000).toUTCString() }]]));
    const time = fakeTime(start);
    await clientFor(s.url, { sleep: time.sleep, now: time.now }).listUpdates(ref, 1, 10);
    expect(time.sleeps).toEqual([7_000]);
  });

  it('waits a Retry-After exactly at retryMaxDelayMillis in full', async () => {
    const s = await serve(sequence([[503, { 'Retry-After': '2' }]]));
    const time = fakeTime();
    await clientFor(s.url, { retryMaxDelayMillis: 2_000, sleep: time.sleep, now: time.now }).listUpdates(ref, 1, 10);
    expect(time.sleeps).toEqual([2_000]);
  });

  it('gives up on persistent 429 with a retryable API_RATE_LIMITED', async () => {
    const s = await serve((_req, res) => sendJson(res, 429, { code: 429, message: 'slow down' }, { 'Retry-After': '1' }));
    const err = await rejection(clientFor(s.url, { maxAttempts: 3 }).listStacks('acme'));
    expect(s.requests).toHaveLength(3);
    expect(err.code).toBe('API_RATE_LIMITED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('slow down');
  });

  it.each([
    [401, 'API_UNAUTHORIZED'],
    [403, 'API_UNAUTHORIZED'],
    [404, 'API_NOT_FOUND'],
    [400, 'API_HTTP_ERROR'],
    [409, 'API_HTTP_ERROR'],
    [501, 'API_SERVER_ERROR'],
  ])('does not retry %i and fails with %s', async (status, code) => {
    const s = await serve((_req, res) => sendJson(res, status, { code: status, message: `no: ${status}` }, { 'X-Pulumi-Request-ID': 'rid-1' }));
    const time = fakeTime();
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { sleep: time.sleep, now: time.now, observer }).listUpdates(ref, 1, 10));
    expect(s.requests).toHaveLength(1);
    expect(time.sleeps).toEqual([]);
    expect(observer.retries).toEqual([]);
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(status >= 500);
    expect(err.message).toContain(`no: ${status}`);
    expect(err.message).toContain('rid-1');
    expect(err.message).toContain('GET /api/stacks/{org}/{project}/{stack}/updates');
    expect(err.details).toMatchObject({ endpoint: 'listUpdates', status });
  });

  it('uses a non-JSON error body as the message', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('stack not found here');
    });
    const err = await rejection(clientFor(s.url).listUpdates(ref, 1, 10));
    expect(err.code).toBe('API_NOT_FOUND');
    expect(err.message).toContain('stack not found here');
  });
});

describe('timeouts and network errors', () => {
  it('times out a request that never answers, retries it, then fails with API_TIMEOUT', async () => {
    const s = await serve((_req, res) => held.push(res));
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { requestTimeoutMillis: 50, maxAttempts: 2, observer }).listStacks('acme'));
    expect(err.code).toBe('API_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ endpoint: 'listStacks', status: 'timeout', attempts: 2 });
    expect(observer.requests).toEqual(['listStacks:timeout', 'listStacks:timeout']);
    expect(observer.retries).toEqual(['listStacks:timeout']);
  });

  it('times out a body that stops half way', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"stacks": [');
      held.push(res);
    });
    const err = await rejection(clientFor(s.url, { requestTimeoutMillis: 50, maxAttempts: 1 }).listStacks('acme'));
    expect(err.code).toBe('API_TIMEOUT');
  });

  it('fails with a retryable API_NETWORK when nothing listens', async () => {
    const s = await startLocalServer(() => undefined);
    const url = s.url;
    await s.close();
    const observer = recordingObserver();
    const err = await rejection(clientFor(url, { maxAttempts: 2, observer }).listStacks('acme'));
    expect(err.code).toBe('API_NETWORK');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
    expect(observer.requests).toEqual(['listStacks:network', 'listStacks:network']);
    expect(observer.retries).toEqual(['listStacks:network']);
  });
});

describe('malformed responses', () => {
  it('reports a body that is not JSON as API_MALFORMED_RESPONSE naming the endpoint, without retrying', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('<html>gateway</html>');
    });
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { observer }).listUpdates(ref, 1, 10));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('listUpdates (GET /api/stacks/{org}/{project}/{stack}/updates) for acme/web/prod');
    expect(err.message).toContain('not JSON');
    expect(s.requests).toHaveLength(1);
    expect(observer.requests).toEqual(['listUpdates:malformed']);
  });

  it('names the field of a body with the wrong shape', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, { stacks: 'nope' }));
    const err = await rejection(clientFor(s.url).listStacks('acme'));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.message).toContain('/api/user/stacks');
    expect(err.message).toMatch(/stacks: /);
  });

  it('reports an empty body', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.end();
    });
    const err = await rejection(clientFor(s.url).updateStatus(ref, 'update', 'u1'));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.message).toContain('empty');
    expect(err.message).toContain('/api/stacks/{org}/{project}/{stack}/{kind}/{updateID}');
  });
});

describe('the access token', () => {
  it('never appears in errors or log output, even when the server echoes it', async () => {
    const echo = `bad token ${TOKEN} for you`;
    const s = await serve((_req, res, i) => {
      if (i === 0) sendJson(res, 503, { code: 503, message: echo }, { 'X-Pulumi-Request-ID': TOKEN, 'X-Pulumi-Warning': echo });
      else sendJson(res, 401, { code: 401, message: echo }, { 'X-Pulumi-Request-ID': TOKEN });
    });
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const err = await rejection(clientFor(s.url, { logger }).listUpdates(ref, 1, 10));
    expect(err.code).toBe('API_UNAUTHORIZED');
    expect(err.retryable).toBe(false);
    expect(s.requests).toHaveLength(2);
    expect(s.requests[0]?.headers['authorization']).toBe(`token ${TOKEN}`);
    for (const text of [err.message, String(err), JSON.stringify(err), inspect(err, { depth: 5 }), err.stack ?? '', lines.join('\n')]) {
      expect(text).not.toContain(TOKEN);
    }
    expect(err.message).toContain('bad token [REDACTED] for you');
    const log = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // A retry heals itself: debug. Only the final failure reaches the caller, which logs it.
    expect(log.find((l) => l['msg'] === 'Pulumi Cloud request failed; retrying')).toMatchObject({
      level: 20,
      endpoint: 'listUpdates',
      status: 503,
      attempt: 1,
      delayMs: 50,
    });
    expect(log.filter((l) => l['msg'] === 'Pulumi Cloud request').map((l) => l['code'])).toEqual(['503', '401']);
  });

  it('is not in the error of a failed connection', async () => {
    const s = await startLocalServer(() => undefined);
    await s.close();
    const err = await rejection(clientFor(s.url, { maxAttempts: 1 }).listStacks('acme'));
    expect(`${String(err)} ${JSON.stringify(err)} ${inspect(err, { depth: 5 })}`).not.toContain(TOKEN);
  });
});

describe('rate limit and concurrency', () => {
  it('spaces request starts by the optional hard cap, without a burst (injected clock)', async () => {
    const time = fakeTime(0);
    const arrivals: number[] = [];
    const s = await serve((_req, res) => {
      arrivals.push(time.now());
      sendJson(res, 200, EMPTY_HISTORY);
    });
    const c = clientFor(s.url, { requestsPerSecond: 2, sleep: time.sleep, now: time.now });
    // One call after the other: the fake sleep returns at once, so only sequential calls
    // reach the server at the fake time they were admitted.
    await c.listUpdates(ref, 1, 10);
    await c.latestPreviews(ref, 1, 10);
    for (let page = 2; page <= 5; page += 1) await c.listUpdates(ref, page, 10);
    expect(arrivals).toEqual([0, 500, 1_000, 1_500, 2_000, 2_500]);
  });

  it('counts retries against the rate limit too', async () => {
    const time = fakeTime(0);
    const arrivals: number[] = [];
    const s = await serve((req, res, i) => {
      arrivals.push(time.now());
      sequence([503, 503])(req, res, i);
    });
    await clientFor(s.url, { requestsPerSecond: 1, random: () => 0, sleep: time.sleep, now: time.now }).listUpdates(ref, 1, 10);
    expect(arrivals).toEqual([0, 1_000, 2_000]);
  });

  it('never has more requests in flight than maxConcurrentRequests under real concurrency', async () => {
    const cap = 3;
    let inFlight = 0;
    let maxInFlight = 0;
    let waiting: ServerResponse[] = [];
    const s = await serve((_req, res) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      waiting.push(res);
      res.on('finish', () => {
        inFlight -= 1;
      });
      // Answer a full batch only after a pause in which an extra request would show up.
      if (waiting.length === cap) {
        const batch = waiting;
        waiting = [];
        setTimeout(() => batch.forEach((r) => sendJson(r, 200, EMPTY_HISTORY)), 20);
      }
    });
    const c = new PulumiClient({ baseUrl: s.url, accessToken: TOKEN, version: '0', maxConcurrentRequests: cap });
    await Promise.all(Array.from({ length: 4 * cap }, (_, i) => c.listUpdates(ref, i + 1, 10)));
    expect(s.requests).toHaveLength(4 * cap);
    expect(maxInFlight).toBe(cap);
  });
});

describe('a Retry-After longer than retryMaxDelayMillis', () => {
  // Return type inferred: pino's own Logger generic is what the client option accepts.
  function captured() {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    return { logger, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  it('fails at once with a retryable API_RATE_LIMITED instead of retrying early (seconds form)', async () => {
    const s = await serve(sequence([[429, { 'Retry-After': '60' }]]));
    const time = fakeTime();
    const observer = recordingObserver();
    const log = captured();
    const err = await rejection(
      clientFor(s.url, { sleep: time.sleep, now: time.now, observer, logger: log.logger }).listUpdates(ref, 1, 10),
    );
    expect(s.requests).toHaveLength(1);
    expect(time.sleeps).toEqual([]);
    expect(observer.requests).toEqual(['listUpdates:429']);
    expect(observer.retries).toEqual([]);
    expect(err.code).toBe('API_RATE_LIMITED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('asked to wait 60 s');
    expect(err.message).toContain('next poll cycle retries');
    expect(err.details).toMatchObject({ endpoint: 'listUpdates', status: 429, attempts: 1, retryAfterSeconds: 60 });
    const warn = log.entries().find((l) => l['msg'] === 'Pulumi Cloud asked to wait longer than a retry may; the next poll cycle retries');
    expect(warn).toMatchObject({ level: 40, endpoint: 'listUpdates', status: 429, retryAfterMs: 60_000, retryMaxDelayMillis: 30_000 });
    expect(log.entries().some((l) => l['msg'] === 'Pulumi Cloud request failed; retrying')).toBe(false);
  });

  it('fails at once for an HTTP-date Retry-After beyond the cap', async () => {
    const start = Date.UTC(2025, 5, 1, 10, 0, 0);
    const s = await serve(sequence([[429, { 'Retry-After': new Date(start + 90_000).toUTCString() }]]));
    const time = fakeTime(start);
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { sleep: time.sleep, now: time.now, observer }).listStacks('acme'));
    expect(s.requests).toHaveLength(1);
    expect(time.sleeps).toEqual([]);
    expect(observer.requests).toEqual(['listStacks:429']);
    expect(observer.retries).toEqual([]);
    expect(err.code).toBe('API_RATE_LIMITED');
    expect(err.details).toMatchObject({ retryAfterSeconds: 90 });
    expect(err.message).toContain('asked to wait 90 s');
  });

  it('still retries an HTTP-date Retry-After within the cap after waiting the full time', async () => {
    const start = Date.UTC(2025, 5, 1, 10, 0, 0);
    const s = await serve(sequence([[429, { 'Retry-After': new Date(start + 20_000).toUTCString() }]]));
    const time = fakeTime(start);
    const observer = recordingObserver();
    await clientFor(s.url, { sleep: time.sleep, now: time.now, observer }).listUpdates(ref, 1, 10);
    expect(time.sleeps).toEqual([20_000]);
    expect(observer.requests).toEqual(['listUpdates:429', 'listUpdates:200']);
    expect(observer.retries).toEqual(['listUpdates:429']);
  });

  it('gives up after earlier retries once the server asks for too long, keeping the status code', async () => {
    const s = await serve(sequence([429, [503, { 'Retry-After': '3600' }]]));
    const time = fakeTime();
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { sleep: time.sleep, now: time.now, observer }).listUpdates(ref, 1, 10));
    expect(s.requests).toHaveLength(2);
    expect(time.sleeps).toEqual([50]);
    expect(observer.requests).toEqual(['listUpdates:429', 'listUpdates:503']);
    expect(observer.retries).toEqual(['listUpdates:429']);
    expect(err.code).toBe('API_SERVER_ERROR');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('asked to wait 3600 s');
    expect(err.details).toMatchObject({ status: 503, attempts: 2, retryAfterSeconds: 3600 });
  });

  it('does not wait for Retry-After when no attempt is left', async () => {
    const s = await serve((_req, res) => sendJson(res, 429, { code: 429, message: 'slow down' }, { 'Retry-After': '5' }));
    const time = fakeTime();
    const observer = recordingObserver();
    const err = await rejection(clientFor(s.url, { maxAttempts: 2, sleep: time.sleep, now: time.now, observer }).listStacks('acme'));
    expect(time.sleeps).toEqual([5_000]);
    expect(observer.retries).toEqual(['listStacks:429']);
    expect(err.code).toBe('API_RATE_LIMITED');
    expect(err.message).toContain('after 2 attempts');
    expect(err.message).toContain('asked to wait 5 s');
    expect(err.details).toMatchObject({ attempts: 2, retryAfterSeconds: 5 });
  });
});
