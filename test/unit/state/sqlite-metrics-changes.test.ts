import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../../../src/metrics/update-deltas.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';

const prod = { org: 'acme', project: 'web', stack: 'prod' };
const dev = { org: 'acme', project: 'web', stack: 'dev' };
const dirs: string[] = [];
const stores: SqliteStateStore[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(path: string): Promise<SqliteStateStore> {
  const store = new SqliteStateStore({ path });
  stores.push(store);
  await store.migrate();
  return store;
}

function commit(store: SqliteStateStore, updateId: string, version: number): Promise<boolean> {
  const update = { stack: prod, updateId, kind: 'update', version, result: 'succeeded' as const, startTime: 100, endTime: 160 };
  return store.commitUpdate({
    update,
    deltas: updateMetricDeltas({ ...update, resourceChanges: { create: 1 }, operations: [], policyViolations: [], detail: DEFAULT_METRIC_DETAIL }),
    exportedAtMs: 0,
  });
}

describe('SqliteStateStore.readMetricsChanges', () => {
  it('returns the series and stack a commit touched, with their rows as of the current stamp', async () => {
    const store = await open(':memory:');
    await store.replaceOrgStacks('acme', [{ ...prod, resourceCount: 3 }, dev], 0);
    const before = await store.readMetricsStamp();
    expect(await commit(store, 'u1', 1)).toBe(true);
    const rows = await store.readMetricsChanges(before);
    expect(rows?.stamp).toBe(await store.readMetricsStamp());
    expect(rows?.changes.stacks).toEqual([prod]);
    expect(rows?.changes.series.map((s) => s.name)).toContain('pulumi_updates_total');
    expect(rows?.counters).toContainEqual({ name: 'pulumi_updates_total', labels: { ...prod, kind: 'update', result: 'succeeded' }, value: 1 });
    expect(rows?.histograms.map((h) => h.name)).toContain('pulumi_update_duration_seconds');
    expect(rows?.stacks.map((s) => s.stack)).toEqual(['prod']);
    expect(rows?.lastUpdates).toEqual([{ stack: prod, kind: 'update', result: 'succeeded', endTime: 160, durationSeconds: 60 }]);
    expect(rows?.lastSuccesses).toEqual([{ stack: prod, endTime: 160 }]);
    // A repeated commit changes nothing, so nothing changed after the current stamp.
    expect(await commit(store, 'u1', 1)).toBe(false);
    expect((await store.readMetricsChanges(rows?.stamp as number))?.changes).toEqual({ series: [], stacks: [] });
  });

  it('names a stack the stack list dropped, which then has no listed record and no facts', async () => {
    const store = await open(':memory:');
    await store.replaceOrgStacks('acme', [prod, dev], 0);
    await store.setInProgress(dev, [{ stack: dev, updateId: 'r1', kind: 'update', version: 1, startTime: 50 }]);
    const before = await store.readMetricsStamp();
    await store.replaceOrgStacks('acme', [prod], 0);
    const rows = await store.readMetricsChanges(before);
    expect(rows?.changes.stacks).toEqual([dev]);
    expect(rows?.stacks).toEqual([]);
    expect(rows?.inProgress).toEqual([]);
  });

  it('cannot tell what changed before this store object first wrote (a restart): the caller reads everything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pue-changes-'));
    dirs.push(dir);
    const path = join(dir, 'state.db');
    const first = await open(path);
    await first.replaceOrgStacks('acme', [prod], 0);
    const before = await first.readMetricsStamp();
    expect(await commit(first, 'u1', 1)).toBe(true);
    await first.close();
    const again = await open(path);
    const reopened = await again.readMetricsStamp();
    expect(await again.readMetricsChanges(before)).toBeUndefined();
    expect(await again.readMetricsChanges(reopened)).toEqual(expect.objectContaining({ stamp: reopened, changes: { series: [], stacks: [] } }));
    expect(await commit(again, 'u2', 2)).toBe(true);
    expect((await again.readMetricsChanges(reopened))?.changes.stacks).toEqual([prod]);
  });
});
