import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { stackKey, type StackRef } from '../domain/stack.js';
import { errorCodeOf, isExporterError } from '../errors.js';
import { silentLogger } from '../logging/logger.js';
import type { Logger } from '../logging/logger.js';
import type { Coordinator } from './coordinator.js';
import type { PostgresStateStore } from './postgres-store.js';
import type { StackRecord } from './state-store.js';

export interface PostgresCoordinatorOptions {
  /**
   * A store on the replica's database, used for the lease tables only. Give it a pool of its
   * own (see createCoordinator): renewals must not queue behind syncs and scrapes.
   */
  readonly store: PostgresStateStore;
  /** Close `store` in stop() (it was opened for this coordinator alone). */
  readonly ownsStore?: boolean;
  /** How long a lease lasts without renewal; renewed every third of it. */
  readonly leaseMillis: number;
  /** Unique per process; default `<hostname>-<pid>-<random>` (the pod name in Kubernetes). */
  readonly owner?: string;
  readonly logger?: Logger;
  /** Called when this replica becomes or stops being the leader. */
  readonly onLeaderChange?: (leader: boolean) => void;
}

/** `clock_timestamp() + $n ms`, the database's clock: replicas with skewed clocks agree on expiry. */
const EXPIRY = (param: string): string => `clock_timestamp() + ${param} * interval '1 millisecond'`;

/** A replica's share of `stacks` listed stacks among `live` replicas (rounded up, so the shares cover them all). */
export function shareOf(stacks: number, live: number): number {
  return Math.ceil(stacks / Math.max(1, live));
}

/**
 * The held stacks a replica gives back: those no longer listed (a deleted stack must not
 * fill a share), then the listed ones above its share, the last in key order. The one rule
 * for both the claim at the start of a cycle and the renewals in between, so a replica never
 * drains a stack its next claim keeps, nor keeps one its renewals drain.
 */
export function surplusOf(held: Iterable<string>, listed: ReadonlySet<string>, live: number): string[] {
  const keys = [...held].sort();
  const unlisted = keys.filter((key) => !listed.has(key));
  const kept = keys.filter((key) => listed.has(key));
  return [...unlisted, ...kept.slice(shareOf(listed.size, live))];
}

/**
 * Leases on PostgreSQL. Each replica heartbeats a `replicas` row; every cycle it keeps its
 * stack leases, gives back the ones above its share (shareOf: listed stacks / live replicas,
 * rounded up) and claims up to its share of the unowned or expired ones with FOR UPDATE SKIP
 * LOCKED. One replica holds the `leader_lease` row and serves pulumi_* series. Everything is
 * renewed every leaseMillis / 3, on connections of its own that never wait for a commit (a
 * commit locks its lease row FOR KEY SHARE); a lease that lapsed (a starved process renewed
 * late) is kept if no other replica took it meanwhile. A replica that dies loses it all after
 * leaseMillis: its heartbeat lapses with its leases, so the others' shares grow and they
 * claim its stacks at their next cycle.
 */
export class PostgresCoordinator implements Coordinator {
  readonly owner: string;
  private readonly store: PostgresStateStore;
  private readonly ownsStore: boolean;
  private readonly leaseMillis: number;
  private readonly logger: Logger;
  private readonly onLeaderChange: (leader: boolean) => void;
  /** The stacks whose lease this replica renewed at `heldAt` (performance.now()), by key. */
  private held = new Map<string, StackRef>();
  private heldAt = -Infinity;
  /** Held above this replica's share: no new export starts, given back next cycle. */
  private draining = new Set<string>();
  /** The keys of the stacks listed at the last claim: what the shares are counted over. */
  private listed = new Set<string>();
  /** Live replicas (unexpired heartbeats, this one included) at the last renewal. */
  private live = 1;
  /** When the last renewal started (performance.now()), to tell a late one. */
  private lastRenewalAt: number | undefined;
  private leader = false;
  private leaderAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;

