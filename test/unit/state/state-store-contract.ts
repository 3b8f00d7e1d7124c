import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { labelsKey } from '../../../src/domain/metric-delta.js';
import type { CounterDelta, HistogramObservation, MetricDeltas } from '../../../src/domain/metric-delta.js';
import type { StackRef, StackSummary } from '../../../src/domain/stack.js';
import { stackKey } from '../../../src/domain/stack.js';
import { ExporterError } from '../../../src/errors.js';
import type { ExportedUpdate, FollowRecord, InProgressRecord, StateStore, UpdateCommit } from '../../../src/state/state-store.js';

/** What a store factory hands the suite. `reopen` opens the same data again after `store.close()`. */
export interface ContractSubject {
  readonly store: StateStore;
  readonly reopen?: () => Promise<StateStore>;
  readonly cleanup: () => Promise<void>;
}

const DEV: StackRef = { org: 'acme', project: 'web', stack: 'dev' };
const PROD: StackRef = { org: 'acme', project: 'web', stack: 'prod' };
const OTHER: StackRef = { org: 'globex', project: 'api', stack: 'dev' };
/** DEV after a rename: same org, new stack name (Pulumi keeps its update ids). */
const RENAMED: StackRef = { org: 'acme', project: 'web', stack: 'development' };
const BOUNDS = [1, 5, 10];

function update(stack: StackRef, updateId: string, version: number, fields: Partial<ExportedUpdate> = {}): ExportedUpdate {
  return {
    stack,
    updateId,
    kind: 'update',
    version,
    result: 'succeeded',
    startTime: 1_700_000_000 + version * 100,
    endTime: 1_700_000_000 + version * 100 + 60,
    ...fields,
  };
}

function commit(u: ExportedUpdate, deltas: Partial<MetricDeltas> = {}, exportedAtMs = 5_000): UpdateCommit {
  return { update: u, deltas: { counters: deltas.counters ?? [], histograms: deltas.histograms ?? [] }, exportedAtMs };
}

function counter(name: string, labels: Record<string, string>, value: number): CounterDelta {
  return { name, labels, value };
}

function observe(value: number, labels: Record<string, string> = { kind: 'update' }, buckets = BOUNDS): HistogramObservation {
  return { name: 'pulumi_update_duration_seconds', labels, buckets, value };
}

function running(stack: StackRef, updateId: string, version: number): InProgressRecord {
  return { stack, updateId, kind: 'update', version, startTime: 1_700_000_000 + version };
}

function summary(ref: StackRef, lastUpdate?: number, resourceCount?: number): StackSummary {
  return {
    ...ref,
    ...(lastUpdate === undefined ? {} : { lastUpdate }),
    ...(resourceCount === undefined ? {} : { resourceCount }),
  };
}

function sortBy<T>(rows: readonly T[], key: (row: T) => string): T[] {
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Everything a store exposes, in an order that does not depend on the implementation. */
async function snapshot(store: StateStore) {
  return {
    stacks: sortBy(await store.listStacks(), stackKey),
    inProgress: sortBy(await store.listInProgress(), (r) => `${stackKey(r.stack)} ${r.updateId}`),
    counters: sortBy(await store.readCounters(), (r) => `${r.name} ${labelsKey(r.labels)}`),
    histograms: sortBy(await store.readHistograms(), (r) => `${r.name} ${labelsKey(r.labels)}`),
    lastUpdates: sortBy(await store.readLastUpdates(), (r) => `${stackKey(r.stack)} ${r.kind}`),
    lastSuccesses: sortBy(await store.readLastSuccesses(), (r) => stackKey(r.stack)),
    exported: await store.countExported(),
  };
}

async function counterValue(store: StateStore, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const rows = await store.readCounters();
  return rows.find((r) => r.name === name && labelsKey(r.labels) === labelsKey(labels))?.value;
}

async function expectStateError(promise: Promise<unknown>): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExporterError);
  expect((err as ExporterError).code).toBe('STATE_ERROR');
}

/**
 * The behaviour every StateStore must show. Each test gets a fresh store from `create`
 * (the suite calls `migrate()` on it) and calls `cleanup` afterwards.
 */
