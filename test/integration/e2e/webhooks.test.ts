import { createHmac, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { stackKey, type StackRef } from '../../../src/domain/stack.js';
import { rootSpanIdFor, traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { buildApp, configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { parseExposition, sumOf } from '../../helpers/exposition.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { createTestDatabase, postgresAvailable } from '../../helpers/postgres.js';
import { eventually } from '../../helpers/processes.js';

const SECRET = 'e2e-webhook-secret-0123456789';

interface Rig {
  sim: RunningSimulator;
  app: App;
  receiver: OtlpReceiver;
  url: string;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Simulator, OTLP receiver and an exporter with HTTP that polls once an hour (so only webhooks make it fresh). */
async function rig(options: { firstCycle?: boolean; webhooks?: ConfigInput['webhooks'] } = {}): Promise<Rig> {
  const sim = await startTestSimulator({ scale: { orgs: 1, projectsPerOrg: 2, stacksPerProject: 3, updatesPerStack: 2, resourcesPerStack: 4 }, fixtures: false });
  cleanups.push(() => sim.close());
  const receiver = await startOtlpReceiver();
  cleanups.push(() => receiver.close());
  const { dir, cleanup } = tempDir('pue-webhooks-');
  cleanups.push(cleanup);
  const config = configFor(sim, `${dir}/state.db`, {
    traces: { exporter: 'otlp', endpoint: receiver.url },
    // No cycle at all while the test runs when firstCycle is false (the job waits out its jitter).
    poll: { intervalSeconds: 3600, initialJitterSeconds: options.firstCycle === false ? 3600 : 0 },
    webhooks: { secret: SECRET, ...options.webhooks },
  });
  const app = buildApp(config, true);
  cleanups.push(() => app.stop());
  await app.start();
  if (options.firstCycle !== false) await eventually(async () => app.lastPoll(), 30_000, 'the first poll cycle');
  return { sim, app, receiver, url: app.webhookUrl() ?? '' };
}

function body(stack: StackRef, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    user: { name: 'Morty Smith', githubLogin: 'morty', avatarUrl: 'https://example.com/m.png' },
    organization: { name: stack.org, githubLogin: stack.org, avatarUrl: 'https://example.com/o.png' },
    projectName: stack.project,
    stackName: stack.stack,
    kind: 'update',
    result: 'succeeded',
    isPreview: false,
    ...extra,
  });
}

async function deliver(url: string, payload: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'pulumi-webhook-id': randomUUID(),
      'pulumi-webhook-kind': 'stack_update',
      'pulumi-webhook-signature': createHmac('sha256', SECRET).update(payload).digest('hex'),
      ...headers,
    },
    body: payload,
  });
  await res.arrayBuffer();
  return res.status;
}

async function metric(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumOf(parseExposition((await app.metrics.render()).body), name, labels);
}

const updatesOf = (app: App, s: StackRef): Promise<number> =>
  metric(app, 'pulumi_updates_total', { org: s.org, project: s.project, stack: s.stack });

function firstStack(sim: RunningSimulator): StackRef {
  const s = sim.truth().stacks.find((x) => x.updates.length > 0)!;
  return { org: s.org, project: s.project, stack: s.stack };
}

