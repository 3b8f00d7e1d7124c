import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../../../src/metrics/update-deltas.js';
import { SqliteStateStore } from '../../../src/state/sqlite-store.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { PROD, seedStore } from '../../unit/metrics/seed-store.js';

const dirs: string[] = [];
const stores: StateStore[] = [];

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pue-metrics-'));
  dirs.push(dir);
  return join(dir, 'state.db');
}

async function open(path: string): Promise<SqliteStateStore> {
  const store = new SqliteStateStore({ path });
  stores.push(store);
  await store.migrate();
  return store;
}

/** The pulumi_* data lines: what must agree across restarts and replicas. */
function dataLines(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l.startsWith('pulumi_') && !l.startsWith('pulumi_exporter_'))
    // Exemplars exist only in OpenMetrics.
    .map((l) => l.replace(/ # \{.*$/, ''));
}

async function commitAnother(store: StateStore, updateId: string, version: number): Promise<boolean> {
  return store.commitUpdate({
    update: { stack: PROD, updateId, kind: 'update', version, result: 'succeeded', startTime: 7_000, endTime: 7_030 },
    deltas: updateMetricDeltas({
      stack: PROD,
      kind: 'update',
      result: 'succeeded',
      startTime: 7_000,
      endTime: 7_030,
      resourceChanges: { update: 1 },
      operations: [],
      policyViolations: [],
      updateId,
      detail: DEFAULT_METRIC_DETAIL,
    }),
    exportedAtMs: 7_040_000,
  });
}

describe('pulumi_* metrics backed by the SQLite store', () => {
  it('continue from the stored totals after a restart while self-metrics start over', async () => {
    const path = dbPath();
    const first = await open(path);
    await seedStore(first);
    const before = new ExporterMetrics({ store: first, version: 'v', revision: 'r' });
    before.spansExported(9);
    const beforeBody = (await before.render()).body;
    await first.close();

    const second = await open(path);
    const after = new ExporterMetrics({ store: second, version: 'v', revision: 'r' });
    const afterBody = (await after.render()).body;
    expect(dataLines(afterBody)).toEqual(dataLines(beforeBody));
    expect(dataLines(afterBody)).toContain(
      'pulumi_updates_total{org="acme",project="web",stack="prod",kind="update",result="succeeded"} 2',
    );
    expect(beforeBody).toContain('pulumi_exporter_spans_exported_total 9');
    expect(afterBody).toContain('pulumi_exporter_spans_exported_total 0');

    // Counting continues from the stored total.
    expect(await commitAnother(second, 'after-restart', 10)).toBe(true);
    expect((await after.render()).body).toContain(
      'pulumi_updates_total{org="acme",project="web",stack="prod",kind="update",result="succeeded"} 3',
    );
  });

  it('reuse the rendered store part while the store is unchanged and show a commit at the next scrape, reading only what it changed', async () => {
    const path = dbPath();
    const store = await open(path);
    await seedStore(store);
    let reads = 0;
    let changeReads = 0;
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'readCounters') reads += 1;
        if (prop === 'readMetricsChanges') changeReads += 1;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const metrics = new ExporterMetrics({ store: counting, version: 'v', revision: 'r' });
    const first = await metrics.render();
    const again = await metrics.render();
    expect(reads).toBe(1);
    expect(dataLines(again.body)).toEqual(dataLines(first.body));
    // The gzip body (one member per chunk of the store part, then the self-metrics) decompresses to the same text.
    expect(gunzipSync(Buffer.concat(await again.gzipParts())).toString('utf8')).toBe(again.body);

    expect(await commitAnother(store, 'fresh-update', 12)).toBe(true);
    const after = await metrics.render();
    // This process made the commit, so the store can tell what it changed: no full read.
    expect(reads).toBe(1);
    expect(changeReads).toBe(1);
    expect(dataLines(after.body)).toContain(
      'pulumi_updates_total{org="acme",project="web",stack="prod",kind="update",result="succeeded"} 3',
    );
    expect(gunzipSync(Buffer.concat(await after.gzipParts())).toString('utf8')).toBe(after.body);
  });

  it('serve identical values from two readers of the store, counting a re-exported update once', async () => {
    const path = dbPath();
    // One connection: a SQLite state file is locked to one process (replicas share PostgreSQL).
    const a = await open(path);
    const b = a;
    await seedStore(a);
    const replicaA = new ExporterMetrics({ store: a, version: 'v', revision: 'r' });
    const replicaB = new ExporterMetrics({ store: b, version: 'v', revision: 'r' });

    // Both replicas export the same update; the store keeps the first commit only.
    expect(await commitAnother(a, 'shared-update', 11)).toBe(true);
    expect(await commitAnother(b, 'shared-update', 11)).toBe(false);

    const [bodyA, bodyB] = await Promise.all([replicaA.render(), replicaB.render('application/openmetrics-text')]);
    expect(dataLines(bodyB.body)).toEqual(dataLines(bodyA.body));
    expect(dataLines(bodyA.body)).toContain(
      'pulumi_updates_total{org="acme",project="web",stack="prod",kind="update",result="succeeded"} 3',
    );
    expect(dataLines(bodyA.body)).toContain(
      'pulumi_update_resource_changes_total{org="acme",project="web",stack="prod",kind="update",operation="update"} 2',
    );
  });
});
