import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StackRef } from '../../../src/domain/stack.js';
import type { ResourceOperation } from '../../../src/domain/trace.js';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../../../src/metrics/update-deltas.js';
import { PostgresStateStore } from '../../../src/state/postgres-store.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../helpers/postgres.js';

/*
 * A scrape after writes reads and re-renders only what they changed
 * (StateStore.readMetricsChanges). Whatever the writes, its store-backed text must be the
 * text a full read of the same store renders: checked after random sequences of commits,
 * running-set changes and stack-list changes, in both formats, plain and gzip; on SQLite
 * (writes of this process) and on PostgreSQL (writes of this and of another replica).
 */

const stores: StateStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const STACKS: readonly StackRef[] = [
  { org: 'acme', project: 'web', stack: 'prod' },
  { org: 'acme', project: 'web', stack: 'prod-eu' },
  { org: 'acme', project: 'api', stack: 'dev' },
  { org: 'acme', project: 'a-b', stack: 'x' },
  { org: 'beta', project: 'web', stack: 'prod' },
];
const ORGS = ['acme', 'beta'];
const TYPES = ['aws:s3/bucket:Bucket', 'random:index/randomPet:RandomPet', 'kubernetes:core/v1:Service'];
const KINDS = ['update', 'refresh', 'destroy'];
const RESULTS = ['succeeded', 'failed', 'cancelled'] as const;

const stackArb = fc.integer({ min: 0, max: STACKS.length - 1 });

type Op =
  | { op: 'commit'; stack: number; id: number; kind: number; result: number; start: number; length: number; steps: { type: number; seconds: number; failed: boolean }[] }
  | { op: 'running'; stack: number; updates: { id: number; kind: number; start: number }[] }
  | { op: 'list'; org: number; stacks: { stack: number; resources: number | null }[] }
  | { op: 'scrape'; openMetrics: boolean };

/** An operation and which store writes it: 0 is the one scraped, 1 another replica (PostgreSQL only). */
type Step = { readonly op: Op; readonly writer: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('commit' as const),
    stack: stackArb,
    // A small id space: some commits repeat an exported update and must change nothing.
    id: fc.integer({ min: 0, max: 30 }),
    kind: fc.integer({ min: 0, max: KINDS.length - 1 }),
    result: fc.integer({ min: 0, max: RESULTS.length - 1 }),
    start: fc.integer({ min: 1_000, max: 9_000 }),
    length: fc.integer({ min: 0, max: 2_000 }),
    steps: fc.array(fc.record({ type: fc.integer({ min: 0, max: TYPES.length - 1 }), seconds: fc.integer({ min: 0, max: 700 }), failed: fc.boolean() }), { maxLength: 4 }),
  }),
  fc.record({
    op: fc.constant('running' as const),
    stack: stackArb,
    updates: fc.array(fc.record({ id: fc.integer({ min: 100, max: 105 }), kind: fc.integer({ min: 0, max: KINDS.length - 1 }), start: fc.integer({ min: 1_000, max: 9_000 }) }), { maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant('list' as const),
    org: fc.integer({ min: 0, max: ORGS.length - 1 }),
    stacks: fc.array(fc.record({ stack: stackArb, resources: fc.option(fc.integer({ min: 0, max: 50 })) }), { maxLength: 5 }),
  }),
  fc.record({ op: fc.constant('scrape' as const), openMetrics: fc.boolean() }),
);

async function apply(store: StateStore, op: Op): Promise<void> {
  if (op.op === 'commit') {
    const stack = STACKS[op.stack] as StackRef;
    const updateId = `u-${op.id}`;
    const kind = KINDS[op.kind] as string;
    const result = RESULTS[op.result] as (typeof RESULTS)[number];
    const operations: ResourceOperation[] = op.steps.map((s, i) => ({
      urn: `urn:pulumi:s::p::t::r${i}`,
      op: 'create',
      resourceType: TYPES[s.type] as string,
      result: s.failed ? 'failed' : 'succeeded',
      durationSeconds: s.seconds,
    }));
    const startTime = op.start;
    const endTime = op.start + op.length;
    await store.commitUpdate({
      update: { stack, updateId, kind, version: op.id + 1, result, startTime, endTime },
      deltas: updateMetricDeltas({
        stack,
        updateId,
        kind,
        result,
        startTime,
        endTime,
        resourceChanges: { create: op.steps.length },
        operations,
        policyViolations: [],
        detail: DEFAULT_METRIC_DETAIL,
      }),
      exportedAtMs: endTime * 1000,
    });
  } else if (op.op === 'running') {
    const stack = STACKS[op.stack] as StackRef;
    await store.setInProgress(
      stack,
      op.updates.map((u) => ({ stack, updateId: `r-${u.id}`, kind: KINDS[u.kind] as string, version: u.id, startTime: u.start })),
    );
  } else if (op.op === 'list') {
    const org = ORGS[op.org] as string;
    const listed = new Map<string, { org: string; project: string; stack: string; resourceCount?: number; lastUpdate: number }>();
    for (const s of op.stacks) {
      const ref = STACKS[s.stack] as StackRef;
      if (ref.org !== org) continue;
      listed.set(`${ref.project}/${ref.stack}`, { ...ref, lastUpdate: 1, ...(s.resources === null ? {} : { resourceCount: s.resources }) });
    }
    await store.replaceOrgStacks(org, [...listed.values()], 1_000);
  }
}

/** Everything before the self-metrics: the store-backed part. */
function storePart(body: string): string {
  const end = body.indexOf('# HELP pulumi_exporter_');
  expect(end).toBeGreaterThan(0);
  return body.slice(0, end);
}

interface Subject {
  /** The store the scrape reads, and another writer on the same data (itself for SQLite). */
  readonly stores: readonly [StateStore, StateStore];
}

async function checkSteps(subject: Subject, steps: readonly Step[]): Promise<void> {
  const [store] = subject.stores;
  await store.replaceOrgStacks('acme', STACKS.filter((s) => s.org === 'acme').map((s) => ({ ...s, lastUpdate: 1, resourceCount: 3 })), 0);
  let fullReads = 0;
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readCounters') fullReads += 1;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const incremental = new ExporterMetrics({ store: counted, version: 'v', revision: 'r' });
  await incremental.render();
  for (const { op, writer } of steps) {
    await apply(subject.stores[writer] as StateStore, op);
    if (op.op === 'scrape') await incremental.render(op.openMetrics ? 'application/openmetrics-text' : undefined);
  }
  for (const accept of [undefined, 'application/openmetrics-text']) {
    const got = await incremental.render(accept);
    // A new ExporterMetrics has nothing rendered yet: it reads the whole store.
    const full = await new ExporterMetrics({ store, version: 'v', revision: 'r' }).render(accept);
    expect(storePart(got.body)).toBe(storePart(full.body));
    expect(gunzipSync(Buffer.concat(await got.gzipParts())).toString('utf8')).toBe(got.body);
  }
  // Every write recorded what it changed, so only the first scrape read everything.
  expect(fullReads).toBe(1);
}

describe('incremental /metrics after writes of this process (SQLite)', () => {
  it('renders what a full read of the same store renders, after any sequence of commits, running sets and stack lists', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const store = new SqliteStateStore({ path: ':memory:' });
        stores.push(store);
        await store.migrate();
        await checkSteps({ stores: [store, store] }, ops.map((op) => ({ op, writer: 0 })));
        await store.close();
      }),
      { numRuns: 60 },
    );
  });
});