describe('webhooks end to end (simulator -> exporter)', () => {
  it('the simulator\'s signed deliveries get a finished update\'s trace root and metrics out long before the next poll', async () => {
    const { sim, app, receiver, url } = await rig();
    sim.webhooks.setTarget({ url, secret: SECRET });
    const stack = firstStack(sim);
    const before = await updatesOf(app, stack);

    const id = sim.control.startUpdate(stack, { kind: 'update', result: 'succeeded' });
    // The start (a `deployment` delivery) makes the running update visible at once.
    await eventually(
      async () => ((await metric(app, 'pulumi_stack_update_in_progress', { stack: stack.stack, project: stack.project })) === 1 ? true : undefined),
      10_000,
      'the running update in pulumi_stack_update_in_progress',
    );
    sim.control.completeUpdate(stack, id);
    await eventually(async () => ((await updatesOf(app, stack)) === before + 1 ? true : undefined), 10_000, 'the finished update in pulumi_updates_total');
    const traceId = traceIdFor(stack, id);
    await eventually(async () => receiver.spans().find((s) => s.traceId === traceId && s.spanId === rootSpanIdFor(traceId)), 10_000, 'the root span');

    await sim.webhooks.flush();
    const sent = sim.webhooks.deliveries().filter((d) => d.updateId === id);
    expect(sent.map((d) => [d.kind, d.status])).toEqual([
      ['deployment', 202],
      ['stack_update', 202],
    ]);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { kind: 'stack_update', outcome: 'accepted' })).toBe(1);
    expect(await metric(app, 'pulumi_exporter_webhook_syncs_total', { result: 'synced' })).toBe(2);
    expect(app.lastPoll()?.finishedAtMs).toBeDefined();
    expect(await metric(app, 'pulumi_exporter_polls_total')).toBe(1);
  });

  it('refuses missing, malformed and wrong signatures (401, counted) without syncing, then a valid one syncs', async () => {
    const { sim, app, url } = await rig();
    const stack = firstStack(sim);
    sim.control.addCompletedUpdate(stack);
    const before = await updatesOf(app, stack);
    const payload = body(stack);
    expect(await deliver(url, payload, { 'pulumi-webhook-signature': '' })).toBe(401);
    expect(await deliver(url, payload, { 'pulumi-webhook-signature': 'not-a-signature' })).toBe(401);
    expect(await deliver(url, payload, { 'pulumi-webhook-signature': createHmac('sha256', 'another-secret-0123456789').update(payload).digest('hex') })).toBe(401);
    await new Promise((r) => setTimeout(r, 600));
    expect(await updatesOf(app, stack)).toBe(before);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { outcome: 'unauthorized' })).toBe(3);
    expect(await metric(app, 'pulumi_exporter_errors_total', { code: 'WEBHOOK_SIGNATURE_INVALID' })).toBe(3);

    expect(await deliver(url, payload)).toBe(202);
    await eventually(async () => ((await updatesOf(app, stack)) === before + 1 ? true : undefined), 10_000, 'the update after the valid delivery');
  });

  it('counts an update once however often its delivery is replayed, with the same or a new delivery id', async () => {
    const { sim, app, url } = await rig();
    const stack = firstStack(sim);
    sim.control.addCompletedUpdate(stack);
    const before = await updatesOf(app, stack);
    const payload = body(stack);
    const id = randomUUID();
    expect(await deliver(url, payload, { 'pulumi-webhook-id': id })).toBe(202);
    await eventually(async () => ((await updatesOf(app, stack)) === before + 1 ? true : undefined), 10_000, 'the update');
    expect(await deliver(url, payload, { 'pulumi-webhook-id': id })).toBe(200);
    // A replay under another id passes the dedupe: the sync it causes finds nothing new.
    for (let i = 0; i < 3; i++) expect(await deliver(url, payload)).toBe(202);
    await eventually(async () => ((await metric(app, 'pulumi_exporter_webhook_syncs_total', { result: 'synced' })) >= 2 ? true : undefined), 10_000, 'the replay\'s sync');
    expect(await updatesOf(app, stack)).toBe(before + 1);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { outcome: 'duplicate' })).toBe(1);
  });

  it('refuses an oversized body (413) and acknowledges an unknown kind (200), counting both', async () => {
    const { sim, app, url } = await rig({ webhooks: { maxBodyBytes: 4096 } });
    const stack = firstStack(sim);
    expect(await deliver(url, body(stack, { padding: 'x'.repeat(10_000) }))).toBe(413);
    expect(await deliver(url, '{"organization":{"githubLogin":"x"}}', { 'pulumi-webhook-kind': 'brand_new_kind' })).toBe(200);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { kind: 'stack_update', outcome: 'too_large' })).toBe(1);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { kind: 'other', outcome: 'ignored' })).toBe(1);
    expect(await metric(app, 'pulumi_exporter_errors_total', { code: 'WEBHOOK_BODY_TOO_LARGE' })).toBe(1);
  });

  it('discovers a stack it has not listed yet (no poll cycle has run) and exports its history, keeping the org\'s other stacks', async () => {
    const { sim, app, url } = await rig({ firstCycle: false });
    expect(await app.store.listStacks()).toEqual([]);
    const truth = sim.truth();
    const stack = firstStack(sim);
    const expected = truth.stacks.find((s) => stackKey(s) === stackKey(stack))!.updates.length;
    expect(await deliver(url, body(stack))).toBe(202);
    await eventually(async () => ((await updatesOf(app, stack)) === expected ? true : undefined), 20_000, 'the discovered stack\'s updates');
    const known = (await app.store.listStacks()).map(stackKey).sort();
    expect(known).toEqual(truth.stacks.map(stackKey).sort());
    expect(app.lastPoll()).toBeUndefined();
  });

  it('answers 200 filtered for an org that is not configured', async () => {
    const { app, url } = await rig();
    expect(await deliver(url, body({ org: 'not-configured', project: 'p', stack: 's' }))).toBe(200);
    expect(await metric(app, 'pulumi_exporter_webhook_deliveries_total', { outcome: 'filtered' })).toBe(1);
  });

  it('a storm of deliveries for one stack costs at most one sync per coalescing window, each a single history read (one at a time: see the SyncTrigger unit tests)', async () => {
    const { sim, app, url } = await rig();
    const stack = firstStack(sim);
    sim.control.addCompletedUpdate(stack);
    const before = await updatesOf(app, stack);
    sim.resetStats();
    const payload = body(stack);
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 60 }, () => deliver(url, payload)));
    const spreadMs = Date.now() - started;
    expect(answers.every((s) => s === 202)).toBe(true);
    await eventually(async () => ((await updatesOf(app, stack)) === before + 1 ? true : undefined), 10_000, 'the update');
    await eventually(
      async () => ((await metric(app, 'pulumi_exporter_webhook_syncs_total')) === 60 ? true : undefined),
      10_000,
      'every delivery to be synced or coalesced',
    );
    const synced = await metric(app, 'pulumi_exporter_webhook_syncs_total', { result: 'synced' });
    // Deliveries within one 250 ms window share a sync; the queue adds at most one sync behind
    // the running one, so the count is bounded by the windows the storm spanned, not by 60.
    expect(synced).toBeGreaterThanOrEqual(1);
    expect(synced).toBeLessThanOrEqual(2 + Math.ceil(spreadMs / 250));
    expect(synced).toBeLessThan(10);
    // Each sync is one history call: no sync ran that the counter does not show.
    expect(sim.stats().byEndpoint.listUpdates).toBe(synced);
    expect(await updatesOf(app, stack)).toBe(before + 1);
  });

  it('serves the webhook on a port of its own when webhooks.port is set, and no longer on the metrics port', async () => {
    const { app, url, sim } = await rig({ webhooks: { port: 0 } });
    const metricsUrl = app.httpUrl()!;
    expect(url.startsWith(metricsUrl)).toBe(false);
    expect(await deliver(url, body(firstStack(sim)))).toBe(202);
    expect(await deliver(`${metricsUrl}/webhooks/pulumi`, body(firstStack(sim)))).toBe(404);
    expect((await fetch(`${url.replace('/webhooks/pulumi', '')}/metrics`)).status).toBe(404);
  });
});

