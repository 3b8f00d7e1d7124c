import { request, type IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp, type HttpAppDeps, type Readiness } from '../../../src/http/http-app.js';
import type { StatusReport } from '../../../src/http/status-report.js';
import { startHttpServer, type RunningHttpServer } from '../../../src/http/http-server.js';
import { ExporterError } from '../../../src/errors.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { clearSecretsForTests, registerSecret } from '../../../src/secrets.js';
import { memoryStore } from '../../helpers/memory-store.js';

const running: RunningHttpServer[] = [];

function report(overrides: Partial<StatusReport> = {}): StatusReport {
  return { version: '1.2.3', generatedAt: '2024-05-01T10:00:01.000Z', ready: true, orgs: [], recentUpdates: [], failingStacks: [], inProgress: [], ...overrides };
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
  clearSecretsForTests();
});

function captureLogger(): { logger: HttpAppDeps['logger']; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk.toString());
        done();
      },
    }),
  );
  return { logger, lines: () => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function serve(overrides: Partial<HttpAppDeps> = {}): Promise<{ url: string; logs: () => Record<string, unknown>[] }> {
  const { logger, lines } = captureLogger();
  const deps: HttpAppDeps = {
    metrics: new ExporterMetrics({ store: await memoryStore(), version: '1.2.3', revision: 'abc' }),
    readiness: () => Promise.resolve({ ready: true }),
    status: () => Promise.resolve(report()),
    logger,
    ...overrides,
  };
  const server = await startHttpServer(createHttpApp(deps), { host: '127.0.0.1', port: 0 });
  running.push(server);
  return { url: server.url, logs: lines };
}

describe('GET /metrics', () => {
  it('answers the Prometheus text format by default', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    expect(body).toContain('# TYPE pulumi_updates_total counter');
    expect(body).toContain('pulumi_exporter_build_info{version="1.2.3",revision="abc"');
  });

  it('answers OpenMetrics when the Accept header asks for it', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const body = await res.text();
    expect(body).toContain('# TYPE pulumi_updates counter');
    expect(body.endsWith('# EOF\n')).toBe(true);
  });

  it('compresses the exposition with gzip only when the client accepts it', async () => {
    const { url } = await serve();
    const raw = async (encoding: string): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = request(`${url}/metrics`, { headers: { 'accept-encoding': encoding } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end();
      });
    const zipped = await raw('gzip, deflate');
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['vary']).toContain('Accept-Encoding');
    const plain = await raw('identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gunzipSync(zipped.body).toString('utf8')).toBe(plain.body.toString('utf8'));
    expect(Number(plain.headers['content-length'])).toBe(plain.body.length);
  });

  it('passes the Accept header through to the renderer verbatim', async () => {
    const seen: (string | undefined)[] = [];
    const { url } = await serve({
      metrics: {
        render: (accept) => {
          seen.push(accept);
          return Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'x 1\n' });
        },
      },
    });
    await (await fetch(`${url}/metrics`, { headers: { accept: 'text/plain;q=0.9' } })).text();
    expect(seen).toEqual(['text/plain;q=0.9']);
  });
});

