import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import { stackKey, type StackRef } from '../../../src/domain/stack.js';
import type { EventsPage } from '../../../src/pulumi/pulumi-api.js';
import { PulumiClient, type PulumiClientOptions } from '../../../src/pulumi/pulumi-client.js';
import { startSimulator, type RunningSimulator } from '../../../src/simulator/simulator.js';
import type { TruthStack, TruthUpdate } from '../../../src/simulator/simulator-truth.js';
import { collect, recordingObserver, rejection } from '../../helpers/pulumi-client.js';

const TOKEN = 'pul-integration-0123456789abcdef0123456789';
const NOW = 1_750_000_000;
const EVENT_PAGE = 25;

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ seed: 7, nowSeconds: NOW, stackPageSize: 4, eventPageSize: EVENT_PAGE, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await sim?.close();
});

beforeEach(() => {
  sim.faults.clear();
  sim.resetStats();
});

function client(extra: Partial<PulumiClientOptions> = {}): PulumiClient {
  return new PulumiClient({
    baseUrl: sim.url,
    accessToken: TOKEN,
    version: 'integration',
    requestTimeoutMillis: 5_000,
    maxAttempts: 4,
    retryBaseDelayMillis: 5,
    retryMaxDelayMillis: 2_000,
    maxConcurrentRequests: 8,
    historyPageSize: 7,
    ...extra,
  });
}

function refOf(t: TruthStack): StackRef {
  return { org: t.org, project: t.project, stack: t.stack };
}

function orgs(): string[] {
  return [...new Set(sim.truth().stacks.map((s) => s.org))];
}

/** The truth stack with the most history updates that is not the fixture stack. */
function busiestStack(): TruthStack {
  const candidates = sim.truth().stacks.filter((s) => s.project !== 'pulumi-samples');
  const best = [...candidates].sort((a, b) => b.updates.length - a.updates.length)[0];
  if (!best) throw new Error('the simulator has no stacks');
  return best;
}

function fixtureStack(): TruthStack {
  const fixture = sim.truth().stacks.find((s) => s.project === 'pulumi-samples' && s.stack === 'fixtures');
  if (!fixture) throw new Error('the simulator serves no fixture stack');
  return fixture;
}

function expectMatchesTruth(got: { updateId: string; version: number; kind: string; result: string; startTime: number; endTime?: number; resourceChanges: Readonly<Record<string, number>> }, want: TruthUpdate): void {
  expect({
    updateId: got.updateId,
    version: got.version,
    kind: got.kind,
    result: got.result,
    startTime: got.startTime,
    endTime: got.endTime,
    resourceChanges: got.resourceChanges,
  }).toEqual({
    updateId: want.updateId,
    version: want.version,
    kind: want.kind,
    result: want.historyResult,
    startTime: want.startTime,
    endTime: want.endTime,
    resourceChanges: want.resourceChanges,
  });
}

