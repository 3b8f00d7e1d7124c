import { describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { silentLogger } from '../../../src/logging/logger.js';
import type { SimulatorTruth } from '../../../src/simulator/simulator-truth.js';
import { configFor, startTestSimulator } from '../../helpers/e2e.js';
import { startOtlpMetricsReceiver, type DecodedPoint, type ReceivedMetricsRequest } from '../../helpers/otlp-metrics-receiver.js';
import { createTestDatabase, postgresAvailable } from '../../helpers/postgres.js';
import { eventually } from '../../helpers/processes.js';

const available = await postgresAvailable();

const completed = (t: SimulatorTruth): number => t.stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);
const instanceOf = (r: ReceivedMetricsRequest): unknown => r.points[0]?.resource['service.instance.id'];
const updatesIn = (points: readonly DecodedPoint[]): number =>
  points.filter((p) => p.name === 'pulumi_updates_total').reduce((n, p) => n + (p.value ?? 0), 0);

/**
 * Two replicas on one PostgreSQL database (the real PostgresCoordinator elects the leader),
 * both pushing to one receiver: only the leader's pushes carry pulumi_* series; when it stops,
 * the other replica takes over and pushes the same totals with the same start time.
 */
describe.skipIf(!available)('OTLP metrics push with two replicas on PostgreSQL', () => {
  it('pushes pulumi_* from the leader only, and from the new leader after a handover', async () => {
    const db = await createTestDatabase();
    const sim = await startTestSimulator({
      seed: 4,
      fixtures: false,
      scale: { orgs: 1, projectsPerOrg: 2, stacksPerProject: 3, updatesPerStack: 4, resourcesPerStack: 3 },
    });
    const receiver = await startOtlpMetricsReceiver();
    const apps: App[] = [];
    try {
      // Cycles every second: a replica claims only its share of the stacks per cycle.
      const base = configFor(sim, db.url, { state: { path: db.url, leaseSeconds: 10 }, poll: { intervalSeconds: 1 } });
      const config = { ...base, metricsPush: { ...base.metricsPush, exporter: 'otlp' as const, endpoint: receiver.url, intervalMillis: 250, timeoutMillis: 250 } };
      for (let i = 0; i < 2; i++) apps.push(createApp(config, silentLogger(), { http: false }));
      for (const app of apps) await app.start();
      await Promise.all(apps.map((app) => app.runOnce()));
      const total = completed(sim.truth());

      // Until both replicas have pushed a few times, and the totals are in.
      const pushes = await eventually(
        async () => {
          const ok = receiver.requests.filter((r) => r.status === 200);
          const instances = new Set(ok.map(instanceOf));
          const full = ok.some((r) => updatesIn(r.points) === total);
          return instances.size === 2 && full && ok.length >= 6 ? ok : undefined;
        },
        60_000,
        `pushes from both replicas (${total} updates)`,
      );
      const withStoreSeries = new Set(pushes.filter((r) => r.points.some((p) => !p.name.startsWith('pulumi_exporter_'))).map(instanceOf));
      expect(withStoreSeries.size).toBe(1);
      const [leaderInstance] = withStoreSeries;
      const leaderFlags = (instance: unknown): number[] =>
        pushes.filter((r) => instanceOf(r) === instance).flatMap((r) => r.points.filter((p) => p.name === 'pulumi_exporter_leader').map((p) => p.value ?? NaN));
      expect(new Set(leaderFlags(leaderInstance))).toEqual(new Set([1]));
      const follower = [...new Set(pushes.map(instanceOf))].find((i) => i !== leaderInstance);
      expect(new Set(leaderFlags(follower))).toEqual(new Set([0]));
      const leaderStart = pushes.find((r) => instanceOf(r) === leaderInstance && updatesIn(r.points) === total)?.points.find((p) => p.name === 'pulumi_updates_total')?.startTimeUnixNano;

      // Stop the leader (it releases leadership): the other replica now pushes the same totals.
      const leading = await Promise.all(apps.map(async (a) => /^pulumi_exporter_leader 1$/m.test((await a.metrics.render()).body)));
      expect(leading.filter(Boolean)).toHaveLength(1);
      await apps[leading.indexOf(true)]!.stop();
      const seen = receiver.requests.length;
      const handedOver = await eventually(
        async () =>
          receiver.requests
            .slice(seen)
            .find((r) => r.status === 200 && instanceOf(r) === follower && updatesIn(r.points) === total),
        30_000,
        'the new leader pushing the totals',
      );
      expect(handedOver.points.find((p) => p.name === 'pulumi_updates_total')?.startTimeUnixNano).toBe(leaderStart);
    } finally {
      for (const app of apps) await app.stop();
      await receiver.close();
      await sim.close();
      await db.drop();
    }
  }, 120_000);
});
