import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { StackRef } from '../../../src/domain/stack.js';
import { createHttpApp } from '../../../src/http/http-app.js';
import { startHttpServer, type RunningHttpServer } from '../../../src/http/http-server.js';
import { createWebhookApp, WEBHOOK_PATH, webhookRouter } from '../../../src/http/webhook-route.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import type { TriggerDecision } from '../../../src/sync/sync-trigger.js';
import { parseExposition, sumOf } from '../../helpers/exposition.js';
import { memoryStore } from '../../helpers/memory-store.js';

const SECRET = 'a-webhook-secret-of-some-length';
const running: RunningHttpServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

/** A delivery body in the shape of shared pulumi-webhooks.md section 2.4. */
function updateBody(stack: Partial<StackRef> = {}, extra: Record<string, unknown> = {}): string {
  const org = stack.org ?? 'acme';
  return JSON.stringify({
    user: { name: 'Morty Smith', githubLogin: 'morty', avatarUrl: 'https://example.com/m.png' },
    organization: { name: 'Acme Corp', githubLogin: org, avatarUrl: 'https://example.com/a.png' },
    projectName: stack.project ?? 'website',
    stackName: stack.stack ?? 'prod',
    updateUrl: `https://app.pulumi.com/${org}/website/prod/updates/42`,
    kind: 'update',
    result: 'succeeded',
    resourceChanges: { create: 2, same: 28 },
    isPreview: false,
    ...extra,
  });
}

const sign = (body: string | Buffer, secret = SECRET): string => createHmac('sha256', secret).update(body).digest('hex');

interface Served {
  url: string;
  requests: StackRef[];
  logs: () => string;
  counts: () => Promise<(labels: Record<string, string>) => number>;
}

async function serve(options: { secret?: string; decision?: TriggerDecision; maxBodyBytes?: number; ownPort?: boolean; previews?: boolean } = {}): Promise<Served> {
  const requests: StackRef[] = [];
  const out: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, done) => (out.push(c.toString()), done()) }));
  const metrics = new ExporterMetrics({ store: await memoryStore(), version: 't', revision: 't' });
  const router = webhookRouter({
    secret: options.secret,
    maxBodyBytes: options.maxBodyBytes ?? 65_536,
    ...(options.previews === undefined ? {} : { previews: options.previews }),
    trigger: {
      request: (ref) => {
        requests.push(ref);
        return options.decision ?? 'accepted';
      },
    },
    metrics,
    logger,
  });
  const app = options.ownPort
    ? createWebhookApp(router, logger)
    : createHttpApp({ metrics, readiness: async () => ({ ready: true }), status: async () => { throw new Error('unused'); }, logger, webhook: router });
  const server = await startHttpServer(app, { host: '127.0.0.1', port: 0 });
  running.push(server);
  return {
    url: `${server.url}${WEBHOOK_PATH}`,
    requests,
    logs: () => out.join(''),
    counts: async () => {
      const samples = parseExposition((await metrics.render()).body);
      return (labels) => sumOf(samples, 'pulumi_exporter_webhook_deliveries_total', labels);
    },
  };
}

function deliver(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: '*/*', 'pulumi-webhook-id': crypto.randomUUID(), 'pulumi-webhook-kind': 'stack_update', ...headers },
    body,
  });
}

