import { describe, expect, it } from 'vitest';
import type { OrgConfig } from '../../../src/config/schema.js';
import { stackKey, type StackRef, type StackSummary } from '../../../src/domain/stack.js';
import { ExporterError, type ErrorCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { WebhookSyncResult } from '../../../src/metrics/webhook-metrics.js';
import { KeyedQueue } from '../../../src/scheduler/keyed-queue.js';
import type { StackRecord } from '../../../src/state/state-store.js';
import type { StackSyncResult } from '../../../src/sync/stack-sync.js';
import { SyncTrigger, type SyncTriggerDeps } from '../../../src/sync/sync-trigger.js';
import { memoryStore } from '../../helpers/memory-store.js';

const ACME: OrgConfig = { name: 'acme', include: [], exclude: ['*/dev'] };
const prod: StackRef = { org: 'acme', project: 'web', stack: 'prod' };
const other: StackSummary = { org: 'acme', project: 'api', stack: 'prod', lastUpdate: 100 };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function setup(options: { listed?: StackSummary[]; known?: StackSummary[]; holds?: (s: StackRef) => boolean; syncMs?: number; coalesceMillis?: number; listFails?: boolean } = {}) {
  const store = await memoryStore();
  if (options.known) await store.replaceOrgStacks('acme', options.known, 1_000);
  const synced: StackRecord[] = [];
  const results: WebhookSyncResult[] = [];
  const errors: ErrorCode[] = [];
  let listings = 0;
  let active = 0;
  let maxActive = 0;
  const queue = new KeyedQueue<StackSyncResult>();
  const deps: SyncTriggerDeps = {
    store,
    api: {
      listStacks: async () => {
        listings += 1;
        await sleep(5);
        if (options.listFails) throw new ExporterError('API_SERVER_ERROR', 'listing failed');
        return options.listed ?? [];
      },
    },
    orgs: [ACME],
    queue,
    sync: async (stack) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      synced.push(stack);
      await sleep(options.syncMs ?? 5);
      active -= 1;
      return { stack, ok: true, exported: 1, skipped: 0, inProgress: 0 };
    },
    ...(options.holds ? { coordinator: { holds: options.holds } } : {}),
    metrics: {
      webhookDelivery: () => undefined,
      webhookSync: (r) => results.push(r),
      error: (code) => errors.push(code),
      setStacksWatched: () => undefined,
    },
    logger: silentLogger(),
    clock: { now: () => 5_000 },
    coalesceMillis: options.coalesceMillis ?? 30,
  };
  const trigger = new SyncTrigger(deps);
  const settle = async (): Promise<void> => {
    await trigger.idle();
    await trigger.stop(5_000);
  };
  return { trigger, store, queue, synced, results, errors, settle, listings: () => listings, maxActive: () => maxActive };
}

