import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StackRef, StackSummary } from '../../../src/domain/stack.js';
import { stackKey } from '../../../src/domain/stack.js';
import { ExporterError } from '../../../src/errors.js';
import { PostgresCoordinator } from '../../../src/state/postgres-coordinator.js';
import { PostgresStateStore } from '../../../src/state/postgres-store.js';
import type { StackRecord, UpdateCommit } from '../../../src/state/state-store.js';
import { eventually } from '../../helpers/processes.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../helpers/postgres.js';

const available = await postgresAvailable();

const STACKS: StackSummary[] = Array.from({ length: 24 }, (_, i) => ({ org: 'acme', project: `p${i % 3}`, stack: `s${i}`, lastUpdate: 10 }));

function commitOf(stack: StackRef, updateId: string, version: number, owner: string): UpdateCommit {
  return {
    update: { stack, updateId, kind: 'update', version, result: 'succeeded', startTime: 1_700_000_000, endTime: 1_700_000_060 },
    deltas: { counters: [{ name: 'pulumi_updates_total', labels: { ...stack, kind: 'update', result: 'succeeded' }, value: 1 }], histograms: [] },
    exportedAtMs: 1,
    leaseOwner: owner,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe.skipIf(!available)('PostgresCoordinator leases on the real server', () => {
  let db: TestDatabase;
  let url: string;
  const opened: { store: PostgresStateStore; coordinator: PostgresCoordinator }[] = [];

  /** One replica: its own pool on the shared schema, and its coordinator. */
  async function replica(owner: string, leaseMillis = 5_000) {
    const store = new PostgresStateStore({ url });
    await store.migrate();
    const coordinator = new PostgresCoordinator({ store, owner, leaseMillis });
    opened.push({ store, coordinator });
    return { store, coordinator };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    for (const r of opened.splice(0)) {
      await r.coordinator.stop();
      await r.store.close().catch(() => undefined);
    }
  });

  afterAll(async () => {
    await db?.drop();
  });

  async function held(store: PostgresStateStore, stack: StackRef): Promise<string | null | undefined> {
    return store.query('owner', async (q) =>
      (await q.query<{ owner: string | null }>('SELECT owner FROM stack_leases WHERE org = $1 AND project = $2 AND stack = $3', [stack.org, stack.project, stack.stack])).rows[0]?.owner,
    );
  }

  async function listed(store: PostgresStateStore): Promise<StackRecord[]> {
    await store.replaceOrgStacks('acme', STACKS, 1_000);
    return store.listStacks();
  }

  it('splits the stacks between racing replicas: no stack is held twice, each update is committed once', async () => {
    url = await db.schemaUrl();
    const replicas = await Promise.all(['a', 'b', 'c'].map((owner) => replica(owner)));
    await Promise.all(replicas.map((r) => r.coordinator.start()));
    const stacks = await listed(replicas[0]!.store);
    // Several rounds, all replicas at once: shares settle while nobody ever holds a stack twice.
    let claims: StackRecord[][] = [];
    for (let round = 0; round < 3; round++) {
      claims = await Promise.all(replicas.map((r) => r.coordinator.claimStacks(stacks)));
      const keys = claims.flat().map(stackKey);
      expect(new Set(keys).size).toBe(keys.length);
    }
    expect(claims.flat().length).toBe(STACKS.length);
    for (const claim of claims) expect(claim.length).toBe(STACKS.length / 3);

    // Every replica tries to commit an update of every stack at once: only the holder succeeds.
    const outcomes = await Promise.all(
      replicas.flatMap((r) =>
        stacks.map((s) =>
          r.store.commitUpdate(commitOf(s, `u-${s.stack}`, 1, r.coordinator.owner)).then(
            (ok) => (ok ? 'committed' : 'duplicate'),
            (e: unknown) => (e instanceof ExporterError ? e.code : 'other'),
          ),
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 'committed').length).toBe(STACKS.length);
    expect(outcomes.filter((o) => o === 'STATE_LEASE_LOST').length).toBe(STACKS.length * 2);
    expect(await replicas[0]!.store.countExported()).toBe(STACKS.length);
    const counted = (await replicas[1]!.store.readCounters()).reduce((n, r) => n + r.value, 0);
    expect(counted).toBe(STACKS.length);
  });

  it('lets another replica take over the stacks of a replica that stopped renewing once its leases expire', async () => {
    url = await db.schemaUrl();
    const a = await replica('a', 600);
    const b = await replica('b', 600);
    await a.coordinator.start();
    const stacks = await listed(a.store);
    expect(await a.coordinator.claimStacks(stacks)).toHaveLength(STACKS.length);
    expect(a.coordinator.isLeader()).toBe(true);
    await b.coordinator.start();
    expect(b.coordinator.isLeader()).toBe(false);
    expect(await b.coordinator.claimStacks(stacks)).toHaveLength(0);

    // a "dies": its connections are gone, so nothing renews its leases.
    await a.store.close();
    const taken = await eventually(
      async () => {
        const mine = await b.coordinator.claimStacks(stacks);
        return mine.length === STACKS.length ? mine : undefined;
      },
      10_000,
      'b to take over every stack',
    );
    expect(taken.map(stackKey).sort()).toEqual(stacks.map(stackKey).sort());
    await eventually(async () => (b.coordinator.isLeader() ? true : undefined), 10_000, 'b to become leader');
    expect(a.coordinator.isLeader()).toBe(false);
  });

  it('gives the stacks above its share back to replicas that join later, and never drains what it keeps', async () => {
    url = await db.schemaUrl();
    const a = await replica('a');
    await a.coordinator.start();
    const stacks = await listed(a.store);
    // a started alone: every stack is its share.
    expect(await a.coordinator.claimStacks(stacks)).toHaveLength(STACKS.length);
    const b = await replica('b');
    const c = await replica('c');
    await Promise.all([b.coordinator.start(), c.coordinator.start()]);
    // Next cycle: a keeps its share (a third) and gives the rest back; b and c claim them.
    const kept = await a.coordinator.claimStacks(stacks);
    expect(kept).toHaveLength(STACKS.length / 3);
    const [forB, forC] = await Promise.all([b.coordinator.claimStacks(stacks), c.coordinator.claimStacks(stacks)]);
    const keys = [...kept, ...forB, ...forC].map(stackKey);
    expect(new Set(keys).size).toBe(STACKS.length);
    expect(forB).toHaveLength(STACKS.length / 3);
    expect(forC).toHaveLength(STACKS.length / 3);
    // The renewals in between (every third of the 5 s lease) count the shares the same way:
    // a replica may export exactly the stacks the database says it holds.
    for (const r of [a, b, c]) await r.coordinator.claimStacks(stacks);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const r of [a, b, c]) {
      for (const s of stacks) expect(r.coordinator.holds(s)).toBe((await held(r.store, s)) === r.coordinator.owner);
    }
  });

  it('keeps a lease that lapsed while no other replica took it, and counts only listed stacks in a share', async () => {
    url = await db.schemaUrl();
    const a = await replica('a');
    await a.coordinator.start();
    const stacks = await listed(a.store);
    expect(await a.coordinator.claimStacks(stacks)).toHaveLength(STACKS.length);
    // a was starved past its lease: every lease lapsed, nobody took them, the next renewal keeps them.
    await a.store.query('expire', (q) => q.query("UPDATE stack_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE owner = 'a'"));
    // An update sent before the stall commits: nobody else held the stack meanwhile.
    expect(await a.store.commitUpdate(commitOf(stacks[0]!, 'u-sent-before-the-stall', 1, 'a'))).toBe(true);
    expect(await a.coordinator.claimStacks(stacks)).toHaveLength(STACKS.length);
    for (const s of stacks) expect(a.coordinator.holds(s)).toBe(true);
    // Stacks deleted from the org: their leases are given back and the share is the listed rest.
    const b = await replica('b');
    await b.coordinator.start();
    const remaining = stacks.slice(0, 12);
    const keptByA = await a.coordinator.claimStacks(remaining);
    expect(keptByA).toHaveLength(6);
    expect(await b.coordinator.claimStacks(remaining)).toHaveLength(6);
    const owners = await a.store.query('owners', async (q) =>
      (await q.query<{ owner: string | null; n: number }>('SELECT owner, count(*)::int AS n FROM stack_leases GROUP BY owner ORDER BY owner')).rows,
    );
    expect(owners).toEqual([
      { owner: 'a', n: 6 },
      { owner: 'b', n: 6 },
      { owner: null, n: 12 },
    ]);
  });

  it('renews its leases while one of its commits waits for another transaction', async () => {
    url = await db.schemaUrl();
    const a = await replica('a');
    await a.coordinator.start();
    const stacks = await listed(a.store);
    await a.coordinator.claimStacks(stacks);
    // Another replica's commit holds the metrics stamp row (as a starved process can, for long).
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('UPDATE metrics_stamp SET stamp = stamp + 1 WHERE id = 1');
      const commit = a.store.commitUpdate(commitOf(stacks[0]!, 'u1', 1, 'a'));
      await eventually(
        async () => {
          const r = await other.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()");
          return (r.rows[0]?.n ?? 0) > 0 ? true : undefined;
        },
        5_000,
        "a's commit to wait for the lock",
      );
      // a's commit has its lease row locked; the renewal must not wait for it.
      const renewal = a.coordinator.claimStacks(stacks).then(() => 'renewed');
      const outcome = await Promise.race([renewal, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3_000))]);
      await other.query('ROLLBACK');
      expect(outcome).toBe('renewed');
      expect(await commit).toBe(true);
      await renewal;
    } finally {
      await other.end();
    }
  });

  it('refuses the commit of a replica whose lease was taken over, changing nothing', async () => {
    url = await db.schemaUrl();
    const a = await replica('a');
    const b = await replica('b');
    await a.coordinator.start();
    const stacks = await listed(a.store);
    const stack = stacks[0]!;
    expect((await a.coordinator.claimStacks(stacks)).map(stackKey)).toContain(stackKey(stack));
    expect(a.coordinator.holds(stack)).toBe(true);
    await a.store.commitUpdate(commitOf(stack, 'u1', 1, 'a'));

    // a stalls past its lease (a long GC pause, a network partition) and b takes the stack.
    await a.store.query('expire', (c) => c.query("UPDATE stack_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE owner = 'a'"));
    await b.coordinator.start();
    expect((await b.coordinator.claimStacks(stacks)).map(stackKey)).toContain(stackKey(stack));

    const before = await a.store.readCounters();
    const err = await rejection(a.store.commitUpdate(commitOf(stack, 'u2', 2, 'a')));
    expect(err).toBeInstanceOf(ExporterError);
    expect((err as ExporterError).code).toBe('STATE_LEASE_LOST');
    expect(await a.store.isExported(stack, 'u2')).toBe(false);
    expect(await a.store.readCounters()).toEqual(before);
    expect((await a.store.getStack(stack))?.cursorVersion).toBe(1);
    // a learns it at its next renewal and starts no further export of the stack.
    await a.coordinator.claimStacks(stacks);
    expect(a.coordinator.holds(stack)).toBe(false);
    // The new holder commits it.
    expect(await b.store.commitUpdate(commitOf(stack, 'u2', 2, 'b'))).toBe(true);
  });

  it('elects one leader and hands leadership over at once when the leader stops', async () => {
    url = await db.schemaUrl();
    const changes: string[] = [];
    const stores = await Promise.all(['a', 'b', 'c'].map(async (owner) => {
      const store = new PostgresStateStore({ url });
      await store.migrate();
      const coordinator = new PostgresCoordinator({ store, owner, leaseMillis: 900, onLeaderChange: (l) => changes.push(`${owner}:${l}`) });
      opened.push({ store, coordinator });
      return coordinator;
    }));
    await Promise.all(stores.map((c) => c.start()));
    expect(stores.filter((c) => c.isLeader())).toHaveLength(1);
    const first = stores.find((c) => c.isLeader())!;
    await first.stop();
    const next = await eventually(async () => stores.find((c) => c !== first && c.isLeader()), 5_000, 'a new leader');
    expect(stores.filter((c) => c.isLeader())).toEqual([next]);
    expect(changes).toContain(`${first.owner}:false`);
  });
});