describe('PulumiClient against the simulator: paging', () => {
  it('lists every stack of every org, one maxResults page per org', async () => {
    const c = client();
    const truth = sim.truth().stacks;
    const got = (await Promise.all(orgs().map((o) => c.listStacks(o)))).flat();
    const byKey = new Map(got.map((s) => [stackKey(s), s]));
    expect([...byKey.keys()].sort()).toEqual(truth.map((t) => stackKey(t)).sort());
    expect(got).toHaveLength(truth.length);
    for (const t of truth) {
      const s = byKey.get(stackKey(t));
      expect(s?.resourceCount).toBe(t.resourceCount);
      expect(s?.lastUpdate).toBe(t.lastUpdate);
    }
    // stackPageSize 4 is only the server's default page: the client asks for maxResults=500,
    // so each org's few stacks come in one page (paging itself: pulumi-client-listing.test.ts).
    expect(sim.stats().byEndpoint.listStacks).toBe(orgs().length);
  });

  it('reads the full history of every stack, newest first, exactly as generated', async () => {
    const c = client();
    for (const t of sim.truth().stacks) {
      const history = await c.historySince(refOf(t), { afterVersion: 0 });
      const want = [...t.updates].reverse();
      expect(history).toHaveLength(want.length);
      history.forEach((u, i) => {
        const w = want[i];
        if (!w) throw new Error('missing truth');
        expectMatchesTruth(u, w);
        expect(u.stack).toEqual(refOf(t));
      });
    }
  });

  it('pages listUpdates by page number and historySince stops at the cursor', async () => {
    const t = busiestStack();
    const ref = refOf(t);
    const c = client();
    const all: string[] = [];
    for (let page = 1; ; page += 1) {
      const hp = await c.listUpdates(ref, page, 3);
      expect(hp.total).toBe(t.updates.length);
      all.push(...hp.updates.map((u) => u.updateId));
      if (hp.updates.length < 3) break;
    }
    expect(all).toEqual([...t.updates].reverse().map((u) => u.updateId));

    const newest = t.updates[t.updates.length - 1];
    const cursor = t.updates[t.updates.length - 3];
    if (!newest || !cursor) throw new Error('the busiest stack has fewer than 3 updates');
    sim.resetStats();
    const since = await c.historySince(ref, { afterVersion: cursor.version });
    expect(since.map((u) => u.version)).toEqual(t.updates.slice(-2).reverse().map((u) => u.version));
    expect(sim.stats().byEndpoint.listUpdates).toBe(1);
  });

  it('reads every event of every update of a few stacks, including the fixture stack', async () => {
    const c = client();
    const stacks = [fixtureStack(), busiestStack(), ...sim.truth().stacks.filter((s) => s.project !== 'pulumi-samples').slice(0, 2)];
    let multiPage = 0;
    for (const t of stacks) {
      for (const u of t.updates) {
        const got = await collect(c.engineEvents(refOf(t), u.updateId));
        const events: EngineEvent[] = got.flatMap((p) => [...p.events]);
        expect(events).toHaveLength(u.eventCount);
        expect(got[got.length - 1]?.continuationToken).toBeNull();
        expect(events.some((e) => e.type === 'unknown')).toBe(false);
        if (got.length > 1) multiPage += 1;
        if (u.resourceOperations !== null) {
          const pre = events.filter((e) => e.type === 'resourcePreEvent');
          expect(pre.map((e) => (e.type === 'resourcePreEvent' ? e.metadata.op : ''))).toEqual(u.resourceOperations.map((o) => o.op));
        }
        const summary = events.filter((e) => e.type === 'summaryEvent');
        expect(summary.length).toBeLessThanOrEqual(1);
      }
    }
    expect(multiPage).toBeGreaterThan(0);
  });

  it('reads the previews of the latest version of stacks that have them', async () => {
    const c = client();
    const withPreviews = sim.truth().stacks.filter((s) => s.previews.length > 0);
    expect(withPreviews.length).toBeGreaterThan(0);
    for (const t of withPreviews.slice(0, 5)) {
      const ref = refOf(t);
      const ids: string[] = [];
      for (let page = 1; ; page += 1) {
        const hp = await c.latestPreviews(ref, page, 2);
        ids.push(...hp.updates.map((u) => u.updateId));
        if (hp.updates.length < 2) break;
      }
      const known = new Set(t.previews.map((p) => p.updateId));
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) expect(known.has(id)).toBe(true);
      const newestPreview = t.previews[t.previews.length - 1];
      if (newestPreview) expect(ids).toContain(newestPreview.updateId);
      const first = ids[0];
      const preview = t.previews.find((p) => p.updateId === first);
      if (!preview) throw new Error('unknown preview');
      const events = (await collect(c.engineEvents(ref, preview.updateId))).flatMap((p) => [...p.events]);
      expect(events).toHaveLength(preview.eventCount);
    }
  });
});

