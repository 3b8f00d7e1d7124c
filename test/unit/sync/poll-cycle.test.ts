import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/schema.js';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { StackRef, StackSummary } from '../../../src/domain/stack.js';
import { stackKey } from '../../../src/domain/stack.js';
import type { UpdateInfo } from '../../../src/domain/update.js';
import { ExporterError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { EngineEventsOptions, EventsPage, HistoryPage, HistorySinceOptions, PulumiCloudApi, UpdateStatus } from '../../../src/pulumi/pulumi-api.js';
import type { Coordinator } from '../../../src/state/coordinator.js';
import type { StackRecord, UpdateCommit } from '../../../src/state/state-store.js';
import { memoryStore } from '../../helpers/memory-store.js';
import { needsSync, runPollCycle, type PollCycleDeps } from '../../../src/sync/poll-cycle.js';
import { backfillFloorSeconds } from '../../../src/sync/stack-sync.js';
import { noopSyncMetrics } from '../../../src/sync/sync-metrics.js';
import { UpdateAttempts } from '../../../src/sync/update-attempts.js';
import type { ExportOutcome, SpanSink } from '../../../src/tracing/span-sink.js';
import type { TraceRecord } from '../../../src/domain/trace.js';
import { DEFAULT_METRIC_DETAIL } from '../../../src/metrics/update-deltas.js';

const NOW_S = 1_800_000_000;

/** An in-memory Pulumi Cloud with call counting, for the layer above the client. */
class FakeApi implements PulumiCloudApi {
  readonly stacks = new Map<string, StackSummary[]>();
  readonly history = new Map<string, UpdateInfo[]>();
  calls: string[] = [];
  failEventsFor = new Set<string>();
  eventErrors = new Map<string, ExporterError>();

  addStack(ref: StackRef): void {
    const list = this.stacks.get(ref.org) ?? [];
    list.push({ ...ref, resourceCount: 3 });
    this.stacks.set(ref.org, list);
    this.history.set(stackKey(ref), []);
  }

  addUpdate(ref: StackRef, u: Partial<UpdateInfo> & { updateId: string; startTime: number }): void {
    const list = this.history.get(stackKey(ref))!;
    const version = list.length + 1;
    list.push({
      stack: ref,
      kind: 'update',
      version,
      result: 'succeeded',
      endTime: u.startTime + 10,
      message: '',
      environment: {},
      resourceChanges: { create: 1 },
      ...u,
    });
    const stacks = this.stacks.get(ref.org)!;
    const i = stacks.findIndex((s) => stackKey(s) === stackKey(ref));
    stacks[i] = { ...stacks[i]!, lastUpdate: u.startTime };
  }

  async listStacks(org: string): Promise<StackSummary[]> {
    this.calls.push(`listStacks ${org}`);
    return [...(this.stacks.get(org) ?? [])];
  }
  async listUpdates(ref: StackRef, page: number, pageSize: number): Promise<HistoryPage> {
    this.calls.push(`listUpdates ${stackKey(ref)}`);
    const all = [...(this.history.get(stackKey(ref)) ?? [])].reverse();
    return { updates: all.slice((page - 1) * pageSize, page * pageSize), itemsPerPage: pageSize, total: all.length };
  }
  async historySince(ref: StackRef, o: HistorySinceOptions): Promise<UpdateInfo[]> {
    this.calls.push(`history ${stackKey(ref)}`);
    return [...(this.history.get(stackKey(ref)) ?? [])]
      .reverse()
      .filter((u) => u.version > o.afterVersion && (o.notBeforeSeconds === undefined || u.startTime >= o.notBeforeSeconds));
  }
  async *engineEvents(ref: StackRef, updateId: string, _o?: EngineEventsOptions): AsyncIterable<EventsPage> {
    this.calls.push(`events ${updateId}`);
    if (this.failEventsFor.has(updateId)) throw new ExporterError('API_SERVER_ERROR', 'boom', { retryable: true });
    const planned = this.eventErrors.get(updateId);
    if (planned) throw planned;
    const u = [...this.history.values()].flat().find((x) => x.updateId === updateId)!;
    const events: EngineEvent[] = [
      { type: 'preludeEvent', timestamp: u.startTime },
      {
        type: 'resourcePreEvent',
        timestamp: u.startTime + 1,
        planning: false,
        metadata: {
          op: 'create', urn: `urn:pulumi:${ref.stack}::${ref.project}::aws:s3/bucket:Bucket::b`, type: 'aws:s3/bucket:Bucket',
          old: null, new: null, keys: [], diffs: [], detailedDiffPaths: [], logical: true, provider: '',
        },
      },
    ];
    yield { events, continuationToken: null };
  }
  async latestPreviews(): Promise<HistoryPage> {
    throw new Error('not used');
  }
  async previewsSince(): Promise<UpdateInfo[]> {
    throw new Error('not used: previews are off by default');
  }
  async updateStatus(): Promise<UpdateStatus> {
    throw new Error('not used');
  }
}

class RecordingSink implements SpanSink {
  readonly enabled = true;
  traces: TraceRecord[] = [];
  fail = false;
  reject = false;
  calls = 0;
  async export(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    this.calls += 1;
    if (this.fail) return { code: 'failed', retryable: true, reason: 'network', error: new Error('down') };
    if (this.reject) return { code: 'failed', retryable: false, reason: 'rejected', error: new Error('rejected') };
    this.traces.push(...traces);
    return { code: 'success', spans: traces.reduce((n, t) => n + t.spans.length, 0) };
  }
  async shutdown(): Promise<void> {}
}

async function setup(backfillDays = 0) {
  const api = new FakeApi();
  const store = await memoryStore();
  const sink = new RecordingSink();
  let nowMs = NOW_S * 1000;
  const cfg = defaultConfig();
  const deps: PollCycleDeps = {
    api,
    store,
    sink,
    metrics: noopSyncMetrics,
    logger: silentLogger(),
    clock: { now: () => nowMs },
    conversion: { serviceName: 'pulumi', keepSameSteps: false, maxSpansPerTrace: 100, maxAttributeLength: 256, consoleUrl: 'https://app.pulumi.com' },
    metricDetail: DEFAULT_METRIC_DETAIL,
    backfillDays,
    attempts: new UpdateAttempts(),
    maxUpdateAttempts: 3,
    batchMaxSpans: cfg.traces.batchMaxSpans,
    orgs: [{ name: 'acme', include: [], exclude: ['*/ignored'] }],
    stackConcurrency: cfg.poll.stackConcurrency,
    progressLogIntervalMs: 5_000,
  };
  return { api, store, sink, deps, advance: (ms: number) => (nowMs += ms) };
}

const web: StackRef = { org: 'acme', project: 'web', stack: 'prod' };
const api2: StackRef = { org: 'acme', project: 'api', stack: 'dev' };

describe('poll cycle', () => {
  it('exports new terminal updates oldest first and advances the cursor', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'u2', startTime: NOW_S - 200, result: 'failed' });
    const r = await runPollCycle(deps);
    expect(r.result).toBe('success');
    expect(r.updatesExported).toBe(2);
    expect(sink.traces.map((t) => t.spans[0]!.attributes['cicd.pipeline.run.id'])).toEqual(['u1', 'u2']);
    expect((await store.getStack(web))?.cursorVersion).toBe(2);
  });

  it('skips history calls for stacks whose lastUpdate did not move', async () => {
    const { api, deps } = await setup();
    api.addStack(web);
    api.addStack(api2);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    await runPollCycle(deps);
    api.calls = [];
    await runPollCycle(deps);
    expect(api.calls).toEqual(['listStacks acme']);
    api.addUpdate(api2, { updateId: 'u9', startTime: NOW_S - 10 });
    api.calls = [];
    await runPollCycle(deps);
    expect(api.calls).toEqual(['listStacks acme', 'history acme/api/dev', 'events u9']);
  });

  it('revisits a stack with an update in progress every cycle until it is terminal, then counts it once', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300, result: 'in-progress', endTime: undefined });
    await runPollCycle(deps);
    expect(await store.listInProgress()).toHaveLength(1);
    expect(await store.countExported()).toBe(0);
    api.calls = [];
    await runPollCycle(deps);
    expect(api.calls).toContain('history acme/web/prod');
    const h = api.history.get(stackKey(web))!;
    h[0] = { ...h[0]!, result: 'succeeded', endTime: NOW_S - 100 };
    await runPollCycle(deps);
    await runPollCycle(deps);
    expect(await store.countExported()).toBe(1);
    expect(await store.listInProgress()).toHaveLength(0);
    const counters = await store.readCounters();
    expect(counters.filter((c) => c.name === 'pulumi_updates_total').reduce((n, c) => n + c.value, 0)).toBe(1);
  });

  it('sends consecutive updates of a stack in one export and commits them in one transaction until their spans reach batchMaxSpans', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    for (let i = 1; i <= 5; i++) api.addUpdate(web, { updateId: `u${i}`, startTime: NOW_S - 600 + i * 10 });
    const batches: string[][] = [];
    const commitUpdates = store.commitUpdates.bind(store);
    store.commitUpdates = (commits: readonly UpdateCommit[]) => {
      batches.push(commits.map((c) => c.update.updateId));
      return commitUpdates(commits);
    };
    // Each update's trace has 2 spans (the update and one step): 2 updates reach 4 spans.
    expect((await runPollCycle({ ...deps, batchMaxSpans: 4 })).updatesExported).toBe(5);
    expect(batches).toEqual([['u1', 'u2'], ['u3', 'u4'], ['u5']]);
    expect(sink.calls).toBe(3);
    expect(sink.traces.map((t) => t.spans[0]!.attributes['cicd.pipeline.run.id'])).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
    expect((await store.getStack(web))?.cursorVersion).toBe(5);
  });

  it('sends updates one at a time when the collector rejects spans of several, counting attempts only for the rejected update', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    for (const id of ['u1', 'bad', 'u3']) api.addUpdate(web, { updateId: id, startTime: NOW_S - 300 + sink.calls++ });
    sink.calls = 0;
    const sent: string[][] = [];
    sink.export = async (traces: readonly TraceRecord[]) => {
      const ids = traces.map((t) => String(t.spans[0]!.attributes['cicd.pipeline.run.id']));
      sent.push(ids);
      if (ids.includes('bad')) return { code: 'failed', retryable: false, reason: 'rejected', error: new Error('rejected 1 span') };
      sink.traces.push(...traces);
      return { code: 'success', spans: 2 * traces.length };
    };
    const first = await runPollCycle(deps);
    expect(first.updatesExported).toBe(1);
    expect(sent).toEqual([['u1', 'bad', 'u3'], ['u1'], ['bad']]);
    expect(await store.isExported(web, 'u1')).toBe(true);
    expect(await store.isExported(web, 'bad')).toBe(false);
    // maxUpdateAttempts is 3: the third rejection counts 'bad' without its trace, and u3 follows.
    await runPollCycle(deps);
    expect(await store.isExported(web, 'bad')).toBe(false);
    const third = await runPollCycle(deps);
    expect(third.updatesExported).toBe(2);
    expect(await store.isExported(web, 'bad')).toBe(true);
    expect(sink.traces.map((t) => t.spans[0]!.attributes['cicd.pipeline.run.id'])).toEqual(['u1', 'u3']);
  });

  it('stops at the first update whose spans were not accepted and resumes there next cycle', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'u2', startTime: NOW_S - 200 });
    sink.fail = true;
    const r = await runPollCycle(deps);
    expect(r.result).toBe('failure');
    expect(r.backlog).toBe(2);
    expect(await store.countExported()).toBe(0);
    sink.fail = false;
    expect((await runPollCycle(deps)).updatesExported).toBe(2);
    expect(sink.traces.map((t) => t.spans[0]!.attributes['cicd.pipeline.run.id'])).toEqual(['u1', 'u2']);
  });

  it('reads the next update\'s events while the current update is exported', async () => {
    const { api, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'u2', startTime: NOW_S - 200 });
    api.addUpdate(web, { updateId: 'u3', startTime: NOW_S - 100 });
    const callsAtExport: string[][] = [];
    const exportTraces = sink.export.bind(sink);
    sink.export = async (traces) => {
      callsAtExport.push(api.calls.filter((c) => c.startsWith('events ')));
      return exportTraces(traces);
    };
    // One update per export (a batch of one span at most), to see the read-ahead.
    expect((await runPollCycle({ ...deps, batchMaxSpans: 1 })).updatesExported).toBe(3);
    // One update ahead, never more: u3's events are read only once u1 is committed.
    expect(callsAtExport).toEqual([['events u1', 'events u2'], ['events u1', 'events u2', 'events u3'], ['events u1', 'events u2', 'events u3']]);
  });

  it('counts a failure of read-ahead events only when their update\'s turn comes', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'bad', startTime: NOW_S - 200 });
    api.eventErrors.set('bad', new ExporterError('API_MALFORMED_RESPONSE', 'broken page'));
    // The collector is down for more cycles than maxUpdateAttempts (3): 'bad' is read ahead
    // every cycle but never reached, so none of those reads counts as an attempt.
    sink.fail = true;
    for (let i = 0; i < 4; i++) expect((await runPollCycle(deps)).result).toBe('failure');
    expect(api.calls.filter((c) => c === 'events bad')).toHaveLength(4);
    sink.fail = false;
    expect((await runPollCycle(deps)).updatesExported).toBe(1);
    expect(await store.isExported(web, 'bad')).toBe(false);
    await runPollCycle(deps);
    expect(await store.isExported(web, 'bad')).toBe(false);
    await runPollCycle(deps);
    expect(await store.isExported(web, 'bad')).toBe(true);
  });

  it('stops sending traces for the rest of a cycle once the collector failed, keeping the updates in the backlog', async () => {
    const { api, store, sink, deps } = await setup();
    for (const stack of ['a', 'b', 'c', 'd', 'e']) {
      const ref = { org: 'acme', project: 'p', stack };
      api.addStack(ref);
      api.addUpdate(ref, { updateId: `u-${stack}`, startTime: NOW_S - 300 });
    }
    sink.fail = true;
    api.calls = [];
    const r = await runPollCycle({ ...deps, stackConcurrency: 1 });
    expect(sink.calls).toBe(1);
    // Only the first stack's events were read: the others' would have been thrown away.
    expect(api.calls.filter((c) => c.startsWith('events'))).toHaveLength(1);
    expect(r.backlog).toBe(5);
    expect(r.stacksFailed).toBe(5);
    sink.fail = false;
    expect((await runPollCycle(deps)).updatesExported).toBe(5);
    expect(await store.countExported()).toBe(5);
  });

  it('keeps syncing other stacks when one fails, and retries the failed one', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addStack(api2);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(api2, { updateId: 'u2', startTime: NOW_S - 300 });
    api.failEventsFor.add('u1');
    const r = await runPollCycle(deps);
    expect(r.stacksFailed).toBe(1);
    expect(await store.isExported(api2, 'u2')).toBe(true);
    api.failEventsFor.clear();
    await runPollCycle(deps);
    expect(await store.isExported(web, 'u1')).toBe(true);
  });

  it('reads a re-created stack from the start when its versions restart below the cursor', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'old1', startTime: NOW_S - 500 });
    api.addUpdate(web, { updateId: 'old2', startTime: NOW_S - 400 });
    await runPollCycle(deps);
    api.history.set(stackKey(web), []);
    api.addUpdate(web, { updateId: 'new1', startTime: NOW_S - 100 });
    await runPollCycle(deps);
    expect(await store.isExported(web, 'new1')).toBe(true);
    expect(await store.countExported()).toBe(3);
    api.calls = [];
    await runPollCycle(deps);
    expect(api.calls).toEqual(['listStacks acme']);
  });

  it('counts unknown engine-event types and still exports the update', async () => {
    const { api, deps } = await setup();
    const counts: Record<string, number>[] = [];
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    const events = api.engineEvents.bind(api);
    api.engineEvents = async function* (ref: StackRef, id: string) {
      for await (const page of events(ref, id)) {
        yield { ...page, events: [...page.events, { type: 'unknown', wireType: 'shinyNewEvent', timestamp: NOW_S - 250 }] };
      }
    };
    const r = await runPollCycle({ ...deps, metrics: { ...noopSyncMetrics, engineEvents: (c) => counts.push({ ...c }) } });
    expect(r.updatesExported).toBe(1);
    expect(counts).toEqual([expect.objectContaining({ unknown: 1, resourcePreEvent: 1 })]);
  });

  it('does not lose an update first seen running when the cycle in which it completes fails', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300, result: 'in-progress', endTime: undefined });
    await runPollCycle(deps);
    const h = api.history.get(stackKey(web))!;
    h[0] = { ...h[0]!, result: 'succeeded', endTime: NOW_S - 100 };
    sink.fail = true;
    expect((await runPollCycle(deps)).result).toBe('failure');
    sink.fail = false;
    await runPollCycle(deps);
    expect(await store.isExported(web, 'u1')).toBe(true);
  });

  it('exports every update of a re-created stack even when its new versions pass the old cursor', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    for (const id of ['old1', 'old2', 'old3']) api.addUpdate(web, { updateId: id, startTime: NOW_S - 900 });
    await runPollCycle(deps);
    api.history.set(stackKey(web), []);
    for (const id of ['n1', 'n2', 'n3', 'n4']) api.addUpdate(web, { updateId: id, startTime: NOW_S - 100 });
    await runPollCycle(deps);
    for (const id of ['n1', 'n2', 'n3', 'n4']) expect(await store.isExported(web, id)).toBe(true);
    expect(await store.countExported()).toBe(7);
    expect((await store.getStack(web))?.cursorVersion).toBe(4);
  });

  it('exports an update whose engine events do not exist (404) from its history entry', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'imp', startTime: NOW_S - 300, kind: 'import' });
    api.eventErrors.set('imp', new ExporterError('API_NOT_FOUND', '404'));
    expect((await runPollCycle(deps)).result).toBe('success');
    expect(await store.isExported(web, 'imp')).toBe(true);
    expect(sink.traces[0]!.spans).toHaveLength(1);
    expect(sink.traces[0]!.spans[0]!.attributes['pulumi.trace.incomplete']).toBe('no engine events');
  });

  it('counts an update whose events stay malformed after the allowed attempts, so later updates are not blocked', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'bad', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'good', startTime: NOW_S - 200 });
    api.eventErrors.set('bad', new ExporterError('API_MALFORMED_RESPONSE', 'broken page'));
    expect((await runPollCycle(deps)).result).toBe('failure');
    expect((await runPollCycle(deps)).result).toBe('failure');
    expect(await store.countExported()).toBe(0);
    expect((await runPollCycle(deps)).result).toBe('success');
    expect(await store.isExported(web, 'bad')).toBe(true);
    expect(await store.isExported(web, 'good')).toBe(true);
    expect(sink.traces[0]!.spans[0]!.attributes['pulumi.trace.incomplete']).toBe('engine events unreadable: API_MALFORMED_RESPONSE');
  });

  it('retries an outage without limit: retryable errors never give up on an update', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.failEventsFor.add('u1');
    for (let i = 0; i < 6; i++) expect((await runPollCycle(deps)).result).toBe('failure');
    expect(await store.countExported()).toBe(0);
    api.failEventsFor.clear();
    await runPollCycle(deps);
    expect((await store.readCounters()).filter((c) => c.name === 'pulumi_resource_operations_total').length).toBeGreaterThan(0);
  });

  it('counts an update without its trace when the collector keeps rejecting it', async () => {
    const { api, store, sink, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    sink.reject = true;
    await runPollCycle(deps);
    await runPollCycle(deps);
    expect(await store.countExported()).toBe(0);
    await runPollCycle(deps);
    expect(await store.isExported(web, 'u1')).toBe(true);
  });

  it('starts counting the attempts of an update again after a failure of another, retryable kind', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    const malformed = new ExporterError('API_MALFORMED_RESPONSE', 'broken page');
    api.eventErrors.set('u1', malformed);
    await runPollCycle(deps);
    await runPollCycle(deps);
    api.eventErrors.set('u1', new ExporterError('API_SERVER_ERROR', '503', { retryable: true }));
    await runPollCycle(deps);
    api.eventErrors.set('u1', malformed);
    await runPollCycle(deps);
    await runPollCycle(deps);
    expect(await store.isExported(web, 'u1')).toBe(false);
    await runPollCycle(deps);
    expect(await store.isExported(web, 'u1')).toBe(true);
  });

  it('does not count the history of a renamed stack again, and moves its cursor past it', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(web, { updateId: 'u2', startTime: NOW_S - 200 });
    await runPollCycle(deps);
    const renamed: StackRef = { ...web, stack: 'production' };
    api.stacks.set('acme', [{ ...renamed, resourceCount: 3, lastUpdate: NOW_S - 200 }]);
    api.history.set(stackKey(renamed), api.history.get(stackKey(web))!.map((u) => ({ ...u, stack: renamed })));
    expect((await runPollCycle(deps)).updatesExported).toBe(0);
    const total = (await store.readCounters()).filter((c) => c.name === 'pulumi_updates_total').reduce((n, c) => n + c.value, 0);
    expect(total).toBe(2);
    expect((await store.getStack(renamed))?.cursorVersion).toBe(2);
    api.calls = [];
    await runPollCycle(deps);
    expect(api.calls).toEqual(['listStacks acme']);
  });

  it('forgets the stacks of an org that is no longer configured', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    await runPollCycle(deps);
    expect(await store.listStacks()).toHaveLength(1);
    await runPollCycle({ ...deps, orgs: [{ name: 'globex', include: [], exclude: [] }] });
    expect(await store.listStacks()).toHaveLength(0);
  });

  it('ignores stacks matching the exclude pattern', async () => {
    const { api, store, deps } = await setup();
    api.addStack(web);
    api.addStack({ org: 'acme', project: 'x', stack: 'ignored' });
    await runPollCycle(deps);
    expect((await store.listStacks()).map((s) => stackKey(s))).toEqual(['acme/web/prod']);
  });

  it('bounds the first backfill by the configured number of days', async () => {
    const { api, store, deps } = await setup(7);
    api.addStack(web);
    api.addUpdate(web, { updateId: 'old', startTime: NOW_S - 10 * 86_400 });
    api.addUpdate(web, { updateId: 'new', startTime: NOW_S - 86_400 });
    await runPollCycle(deps);
    expect(await store.isExported(web, 'old')).toBe(false);
    expect(await store.isExported(web, 'new')).toBe(true);
  });

  it('reports failure without throwing when an org cannot be listed', async () => {
    const { deps } = await setup();
    const failing = { ...deps, api: { ...deps.api, listStacks: () => Promise.reject(new ExporterError('API_UNAUTHORIZED', '401')) } as PulumiCloudApi };
    const r = await runPollCycle(failing);
    expect(r.result).toBe('failure');
    expect(r.listedAllOrgs).toBe(false);
  });
});