const postgres = await postgresAvailable();

describe('webhooks switched off', () => {
  it('webhooks.enabled false serves no webhook endpoint', async () => {
    const { app, sim } = await rig({ webhooks: { enabled: false } });
    expect(app.webhookUrl()).toBeUndefined();
    expect(await deliver(`${app.httpUrl()!}/webhooks/pulumi`, body(firstStack(sim)))).toBe(404);
  });
});

describe.runIf(postgres)('webhooks with two replicas on PostgreSQL', () => {
  it('a delivery reaching the replica that does not hold the stack is harmless: the holder syncs it, the update counts once', async () => {
    const sim = await startTestSimulator({ scale: { orgs: 1, projectsPerOrg: 2, stacksPerProject: 3, updatesPerStack: 2, resourcesPerStack: 4 }, fixtures: false });
    cleanups.push(() => sim.close());
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    cleanups.push(() => client.end());
    // No scheduled cycle: the test runs them, so the stacks are split before the delivery.
    const config = configFor(sim, db.url, { poll: { intervalSeconds: 3600, initialJitterSeconds: 3600 }, webhooks: { secret: SECRET } });
    const replicas = [buildApp(config, true), buildApp(config, true)];
    for (const app of replicas) cleanups.push(() => app.stop());
    for (const app of replicas) await app.start();
    for (let round = 0; round < 3; round++) for (const app of replicas) await app.runOnce();
    const { rows: owners } = await client.query<{ owner: string; n: string }>('SELECT owner, count(*) AS n FROM stack_leases WHERE owner IS NOT NULL GROUP BY owner');
    expect(owners).toHaveLength(2);

    const stack = firstStack(sim);
    const updateId = sim.control.addCompletedUpdate(stack);
    const payload = body(stack);
    // The same event reaches both replicas (an org and a stack webhook, or two deliveries behind one Service).
    for (const app of replicas) expect(await deliver(app.webhookUrl()!, payload)).toBe(202);
    const count = async (): Promise<number> =>
      Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM exported_updates WHERE update_id = $1', [updateId])).rows[0]!.n);
    await eventually(async () => ((await count()) === 1 ? true : undefined), 15_000, 'the update exported by the stack\'s holder');
    const results = async (result: string): Promise<number> =>
      (await Promise.all(replicas.map((app) => metric(app, 'pulumi_exporter_webhook_syncs_total', { result })))).reduce((a, b) => a + b, 0);
    await eventually(async () => ((await results('synced')) + (await results('not_held')) === 2 ? true : undefined), 10_000, 'both deliveries handled');
    expect(await results('synced')).toBe(1);
    expect(await results('not_held')).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await count()).toBe(1);
  });
});
