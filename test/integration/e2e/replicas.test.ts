import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import { stackKey } from '../../../src/domain/stack.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { SimulatorTruth } from '../../../src/simulator/simulator-truth.js';
import { dataSamples, parseExposition, sumOf, type Sample } from '../../helpers/exposition.js';
import { orgsOf, startTestSimulator, tempDir, TEST_TOKEN } from '../../helpers/e2e.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../../helpers/postgres.js';
import { eventually, freePort, spawnProcess, type Spawned } from '../../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const available = await postgresAvailable();
const STACK_CONCURRENCY = 3;
const DB_PASSWORD = 'replica-db-password-4242';

function withPassword(url: string): string {
  const u = new URL(url);
  u.password = DB_PASSWORD;
  return u.toString();
}

interface Replica {
  readonly name: string;
  readonly url: string;
  readonly process: Spawned;
}

async function scrape(replica: Replica): Promise<Sample[]> {
  const response = await fetch(`${replica.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${replica.name} /metrics answered ${response.status}`);
  return parseExposition(await response.text());
}

function isLeader(samples: readonly Sample[]): boolean {
  return sumOf(samples, 'pulumi_exporter_leader') === 1;
}

function seriesKey(s: Sample): string {
  return `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
}

/**
 * Three `run` processes share one PostgreSQL database and a simulated backlog. The leader is
 * killed with SIGKILL half-way through; the survivors finish the backlog, one of them takes
 * over leadership, and the series continue from the shared store.
 */
describe.skipIf(!available)('three replicas on one PostgreSQL database', () => {
  let sim: RunningSimulator;
  let truth: SimulatorTruth;
  let receiver: OtlpReceiver;
  let db: TestDatabase;
  let client: pg.Client;
  const replicas: Replica[] = [];
  const tmp = tempDir('pue-replicas-');
  let terminal: { stack: { org: string; project: string; stack: string }; updateId: string; kind: string; result: string }[] = [];
  let killed: Replica | undefined;
  let updatesBeforeKill = 0;
  let exportedAtKill = 0;

  async function exportedCount(): Promise<number> {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM exported_updates');
    return Number(rows[0]?.n ?? 0);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // A backlog big enough to kill the leader half-way: 24 stacks x 10 updates, each update's
    // events served after a 100 ms delay, so the backlog takes several seconds to export.
    sim = await startTestSimulator({
      seed: 5,
      fixtures: false,
      scale: { orgs: 2, projectsPerOrg: 3, stacksPerProject: 4, updatesPerStack: 10, resourcesPerStack: 6 },
      faults: [{ kind: 'slow', endpoint: 'engineEvents', everyNth: 1, delayMs: 100 }],
    });
    truth = sim.truth();
    terminal = truth.stacks.flatMap((s) =>
      s.updates
        .filter((u) => u.result !== 'in-progress')
        .map((u) => ({ stack: { org: s.org, project: s.project, stack: s.stack }, updateId: u.updateId, kind: u.kind, result: u.result })),
    );
    receiver = await startOtlpReceiver();
    const configPath = `${tmp.dir}/config.yaml`;
    writeFileSync(
      configPath,
      [
        'pulumi:',
        '  requestsPerSecond: 1000',
        '  maxConcurrentRequests: 16',
        '  retryBaseDelayMillis: 10',
        'poll:',
        '  intervalSeconds: 1',
        '  initialJitterSeconds: 0',
        `  stackConcurrency: ${STACK_CONCURRENCY}`,
        '',
      ].join('\n'),
    );
    for (const name of ['r1', 'r2', 'r3']) {
      const port = await freePort();
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (!k.startsWith('PULUMI_') && !k.startsWith('EXPORTER_') && !k.startsWith('OTEL_') && !k.startsWith('PG')) env[k] = v;
      }
      Object.assign(env, {
        EXPORTER_CONFIG: configPath,
        PULUMI_ACCESS_TOKEN: TEST_TOKEN,
        PULUMI_BACKEND_URL: sim.url,
        EXPORTER_ORGS: orgsOf(truth).join(','),
        // Trust auth ignores the password; it is there to show that no replica ever prints it.
        EXPORTER_STATE: withPassword(db.url),
        EXPORTER_STATE_LEASE_SECONDS: '5',
        EXPORTER_HOST: '127.0.0.1',
        EXPORTER_PORT: String(port),
        EXPORTER_BACKFILL_DAYS: '0',
        EXPORTER_LOG_LEVEL: 'info',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
        // Tells the receiver which replica sent each request.
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-replica=${name}`,
      });
      const child = spawnProcess(process.execPath, ['--import', 'tsx', `${ROOT}src/cli.ts`, 'run'], env);
      replicas.push({ name, url: `http://127.0.0.1:${port}`, process: child });
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    await client?.end().catch(() => undefined);
    await db?.drop();
    await receiver?.close();
    await sim?.close();
    tmp.cleanup();
  });

  const alive = (): Replica[] => replicas.filter((r) => r !== killed);

  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (what: string) => phases.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  it('splits the backlog, serves pulumi_* from the leader only, and survives a SIGKILL of the leader', async () => {
    // On failure, say how far it got, who held what, and what each replica last warned about
    // (late or slow renewals, lease losses, store errors) or did with its leases.
    onTestFailed(async () => {
      console.error(`replicas test failed after: ${phases.join(', ') || 'nothing'}; ${await exportedCount().catch(() => '?')} of ${terminal.length} exported`);
      const leases = await client
        .query<{ owner: string | null; n: string; live: boolean }>(
          'SELECT owner, count(*) AS n, bool_and(expires_at > clock_timestamp()) AS live FROM stack_leases GROUP BY owner ORDER BY owner',
        )
        .then((r) => r.rows, (e: unknown) => String(e));
      const heartbeats = await client.query('SELECT owner, expires_at > clock_timestamp() AS live FROM replicas').then((r) => r.rows, (e: unknown) => String(e));
      console.error(`stack leases by owner: ${JSON.stringify(leases)}; heartbeats: ${JSON.stringify(heartbeats)}`);
      for (const r of replicas) {
        const lines = r.process.output().split('\n');
        const warnings = lines.filter((l) => /"level":(40|50|60)/.test(l)).slice(-15);
        const coordination = lines.filter((l) => /"module":"coordinator"/.test(l)).slice(-10);
        const cycles = lines.filter((l) => l.includes('poll cycle finished')).slice(-3);
        console.error(
          `--- ${r.name}${r === killed ? ' (killed)' : ''}: last warnings\n${warnings.join('\n')}\n` +
            `--- ${r.name}: last lease lines\n${coordination.join('\n')}\n--- ${r.name}: last cycles\n${cycles.join('\n')}`,
        );
      }
    });
    expect(terminal.length).toBeGreaterThan(200);
    // All three answer, exactly one leads; followers serve only pulumi_exporter_* (and stay ready).
    const leader = await eventually(
      async () => {
        const scrapes = await Promise.all(replicas.map(scrape));
        const leaders = replicas.filter((_, i) => isLeader(scrapes[i]!));
        return leaders.length === 1 ? { replica: leaders[0]!, scrapes } : undefined;
      },
      40_000,
      'three replicas serving /metrics with one leader',
    );
    phase('one leader');
    for (const [i, r] of replicas.entries()) {
      if (r === leader.replica) continue;
      expect(dataSamples(leader.scrapes[i]!)).toEqual([]);
      expect((await fetch(`${r.url}/readyz`)).status === 200 || (await exportedCount()) < terminal.length).toBe(true);
    }

    // Half-way through the backlog, the leader dies without a chance to release anything.
    await eventually(async () => ((await exportedCount()) >= terminal.length / 2 ? true : undefined), 60_000, 'half the backlog');
    phase('half');
    const before = await scrape(leader.replica);
    updatesBeforeKill = sumOf(before, 'pulumi_updates_total');
    // The stacks the leader holds as it dies: only their in-flight updates may be sent twice.
    const { rows: held } = await client.query<{ key: string }>(
      `SELECT org || '/' || project || '/' || stack AS key FROM stack_leases
       WHERE owner = (SELECT owner FROM leader_lease WHERE id = 1)`,
    );
    killed = leader.replica;
    const exited = new Promise((resolve) => killed!.process.child.once('exit', resolve));
    killed.process.child.kill('SIGKILL');
    await exited;
    const killedStacks = new Set(held.map((r) => r.key));
    // What the dead replica committed is final now; its stacks stay leased to it for a while yet.
    const { rows: committedAtKill } = await client.query<{ org: string; update_id: string }>('SELECT org, update_id FROM exported_updates');
    const committedBeforeKill = new Set(committedAtKill.map((r) => `${r.org}/${r.update_id}`));
    exportedAtKill = committedAtKill.length;
    // Left for the survivors to take over from the dead replica (its exports in flight among them).
    const leftOnKilledStacks = terminal.filter(
      (u) => killedStacks.has(stackKey(u.stack)) && !committedBeforeKill.has(`${u.stack.org}/${u.updateId}`),
    ).length;
    expect(exportedAtKill).toBeLessThan(terminal.length);
    expect(updatesBeforeKill).toBeGreaterThan(0);

    // The survivors finish the backlog (the dead one's stacks after its leases expire) and elect a new leader.
    await eventually(async () => ((await exportedCount()) === terminal.length ? true : undefined), 60_000, 'the whole backlog');
    phase('backlog done');
    const survivors = await eventually(
      async () => {
        const scrapes = await Promise.all(alive().map(scrape));
        const leaders = scrapes.filter(isLeader);
        return leaders.length === 1 && sumOf(leaders[0]!, 'pulumi_updates_total') === terminal.length ? scrapes : undefined;
      },
      30_000,
      'a new leader serving the whole backlog',
    );

    phase('new leader');
    // Failover: the new leader continues the series, never lower than the old leader served.
    const newLeader = survivors.find(isLeader)!;
    expect(sumOf(newLeader, 'pulumi_updates_total')).toBeGreaterThanOrEqual(updatesBeforeKill);

    // The union of the survivors' /metrics holds each pulumi_* series exactly once ...
    const union = survivors.flatMap(dataSamples);
    const keys = union.map(seriesKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(survivors.filter((s) => dataSamples(s).length > 0)).toHaveLength(1);
    // ... with the simulator's ground truth as values.
    const expected = new Map<string, number>();
    for (const u of terminal) {
      const key = JSON.stringify({ ...u.stack, kind: u.kind, result: u.result });
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const actual = new Map<string, number>();
    for (const s of union.filter((x) => x.name === 'pulumi_updates_total')) {
      const { org, project, stack, kind, result } = s.labels;
      actual.set(JSON.stringify({ org, project, stack, kind, result }), s.value);
    }
    expect(actual).toEqual(expected);

    // Every trace arrived, and no update was exported twice, counting the OTLP requests per
    // trace id, with two exceptions the design allows: the spans go to the collector before
    // the update commits (the other order could lose a trace), so an update is sent again by
    // the next holder of its stack when the replica that sent it did not commit it, because
    // - it was killed first: one request from the killed replica, then one from a survivor,
    //   the update not committed when the killed replica exited, of a stack it held, at most
    //   one per stack it was exporting (STACK_CONCURRENCY at once); or
    // - it stalled (a starved CPU) past its lease between sending and committing, so another
    //   replica took the stack over: its commit was refused, which it logged (STATE_LEASE_LOST).
    // Nothing else: exactly two requests, from two replicas, with the same span ids (so a
    // tracing backend keeps the trace once). Counted once: the ledger row is the commit.
    const sends = new Map<string, { replica: string; spanIds: string[] }[]>();
    for (const request of receiver.requests.filter((r) => r.status === 200)) {
      const replica = String(request.headers['x-replica']);
      for (const root of request.spans.filter((s) => s.parentSpanId === '')) {
        const spanIds = request.spans.filter((s) => s.traceId === root.traceId).map((s) => s.spanId);
        sends.set(root.traceId, [...(sends.get(root.traceId) ?? []), { replica, spanIds }]);
      }
    }
    const missing = terminal.filter((u) => !sends.has(traceIdFor(u.stack, u.updateId)));
    expect(missing).toEqual([]);
    const updateOfTrace = new Map(terminal.map((u) => [traceIdFor(u.stack, u.updateId), u]));
    const refusedCommit = (replica: string, stack: string): boolean =>
      replicas
        .find((r) => r.name === replica)!
        .process.output()
        .split('\n')
        .some((l) => l.includes('"code":"STATE_LEASE_LOST"') && l.includes(`"stack":"${stack}"`));
    const twice = [...sends.entries()]
      .filter(([, copies]) => copies.length > 1)
      .map(([traceId, copies]) => {
        const update = updateOfTrace.get(traceId)!;
        const stack = stackKey(update.stack);
        const [first, second] = copies as [{ replica: string; spanIds: string[] }, { replica: string; spanIds: string[] }];
        const inFlightAtKill = first.replica === killed!.name && !committedBeforeKill.has(`${update.stack.org}/${update.updateId}`) && killedStacks.has(stack);
        return {
          traceId,
          stack,
          requests: copies.map((c) => c.replica),
          sameSpans: JSON.stringify([...second.spanIds].sort()) === JSON.stringify([...first.spanIds].sort()),
          cause: inFlightAtKill ? 'in flight at the kill' : refusedCommit(first.replica, stack) ? 'stalled past its lease' : 'none',
        };
      });
    const unexplained = twice.filter((t) => t.requests.length !== 2 || t.requests[0] === t.requests[1] || !t.sameSpans || t.cause === 'none');
    expect(unexplained).toEqual([]);
    const atKill = twice.filter((t) => t.cause === 'in flight at the kill').map((t) => t.stack);
    expect(new Set(atKill).size).toBe(atKill.length);
    expect(atKill.length).toBeLessThanOrEqual(STACK_CONCURRENCY);
    const afterStall = twice.length - atKill.length;
    for (const r of replicas) {
      expect(r.process.output()).toContain('"module":"coordinator"');
      expect(r.process.output()).not.toContain(DB_PASSWORD);
    }
    console.info(
      `replicas: ${terminal.length} updates, killed the leader at ${exportedAtKill} exported ` +
        `(${leftOnKilledStacks} left on its ${killedStacks.size} stacks); ` +
        `${sends.size} traces received, ${atKill.length} sent twice (in flight at the kill), ${afterStall} (a replica stalled past its lease); ` +
        phases.join(', '),
    );
  }, 150_000);
});
