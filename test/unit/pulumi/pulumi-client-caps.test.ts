import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PulumiClient, type PulumiClientOptions } from '../../../src/pulumi/pulumi-client.js';
import { collect, recordingObserver, rejection } from '../../helpers/pulumi-client.js';
import { sendJson, serversPerTest, type Handler } from './local-server.js';

const TOKEN = 'pul-9999888877776666555544443333222211110000';
const ref = { org: 'acme', project: 'web', stack: 'prod' };
const MiB = 1024 * 1024;

const { serve } = serversPerTest();

function client(url: string, extra: Partial<PulumiClientOptions> = {}): PulumiClient {
  return new PulumiClient({ baseUrl: url, accessToken: TOKEN, version: '0', retryBaseDelayMillis: 1, ...extra });
}

/** Writes 64 KiB chunks of a never-ending JSON string as fast as the client reads; counts bytes sent. */
function endlessBody(sent: { bytes: number }): Handler {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  return (_req, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"stacks":[{"id":"');
    const pump = (): void => {
      while (!res.destroyed) {
        sent.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  };
}

describe('response body cap', () => {
  it('stops reading an endless body at maxResponseBytes with API_RESPONSE_TOO_LARGE and bounded memory', async () => {
    const sent = { bytes: 0 };
    const s = await serve(endlessBody(sent));
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const observer = recordingObserver();
    const err = await rejection(client(s.url, { maxResponseBytes: 2 * MiB, observer }).listStacks('acme'));
    // Counted as a failed request in pulumi_exporter_api_requests_total.
    expect(observer.requests).toEqual(['listStacks:malformed']);
    expect(err.code).toBe('API_RESPONSE_TOO_LARGE');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('pulumi.maxResponseBytes');
    expect(Date.now() - started).toBeLessThan(3_000);
    // Not retried: reading it again would only fetch the same oversized page.
    expect(s.requests).toHaveLength(1);
    // The server could write only what socket buffers took beyond the cap.
    expect(sent.bytes).toBeLessThan(16 * MiB);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MiB);
  });

  it('refuses a body whose Content-Length is over the cap without reading it', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(512 * MiB) });
      res.write('{');
    });
    const err = await rejection(client(s.url, { maxResponseBytes: MiB }).listUpdates(ref, 1, 10));
    expect(err.code).toBe('API_RESPONSE_TOO_LARGE');
  });

  it('counts decoded bytes, so a small gzip body that inflates past the cap is refused', async () => {
    const inflated = Buffer.concat([Buffer.from('{"updates":[],"pad":"'), Buffer.alloc(8 * MiB, 'a'), Buffer.from('"}')]);
    const gz = gzipSync(inflated);
    expect(gz.length).toBeLessThan(MiB / 8);
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': String(gz.length) });
      res.end(gz);
    });
    const err = await rejection(client(s.url, { maxResponseBytes: MiB }).listUpdates(ref, 1, 10));
    expect(err.code).toBe('API_RESPONSE_TOO_LARGE');
  });

  it('reads a body right at the cap', async () => {
    const body = JSON.stringify({ updates: [], itemsPerPage: 10, total: 0, pad: 'x'.repeat(70_000) });
    const s = await serve((_req, res) => sendJson(res, 200, body));
    const page = await client(s.url, { maxResponseBytes: Buffer.byteLength(body) }).listUpdates(ref, 1, 10);
    expect(page.total).toBe(0);
  });
});

describe('page caps', () => {
  const freshTokens: Handler = (req, res, i) => {
    const path = new URL(req.url ?? '', 'http://x').pathname;
    if (path.endsWith('/events')) {
      const events = Array.from({ length: 50 }, (_, k) => ({ timestamp: 1_700_000_000 + k, type: 'diagnosticEvent', diagnosticEvent: { message: `line ${i}/${k}`, color: 'never', severity: 'info' } }));
      return sendJson(res, 200, { events, continuationToken: `fresh-${i}` });
    }
    if (path === '/api/user/stacks') return sendJson(res, 200, { stacks: [{ orgName: 'acme', projectName: 'p', stackName: `s${i}` }], continuationToken: `fresh-${i}` });
    const updates = Array.from({ length: 10 }, (_, k) => ({
      updateID: `u-${i}-${k}`,
      version: 1_000_000 - i * 10 - k,
      info: { kind: 'update', result: 'succeeded', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 1_000_000 - i * 10 - k, resourceChanges: {} },
    }));
    return sendJson(res, 200, { updates, itemsPerPage: 10, total: 100_000_000 });
  };

  it('ends an event stream that keeps sending fresh continuation tokens after maxPagesPerListing pages', async () => {
    const s = await serve(freshTokens);
    const err = await rejection(collect(client(s.url, { maxPagesPerListing: 40 }).engineEvents(ref, 'u-1')));
    expect(err.code).toBe('API_TOO_MANY_PAGES');
    expect(err.message).toContain('pulumi.maxPagesPerListing');
    expect(s.requests).toHaveLength(40);
  });

  it('ends an endless stack listing after maxPagesPerListing pages', async () => {
    const s = await serve(freshTokens);
    const err = await rejection(client(s.url, { maxPagesPerListing: 25 }).listStacks('acme'));
    expect(err.code).toBe('API_TOO_MANY_PAGES');
    expect(s.requests).toHaveLength(25);
  });

  it('ends an endless update history after maxPagesPerListing pages', async () => {
    const s = await serve(freshTokens);
    const err = await rejection(client(s.url, { maxPagesPerListing: 12 }).historySince(ref, { afterVersion: 0 }));
    expect(err.code).toBe('API_TOO_MANY_PAGES');
    expect(s.requests).toHaveLength(12);
  });
});

describe('redirects', () => {
  it('does not follow a redirect to another origin, and the other origin sees no request', async () => {
    const elsewhere = await serve((_req, res) => sendJson(res, 200, { stacks: [] }));
    const s = await serve((_req, res) => {
      res.writeHead(302, { Location: `${elsewhere.url}/steal?x=1` });
      res.end();
    });
    const observer = recordingObserver();
    const err = await rejection(client(s.url, { observer }).listStacks('acme'));
    expect(err.code).toBe('API_REDIRECT_REFUSED');
    expect(err.retryable).toBe(false);
    expect(observer.requests).toEqual(['listStacks:302']);
    expect(err.message).toContain(new URL(elsewhere.url).origin);
    expect(err.message).not.toContain(TOKEN);
    expect(elsewhere.requests).toHaveLength(0);
    expect(s.requests).toHaveLength(1);
  });

  it('follows a redirect within the backend origin, keeping the token', async () => {
    const s = await serve((req, res) => {
      if (req.url?.startsWith('/old/')) {
        res.writeHead(307, { Location: req.url.replace('/old/', '/') });
        return void res.end();
      }
      sendJson(res, 200, { stacks: [{ orgName: 'acme', projectName: 'p', stackName: 's' }] });
    });
    const stacks = await client(`${s.url}/old`).listStacks('acme');
    expect(stacks).toHaveLength(1);
    expect(s.requests.map((r) => r.headers.authorization)).toEqual([`token ${TOKEN}`, `token ${TOKEN}`]);
  });

  it('gives up on a redirect loop within the backend origin', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(302, { Location: '/api/user/stacks?again=1' });
      res.end();
    });
    const err = await rejection(client(s.url).listStacks('acme'));
    expect(err.code).toBe('API_REDIRECT_REFUSED');
    expect(s.requests).toHaveLength(6);
  });
});