const postgres = await postgresAvailable();

describe.skipIf(!postgres)('incremental /metrics after writes of any replica (PostgreSQL)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('renders what a full read renders, whichever replica wrote, after any sequence of commits, running sets and stack lists', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ op: opArb, writer: fc.integer({ min: 0, max: 1 }) }), { minLength: 1, maxLength: 30 }), async (steps) => {
        const url = await db.schemaUrl();
        const scraped = new PostgresStateStore({ url });
        const other = new PostgresStateStore({ url });
        stores.push(scraped, other);
        await scraped.migrate();
        await checkSteps({ stores: [scraped, other] }, steps);
      }),
      { numRuns: 12 },
    );
  }, 120_000);

  it('reads everything again when the stamp moved without a record of what changed', async () => {
    const url = await db.schemaUrl();
    const store = new PostgresStateStore({ url });
    stores.push(store);
    await store.migrate();
    await apply(store, { op: 'running', stack: 0, updates: [{ id: 100, kind: 0, start: 2_000 }] });
    const stamp = await store.readMetricsStamp();
    expect((await store.readMetricsChanges(stamp))?.changes).toEqual({ series: [], stacks: [] });
    await apply(store, { op: 'running', stack: 1, updates: [{ id: 101, kind: 0, start: 2_000 }] });
    expect((await store.readMetricsChanges(stamp))?.changes.stacks).toEqual([STACKS[1]]);
    // What a reader has read up to the stamp it asked after is deleted: the table holds only what is still to be read.
    const left = await store.query('test', (c) => c.query<{ first: number | null }>('SELECT min(stamp)::float8 AS first FROM metrics_changes'));
    expect(left.rows[0]?.first).toBe(stamp + 1);
    // A write that does not record (an operator's UPDATE, an older build): no answer, so a full read.
    await store.query('test', (c) => c.query('UPDATE metrics_stamp SET stamp = stamp + 1 WHERE id = 1'));
    expect(await store.readMetricsChanges(stamp)).toBeUndefined();
    expect(await store.readMetricsChanges(stamp + 2)).toEqual(expect.objectContaining({ stamp: stamp + 2 }));
    expect(await store.readMetricsChanges(stamp + 3)).toBeUndefined();
  });
});