describe('GET /healthz and /readyz', () => {
  it('answers /healthz with 200 ok', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('answers /readyz with 503 and the reason until ready, then 200', async () => {
    let readiness: Readiness = { ready: false, reason: 'the first complete poll cycle has not finished yet' };
    const { url } = await serve({ readiness: () => Promise.resolve(readiness) });
    const before = await fetch(`${url}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toBe('not ready: the first complete poll cycle has not finished yet\n');
    readiness = { ready: true };
    const after = await fetch(`${url}/readyz`);
    expect(after.status).toBe(200);
    expect(await after.text()).toBe('ready\n');
  });

  it('answers 503 without details when the readiness check itself throws, and logs it', async () => {
    const { url, logs } = await serve({ readiness: () => Promise.reject(new Error('SQLITE_BUSY at /var/lib/state.db')) });
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toBe('not ready: the readiness check failed\n');
    expect(logs().some((l) => l['msg'] === 'readiness check failed')).toBe(true);
  });

  it('never shows a registered secret in a readiness reason', async () => {
    registerSecret('pul-0123456789abcdef');
    const { url } = await serve({
      readiness: () => Promise.resolve({ ready: false, reason: 'token pul-0123456789abcdef\nwas refused' }),
    });
    const text = await (await fetch(`${url}/readyz`)).text();
    expect(text).toBe('not ready: token [REDACTED] was refused\n');
  });
});

describe('GET / and /status.json', () => {
  const withPoll = report({
    lastPoll: { result: 'success', finishedAt: '2024-05-01T10:00:00.000Z', durationSeconds: 12.3456, stacksFailed: 0, updatesExported: 3, backlog: 0 },
  });

  it('shows the status page: version, the last poll and links to the other endpoints', async () => {
    const { url } = await serve({ status: () => Promise.resolve(withPoll) });
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).toContain('Version 1.2.3');
    expect(html).toContain('at 2024-05-01T10:00:00.000Z in 12s; 3 updates exported');
    for (const link of ['metrics', 'status.json', 'healthz', 'readyz']) expect(html).toContain(`<a href="${link}">`);
  });

  it('answers the same report as JSON at /status.json and at / for Accept: application/json', async () => {
    const { url } = await serve({ status: () => Promise.resolve(withPoll) });
    const json = await fetch(`${url}/status.json`);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await json.json()).toEqual(withPoll);
    const negotiated = await fetch(`${url}/`, { headers: { accept: 'application/json' } });
    expect(negotiated.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await negotiated.json()).toEqual(withPoll);
  });

  it('says there was no poll yet before the first one', async () => {
    const { url } = await serve();
    expect(await (await fetch(`${url}/`)).text()).toContain('Last poll: none yet');
  });

  it('escapes everything it shows', async () => {
    const { url } = await serve({
      status: () =>
        Promise.resolve(
          report({
            version: '<script>alert(1)</script>',
            lastPoll: { result: '"><img src=x onerror=alert(1)>', finishedAt: "it's & more", durationSeconds: 1, stacksFailed: 0, updatesExported: 0, backlog: 0 },
          }),
        ),
    });
    const html = await (await fetch(`${url}/`)).text();
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('it&#39;s &amp; more');
  });
});

describe('GET / during a backfill', () => {
  const backfillStatus: StatusReport = report({
    backfill: {
      running: {
        phase: 'reading',
        firstRun: true,
        listedAllOrgs: true,
        stacksListed: 10_000,
        stacksToRead: 10_000,
        stacksRead: 1_200,
        stacksPending: 8_800,
        updatesDiscovered: 3_150,
        updatesExported: 3_146,
        updatesEstimated: 17_460,
        events: 400_000,
        elapsedSeconds: 600,
        etaSeconds: 2_731,
      },
      lastFinished: {
        // Typed, yet escaped all the same.
        result: '<b>success</b>' as 'success',
        firstRun: true,
        finishedAt: '2024-05-01T10:00:00.000Z',
        durationSeconds: 3_331.5,
        stacksRead: 10_000,
        updatesExported: 17_459,
        events: 2_000_000,
      },
    },
  });

  it('shows stacks read and pending, updates discovered and exported, and the ETA as an estimate', async () => {
    const { url } = await serve({ status: () => Promise.resolve(backfillStatus) });
    const html = await (await fetch(`${url}/`)).text();
    expect(html).toContain('<tr><th scope="row">stacks pending</th><td>8800</td></tr>');
    expect(html).toContain('<tr><th scope="row">stacks read</th><td>1200</td></tr>');
    expect(html).toContain('<tr><th scope="row">updates discovered</th><td>3150</td></tr>');
    expect(html).toContain('<tr><th scope="row">updates exported</th><td>3146</td></tr>');
    expect(html).toContain('<tr><th scope="row">time left (estimate from the rate so far)</th><td>~2731 s</td></tr>');
    expect(html).toContain('First run: <strong>&lt;b&gt;success&lt;/b&gt;</strong> at 2024-05-01T10:00:00.000Z after 3331.5 s; 17459 updates');
  });

  it('says what is not known yet instead of inventing a figure', async () => {
    const running = { ...backfillStatus.backfill!.running!, phase: 'listing' as const, stacksToRead: undefined, etaSeconds: undefined, updatesEstimated: undefined };
    const { url } = await serve({ status: () => Promise.resolve(report({ backfill: { running } })) });
    const html = await (await fetch(`${url}/`)).text();
    expect(html).toContain('<td>not known until every org is listed</td>');
    expect(html).toContain('<tr><th scope="row">time left (estimate from the rate so far)</th><td>unknown yet</td></tr>');
  });

  it('answers the same status as JSON when the client asks for it', async () => {
    const { url } = await serve({ status: () => Promise.resolve(backfillStatus) });
    const res = await fetch(`${url}/`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(backfillStatus);
    const html = await fetch(`${url}/`, { headers: { accept: 'text/html,application/json;q=0.9' } });
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });
});

describe('unknown routes and errors', () => {
  it('answers 404 JSON for unknown paths and methods', async () => {
    const { url } = await serve();
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/metrics'],
      ['GET', '/metrics/extra'],
    ] as const) {
      const res = await fetch(`${url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error: 'not found' });
    }
  });

  it('answers /metrics with 503 and the error code only when the metrics cannot be rendered, and logs the error once', async () => {
    const { url, logs } = await serve({
      metrics: { render: () => Promise.reject(new ExporterError('STATE_ERROR', 'boom: database disk image is malformed')) },
    });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toBe('metrics unavailable: STATE_ERROR (see the exporter log)\n');
    const errors = logs().filter((l) => l['level'] === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.['code']).toBe('STATE_ERROR');
    expect((errors[0]?.['err'] as { message: string }).message).toContain('boom');
  });

  it('answers 500 when the status page cannot be built (the store failed, or it threw synchronously)', async () => {
    for (const status of [() => Promise.reject(new Error('database disk image is malformed')), () => { throw new TypeError('cannot read lastPoll'); }]) {
      const { url } = await serve({ status });
      for (const path of ['/', '/status.json']) {
        const res = await fetch(`${url}${path}`);
        expect(res.status).toBe(500);
        expect(await res.json()).toEqual({ error: 'internal error' });
      }
    }
  });

  it('sets defensive headers and no X-Powered-By', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/`);
    await res.text();
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });
});
