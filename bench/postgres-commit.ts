import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { StackRef } from '../src/domain/stack.js';
import type { ResourceOperation } from '../src/domain/trace.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../src/metrics/update-deltas.js';
import { PostgresStateStore } from '../src/state/postgres-store.js';
import { SqliteStateStore } from '../src/state/sqlite-store.js';
import type { StateStore, UpdateCommit } from '../src/state/state-store.js';
import type { BenchSuite } from './run.js';

/** The server the suite creates its throwaway database on (trust auth, as on the test machine). */
const ADMIN_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RESOURCE_TYPES = ['aws:s3/bucket:Bucket', 'aws:iam/role:Role', 'aws:lambda/function:Function', 'aws:ec2/instance:Instance', 'random:index/randomId:RandomId'];
/** Resource steps per update: each is one histogram observation (5 series with the default detail). */
const STEPS = 20;
const BATCH = 48;
const COMMITTERS = 3;

let next = 0;

/** One update of one of 60 stacks, with STEPS resource steps, as the sync layer would commit it. */
function commitOf(): UpdateCommit {
  const i = next++;
  const stack: StackRef = { org: 'bench', project: `p${i % 6}`, stack: `s${i % 60}` };
  const startTime = 1_700_000_000 + i * 60;
  const endTime = startTime + 30 + (i % 90);
  const operations: ResourceOperation[] = Array.from({ length: STEPS }, (_, k) => ({
    urn: `urn:pulumi:s::p::${RESOURCE_TYPES[k % RESOURCE_TYPES.length]}::r${k}`,
    op: k % 4 === 0 ? 'update' : 'create',
    resourceType: RESOURCE_TYPES[k % RESOURCE_TYPES.length]!,
    result: 'succeeded',
    durationSeconds: ((i * 7 + k * 13) % 400) / 10,
  }));
  const update = { stack, updateId: `u-${i}`, kind: 'update', version: Math.floor(i / 60) + 1, result: 'succeeded' as const, startTime, endTime };
  return {
    update,
    deltas: updateMetricDeltas({ ...update, resourceChanges: { create: 15, update: 5 }, operations, policyViolations: [], detail: DEFAULT_METRIC_DETAIL }),
    exportedAtMs: endTime * 1000,
  };
}

async function commitAll(store: StateStore, commits: readonly UpdateCommit[]): Promise<void> {
  for (const c of commits) {
    if (!(await store.commitUpdate(c))) throw new Error(`update ${c.update.updateId} was not committed`);
  }
}

async function admin(fn: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

/*
 * StateStore.commitUpdate of updates with 20 resource steps each (22 histogram observations
 * in 7 series, 9 counter series), on a throwaway database on the machine's PostgreSQL server,
 * one commit at a time and from 3 committers at once (a replica's default stack concurrency);
 * the baseline is the same commits on the SQLite store (a file). Every commit must succeed.
 */
let cleanup: (() => Promise<void>) | undefined;

export const postgresCommitSuite: BenchSuite = {
  name: 'postgres-commit',
  description: `commits of updates with ${STEPS} resource steps on PostgreSQL (one at a time, ${COMMITTERS} at once) vs SQLite`,
  async groups() {
    const name = `pue_bench_${randomBytes(6).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`));
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    const postgres = new PostgresStateStore({ url: url.toString() });
    await postgres.migrate();
    const dir = mkdtempSync(join(tmpdir(), 'bench-commit-'));
    const sqlite = new SqliteStateStore({ path: join(dir, 'state.db') });
    await sqlite.migrate();
    cleanup = async () => {
      await postgres.close();
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    };
    const batch = (): UpdateCommit[] => Array.from({ length: BATCH }, commitOf);
    return [
      {
        title: `${BATCH} commits of ${STEPS}-step updates`,
        notes: [`database: ${postgres.target}, pool of 5; counters and histograms accumulate across iterations`],
        cases: [
          { name: 'SQLite file, one at a time', items: BATCH, unit: 'updates', fn: () => commitAll(sqlite, batch()) },
          { name: 'PostgreSQL, one at a time', items: BATCH, unit: 'updates', fn: () => commitAll(postgres, batch()), baseline: 'SQLite file, one at a time' },
          {
            name: `PostgreSQL, ${COMMITTERS} committers at once`,
            items: BATCH,
            unit: 'updates',
            fn: () => {
              const commits = batch();
              const lanes = Array.from({ length: COMMITTERS }, (_, lane) => commits.filter((_, k) => k % COMMITTERS === lane));
              return Promise.all(lanes.map((lane) => commitAll(postgres, lane)));
            },
            baseline: 'SQLite file, one at a time',
          },
        ],
      },
    ];
  },
  async close() {
    await cleanup?.();
  },
};