describe('POST /webhooks/pulumi with a secret', () => {
  it('accepts a correctly signed stack_update (202) and asks for a sync of the named stack (organization.githubLogin)', async () => {
    const s = await serve({ secret: SECRET });
    const body = updateBody();
    const res = await deliver(s.url, body, { 'pulumi-webhook-signature': sign(body) });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ outcome: 'accepted' });
    expect(s.requests).toEqual([{ org: 'acme', project: 'website', stack: 'prod' }]);
    expect((await s.counts())({ kind: 'stack_update', outcome: 'accepted' })).toBe(1);
  });

  it.each([
    ['missing', undefined, /no Pulumi-Webhook-Signature header/],
    ['malformed', 'sha256=abc', /not a hex HMAC-SHA256/],
    ['signed with another secret', 'other', /does not match/],
    ['signed over other bytes', 'altered', /does not match/],
  ])('refuses a %s signature with 401, counts it and syncs nothing', async (_what, signature, message) => {
    const s = await serve({ secret: SECRET });
    const body = updateBody();
    const header =
      signature === 'other' ? sign(body, 'another-secret-0123456789') : signature === 'altered' ? sign(`${body} `) : signature;
    const res = await deliver(s.url, body, header === undefined ? {} : { 'pulumi-webhook-signature': header });
    expect(res.status).toBe(401);
    const answer = (await res.json()) as { outcome: string; code: string; error: string };
    expect(answer).toMatchObject({ outcome: 'unauthorized', code: 'WEBHOOK_SIGNATURE_INVALID' });
    expect(answer.error).toMatch(message);
    expect(s.requests).toEqual([]);
    expect((await s.counts())({ outcome: 'unauthorized' })).toBe(1);
    expect(s.logs()).toContain('WEBHOOK_SIGNATURE_INVALID');
    expect(s.logs()).not.toContain(SECRET);
  });

  it('checks the signature before anything else: an unsigned ping or unknown kind is refused too', async () => {
    const s = await serve({ secret: SECRET });
    const res = await deliver(s.url, '{"timestamp":1,"message":"ping"}', { 'pulumi-webhook-kind': 'ping' });
    expect(res.status).toBe(401);
  });

  it('answers a replayed delivery (same Pulumi-Webhook-Id) with 200 duplicate and no second sync request', async () => {
    const s = await serve({ secret: SECRET });
    const body = updateBody();
    const headers = { 'pulumi-webhook-signature': sign(body), 'pulumi-webhook-id': '8d001000-7ef4-4086-b12a-3ec6d3ea1de9' };
    expect((await deliver(s.url, body, headers)).status).toBe(202);
    const replay = await deliver(s.url, body, headers);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ outcome: 'duplicate' });
    expect(s.requests).toHaveLength(1);
    expect((await s.counts())({ outcome: 'duplicate' })).toBe(1);
  });
});