describe('needsSync and the backfill floor', () => {
  const base = { ...web, cursorVersion: 0, firstSeenMs: NOW_S * 1000 };
  it('needs a sync when lastUpdate moved or an update is in progress', () => {
    expect(needsSync({ ...base, lastUpdate: 5, syncedLastUpdate: 5 }, new Set())).toBe(false);
    expect(needsSync({ ...base, lastUpdate: 6, syncedLastUpdate: 5 }, new Set())).toBe(true);
    expect(needsSync({ ...base, lastUpdate: 5, syncedLastUpdate: 5 }, new Set(['acme/web/prod']))).toBe(true);
    expect(needsSync({ ...base }, new Set())).toBe(false);
  });
  it('anchors the backfill window to when the stack was first seen', () => {
    expect(backfillFloorSeconds(base, 0)).toBeUndefined();
    expect(backfillFloorSeconds(base, 7)).toBe(NOW_S - 7 * 86_400);
  });
});

/** Leases granted by hand: the layer above PostgresCoordinator. */
class FakeCoordinator implements Coordinator {
  readonly owner = 'replica-a';
  held = new Set<string>();
  async start(): Promise<void> {}
  async claimStacks(stacks: readonly StackRecord[]): Promise<StackRecord[]> {
    return stacks.filter((s) => this.held.has(stackKey(s)));
  }
  holds(stack: StackRef): boolean {
    return this.held.has(stackKey(stack));
  }
  isLeader(): boolean {
    return false;
  }
  async stop(): Promise<void> {}
}