export function stateStoreContract(name: string, create: () => Promise<ContractSubject>): void {
  describe(`${name} (StateStore contract)`, () => {
    let subject: ContractSubject;
    let store: StateStore;

    beforeEach(async () => {
      subject = await create();
      store = subject.store;
      await store.migrate();
    });

    afterEach(async () => {
      await subject.cleanup();
    });

    describe('lifecycle', () => {
      it('migrates again without losing data', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { counters: [counter('c_total', {}, 1)] }));
        const before = await snapshot(store);
        await store.migrate();
        await store.migrate();
        expect(await snapshot(store)).toEqual(before);
      });

      it('answers ping while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('closes idempotently and then rejects calls with STATE_ERROR', async () => {
        await store.close();
        await store.close();
        await expectStateError(store.ping());
        await expectStateError(store.listStacks());
      });

      it('starts empty', async () => {
        expect(await snapshot(store)).toEqual({
          stacks: [],
          inProgress: [],
          counters: [],
          histograms: [],
          lastUpdates: [],
          lastSuccesses: [],
          exported: 0,
        });
      });
    });

    describe('stacks', () => {
      it('inserts listed stacks with cursor 0 and the time they were first seen', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100, 5), summary(PROD)], 1_000);
        expect(sortBy(await store.listStacks(), stackKey)).toEqual([
          { ...DEV, lastUpdate: 100, resourceCount: 5, cursorVersion: 0, firstSeenMs: 1_000 },
          { ...PROD, cursorVersion: 0, firstSeenMs: 1_000 },
        ]);
        expect(await store.getStack(DEV)).toEqual({
          ...DEV,
          lastUpdate: 100,
          resourceCount: 5,
          cursorVersion: 0,
          firstSeenMs: 1_000,
        });
      });

      it('returns undefined for a stack it never saw', async () => {
        expect(await store.getStack(DEV)).toBeUndefined();
      });

      it('refreshes lastUpdate and resourceCount but keeps cursor, synced value and first-seen time', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100, 5)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u3', 3)));
        await store.markStackSynced(DEV, 100);
        await store.replaceOrgStacks('acme', [summary(DEV, 200, 7)], 2_000);
        expect(await store.getStack(DEV)).toEqual({
          ...DEV,
          lastUpdate: 200,
          resourceCount: 7,
          syncedLastUpdate: 100,
          cursorVersion: 3,
          firstSeenMs: 1_000,
        });
      });

      it('hides unlisted stacks of the org, drops their gauge facts, keeps their counters and leaves other orgs alone', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV), summary(PROD)], 1_000);
        await store.replaceOrgStacks('globex', [summary(OTHER)], 1_000);
        await store.commitUpdate(commit(update(PROD, 'p1', 1), { counters: [counter('c_total', { stack: 'prod' }, 1)] }));
        await store.commitUpdate(commit(update(OTHER, 'o1', 1)));
        await store.setInProgress(PROD, [running(PROD, 'p2', 2)]);
        await store.setInProgress(OTHER, [running(OTHER, 'o2', 2)]);

        await store.replaceOrgStacks('acme', [summary(DEV)], 2_000);

        const after = await snapshot(store);
        expect(after.stacks.map(stackKey)).toEqual([stackKey(DEV), stackKey(OTHER)]);
        expect(after.inProgress.map((r) => r.updateId)).toEqual(['o2']);
        expect(after.lastUpdates.map((r) => stackKey(r.stack))).toEqual([stackKey(OTHER)]);
        expect(after.lastSuccesses.map((r) => stackKey(r.stack))).toEqual([stackKey(OTHER)]);
        expect(after.counters).toEqual([{ name: 'c_total', labels: { stack: 'prod' }, value: 1 }]);
        expect(after.exported).toBe(2);
        expect(await store.countExported(PROD)).toBe(1);
        expect(await store.isExported(PROD, 'p1')).toBe(true);
        expect(await store.getStack(PROD)).toBeUndefined();
      });

      it('brings a relisted stack back with its cursor and first-seen time, to be synced again, without recounting', async () => {
        await store.replaceOrgStacks('acme', [summary(PROD, 100, 5)], 1_000);
        const first = commit(update(PROD, 'p5', 5), { counters: [counter('c_total', {}, 1)] });
        await store.commitUpdate(first);
        await store.markStackSynced(PROD, 100);
        await store.replaceOrgStacks('acme', [], 2_000);
        expect(await store.getStack(PROD)).toBeUndefined();
        expect(await store.listStacks()).toEqual([]);

        await store.replaceOrgStacks('acme', [summary(PROD, 300, 9)], 3_000);
        // The backfill window must not move (firstSeenMs) and history resumes at the cursor;
        // a re-created stack is detected by the sync and gets resetCursor.
        expect(await store.getStack(PROD)).toEqual({ ...PROD, lastUpdate: 300, resourceCount: 9, cursorVersion: 5, firstSeenMs: 1_000 });
        expect(await store.commitUpdate(first)).toBe(false);
        expect(await counterValue(store, 'c_total', {})).toBe(1);
      });

      it('keeps the synced value of a stack that stays listed', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD, 100)], 1_000);
        await store.markStackSynced(DEV, 100);
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 2_000);
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 3_000);
        expect((await store.getStack(DEV))?.syncedLastUpdate).toBe(100);
      });

      it('ignores markStackSynced, advanceCursor and resetCursor for an unlisted stack', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u3', 3)));
        await store.replaceOrgStacks('acme', [], 2_000);

        await store.markStackSynced(DEV, 100);
        await store.advanceCursor(DEV, 10);
        await store.resetCursor(DEV);
        expect(await store.getStack(DEV)).toBeUndefined();

        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 3_000);
        expect(await store.getStack(DEV)).toEqual({ ...DEV, lastUpdate: 100, cursorVersion: 3, firstSeenMs: 1_000 });
      });

      it('counts a commit for an unlisted stack once, raises its cursor, keeps it hidden and gives it no gauge facts', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u3', 3)));
        await store.replaceOrgStacks('acme', [], 2_000);

        const late = commit(update(DEV, 'u4', 4), { counters: [counter('c_total', {}, 1)] });
        expect(await store.commitUpdate(late)).toBe(true);
        expect(await store.commitUpdate(late)).toBe(false);
        const after = await snapshot(store);
        expect(after.stacks).toEqual([]);
        expect(after.lastUpdates).toEqual([]);
        expect(after.lastSuccesses).toEqual([]);
        expect(after.counters).toEqual([{ name: 'c_total', labels: {}, value: 1 }]);
        expect(after.exported).toBe(2);

        await store.replaceOrgStacks('acme', [summary(DEV, 200)], 3_000);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(4);
      });

      it('hides every stack of the org when the list is empty', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV), summary(PROD)], 1_000);
        await store.replaceOrgStacks('globex', [summary(OTHER)], 1_000);
        await store.replaceOrgStacks('acme', [], 2_000);
        expect((await store.listStacks()).map(stackKey)).toEqual([stackKey(OTHER)]);
      });

      it('rejects a stack listed under another org and stores nothing of that call', async () => {
        await expectStateError(store.replaceOrgStacks('acme', [summary(DEV), summary(OTHER)], 1_000));
        expect(await store.listStacks()).toEqual([]);
      });

      it('remembers and clears the lastUpdate a sync covered', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.markStackSynced(DEV, 100);
        expect((await store.getStack(DEV))?.syncedLastUpdate).toBe(100);
        await store.markStackSynced(DEV, undefined);
        const record = await store.getStack(DEV);
        expect(record?.syncedLastUpdate).toBeUndefined();
        expect(record?.lastUpdate).toBe(100);
      });

      it('resets the cursor of a re-created stack to 0 and keeps its ledger and counters', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u5', 5), { counters: [counter('pulumi_updates_total', { kind: 'update' }, 1)] }));
        expect((await store.getStack(DEV))?.cursorVersion).toBe(5);
        await store.resetCursor(DEV);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(0);
        expect(await store.isExported(DEV, 'u5')).toBe(true);
        expect((await store.readCounters()).map((c) => c.value)).toEqual([1]);
        await store.commitUpdate(commit(update(DEV, 'n1', 1)));
        expect((await store.getStack(DEV))?.cursorVersion).toBe(1);
        await store.resetCursor(OTHER);
        expect(await store.getStack(OTHER)).toBeUndefined();
      });

      it('raises the cursor with advanceCursor and never lowers it', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.advanceCursor(DEV, 4);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(4);
        await store.commitUpdate(commit(update(DEV, 'u6', 6)));
        await store.advanceCursor(DEV, 5);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(6);
        await store.advanceCursor(DEV, 6);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(6);
        await store.advanceCursor(DEV, 9);
        expect(await store.getStack(DEV)).toEqual({ ...DEV, lastUpdate: 100, cursorVersion: 9, firstSeenMs: 1_000 });
      });

      it('ignores advanceCursor for a stack it does not know', async () => {
        await store.advanceCursor(DEV, 3);
        expect(await store.getStack(DEV)).toBeUndefined();
        expect(await store.listStacks()).toEqual([]);
      });

      it('refuses advanceCursor to a version that is not an integer >= 0', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV)], 1_000);
        for (const version of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expectStateError(store.advanceCursor(DEV, version));
        }
        expect((await store.getStack(DEV))?.cursorVersion).toBe(0);
      });

      it('keeps a preview cursor per stack, moving it either way, across a reopen', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD, 100)], 1_000);
        expect((await store.getStack(DEV))?.previewCursor).toBeUndefined();
        await store.setPreviewCursor(DEV, { version: 4, startTime: 1_700_000_500 });
        expect((await store.getStack(DEV))?.previewCursor).toEqual({ version: 4, startTime: 1_700_000_500 });
        // A running preview holds the cursor at its start: it may move back.
        await store.setPreviewCursor(DEV, { version: 3, startTime: 1_700_000_100 });
        expect(await store.getStack(DEV)).toEqual({ ...DEV, lastUpdate: 100, cursorVersion: 0, previewCursor: { version: 3, startTime: 1_700_000_100 }, firstSeenMs: 1_000 });
        expect((await store.getStack(PROD))?.previewCursor).toBeUndefined();
        if (subject.reopen) {
          await store.close();
          store = await subject.reopen();
          await store.migrate();
          expect((await store.getStack(DEV))?.previewCursor).toEqual({ version: 3, startTime: 1_700_000_100 });
        }
      });

      it('ignores setPreviewCursor for an unknown or unlisted stack and refuses an invalid position', async () => {
        await store.setPreviewCursor(DEV, { version: 1, startTime: 5 });
        expect(await store.listStacks()).toEqual([]);
        await store.replaceOrgStacks('acme', [summary(DEV)], 1_000);
        for (const bad of [{ version: -1, startTime: 5 }, { version: 1.5, startTime: 5 }, { version: 1, startTime: Number.NaN }, { version: 1, startTime: -3 }]) {
          await expectStateError(store.setPreviewCursor(DEV, bad));
        }
        expect((await store.getStack(DEV))?.previewCursor).toBeUndefined();
        await store.replaceOrgStacks('acme', [], 2_000);
        await store.setPreviewCursor(DEV, { version: 2, startTime: 5 });
        await store.replaceOrgStacks('acme', [summary(DEV)], 3_000);
        expect((await store.getStack(DEV))?.previewCursor).toBeUndefined();
      });

      it('clears the preview cursor of a re-created stack with its cursor', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.setPreviewCursor(DEV, { version: 5, startTime: 1_700_000_900 });
        await store.resetCursor(DEV);
        expect((await store.getStack(DEV))?.previewCursor).toBeUndefined();
      });

      it('counts a preview once without moving the cursor or the last successful update', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u2', 2, { endTime: 500 })));
        for (const kind of ['preview', 'Pupdate']) {
          const p = update(DEV, `p-${kind}`, 7, { kind, startTime: 800, endTime: 900 });
          expect(await store.commitUpdate(commit(p, { counters: [counter('pulumi_updates_total', { kind: 'preview' }, 1)] }))).toBe(true);
          expect(await store.commitUpdate(commit(p, { counters: [counter('pulumi_updates_total', { kind: 'preview' }, 1)] }))).toBe(false);
        }
        expect((await store.getStack(DEV))?.cursorVersion).toBe(2);
        expect(await store.readLastSuccesses()).toEqual([{ stack: DEV, endTime: 500 }]);
        expect(sortBy(await store.readLastUpdates(), (r) => r.kind).map((r) => [r.kind, r.endTime])).toEqual([
          ['Pupdate', 900],
          ['preview', 900],
          ['update', 500],
        ]);
        expect((await store.readCounters()).map((c) => c.value)).toEqual([2]);
        expect(await store.isExported(DEV, 'p-preview')).toBe(true);
      });

      it('ignores markStackSynced for a stack it does not know', async () => {
        await store.markStackSynced(DEV, 100);
        expect(await store.listStacks()).toEqual([]);
      });
    });

    describe('commitUpdate', () => {
      it('applies an update once: a second commit returns false and changes nothing', async () => {
        const u = update(DEV, 'u1', 1);
        expect(
          await store.commitUpdate(
            commit(u, { counters: [counter('c_total', { k: 'v' }, 1)], histograms: [observe(3)] }),
          ),
        ).toBe(true);
        const before = await snapshot(store);
        expect(
          await store.commitUpdate(
            commit(
              { ...u, version: 9, endTime: u.endTime + 1_000, result: 'failed' },
              { counters: [counter('c_total', { k: 'v' }, 5)], histograms: [observe(8)] },
              9_000,
            ),
          ),
        ).toBe(false);
        expect(await snapshot(store)).toEqual(before);
      });

      it('records the update as exported for every stack of its org', async () => {
        await store.commitUpdate(commit(update(DEV, 'u1', 1)));
        expect(await store.isExported(DEV, 'u1')).toBe(true);
        expect(await store.isExported(PROD, 'u1')).toBe(true);
        expect(await store.isExported(OTHER, 'u1')).toBe(false);
        expect(await store.isExported(DEV, 'u2')).toBe(false);
        expect(await store.countExported()).toBe(1);
        expect(await store.countExported(DEV)).toBe(1);
        expect(await store.countExported(PROD)).toBe(0);
      });

      it('counts exported updates per stack and in total', async () => {
        await store.commitUpdate(commit(update(DEV, 'd1', 1)));
        await store.commitUpdate(commit(update(DEV, 'd2', 2)));
        await store.commitUpdate(commit(update(PROD, 'p1', 1)));
        expect(await store.countExported()).toBe(3);
        expect(await store.countExported(DEV)).toBe(2);
        expect(await store.countExported(PROD)).toBe(1);
        expect(await store.countExported(OTHER)).toBe(0);
      });

      it('does not count an update again under the new name of a renamed stack', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        const u = update(DEV, 'u1', 1);
        const deltas = { counters: [counter('c_total', { kind: 'update' }, 1)], histograms: [observe(3)] };
        expect(await store.commitUpdate(commit(u, deltas))).toBe(true);
        await store.replaceOrgStacks('acme', [summary(RENAMED, 100)], 2_000);
        const before = await snapshot(store);

        expect(await store.isExported(RENAMED, 'u1')).toBe(true);
        expect(await store.commitUpdate(commit({ ...u, stack: RENAMED }, deltas, 9_000))).toBe(false);
        expect(await snapshot(store)).toEqual(before);
        expect(await store.countExported(RENAMED)).toBe(0);
        expect(await store.countExported(DEV)).toBe(1);
        expect((await store.getStack(RENAMED))?.cursorVersion).toBe(0);
      });

      it('treats the same update id in another org as a different update', async () => {
        expect(await store.commitUpdate(commit(update(DEV, 'same', 1), { counters: [counter('c_total', {}, 1)] }))).toBe(true);
        expect(await store.isExported(OTHER, 'same')).toBe(false);
        expect(await store.commitUpdate(commit(update(OTHER, 'same', 1), { counters: [counter('c_total', {}, 1)] }))).toBe(true);
        expect(await store.isExported(OTHER, 'same')).toBe(true);
        expect(await store.countExported()).toBe(2);
        expect(await store.countExported(DEV)).toBe(1);
        expect(await store.countExported(OTHER)).toBe(1);
        expect(await counterValue(store, 'c_total', {})).toBe(2);
      });

      it('creates the stack, listed, when a commit arrives for a stack it does not know', async () => {
        await store.commitUpdate(commit(update(DEV, 'u4', 4), {}, 7_000));
        expect(await store.getStack(DEV)).toEqual({ ...DEV, cursorVersion: 4, firstSeenMs: 7_000 });
        expect(await store.listStacks()).toEqual([{ ...DEV, cursorVersion: 4, firstSeenMs: 7_000 }]);
      });

      it('raises the cursor to the highest committed version and never lowers it', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u5', 5)));
        expect((await store.getStack(DEV))?.cursorVersion).toBe(5);
        await store.commitUpdate(commit(update(DEV, 'u3', 3)));
        expect((await store.getStack(DEV))?.cursorVersion).toBe(5);
        await store.commitUpdate(commit(update(DEV, 'u7', 7)));
        expect((await store.getStack(DEV))?.cursorVersion).toBe(7);
      });

      it('accumulates counter deltas across updates, whatever the label order', async () => {
        await store.commitUpdate(
          commit(update(DEV, 'u1', 1), {
            counters: [
              counter('pulumi_updates_total', { stack: 'dev', kind: 'update', result: 'succeeded' }, 1),
              counter('pulumi_resource_operations_total', { op: 'create' }, 4),
            ],
          }),
        );
        await store.commitUpdate(
          commit(update(DEV, 'u2', 2), {
            counters: [
              counter('pulumi_updates_total', { result: 'succeeded', kind: 'update', stack: 'dev' }, 1),
              counter('pulumi_resource_operations_total', { op: 'delete' }, 2),
              counter('pulumi_resource_operations_total', { op: 'create' }, 1),
            ],
          }),
        );
        expect(sortBy(await store.readCounters(), (r) => `${r.name} ${labelsKey(r.labels)}`)).toEqual([
          { name: 'pulumi_resource_operations_total', labels: { op: 'create' }, value: 5 },
          { name: 'pulumi_resource_operations_total', labels: { op: 'delete' }, value: 2 },
          { name: 'pulumi_updates_total', labels: { kind: 'update', result: 'succeeded', stack: 'dev' }, value: 2 },
        ]);
      });

      it('adds up repeated deltas for one series inside a single commit', async () => {
        await store.commitUpdate(
          commit(update(DEV, 'u1', 1), {
            counters: [counter('c_total', { a: '1', b: '2' }, 2), counter('c_total', { b: '2', a: '1' }, 3)],
          }),
        );
        expect(await counterValue(store, 'c_total', { a: '1', b: '2' })).toBe(5);
      });

      it('keeps fractional increments and creates a series for a zero increment', async () => {
        await store.commitUpdate(
          commit(update(DEV, 'u1', 1), { counters: [counter('s_total', {}, 1.25), counter('z_total', {}, 0)] }),
        );
        await store.commitUpdate(commit(update(DEV, 'u2', 2), { counters: [counter('s_total', {}, 0.5)] }));
        expect(await counterValue(store, 's_total', {})).toBe(1.75);
        expect(await counterValue(store, 'z_total', {})).toBe(0);
      });

      it('refuses a negative or non-finite counter increment', async () => {
        for (const [i, value] of [-1, Number.NaN, Number.POSITIVE_INFINITY].entries()) {
          await expectStateError(
            store.commitUpdate(commit(update(DEV, `bad${i}`, 1), { counters: [counter('c_total', {}, value)] })),
          );
        }
        expect(await snapshot(store)).toMatchObject({ counters: [], exported: 0, stacks: [] });
      });
    });

    describe('commitUpdates', () => {
      const traced = (value: number, traceId: string, timestamp: number): HistogramObservation => ({ ...observe(value), exemplar: { traceId, timestamp } });
      /** Updates of two stacks sharing a counter and a histogram series, with exemplars in the same bucket. */
      const several = (): UpdateCommit[] => [
        commit(update(DEV, 'd1', 1, { endTime: 1_000 }), { counters: [counter('c_total', { k: 'v' }, 1)], histograms: [traced(0.5, 'a'.repeat(32), 100), observe(7)] }),
        commit(update(DEV, 'd2', 2, { endTime: 2_000, result: 'failed' }), { counters: [counter('c_total', { k: 'v' }, 2), counter('f_total', {}, 1)], histograms: [traced(0.7, 'b'.repeat(32), 200)] }),
        commit(update(PROD, 'p1', 1, { endTime: 1_500 }), { counters: [counter('c_total', { k: 'v' }, 4)], histograms: [observe(20)] }, 6_000),
        // A preview of the newest version: it moves neither the cursor nor the last success.
        commit(update(DEV, 'v1', 3, { kind: 'preview', endTime: 3_000 })),
        // Ends at the same time as d2: the later commit's facts stand.
        commit(update(DEV, 'd0', 0, { endTime: 2_000, result: 'succeeded' })),
      ];

      it('leaves the same state as committing the updates one by one', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD, 100)], 1_000);
        await store.setInProgress(DEV, [running(DEV, 'd2', 2), running(DEV, 'd3', 3)]);
        expect(await store.commitUpdates(several())).toEqual([true, true, true, true, true]);

        const other = await create();
        try {
          await other.store.migrate();
          await other.store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD, 100)], 1_000);
          await other.store.setInProgress(DEV, [running(DEV, 'd2', 2), running(DEV, 'd3', 3)]);
          for (const c of several()) expect(await other.store.commitUpdate(c)).toBe(true);
          expect(await snapshot(store)).toEqual(await snapshot(other.store));
        } finally {
          await other.cleanup();
        }
        expect(await counterValue(store, 'c_total', { k: 'v' })).toBe(7);
        expect((await store.getStack(DEV))?.cursorVersion).toBe(2);
        expect((await store.listInProgress()).map((r) => r.updateId)).toEqual(['d3']);
        expect((await store.readLastUpdates()).find((r) => r.stack.stack === 'dev' && r.kind === 'update')?.result).toBe('succeeded');
        expect((await store.readLastSuccesses()).find((r) => r.stack.stack === 'dev')?.endTime).toBe(2_000);
        // The later update's exemplar wins its bucket, as with separate commits.
        expect((await store.readHistograms())[0]?.exemplars?.[0]).toEqual({ traceId: 'b'.repeat(32), value: 0.7, timestamp: 200 });
      });

      it('answers false, counting nothing, at the index of an update already exported or listed twice', async () => {
        const [d1, d2, p1] = several() as [UpdateCommit, UpdateCommit, UpdateCommit];
        expect(await store.commitUpdate(d1)).toBe(true);
        expect(await store.commitUpdates([d1, d2, d2, p1])).toEqual([false, true, false, true]);
        expect(await store.countExported()).toBe(3);
        expect(await counterValue(store, 'c_total', { k: 'v' })).toBe(7);
        expect(await store.commitUpdates([d1, d2])).toEqual([false, false]);
        expect(await counterValue(store, 'c_total', { k: 'v' })).toBe(7);
        expect(await store.commitUpdates([])).toEqual([]);
      });

      it('commits none of the updates when one of them is refused', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD, 100)], 1_000);
        const before = await snapshot(store);
        const [d1, d2] = several() as [UpdateCommit, UpdateCommit];
        const refused = commit(update(PROD, 'p1', 1), { histograms: [observe(4), observe(4, { kind: 'update' }, [1, 2])] });
        await expectStateError(store.commitUpdates([d1, d2, refused]));
        expect(await snapshot(store)).toEqual(before);
        expect(await store.isExported(DEV, 'd1')).toBe(false);
        expect(await store.commitUpdates([d1, d2])).toEqual([true, true]);
      });
    });

    describe('histograms', () => {
      it('counts a value in the first bucket whose bound is >= it, and beyond the last bound in +Inf', async () => {
        const values = [0.5, 1, 5, 7, 10, 11, 1_000];
        for (const [i, value] of values.entries()) {
          await store.commitUpdate(commit(update(DEV, `u${i}`, i + 1), { histograms: [observe(value)] }));
        }
        expect(await store.readHistograms()).toEqual([
          {
            name: 'pulumi_update_duration_seconds',
            labels: { kind: 'update' },
            buckets: BOUNDS,
            bucketCounts: [2, 1, 2, 2],
            sum: 1_034.5,
            count: 7,
          },
        ]);
      });

      it('keeps one series per label set, whatever the label order', async () => {
        await store.commitUpdate(
          commit(update(DEV, 'u1', 1), {
            histograms: [observe(2, { kind: 'update', stack: 'dev' }), observe(20, { kind: 'refresh', stack: 'dev' })],
          }),
        );
        await store.commitUpdate(
          commit(update(DEV, 'u2', 2), { histograms: [observe(0, { stack: 'dev', kind: 'update' })] }),
        );
        const rows = sortBy(await store.readHistograms(), (r) => labelsKey(r.labels));
        expect(rows).toEqual([
          {
            name: 'pulumi_update_duration_seconds',
            labels: { kind: 'refresh', stack: 'dev' },
            buckets: BOUNDS,
            bucketCounts: [0, 0, 0, 1],
            sum: 20,
            count: 1,
          },
          {
            name: 'pulumi_update_duration_seconds',
            labels: { kind: 'update', stack: 'dev' },
            buckets: BOUNDS,
            bucketCounts: [1, 1, 0, 0],
            sum: 2,
            count: 2,
          },
        ]);
      });

      it('adds up several observations of a series in one commit and keeps the latest exemplar per bucket', async () => {
        const traced = (value: number, traceId: string, timestamp: number): HistogramObservation => ({ ...observe(value), exemplar: { traceId, timestamp } });
        const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(32)) as [string, string, string];
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { histograms: [traced(0.5, a, 100), traced(20, b, 101)] }));
        // No exemplar for +Inf in this commit: the stored one stays; the first bucket's is replaced.
        await store.commitUpdate(commit(update(DEV, 'u2', 2), { histograms: [traced(0.75, c, 102), observe(8), observe(9)] }));
        expect(await store.readHistograms()).toEqual([
          {
            name: 'pulumi_update_duration_seconds',
            labels: { kind: 'update' },
            buckets: BOUNDS,
            bucketCounts: [2, 0, 2, 1],
            sum: 38.25,
            count: 5,
            exemplars: [{ traceId: c, value: 0.75, timestamp: 102 }, null, null, { traceId: b, value: 20, timestamp: 101 }],
          },
        ]);
      });

      it('counts every value in +Inf when a histogram has no finite buckets', async () => {
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { histograms: [observe(3, {}, [])] }));
        expect((await store.readHistograms())[0]).toMatchObject({ buckets: [], bucketCounts: [1], sum: 3, count: 1 });
      });

      it('refuses an observation whose bucket bounds differ from the stored series', async () => {
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { histograms: [observe(3)] }));
        await expectStateError(
          store.commitUpdate(commit(update(DEV, 'u2', 2), { histograms: [observe(3, { kind: 'update' }, [1, 5, 30])] })),
        );
        expect((await store.readHistograms())[0]).toMatchObject({ buckets: BOUNDS, count: 1 });
      });

      it('folds later observations into the committed totals only, after a commit refused half-way through its series', async () => {
        const prod = { kind: 'update', stack: 'prod' };
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { histograms: [observe(3), observe(3, prod)] }));
        // The first series is folded before the second one's bounds are refused: all of it rolls back.
        await expectStateError(
          store.commitUpdate(commit(update(DEV, 'u2', 2), { histograms: [observe(7), observe(3, prod, [1, 5, 30])] })),
        );
        expect(await store.commitUpdate(commit(update(DEV, 'u3', 3), { histograms: [observe(20)] }))).toBe(true);
        const rows = await store.readHistograms();
        expect(rows.find((r) => r.labels.stack === undefined)).toMatchObject({ bucketCounts: [0, 1, 0, 1], sum: 23, count: 2 });
        expect(rows.find((r) => r.labels.stack === 'prod')).toMatchObject({ bucketCounts: [0, 1, 0, 0], sum: 3, count: 1 });
      });

      it('refuses a non-finite value and bounds that are not strictly ascending', async () => {
        await expectStateError(store.commitUpdate(commit(update(DEV, 'u1', 1), { histograms: [observe(Number.NaN)] })));
        await expectStateError(
          store.commitUpdate(commit(update(DEV, 'u2', 2), { histograms: [observe(1, {}, [5, 1])] })),
        );
        await expectStateError(
          store.commitUpdate(commit(update(DEV, 'u3', 3), { histograms: [observe(1, {}, [1, 1])] })),
        );
        expect(await store.readHistograms()).toEqual([]);
        expect(await store.countExported()).toBe(0);
      });
    });

    describe('atomicity', () => {
      it('leaves nothing half-written when a commit fails part-way', async () => {
        await store.replaceOrgStacks('acme', [summary(DEV, 100)], 1_000);
        await store.commitUpdate(
          commit(update(DEV, 'u1', 1, { endTime: 1_000 }), {
            counters: [counter('c_total', {}, 1)],
            histograms: [observe(3)],
          }),
        );
        await store.setInProgress(DEV, [running(DEV, 'u2', 2)]);
        const before = await snapshot(store);

        // Valid counter and histogram work comes first; the last observation is refused.
        await expectStateError(
          store.commitUpdate(
            commit(update(DEV, 'u2', 2, { endTime: 2_000 }), {
              counters: [counter('c_total', {}, 1), counter('new_total', {}, 1)],
              histograms: [observe(4), observe(4, { kind: 'update' }, [1, 2])],
            }),
          ),
        );

        expect(await snapshot(store)).toEqual(before);
        expect(await store.isExported(DEV, 'u2')).toBe(false);

        expect(
          await store.commitUpdate(
            commit(update(DEV, 'u2', 2, { endTime: 2_000 }), {
              counters: [counter('c_total', {}, 1)],
              histograms: [observe(4)],
            }),
          ),
        ).toBe(true);
        expect(await counterValue(store, 'c_total', {})).toBe(2);
        expect(await store.listInProgress()).toEqual([]);
      });
    });

    describe('metrics stamp', () => {
      it('moves the metrics stamp on writes a scrape would see, and only on those', async () => {
        const dev = { org: 'acme', project: 'web', stack: 'dev' };
        const stamps: number[] = [await store.readMetricsStamp()];
        const step = async (write: () => Promise<unknown>): Promise<boolean> => {
          await write();
          stamps.push(await store.readMetricsStamp());
          return (stamps.at(-1) as number) > (stamps.at(-2) as number);
        };
        expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 2 }], 1))).toBe(true);
        // The same stack list again (every poll cycle) changes nothing a scrape shows.
        expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 2 }], 2))).toBe(false);
        expect(await step(() => store.replaceOrgStacks('acme', [{ ...dev, lastUpdate: 1, resourceCount: 3 }], 3))).toBe(true);
        const running = [{ stack: dev, updateId: 'r1', kind: 'update', version: 2, startTime: 5 }];
        expect(await step(() => store.setInProgress(dev, running))).toBe(true);
        expect(await step(() => store.setInProgress(dev, running))).toBe(false);
        expect(await step(() => store.markStackSynced(dev, 1))).toBe(false);
        expect(await step(() => store.advanceCursor(dev, 1))).toBe(false);
        const commit = {
          update: { stack: dev, updateId: 'r1', kind: 'update', version: 2, result: 'succeeded', startTime: 5, endTime: 9 },
          deltas: { counters: [{ name: 'c_total', labels: {}, value: 1 }], histograms: [] },
          exportedAtMs: 10,
        };
        expect(await step(() => store.commitUpdate(commit))).toBe(true);
        // A commit refused as already exported changes nothing.
        expect(await step(() => store.commitUpdate(commit))).toBe(false);
        expect(await step(() => store.replaceOrgStacks('acme', [], 4))).toBe(true);
      });
    });

    describe('metrics start time', () => {
      it('says when the store began accumulating metrics, and keeps saying it', async () => {
        const start = await store.readMetricsStartMs();
        expect(start).toBeGreaterThan(Date.UTC(2020, 0, 1));
        expect(start).toBeLessThanOrEqual(Date.now());
        await store.commitUpdate(commit(update(DEV, 'u1', 1), { counters: [counter('c_total', {}, 1)] }));
        await store.migrate();
        expect(await store.readMetricsStartMs()).toBe(start);
      });
    });

    describe('last-update facts', () => {
      it('keeps the newest end time per stack and kind when commits arrive out of order', async () => {
        await store.commitUpdate(commit(update(DEV, 'u2', 2, { result: 'failed', startTime: 180, endTime: 200 })));
        await store.commitUpdate(commit(update(DEV, 'u1', 1, { result: 'succeeded', startTime: 10, endTime: 100 })));
        await store.commitUpdate(commit(update(DEV, 'r3', 3, { kind: 'refresh', result: 'succeeded', startTime: 145, endTime: 150 })));
        await store.commitUpdate(commit(update(PROD, 'p1', 1, { result: 'cancelled', startTime: 20, endTime: 50 })));

        // The duration is that of the update the facts come from.
        expect(sortBy(await store.readLastUpdates(), (r) => `${stackKey(r.stack)} ${r.kind}`)).toEqual([
          { stack: DEV, kind: 'refresh', result: 'succeeded', endTime: 150, durationSeconds: 5 },
          { stack: DEV, kind: 'update', result: 'failed', endTime: 200, durationSeconds: 20 },
          { stack: PROD, kind: 'update', result: 'cancelled', endTime: 50, durationSeconds: 30 },
        ]);
      });

      it('lets a later commit with an equal end time replace the result', async () => {
        await store.commitUpdate(commit(update(DEV, 'a', 1, { result: 'failed', startTime: 290, endTime: 300 })));
        await store.commitUpdate(commit(update(DEV, 'b', 2, { result: 'succeeded', startTime: 250, endTime: 300 })));
        expect(await store.readLastUpdates()).toEqual([
          { stack: DEV, kind: 'update', result: 'succeeded', endTime: 300, durationSeconds: 50 },
        ]);
      });

      it('keeps the newest succeeded end time of any kind as the last success', async () => {
        await store.commitUpdate(commit(update(DEV, 'u1', 1, { result: 'succeeded', endTime: 100 })));
        expect(await store.readLastSuccesses()).toEqual([{ stack: DEV, endTime: 100 }]);
        await store.commitUpdate(commit(update(DEV, 'u2', 2, { result: 'failed', endTime: 400 })));
        expect(await store.readLastSuccesses()).toEqual([{ stack: DEV, endTime: 100 }]);
        await store.commitUpdate(commit(update(DEV, 'r3', 3, { kind: 'refresh', result: 'succeeded', endTime: 300 })));
        expect(await store.readLastSuccesses()).toEqual([{ stack: DEV, endTime: 300 }]);
        await store.commitUpdate(commit(update(DEV, 'u0', 0, { result: 'succeeded', endTime: 200 })));
        expect(await store.readLastSuccesses()).toEqual([{ stack: DEV, endTime: 300 }]);
      });

      it('records no last success for a stack that never succeeded', async () => {
        await store.commitUpdate(commit(update(DEV, 'u1', 1, { result: 'failed' })));
        await store.commitUpdate(commit(update(DEV, 'u2', 2, { result: 'cancelled' })));
        expect(await store.readLastSuccesses()).toEqual([]);
      });
    });

    describe('recent updates', () => {
      it('lists exported updates newest end time first, ties by newest version, at most the limit, across stacks and orgs', async () => {
        await store.commitUpdate(commit(update(DEV, 'd1', 1, { startTime: 100, endTime: 200 })));
        await store.commitUpdate(commit(update(PROD, 'p1', 1, { startTime: 100, endTime: 400, result: 'failed' })));
        await store.commitUpdate(commit(update(OTHER, 'o3', 3, { startTime: 100, endTime: 300 })));
        await store.commitUpdate(commit(update(DEV, 'd2', 2, { startTime: 250, endTime: 300, kind: 'refresh' })));
        // Already exported: not listed twice.
        await store.commitUpdate(commit(update(DEV, 'd1', 1, { startTime: 100, endTime: 200 })));

        const recent = await store.listRecentUpdates(3);
        expect(recent.map((u) => u.updateId)).toEqual(['p1', 'o3', 'd2']);
        expect(recent[0]).toEqual(update(PROD, 'p1', 1, { startTime: 100, endTime: 400, result: 'failed' }));
        expect(recent[2]).toEqual(update(DEV, 'd2', 2, { startTime: 250, endTime: 300, kind: 'refresh' }));
        expect((await store.listRecentUpdates(10)).map((u) => u.updateId)).toEqual(['p1', 'o3', 'd2', 'd1']);
        expect(await store.listRecentUpdates(0)).toEqual([]);
      });
    });

    describe('in-progress set', () => {
      it('replaces the set of one stack and leaves other stacks alone', async () => {
        await store.setInProgress(DEV, [running(DEV, 'a', 1), running(DEV, 'b', 2)]);
        await store.setInProgress(PROD, [running(PROD, 'p', 1)]);
        await store.setInProgress(DEV, [running(DEV, 'b', 2), running(DEV, 'c', 3)]);
        expect(sortBy(await store.listInProgress(), (r) => `${stackKey(r.stack)} ${r.updateId}`)).toEqual([
          running(DEV, 'b', 2),
          running(DEV, 'c', 3),
          running(PROD, 'p', 1),
        ]);
      });

      it('clears a stack with an empty set', async () => {
        await store.setInProgress(DEV, [running(DEV, 'a', 1)]);
        await store.setInProgress(DEV, []);
        expect(await store.listInProgress()).toEqual([]);
      });

      it('drops an update from the set when it is committed', async () => {
        await store.setInProgress(DEV, [running(DEV, 'a', 1), running(DEV, 'b', 2)]);
        await store.commitUpdate(commit(update(DEV, 'a', 1)));
        expect((await store.listInProgress()).map((r) => r.updateId)).toEqual(['b']);
      });

      it('rejects a record that belongs to another stack and keeps the previous set', async () => {
        await store.setInProgress(DEV, [running(DEV, 'a', 1)]);
        await expectStateError(store.setInProgress(DEV, [running(DEV, 'b', 2), running(PROD, 'p', 1)]));
        expect((await store.listInProgress()).map((r) => r.updateId)).toEqual(['a']);
      });
    });

    describe('follow records', () => {
      const SPAN_A = '00000000000000aa';
      const SPAN_B = '00000000000000bb';
      const SPAN_C = '00000000000000cc';
      const follow = (stack: StackRef, updateId: string, eventsRead: number, token: string | null, sent: string[]): FollowRecord => ({
        stack,
        updateId,
        eventsRead,
        continuationToken: token,
        sentSpanIds: sent,
      });

      it('has no record for an update never followed', async () => {
        expect(await store.readFollow(DEV, 'r1')).toBeUndefined();
      });

      it('replaces the position and adds the sent span ids, never dropping one', async () => {
        await store.recordFollow(follow(DEV, 'r1', 10, 'tok-10', [SPAN_B, SPAN_A]));
        expect(await store.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 10, 'tok-10', [SPAN_A, SPAN_B]));
        // A replica that recorded a smaller set (late) cannot shrink it.
        await store.recordFollow(follow(DEV, 'r1', 25, 'tok-25', [SPAN_C, SPAN_A]));
        expect(await store.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 25, 'tok-25', [SPAN_A, SPAN_B, SPAN_C]));
        await store.recordFollow(follow(DEV, 'r1', 30, null, []));
        expect(await store.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 30, null, [SPAN_A, SPAN_B, SPAN_C]));
      });

      it('keeps one record per stack and update', async () => {
        await store.recordFollow(follow(DEV, 'r1', 1, 't1', [SPAN_A]));
        await store.recordFollow(follow(PROD, 'r1', 2, 't2', [SPAN_B]));
        await store.recordFollow(follow(DEV, 'r2', 3, 't3', [SPAN_C]));
        expect(await store.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 1, 't1', [SPAN_A]));
        expect(await store.readFollow(PROD, 'r1')).toEqual(follow(PROD, 'r1', 2, 't2', [SPAN_B]));
        expect(await store.readFollow(DEV, 'r2')).toEqual(follow(DEV, 'r2', 3, 't3', [SPAN_C]));
      });

      it('deletes the record of an update in the transaction that commits it, and only that one', async () => {
        await store.recordFollow(follow(DEV, 'r1', 4, 't', [SPAN_A]));
        await store.recordFollow(follow(DEV, 'r2', 4, 't', [SPAN_B]));
        expect(await store.commitUpdate(commit(update(DEV, 'r1', 1)))).toBe(true);
        expect(await store.readFollow(DEV, 'r1')).toBeUndefined();
        expect(await store.readFollow(DEV, 'r2')).toEqual(follow(DEV, 'r2', 4, 't', [SPAN_B]));
      });

      it('keeps the record of an update whose commit fails', async () => {
        await store.recordFollow(follow(DEV, 'r1', 4, 't', [SPAN_A]));
        await expectStateError(store.commitUpdate(commit(update(DEV, 'r1', 1), { counters: [counter('c_total', {}, -1)] })));
        expect(await store.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 4, 't', [SPAN_A]));
      });

      it('refuses a malformed record and stores nothing of it', async () => {
        await expectStateError(store.recordFollow(follow(DEV, 'r1', -1, 't', [SPAN_A])));
        await expectStateError(store.recordFollow(follow(DEV, 'r1', 1, 't', ['not-a-span-id'])));
        expect(await store.readFollow(DEV, 'r1')).toBeUndefined();
      });

      it('does not move the metrics stamp (a scrape shows nothing of it)', async () => {
        const before = await store.readMetricsStamp();
        await store.recordFollow(follow(DEV, 'r1', 1, 't', [SPAN_A]));
        expect(await store.readMetricsStamp()).toBe(before);
      });

      it('keeps the record across close and reopen', async (ctx) => {
        if (subject.reopen === undefined) {
          ctx.skip();
          return;
        }
        await store.recordFollow(follow(DEV, 'r1', 7, 'tok-7', [SPAN_A, SPAN_B]));
        await store.close();
        const reopened = await subject.reopen();
        try {
          await reopened.migrate();
          expect(await reopened.readFollow(DEV, 'r1')).toEqual(follow(DEV, 'r1', 7, 'tok-7', [SPAN_A, SPAN_B]));
        } finally {
          await reopened.close();
        }
      });
    });

    describe('concurrency', () => {
      it('counts concurrent commits of the same update once', async () => {
        const c = commit(update(DEV, 'u1', 1), { counters: [counter('c_total', {}, 1)], histograms: [observe(2)] });
        const results = await Promise.all([1, 2, 3, 4, 5].map(() => store.commitUpdate(c)));
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(await counterValue(store, 'c_total', {})).toBe(1);
        expect((await store.readHistograms())[0]?.count).toBe(1);
        expect(await store.countExported()).toBe(1);
      });

      it('counts concurrent commits of one update id under two stack names of an org once', async () => {
        const deltas = { counters: [counter('c_total', {}, 1)] };
        const results = await Promise.all([
          store.commitUpdate(commit(update(DEV, 'u1', 1), deltas)),
          store.commitUpdate(commit(update(RENAMED, 'u1', 1), deltas)),
        ]);
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(await counterValue(store, 'c_total', {})).toBe(1);
        expect(await store.countExported()).toBe(1);
      });

      it('applies every one of many concurrent commits of different updates', async () => {
        const commits = Array.from({ length: 20 }, (_, i) =>
          commit(update(i % 2 === 0 ? DEV : PROD, `u${i}`, i + 1), {
            counters: [counter('c_total', {}, 1)],
            histograms: [observe(i)],
          }),
        );
        const results = await Promise.all(commits.map((c) => store.commitUpdate(c)));
        expect(results.every((r) => r)).toBe(true);
        expect(await counterValue(store, 'c_total', {})).toBe(20);
        expect((await store.readHistograms())[0]).toMatchObject({ count: 20, sum: 190 });
        expect((await store.getStack(DEV))?.cursorVersion).toBe(19);
        expect((await store.getStack(PROD))?.cursorVersion).toBe(20);
      });
    });

    describe('persistence', () => {
      it('keeps everything across close and reopen', async (ctx) => {
        if (subject.reopen === undefined) {
          ctx.skip();
          return;
        }
        await store.replaceOrgStacks('acme', [summary(DEV, 100, 3), summary(PROD)], 1_000);
        await store.replaceOrgStacks('globex', [summary(OTHER, 50)], 1_500);
        await store.markStackSynced(DEV, 100);
        const first = commit(update(DEV, 'u1', 1), {
          counters: [counter('c_total', { kind: 'update' }, 1.5)],
          histograms: [observe(3), observe(30, { kind: 'refresh' })],
        });
        await store.commitUpdate(first);
        await store.commitUpdate(commit(update(PROD, 'p1', 4, { result: 'failed' })));
        await store.setInProgress(DEV, [running(DEV, 'u2', 2)]);
        const before = await snapshot(store);

        await store.close();
        const reopened = await subject.reopen();
        try {
          await reopened.migrate();
          expect(await snapshot(reopened)).toEqual(before);
          expect(await reopened.isExported(DEV, 'u1')).toBe(true);
          expect(await reopened.commitUpdate(first)).toBe(false);
          await reopened.commitUpdate(commit(update(DEV, 'u2', 2), { counters: [counter('c_total', { kind: 'update' }, 1)] }));
          expect(await counterValue(reopened, 'c_total', { kind: 'update' })).toBe(2.5);
        } finally {
          await reopened.close();
        }
      });

      it('keeps an unlisted stack hidden, with its cursor and first-seen time, across close and reopen', async (ctx) => {
        if (subject.reopen === undefined) {
          ctx.skip();
          return;
        }
        await store.replaceOrgStacks('acme', [summary(DEV, 100), summary(PROD)], 1_000);
        await store.commitUpdate(commit(update(DEV, 'u7', 7)));
        await store.replaceOrgStacks('acme', [summary(PROD)], 2_000);

        await store.close();
        const reopened = await subject.reopen();
        try {
          await reopened.migrate();
          expect((await reopened.listStacks()).map(stackKey)).toEqual([stackKey(PROD)]);
          expect(await reopened.isExported(RENAMED, 'u7')).toBe(true);
          await reopened.replaceOrgStacks('acme', [summary(DEV, 200), summary(PROD)], 3_000);
          expect(await reopened.getStack(DEV)).toEqual({ ...DEV, lastUpdate: 200, cursorVersion: 7, firstSeenMs: 1_000 });
        } finally {
          await reopened.close();
        }
      });
    });
  });
}