describe('POST /webhooks/pulumi', () => {
  it('accepts unsigned deliveries when no secret is set', async () => {
    const s = await serve();
    expect((await deliver(s.url, updateBody())).status).toBe(202);
    expect(s.requests).toHaveLength(1);
  });

  it('refuses a body over maxBodyBytes with 413 and counts it', async () => {
    const s = await serve({ secret: SECRET, maxBodyBytes: 2048 });
    const body = updateBody({}, { padding: 'x'.repeat(4096) });
    const res = await deliver(s.url, body, { 'pulumi-webhook-signature': sign(body) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ outcome: 'too_large', code: 'WEBHOOK_BODY_TOO_LARGE' });
    expect(s.requests).toEqual([]);
    expect((await s.counts())({ kind: 'stack_update', outcome: 'too_large' })).toBe(1);
  });

  it('acknowledges and ignores unknown kinds, pings, previews and deleted stacks (200), counting each', async () => {
    const s = await serve();
    for (const [kind, body] of [
      ['team_member_added', '{"organization":"acme"}'],
      ['ping', '{"timestamp":1747231200,"message":"🍹 Just a friendly ping from Pulumi 🍹"}'],
      ['stack_preview', updateBody({}, { isPreview: true })],
      ['stack', JSON.stringify({ organization: { githubLogin: 'acme' }, action: 'deleted', projectName: 'website', stackName: 'prod' })],
    ] as const) {
      const res = await deliver(s.url, body, { 'pulumi-webhook-kind': kind });
      expect(res.status, kind).toBe(200);
      expect(await res.json()).toEqual({ outcome: 'ignored' });
    }
    expect(s.requests).toEqual([]);
    const count = await s.counts();
    expect(count({ kind: 'other', outcome: 'ignored' })).toBe(1);
    expect(count({ kind: 'ping', outcome: 'ignored' })).toBe(1);
    expect(count({ kind: 'stack_preview', outcome: 'ignored' })).toBe(1);
    expect(count({ kind: 'stack', outcome: 'ignored' })).toBe(1);
  });

  it('syncs the stack for a finished preview when previews are exported (previews.enabled)', async () => {
    const s = await serve({ previews: true });
    const res = await deliver(s.url, updateBody({}, { isPreview: true }), { 'pulumi-webhook-kind': 'stack_preview' });
    expect(res.status).toBe(202);
    expect(s.requests).toEqual([{ org: 'acme', project: 'website', stack: 'prod' }]);
    expect((await s.counts())({ kind: 'stack_preview', outcome: 'accepted' })).toBe(1);
  });

  it('turns deployments, drift remediations and created stacks into sync requests too', async () => {
    const s = await serve();
    for (const kind of ['deployment', 'drift_remediation', 'stack']) {
      expect((await deliver(s.url, updateBody({ stack: kind.replace('_', '-') }), { 'pulumi-webhook-kind': kind })).status).toBe(202);
    }
    expect(s.requests.map((r) => r.stack)).toEqual(['deployment', 'drift-remediation', 'stack']);
  });

  it('accepts the 2019 payload, whose organization is the login as a string', async () => {
    const s = await serve();
    const body = JSON.stringify({ organization: 'acme', projectName: 'website', stackName: 'prod', kind: 'update', result: 'succeeded' });
    expect((await deliver(s.url, body)).status).toBe(202);
    expect(s.requests).toEqual([{ org: 'acme', project: 'website', stack: 'prod' }]);
  });

  it.each([
    ['not JSON', '{"organization":', /not JSON/],
    ['a JSON array', '[]', /not a JSON object/],
    ['without stackName', JSON.stringify({ organization: { githubLogin: 'acme' }, projectName: 'website' }), /stackName is missing/],
    ['with a path in a name', updateBody({ stack: '../etc' }), /stackName is missing or not a valid name/],
    ['without organization', JSON.stringify({ projectName: 'website', stackName: 'prod' }), /organization.githubLogin/],
  ])('refuses a stack_update body %s with 400 WEBHOOK_PAYLOAD_INVALID', async (_what, body, message) => {
    const s = await serve();
    const res = await deliver(s.url, body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: string; error: string };
    expect(answer.code).toBe('WEBHOOK_PAYLOAD_INVALID');
    expect(answer.error).toMatch(message);
    expect((await s.counts())({ kind: 'stack_update', outcome: 'malformed' })).toBe(1);
  });

  it('refuses a delivery without a Pulumi-Webhook-Kind header (400) and a compressed body (415)', async () => {
    const s = await serve();
    const res = await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: updateBody() });
    expect(res.status).toBe(400);
    const gz = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'pulumi-webhook-kind': 'stack_update' },
      body: gzipSync(updateBody()),
    });
    expect(gz.status).toBe(415);
    expect(s.requests).toEqual([]);
  });

  it('answers 200 filtered for a stack the configuration does not watch', async () => {
    const s = await serve({ decision: 'filtered' });
    const res = await deliver(s.url, updateBody({ org: 'someone-else' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ outcome: 'filtered' });
    expect((await s.counts())({ outcome: 'filtered' })).toBe(1);
  });

  it('answers other methods with 405 and Allow: POST', async () => {
    const s = await serve();
    const res = await fetch(s.url);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('on a port of its own serves the webhook and nothing else', async () => {
    const s = await serve({ ownPort: true });
    const res = await deliver(s.url, updateBody());
    expect(res.status).toBe(202);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const base = s.url.slice(0, -WEBHOOK_PATH.length);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/`)).status).toBe(404);
  });
});