describe('poll cycle with several replicas', () => {
  it('syncs only the stacks whose lease this replica holds, committing under its lease owner', async () => {
    const { api, store, sink, deps } = await setup();
    const coordinator = new FakeCoordinator();
    coordinator.held.add(stackKey(web));
    const owners: (string | undefined)[] = [];
    const commit = store.commitUpdates.bind(store);
    store.commitUpdates = (commits: readonly UpdateCommit[]) => {
      owners.push(...commits.map((c) => c.leaseOwner));
      return commit(commits);
    };
    api.addStack(web);
    api.addStack(api2);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    api.addUpdate(api2, { updateId: 'u2', startTime: NOW_S - 200 });
    const r = await runPollCycle({ ...deps, coordinator });
    expect(r.result).toBe('success');
    expect(sink.traces.map((t) => t.spans[0]!.attributes['cicd.pipeline.run.id'])).toEqual(['u1']);
    expect(owners).toEqual(['replica-a']);
    expect(await store.isExported(api2, 'u2')).toBe(false);
    expect(api.calls).not.toContain('history acme/api/dev');
  });

  it('stops exporting a stack as soon as its lease is gone and leaves it unsynced for the next holder', async () => {
    const { api, store, sink, deps } = await setup();
    const coordinator = new FakeCoordinator();
    coordinator.held.add(stackKey(web));
    api.addStack(web);
    for (let i = 1; i <= 3; i++) api.addUpdate(web, { updateId: `u${i}`, startTime: NOW_S - 300 + i });
    const exportTraces = sink.export.bind(sink);
    sink.export = async (traces: readonly TraceRecord[]) => {
      coordinator.held.clear();
      return exportTraces(traces);
    };
    // One update per batch, so there is a next update the lost lease must stop.
    const r = await runPollCycle({ ...deps, coordinator, batchMaxSpans: 1 });
    expect(r.result).toBe('success');
    expect(sink.traces).toHaveLength(1);
    expect(await store.countExported()).toBe(1);
    expect((await store.getStack(web))?.syncedLastUpdate).toBeUndefined();
  });
});

describe('poll cycle with several replicas, lease lost while reading events', () => {
  it('sends no trace for an update whose stack lease went away while its events were read', async () => {
    const { api, store, sink, deps } = await setup();
    const coordinator = new FakeCoordinator();
    coordinator.held.add(stackKey(web));
    api.addStack(web);
    api.addUpdate(web, { updateId: 'u1', startTime: NOW_S - 300 });
    const events = api.engineEvents.bind(api);
    api.engineEvents = (ref, updateId, options) => {
      coordinator.held.clear();
      return events(ref, updateId, options);
    };
    await runPollCycle({ ...deps, coordinator });
    expect(sink.calls).toBe(0);
    expect(await store.countExported()).toBe(0);
  });
});