describe('PulumiClient against the simulator: faults', () => {
  it('retries an injected 429 after the Retry-After it names', async () => {
    sim.faults.add({ kind: '429', endpoint: 'listStacks', count: 1, retryAfterSeconds: 1 });
    const sleeps: number[] = [];
    const observer = recordingObserver();
    const c = client({
      observer,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, ms));
      },
    });
    const org = orgs()[0] ?? '';
    const stacks = await c.listStacks(org);
    expect(stacks.length).toBe(sim.truth().stacks.filter((s) => s.org === org).length);
    expect(sleeps[0]).toBeGreaterThanOrEqual(1_000);
    expect(observer.requests[0]).toBe('listStacks:429');
    expect(observer.retries).toEqual(['listStacks:429']);
  });

  it('retries injected 500, 502, 503 and 504 answers and still returns the right history', async () => {
    const t = busiestStack();
    for (const kind of ['500', '502', '503', '504'] as const) sim.faults.add({ kind, endpoint: 'listUpdates', count: 1 });
    const observer = recordingObserver();
    const c = client({ observer, maxAttempts: 6 });
    const history = await c.historySince(refOf(t), { afterVersion: 0 });
    expect(history.map((u) => u.updateId)).toEqual([...t.updates].reverse().map((u) => u.updateId));
    expect(observer.retries.filter((r) => r === 'listUpdates:5xx')).toHaveLength(4);
    expect(observer.requests.slice(0, 4).sort()).toEqual(['listUpdates:500', 'listUpdates:502', 'listUpdates:503', 'listUpdates:504']);
  });

  it('gives up with a retryable API_SERVER_ERROR when every attempt fails', async () => {
    sim.faults.add({ kind: '503', endpoint: 'updateStatus', count: 3 });
    const t = busiestStack();
    const u = t.updates[0];
    if (!u) throw new Error('no update');
    const err = await rejection(client({ maxAttempts: 3 }).updateStatus(refOf(t), u.kind, u.updateId));
    expect(err.code).toBe('API_SERVER_ERROR');
    expect(err.retryable).toBe(true);
    expect(sim.stats().byEndpoint.updateStatus).toBe(3);
  });

  it('recovers from a slow answer by timing out and retrying', async () => {
    sim.faults.add({ kind: 'slow', endpoint: 'listUpdates', count: 1, delayMs: 1_000 });
    const observer = recordingObserver();
    const t = busiestStack();
    const page = await client({ requestTimeoutMillis: 200, observer }).listUpdates(refOf(t), 1, 5);
    expect(page.total).toBe(t.updates.length);
    expect(observer.requests[0]).toBe('listUpdates:timeout');
    expect(observer.retries).toEqual(['listUpdates:timeout']);
  });

  it('turns a malformed body into API_MALFORMED_RESPONSE naming the endpoint', async () => {
    const t = fixtureStack();
    const u = t.updates[0];
    if (!u) throw new Error('no fixture update');
    sim.faults.add({ kind: 'malformed', endpoint: 'engineEvents', count: 1 });
    const err = await rejection(collect(client().engineEvents(refOf(t), u.updateId)));
    expect(err.code).toBe('API_MALFORMED_RESPONSE');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('/api/stacks/{org}/{project}/{stack}/update/{updateID}/events');
    expect(err.message).not.toContain(TOKEN);
    expect(sim.stats().byEndpoint.engineEvents).toBe(1);
  });

  it('fails with API_UNAUTHORIZED on 401 without retrying', async () => {
    sim.faults.add({ kind: '401', endpoint: 'listStacks', count: 1 });
    const observer = recordingObserver();
    const err = await rejection(client({ observer }).listStacks(orgs()[0] ?? ''));
    expect(err.code).toBe('API_UNAUTHORIZED');
    expect(err.retryable).toBe(false);
    expect(observer.retries).toEqual([]);
    expect(sim.stats().byEndpoint.listStacks).toBe(1);
    expect(`${String(err)} ${JSON.stringify(err)}`).not.toContain(TOKEN);
  });

  it('is refused by a simulator that expects another token', async () => {
    const strict = await startSimulator({ seed: 1, nowSeconds: NOW, acceptedToken: 'the-right-token', host: '127.0.0.1', port: 0 });
    try {
      const c = new PulumiClient({ baseUrl: strict.url, accessToken: TOKEN, version: 'integration' });
      const err = await rejection(c.listStacks(strict.truth().stacks[0]?.org ?? 'x'));
      expect(err.code).toBe('API_UNAUTHORIZED');
      expect(strict.stats().total).toBe(1);
      const ok = new PulumiClient({ baseUrl: strict.url, accessToken: 'the-right-token', version: 'integration' });
      expect((await ok.listStacks(strict.truth().stacks[0]?.org ?? 'x')).length).toBeGreaterThan(0);
    } finally {
      await strict.close();
    }
  });
});

describe('PulumiClient against the simulator: a running update', () => {
  it('reads a running update page by page, resuming from the last token until it completes', async () => {
    const t = busiestStack();
    const ref = refOf(t);
    const c = client();
    const updateId = sim.control.startUpdate(ref, { kind: 'update', result: 'succeeded' });

    const history = await c.historySince(ref, { afterVersion: t.updates[t.updates.length - 1]?.version ?? 0 });
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ updateId, result: 'in-progress' });
    expect(history[0]?.endTime).toBeUndefined();
    expect((await c.updateStatus(ref, 'update', updateId)).continuationToken === null).toBe(false);

    const events: EngineEvent[] = [];
    let token: string | undefined;
    const readAvailable = async (): Promise<EventsPage[]> => {
      const got = await collect(c.engineEvents(ref, updateId, { inProgress: true, ...(token === undefined ? {} : { continuationToken: token }) }));
      for (const p of got) {
        events.push(...p.events);
        if (p.continuationToken !== null) token = p.continuationToken;
      }
      return got;
    };

    await readAvailable();
    const before = events.length;
    // Nothing new yet: the iterator stops at the repeated token without spinning.
    sim.resetStats();
    expect(await readAvailable()).toEqual([]);
    expect(sim.stats().byEndpoint.engineEvents).toBe(1);

    // A running update repeats its token, which is a paging loop for a caller that
    // thinks the update is complete.
    const loop = await rejection(collect(c.engineEvents(ref, updateId, token === undefined ? {} : { continuationToken: token })));
    expect(loop.code).toBe('API_PAGING_LOOP');

    sim.control.tick();
    await readAvailable();
    expect(events.length).toBeGreaterThan(before);

    sim.control.completeUpdate(ref, updateId);
    const last = await readAvailable();
    expect(last[last.length - 1]?.continuationToken).toBeNull();

    const done = sim.truth().stacks.find((s) => stackKey(s) === stackKey(t))?.updates.find((u) => u.updateId === updateId);
    if (!done) throw new Error('the completed update is not in the truth');
    expect(events).toHaveLength(done.eventCount);
    expect(events.filter((e) => e.type === 'summaryEvent')).toHaveLength(1);

    const after = await c.historySince(ref, { afterVersion: done.version - 1 });
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ updateId, result: 'succeeded' });
    expect(after[0]?.endTime).toBeGreaterThanOrEqual(after[0]?.startTime ?? Infinity);
    expect(await c.updateStatus(ref, 'update', updateId)).toEqual({ status: 'succeeded', continuationToken: null });
  });
});