  constructor(options: PostgresCoordinatorOptions) {
    this.store = options.store;
    this.ownsStore = options.ownsStore ?? false;
    this.leaseMillis = options.leaseMillis;
    this.owner = options.owner ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.logger = options.logger ?? silentLogger();
    this.onLeaderChange = options.onLeaderChange ?? (() => undefined);
  }

  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.leaseMillis / 3)));
    this.timer.unref();
    this.logger.info({ owner: this.owner, leaseMillis: this.leaseMillis, leader: this.leader }, 'joined the exporter replicas');
  }

  async claimStacks(stacks: readonly StackRecord[]): Promise<StackRecord[]> {
    await this.renew();
    this.listed = new Set(stacks.map(stackKey));
    const orgs = stacks.map((s) => s.org);
    const projects = stacks.map((s) => s.project);
    const names = stacks.map((s) => s.stack);
    const listed = 'SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS t(org, project, stack)';
    await this.store.query('claim stacks', (db) =>
      db.query(`INSERT INTO stack_leases (org, project, stack) ${listed} ON CONFLICT DO NOTHING`, [orgs, projects, names]),
    );
    const live = this.live;
    const share = shareOf(this.listed.size, live);
    const surplus = surplusOf(this.held.keys(), this.listed, live);
    if (surplus.length > 0) {
      // No new export starts on them from here on; one already past its last check still commits (see holds()).
      for (const key of surplus) this.draining.add(key);
      const refs = surplus.map((key) => this.held.get(key)!);
      await this.store.query('release surplus stacks', (db) =>
        db.query(
          `UPDATE stack_leases SET owner = NULL, expires_at = '-infinity'
           WHERE owner = $4 AND (org, project, stack) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
          [refs.map((r) => r.org), refs.map((r) => r.project), refs.map((r) => r.stack), this.owner],
        ),
      );
      for (const key of surplus) this.held.delete(key);
      this.logger.info({ released: surplus.length, share, replicas: live }, 'gave stacks back to the other replicas');
    }
    const mine = [...this.held.keys()].filter((key) => this.listed.has(key)).length;
    if (mine < share) {
      const claimed = await this.store.transaction('claim stacks', async (db) =>
        (
          await db.query<{ org: string; project: string; stack: string }>(
            `UPDATE stack_leases l SET owner = $4, expires_at = ${EXPIRY('$6')}
             FROM (
               SELECT l2.org, l2.project, l2.stack FROM stack_leases l2
               JOIN (${listed}) t ON t.org = l2.org AND t.project = l2.project AND t.stack = l2.stack
               WHERE l2.owner IS NULL OR l2.expires_at < clock_timestamp()
               ORDER BY l2.org, l2.project, l2.stack
               LIMIT $5
               FOR UPDATE OF l2 SKIP LOCKED
             ) c
             WHERE l.org = c.org AND l.project = c.project AND l.stack = c.stack
             RETURNING l.org, l.project, l.stack`,
            [orgs, projects, names, this.owner, share - mine, this.leaseMillis],
          )
        ).rows,
      );
      for (const row of claimed) this.held.set(stackKey(row), row);
      if (claimed.length > 0) this.logger.info({ claimed: claimed.length, held: this.held.size, share, replicas: live }, 'claimed stack leases');
    }
    this.draining.clear();
    return stacks.filter((s) => this.held.has(stackKey(s)));
  }

  holds(stack: StackRef): boolean {
    const key = stackKey(stack);
    return this.fresh(this.heldAt) && this.held.has(key) && !this.draining.has(key);
  }

  isLeader(): boolean {
    return this.leader && this.fresh(this.leaderAt);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.renewing?.catch(() => undefined);
    this.setLeader(false);
    this.held.clear();
    try {
      await this.store.transaction('release leases', async (db) => {
        await db.query(`UPDATE stack_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1`, [this.owner]);
        await db.query(`UPDATE leader_lease SET owner = NULL, expires_at = '-infinity' WHERE owner = $1`, [this.owner]);
        await db.query('DELETE FROM replicas WHERE owner = $1', [this.owner]);
      });
      this.logger.info({ owner: this.owner }, 'released leases and leadership');
    } catch (err) {
      // They expire on their own after leaseMillis.
      this.logger.warn({ error: err instanceof Error ? err.message : String(err), code: errorCodeOf(err) }, 'releasing the leases failed');
    }
    if (this.ownsStore) await this.store.close().catch(() => undefined);
  }

  /** One renewal of the heartbeat, the stack leases and the leader lease (never two at once). */
  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      const startedAt = performance.now();
      const sinceLast = this.lastRenewalAt === undefined ? 0 : startedAt - this.lastRenewalAt;
      this.lastRenewalAt = startedAt;
      if (sinceLast > (this.leaseMillis * 2) / 3) {
        // Renewals are due every third of the lease: this one's timer fired late (a blocked
        // event loop or a starved CPU), or the previous renewal waited for the database.
        this.logger.warn({ sinceLastMillis: Math.round(sinceLast), leaseMillis: this.leaseMillis }, 'lease renewal ran late');
      }
      try {
        await this.store.query('renew leases', async (db) => {
          const ttl = this.leaseMillis;
          await db.query(
            `INSERT INTO replicas (owner, expires_at) VALUES ($1, ${EXPIRY('$2')})
             ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at`,
            [this.owner, ttl],
          );
          await db.query('DELETE FROM replicas WHERE expires_at < clock_timestamp()');
          // Every lease still in this replica's name, lapsed or not: one that lapsed and that no
          // other replica took meanwhile had no other holder, so keeping it is safe, and a
          // starved replica does not shed stacks nobody else is exporting.
          const kept = await db.query<{ org: string; project: string; stack: string; lapsed: boolean }>(
            `UPDATE stack_leases l SET expires_at = ${EXPIRY('$2')}
             FROM (SELECT org, project, stack, expires_at < clock_timestamp() AS lapsed FROM stack_leases WHERE owner = $1) o
             WHERE l.owner = $1 AND l.org = o.org AND l.project = o.project AND l.stack = o.stack
             RETURNING l.org, l.project, l.stack, o.lapsed`,
            [this.owner, ttl],
          );
          const held = new Map(kept.rows.map((r) => [stackKey(r), { org: r.org, project: r.project, stack: r.stack }]));
          const lost = [...this.held.keys()].filter((key) => !held.has(key));
          const lapsed = kept.rows.filter((r) => r.lapsed).length;
          if (lost.length > 0 || lapsed > 0) {
            this.logger.warn(
              { lost: lost.length, lapsedAndKept: lapsed, renewalStartedLateMillis: Math.round(sinceLast) },
              lost.length > 0
                ? 'stack leases expired before they were renewed and other replicas took them over'
                : 'stack leases expired before they were renewed; no other replica took them, so this one keeps them',
            );
          }
          this.held = held;
          this.heldAt = startedAt;
          const lead = await db.query(
            `UPDATE leader_lease SET owner = $1, expires_at = ${EXPIRY('$2')}
             WHERE id = 1 AND (owner = $1 OR owner IS NULL OR expires_at < clock_timestamp())`,
            [this.owner, ttl],
          );
          this.leaderAt = startedAt;
          this.setLeader((lead.rowCount ?? 0) > 0);
          const live = await db.query<{ n: number }>('SELECT count(*) AS n FROM replicas WHERE expires_at > clock_timestamp()');
          this.live = Math.max(1, live.rows[0]?.n ?? 1);
        });
        // The claim at the start of the next cycle gives these back; until then they start no export.
        this.draining = new Set(surplusOf(this.held.keys(), this.listed, this.live));
        const tookMillis = performance.now() - startedAt;
        if (tookMillis > this.leaseMillis / 3) this.logger.warn({ tookMillis: Math.round(tookMillis), leaseMillis: this.leaseMillis }, 'lease renewal was slow');
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (!this.fresh(this.leaderAt)) this.setLeader(false);
    if (this.renewing !== undefined) return;
    try {
      await this.renew();
    } catch (err) {
      // Leadership is dropped at once: a replica that cannot reach the database must not
      // serve values it cannot read, and another replica may take the lease after expiry.
      this.setLeader(false);
      this.logger.warn(
        { error: isExporterError(err) ? err.message : String(err), code: errorCodeOf(err) },
        'renewing the leases failed; retrying',
      );
    }
  }

  private fresh(at: number): boolean {
    // Renewed before the query started, so the local view expires no later than the database's.
    return performance.now() - at < this.leaseMillis;
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.logger.info({ owner: this.owner, leader }, leader ? 'became the leader: serving pulumi_* series' : 'no longer the leader');
    this.onLeaderChange(leader);
  }
}
