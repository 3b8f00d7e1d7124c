import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { convertUpdate } from '../../../src/conversion/convert-update.js';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { StackRef } from '../../../src/domain/stack.js';
import type { TraceRecord } from '../../../src/domain/trace.js';
import type { UpdateInfo } from '../../../src/domain/update.js';
import { ExporterError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { EngineEventsOptions, EventsPage, PulumiCloudApi } from '../../../src/pulumi/pulumi-api.js';
import type { Coordinator } from '../../../src/state/coordinator.js';
import type { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import { FollowedStreams, followUpdate, type FollowContext, type FollowDeps } from '../../../src/sync/follow-update.js';
import type { ExportOutcome, SpanSink } from '../../../src/tracing/span-sink.js';
import { OPTIONS, T0, outputs as outputsOf, pre as preOf, urn } from '../conversion/event-builders.js';
import { memoryStore } from '../../helpers/memory-store.js';

const STACK: StackRef = { org: 'acme', project: 'proj', stack: 'dev' };
const RUNNING: UpdateInfo = {
  stack: STACK,
  updateId: 'run-1',
  kind: 'update',
  version: 7,
  result: 'in-progress',
  startTime: T0,
  message: '',
  environment: {},
  resourceChanges: {},
};

/**
 * One running update's event stream as the events API serves it (shared pulumi-api.md
 * section 2.7): the token is the position after the events served, the same token comes
 * back while nothing new has arrived, null once the update ended and everything was read.
 */
class GrowingStream implements Pick<PulumiCloudApi, 'engineEvents'> {
  readonly events: EngineEvent[] = [];
  ended = false;
  readonly requests: (string | undefined)[] = [];
  failNext: ExporterError | undefined;

  async *engineEvents(_ref: StackRef, _updateId: string, o: EngineEventsOptions = {}): AsyncGenerator<EventsPage> {
    this.requests.push(o.continuationToken);
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const from = o.continuationToken === undefined ? 0 : Number(o.continuationToken);
    const page = this.events.slice(from);
    yield { events: page, continuationToken: this.ended ? null : String(from + page.length) };
  }
}

class RecordingSink implements SpanSink {
  readonly enabled = true;
  readonly traces: TraceRecord[] = [];
  refuse = false;
  async export(traces: readonly TraceRecord[]): Promise<ExportOutcome> {
    if (this.refuse) return { code: 'failed', retryable: true, reason: 'http_5xx', error: new Error('503') };
    this.traces.push(...traces);
    return { code: 'success', spans: traces.reduce((n, t) => n + t.spans.length, 0) };
  }
  async shutdown(): Promise<void> {}
  sentIds(): string[] {
    return this.traces.flatMap((t) => t.spans.map((s) => s.spanId));
  }
}

let store: SqliteStateStore;
let api: GrowingStream;
let sink: RecordingSink;
let follow: FollowContext;
let followed: number;
let errors: string[];
let holds: boolean;

function deps(): FollowDeps {
  const coordinator: Coordinator = {
    owner: 'me',
    start: async () => undefined,
    claimStacks: async (s) => [...s],
    holds: () => holds,
    isLeader: () => true,
    stop: async () => undefined,
  };
  return {
    api: api as unknown as PulumiCloudApi,
    store,
    sink,
    metrics: { error: (code) => errors.push(code) },
    clock: { now: () => 1_000 },
    conversion: OPTIONS,
    coordinator,
  };
}

const round = (d: FollowDeps = deps()): Promise<number> => followUpdate(d, follow, STACK, RUNNING, silentLogger());

const A = urn('a');
const B = urn('b');
// Top-level resources: their parent (none) is known as soon as their step starts.
const pre = (op: string, u: string, t: number): EngineEvent => preOf(op, u, t, { parent: '' });
const outputs = (op: string, u: string, t: number): EngineEvent => outputsOf(op, u, t, { parent: '' });

beforeEach(async () => {
  store = await memoryStore();
  api = new GrowingStream();
  sink = new RecordingSink();
  followed = 0;
  errors = [];
  holds = true;
  follow = { streams: new FollowedStreams(), spansFollowed: (n) => (followed += n) };
});

afterEach(async () => {
  await store.close();
});

describe('followUpdate', () => {
  it('sends a step span when its step ends, never the root, and reads on from the last token', async () => {
    api.events.push(pre('create', A, T0 + 1));
    expect(await round()).toBe(0);
    api.events.push(outputs('create', A, T0 + 2), pre('create', B, T0 + 2));
    expect(await round()).toBe(1);
    expect(api.requests).toEqual([undefined, '1']);
    api.events.push(outputs('create', B, T0 + 3));
    expect(await round()).toBe(1);
    expect(api.requests.at(-1)).toBe('3');

    const final = convertUpdate({ ...RUNNING, result: 'succeeded', endTime: T0 + 10 }, api.events, OPTIONS);
    expect(sink.traces.flatMap((t) => t.spans)).toEqual(final.trace.spans.slice(1));
    expect(followed).toBe(2);
    expect(await store.readFollow(STACK, RUNNING.updateId)).toEqual({
      stack: STACK,
      updateId: RUNNING.updateId,
      eventsRead: 4,
      continuationToken: '4',
      sentSpanIds: final.trace.spans.slice(1).map((s) => s.spanId).sort(),
    });
  });

  it('does nothing more when no new event arrived', async () => {
    api.events.push(...[pre('create', A, T0 + 1), outputs('create', A, T0 + 2)]);
    expect(await round()).toBe(1);
    expect(await round()).toBe(0);
    expect(sink.traces).toHaveLength(1);
  });

  it('records nothing when the collector refuses, and sends the spans in the next round', async () => {
    api.events.push(pre('create', A, T0 + 1), outputs('create', A, T0 + 2));
    sink.refuse = true;
    expect(await round()).toBe(0);
    expect(errors).toEqual(['TRACE_EXPORT_FAILED']);
    expect(await store.readFollow(STACK, RUNNING.updateId)).toBeUndefined();
    sink.refuse = false;
    expect(await round()).toBe(1);
    expect(sink.sentIds()).toHaveLength(1);
  });

  it('after a restart reads the stream from its start and sends only what was not recorded as sent', async () => {
    api.events.push(pre('create', A, T0 + 1), outputs('create', A, T0 + 2), pre('create', B, T0 + 2));
    expect(await round()).toBe(1);
    // A new process: no stream in memory, the follow record in the store.
    follow = { streams: new FollowedStreams(), spansFollowed: (n) => (followed += n) };
    api.events.push(outputs('create', B, T0 + 3));
    expect(await round()).toBe(1);
    expect(api.requests.at(-1)).toBeUndefined();
    const ids = sink.sentIds();
    expect(new Set(ids).size).toBe(2);
    expect(ids).toHaveLength(2);
  });

  it('sends nothing for a stack whose lease another replica holds', async () => {
    api.events.push(pre('create', A, T0 + 1), outputs('create', A, T0 + 2));
    holds = false;
    expect(await round()).toBe(0);
    expect(sink.traces).toEqual([]);
    holds = true;
    expect(await round()).toBe(1);
  });

  it('counts a failed read, keeps what was sent and reads from the start next round', async () => {
    api.events.push(pre('create', A, T0 + 1), outputs('create', A, T0 + 2));
    expect(await round()).toBe(1);
    api.failNext = new ExporterError('API_HTTP_ERROR', 'invalid continuationToken', { retryable: false });
    expect(await round()).toBe(0);
    expect(errors).toEqual(['API_HTTP_ERROR']);
    api.events.push(pre('create', B, T0 + 3), outputs('create', B, T0 + 4));
    expect(await round()).toBe(1);
    expect(api.requests.at(-1)).toBeUndefined();
    expect(new Set(sink.sentIds()).size).toBe(2);
    expect(sink.sentIds()).toHaveLength(2);
  });

  it('treats an update without an event stream (404) as nothing to follow, not as an error', async () => {
    api.failNext = new ExporterError('API_NOT_FOUND', 'no events', { retryable: false });
    expect(await round()).toBe(0);
    expect(errors).toEqual([]);
  });
});

describe('FollowedStreams', () => {
  it('calls an update idle once it brought no new event for the idle time, and forgets updates no longer running', () => {
    const streams = new FollowedStreams();
    expect(streams.idle(STACK, 'u1', 10_000, 5_000)).toBe(false);
    streams.open(STACK, 'u1', 1_000);
    streams.open(STACK, 'u2', 1_000);
    expect(streams.idle(STACK, 'u1', 5_999, 5_000)).toBe(false);
    expect(streams.idle(STACK, 'u1', 6_000, 5_000)).toBe(true);
    streams.retainOnly([{ stack: STACK, updateId: 'u2' }]);
    expect(streams.get(STACK, 'u1')).toBeUndefined();
    expect(streams.size).toBe(1);
  });
});