describe('SyncTrigger', () => {
  it('syncs a known stack from its stored record', async () => {
    const t = await setup({ known: [{ ...prod, lastUpdate: 50 }] });
    expect(t.trigger.request(prod)).toBe('accepted');
    await t.settle();
    expect(t.synced.map(stackKey)).toEqual(['acme/web/prod']);
    expect(t.synced[0]?.lastUpdate).toBe(50);
    expect(t.results).toEqual(['synced']);
    expect(t.listings()).toBe(0);
  });

  it('turns a storm of requests for one stack within the window into one sync', async () => {
    const t = await setup({ known: [prod] });
    for (let i = 0; i < 200; i++) expect(t.trigger.request(prod)).toBe('accepted');
    await sleep(150);
    await t.settle();
    expect(t.synced).toHaveLength(1);
    expect(t.results.filter((r) => r === 'coalesced')).toHaveLength(199);
    expect(t.results.filter((r) => r === 'synced')).toHaveLength(1);
  });

  it('runs one sync at a time for a stack, however the requests are spread, and one more after the last request', async () => {
    const t = await setup({ known: [prod], syncMs: 40, coalesceMillis: 10 });
    let afterLastRequest = 0;
    for (let i = 0; i < 30; i++) {
      t.trigger.request(prod);
      // Read right after the request: a sync that starts while the test sleeps (a slow machine) may be the one it asked for.
      afterLastRequest = t.synced.length;
      await sleep(7);
    }
    await sleep(300);
    await t.settle();
    expect(t.maxActive()).toBe(1);
    // ~210 ms of requests at 40 ms a sync: a handful of syncs, not 30; the last request still got one of its own.
    expect(t.synced.length).toBeLessThanOrEqual(8);
    expect(t.synced.length).toBeGreaterThan(afterLastRequest);
  });

  it('waits for a sync of the same stack already in the shared queue (the poll cycle\'s) and never runs beside it', async () => {
    const t = await setup({ known: [prod], coalesceMillis: 0 });
    let cycleRunning = false;
    let overlapped = false;
    const cycleSync = t.queue.request(stackKey(prod), async () => {
      cycleRunning = true;
      await sleep(50);
      cycleRunning = false;
      return { stack: prod, ok: true, exported: 0, skipped: 0, inProgress: 0 };
    });
    const original = t.synced.push.bind(t.synced);
    t.synced.push = (...items) => {
      if (cycleRunning) overlapped = true;
      return original(...items);
    };
    t.trigger.request(prod);
    await cycleSync;
    await sleep(20);
    await t.settle();
    expect(overlapped).toBe(false);
    expect(t.synced).toHaveLength(1);
  });

  it('discovers a stack it does not know by listing its org, keeping the org\'s other stacks', async () => {
    const t = await setup({ known: [other], listed: [other, { ...prod, lastUpdate: 200 }, { org: 'acme', project: 'web', stack: 'dev' }] });
    t.trigger.request(prod);
    await sleep(100);
    await t.settle();
    expect(t.listings()).toBe(1);
    expect(t.synced.map(stackKey)).toEqual(['acme/web/prod']);
    // The listing is stored whole and filtered like the poll cycle's: the excluded dev stack stays out.
    expect((await t.store.listStacks()).map(stackKey).sort()).toEqual(['acme/api/prod', 'acme/web/prod']);
  });

  it('lists an org once for a burst of deliveries about unknown stacks, and counts stacks the listing lacks', async () => {
    const t = await setup({ listed: [other] });
    for (const stack of ['a', 'b', 'c', 'd']) t.trigger.request({ org: 'acme', project: 'web', stack });
    await sleep(100);
    await t.settle();
    expect(t.listings()).toBeLessThanOrEqual(2);
    expect(t.synced).toEqual([]);
    expect(t.results).toEqual(['unknown_stack', 'unknown_stack', 'unknown_stack', 'unknown_stack']);
  });

  it('filters like the poll cycle: an org that is not configured or an excluded stack is not synced', async () => {
    const t = await setup({ known: [prod] });
    expect(t.trigger.request({ org: 'globex', project: 'web', stack: 'prod' })).toBe('filtered');
    expect(t.trigger.request({ org: 'acme', project: 'web', stack: 'dev' })).toBe('filtered');
    await t.settle();
    expect(t.synced).toEqual([]);
    expect(t.listings()).toBe(0);
  });

  it('on a replica that does not hold the stack\'s lease, does nothing and counts not_held', async () => {
    const t = await setup({ known: [prod], holds: () => false });
    t.trigger.request(prod);
    await sleep(80);
    await t.settle();
    expect(t.synced).toEqual([]);
    expect(t.results).toEqual(['not_held']);
  });

  it('counts a failed listing as a failed sync with its error code, and keeps going', async () => {
    const t = await setup({ listFails: true });
    t.trigger.request(prod);
    await sleep(80);
    expect(t.results).toEqual(['failed']);
    expect(t.errors).toEqual(['API_SERVER_ERROR']);
    await t.settle();
  });

  it('after stop, schedules nothing more', async () => {
    const t = await setup({ known: [prod] });
    await t.settle();
    t.trigger.request(prod);
    await sleep(60);
    expect(t.synced).toEqual([]);
  });
});
