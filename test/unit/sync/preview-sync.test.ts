import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { StackRef, StackSummary } from '../../../src/domain/stack.js';
import type { TraceRecord } from '../../../src/domain/trace.js';
import type { UpdateInfo } from '../../../src/domain/update.js';
import { ExporterError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { DEFAULT_METRIC_DETAIL } from '../../../src/metrics/update-deltas.js';
import type { EventsPage, HistoryPage, HistorySinceOptions, PreviewsSinceOptions, PulumiCloudApi, UpdateStatus } from '../../../src/pulumi/pulumi-api.js';
import { runPollCycle, type PollCycleDeps } from '../../../src/sync/poll-cycle.js';
import { noopSyncMetrics } from '../../../src/sync/sync-metrics.js';
import { UpdateAttempts } from '../../../src/sync/update-attempts.js';
import type { ExportOutcome, SpanSink } from '../../../src/tracing/span-sink.js';
import { memoryStore } from '../../helpers/memory-store.js';

const web: StackRef = { org: 'acme', project: 'web', stack: 'prod' };

function entry(updateId: string, kind: string, version: number, startTime: number, result = 'succeeded'): UpdateInfo {
  return {
    stack: web,
    updateId,
    kind,
    version,
    result,
    startTime,
    ...(result === 'in-progress' ? {} : { endTime: startTime + 5 }),
    message: '',
    environment: {},
    resourceChanges: { update: 1 },
  };
}

/** One stack with a history and previews per version; records each call. */
class PreviewApi implements PulumiCloudApi {
  updates: UpdateInfo[] = [];
  previews: UpdateInfo[] = [];
  calls: string[] = [];
  failEventsOnce = new Set<string>();
  notFoundForVersion0 = false;

  latestVersion(): number {
    return Math.max(0, ...this.updates.map((u) => u.version));
  }
  addUpdate(updateId: string, startTime: number): void {
    this.updates.push(entry(updateId, 'update', this.latestVersion() + 1, startTime));
  }
  addPreview(updateId: string, startTime: number, result = 'succeeded'): UpdateInfo {
    const p = entry(updateId, 'Pupdate', this.latestVersion(), startTime, result);
    this.previews.push(p);
    return p;
  }
  finish(updateId: string): void {
    const i = this.previews.findIndex((p) => p.updateId === updateId);
    const p = this.previews[i]!;
    this.previews[i] = { ...p, result: 'succeeded', endTime: p.startTime + 5 };
  }

  async listStacks(): Promise<StackSummary[]> {
    this.calls.push('listStacks');
    const last = this.updates.at(-1)?.startTime;
    return [{ ...web, resourceCount: 1, ...(last === undefined ? {} : { lastUpdate: last }) }];
  }
  async listUpdates(): Promise<HistoryPage> {
    throw new Error('not used');
  }
  async historySince(_ref: StackRef, o: HistorySinceOptions): Promise<UpdateInfo[]> {
    this.calls.push('history');
    return this.updates.filter((u) => u.version > o.afterVersion).reverse();
  }
  async previewsSince(_ref: StackRef, o: PreviewsSinceOptions): Promise<UpdateInfo[]> {
    this.calls.push(`previews ${o.version ?? 'latest'} from ${o.notBeforeSeconds ?? '-'}`);
    const version = o.version ?? this.latestVersion();
    // As `updates/latest` answers a stack never updated (shared pulumi-api.md 2.4).
    if (version === 0 && this.notFoundForVersion0) throw new ExporterError('API_NOT_FOUND', 'no such version', { retryable: false });
    return this.previews
      .filter((p) => p.version === version && p.startTime >= (o.notBeforeSeconds ?? 0))
      .sort((a, b) => b.startTime - a.startTime);
  }
  async *engineEvents(_ref: StackRef, updateId: string): AsyncIterable<EventsPage> {
    this.calls.push(`events ${updateId}`);
    if (this.failEventsOnce.delete(updateId)) throw new ExporterError('API_SERVER_ERROR', 'boom', { retryable: true });
    const u = [...this.updates, ...this.previews].find((x) => x.updateId === updateId)!;
    const events: EngineEvent[] = [{ type: 'preludeEvent', timestamp: u.startTime, config: {} } as unknown as EngineEvent];
    yield { events, continuationToken: null };
  }
  async latestPreviews(): Promise<HistoryPage> {
    throw new Error('not used');
  }
  async updateStatus(): Promise<UpdateStatus> {
    throw new Error('not used');
  }
}

class Sink implements SpanSink {
  readonly enabled = true;
  runIds: string[] = [];
  async export(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    for (const trace of traces) this.runIds.push(String(trace.spans[0]?.attributes['cicd.pipeline.run.id']));
    return { code: 'success', spans: traces.reduce((n, t) => n + t.spans.length, 0) };
  }
  async shutdown(): Promise<void> {}
}

async function setup(previews = true) {
  const api = new PreviewApi();
  const store = await memoryStore();
  const sink = new Sink();
  const deps: PollCycleDeps = {
    api,
    store,
    sink,
    metrics: noopSyncMetrics,
    logger: silentLogger(),
    clock: { now: () => 2_000_000_000_000 },
    conversion: { serviceName: 'pulumi', keepSameSteps: false, maxSpansPerTrace: 100, maxAttributeLength: 256, consoleUrl: 'https://app.pulumi.com' },
    metricDetail: DEFAULT_METRIC_DETAIL,
    backfillDays: 0,
    attempts: new UpdateAttempts(),
    maxUpdateAttempts: 3,
    batchMaxSpans: 512,
    orgs: [{ name: 'acme', include: [], exclude: [] }],
    stackConcurrency: 2,
    progressLogIntervalMs: 5_000,
    previews,
  };
  const cycle = async (): Promise<string[]> => {
    api.calls = [];
    sink.runIds = [];
    const r = await runPollCycle(deps);
    return [r.result, ...api.calls];
  };
  return { api, store, sink, cycle };
}

describe('preview sync', () => {
  it('holds the cursor at a running preview, exports it once it ends, and sends nothing twice', async () => {
    const { api, store, sink, cycle } = await setup();
    api.addUpdate('u1', 50);
    api.addPreview('p1', 100);
    api.addPreview('p2', 200, 'in-progress');
    api.addPreview('p3', 300, 'failed');
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'events u1', 'previews latest from -', 'events p1', 'events p3']);
    expect(sink.runIds).toEqual(['u1', 'p1', 'p3']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 1, startTime: 200 });

    // Unchanged history: the previews listing alone, from the running preview on.
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from 200']);
    api.finish('p2');
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from 200', 'events p2']);
    expect(sink.runIds).toEqual(['p2']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 1, startTime: 300 });
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from 300']);
    expect(await store.countExported(web)).toBe(4);
    expect((await store.getStack(web))?.cursorVersion).toBe(1);
  });

  it('stops at a preview whose events fail and exports it and the later ones next cycle, once each', async () => {
    const { api, store, sink, cycle } = await setup();
    api.addUpdate('u1', 50);
    api.addPreview('p1', 100);
    api.addPreview('p2', 200);
    api.addPreview('p3', 300);
    api.failEventsOnce.add('p2');
    expect((await cycle())[0]).toBe('failure');
    expect(sink.runIds).toEqual(['u1', 'p1']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 1, startTime: 200 });
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from 200', 'events p2', 'events p3']);
    expect(sink.runIds).toEqual(['p2', 'p3']);
    expect(await store.countExported(web)).toBe(4);
  });

  it('lists the previews of a version an update superseded since the last cycle', async () => {
    const { api, sink, store, cycle } = await setup();
    api.addUpdate('u1', 50);
    api.addPreview('p1', 100);
    await cycle();
    // Run and superseded between two cycles: no longer among the latest version's previews.
    api.addPreview('p2', 200);
    api.addUpdate('u2', 250);
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'events u2', 'previews latest from 100', 'previews 1 from 100', 'events p2']);
    expect(sink.runIds).toEqual(['u2', 'p2']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 2, startTime: 200 });
    api.addPreview('p3', 300);
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from 200', 'events p3']);
  });

  it('starts the previews of a stack deleted and created again afresh, counting nothing twice', async () => {
    const { api, sink, store, cycle } = await setup();
    for (const [i, t] of [100, 200, 300].entries()) api.addUpdate(`u${i + 1}`, t);
    api.addPreview('p1', 400);
    await cycle();
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 3, startTime: 400 });
    // Same name, new stack: versions restart at 1.
    api.updates = [];
    api.previews = [];
    api.addUpdate('n1', 500);
    api.addPreview('q1', 600);
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'history', 'events n1', 'previews latest from -', 'events q1']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 1, startTime: 600 });
    api.addPreview('q2', 700);
    api.addUpdate('n2', 800);
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'events n2', 'previews latest from 600', 'previews 1 from 600', 'events q2']);
    expect(sink.runIds).toEqual(['n2', 'q2']);
    expect(await store.countExported(web)).toBe(8);
  });

  it('takes a 404 previews listing (a stack never updated) as no previews, and lists that version again after the first update', async () => {
    const { api, sink, store, cycle } = await setup();
    api.notFoundForVersion0 = true;
    expect(await cycle()).toEqual(['success', 'listStacks', 'previews latest from -']);
    expect((await store.getStack(web))?.previewCursor).toEqual({ version: 0, startTime: 0 });
    api.addUpdate('u1', 50);
    api.addPreview('p1', 100);
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'events u1', 'previews latest from -', 'previews 0 from -', 'events p1']);
    expect(sink.runIds).toEqual(['u1', 'p1']);
  });

  it('makes no previews call when previews are off', async () => {
    const { api, sink, cycle } = await setup(false);
    api.addUpdate('u1', 50);
    api.addPreview('p1', 100);
    expect(await cycle()).toEqual(['success', 'listStacks', 'history', 'events u1']);
    expect(await cycle()).toEqual(['success', 'listStacks']);
    expect(sink.runIds).toEqual([]);
  });
});
