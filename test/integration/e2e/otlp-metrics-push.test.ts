import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/logging/logger.js';
import { UPDATE_DURATION_BUCKETS } from '../../../src/metrics/definitions.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import type { SimulatorTruth, TruthStack, TruthUpdate } from '../../../src/simulator/simulator-truth.js';
import type { Coordinator } from '../../../src/state/coordinator.js';
import { memoryStore } from '../../helpers/memory-store.js';
import { configFor, orgsOf, startTestSimulator, tempDir, TEST_TOKEN } from '../../helpers/e2e.js';
import { parseExposition, sumOf } from '../../helpers/exposition.js';
import {
  OTLP_TEMPORALITY,
  startOtlpMetricsReceiver,
  type DecodedPoint,
  type OtlpMetricsReceiver,
} from '../../helpers/otlp-metrics-receiver.js';
import { eventually, spawnProcess } from '../../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// The OTLP metrics push (metricsPush.exporter=otlp): a real receiver decodes what the real
// SDK exporter sends, and the values equal the simulator's ground truth and /metrics.

const terminal = (t: SimulatorTruth): { s: TruthStack; u: TruthUpdate }[] =>
  t.stacks.flatMap((s) => s.updates.filter((u) => u.result !== 'in-progress').map((u) => ({ s, u })));

function pushConfig(sim: RunningSimulator, statePath: string, endpoint: string): Config {
  const base = configFor(sim, statePath);
  return { ...base, metricsPush: { ...base.metricsPush, exporter: 'otlp', endpoint, intervalMillis: 250, timeoutMillis: 250 } };
}

/** Log lines kept for assertions. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => void raw.push(line) } });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A label set as a key that does not depend on attribute order. */
const keyOf = (labels: Record<string, unknown>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

const points = (received: readonly DecodedPoint[], name: string): DecodedPoint[] => received.filter((p) => p.name === name);
const total = (received: readonly DecodedPoint[], name: string): number => points(received, name).reduce((n, p) => n + (p.value ?? p.count ?? 0), 0);

/** Waits for a push whose pulumi_updates_total adds up to `expected`. */
function pushWithUpdates(receiver: OtlpMetricsReceiver, expected: number): Promise<readonly DecodedPoint[]> {
  return eventually(
    async () => {
      const latest = receiver.latest();
      return total(latest, 'pulumi_updates_total') === expected ? latest : undefined;
    },
    20_000,
    `a push counting ${expected} updates`,
  );
}

describe('OTLP metrics push against the simulator ground truth', () => {
  let sim: RunningSimulator;
  let truth: SimulatorTruth;
  let receiver: OtlpMetricsReceiver;
  let app: App | undefined;
  let first: readonly DecodedPoint[];
  const tmp = tempDir('pue-otlp-metrics-');
  const statePath = `${tmp.dir}/state.db`;

  beforeAll(async () => {
    sim = await startTestSimulator({ seed: 11 });
    truth = sim.truth();
    receiver = await startOtlpMetricsReceiver();
    app = createApp(pushConfig(sim, statePath, receiver.url), capturingLogger().logger, { http: false });
    await app.start();
    expect((await app.runOnce()).result).toBe('success');
    first = await pushWithUpdates(receiver, terminal(truth).length);
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await receiver?.close();
    await sim?.close();
    tmp.cleanup();
  });

  it('sends cumulative monotonic sums equal to the ground truth, one attribute per Prometheus label', () => {
    const expected = new Map<string, number>();
    for (const { s, u } of terminal(truth)) {
      const key = keyOf({ org: s.org, project: s.project, stack: s.stack, kind: u.kind, result: u.result });
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const actual = new Map<string, number>();
    for (const p of points(first, 'pulumi_updates_total')) {
      expect(p.type).toBe('sum');
      expect(p.monotonic).toBe(true);
      expect(p.temporality).toBe(OTLP_TEMPORALITY.CUMULATIVE);
      expect(p.startTimeUnixNano).toBeLessThan(p.timeUnixNano);
      actual.set(keyOf(p.attributes), p.value ?? NaN);
    }
    expect(expected.size).toBeGreaterThan(5);
    expect(actual).toEqual(expected);

    const violations = terminal(truth).reduce((n, { u }) => n + u.policyViolations.length, 0);
    expect(total(first, 'pulumi_policy_violations_total')).toBe(violations);
  });

  it('sends the update duration histogram with the ground truth buckets, sum and count', () => {
    const expected = new Map<string, { counts: number[]; sum: number; count: number }>();
    for (const { s, u } of terminal(truth)) {
      const key = keyOf({ org: s.org, project: s.project, kind: u.kind, result: u.result });
      const e = expected.get(key) ?? { counts: new Array<number>(UPDATE_DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      const duration = (u.endTime ?? u.startTime) - u.startTime;
      const slot = UPDATE_DURATION_BUCKETS.findIndex((bound) => duration <= bound);
      e.counts[slot === -1 ? UPDATE_DURATION_BUCKETS.length : slot]! += 1;
      e.sum += duration;
      e.count += 1;
      expected.set(key, e);
    }
    const histograms = points(first, 'pulumi_update_duration_seconds');
    expect(histograms).toHaveLength(expected.size);
    for (const p of histograms) {
      expect(p.type).toBe('histogram');
      expect(p.temporality).toBe(OTLP_TEMPORALITY.CUMULATIVE);
      expect(p.unit).toBe('s');
      expect(p.explicitBounds).toEqual([...UPDATE_DURATION_BUCKETS]);
      const e = expected.get(keyOf(p.attributes));
      expect(e, JSON.stringify(p.attributes)).toBeDefined();
      expect(p.bucketCounts).toEqual(e?.counts);
      expect(p.count).toBe(e?.count);
      expect(p.sum).toBeCloseTo(e?.sum ?? NaN, 6);
    }
  });

  it('sends the stack gauges from the store facts', () => {
    for (const s of truth.stacks) {
      const stack = { org: s.org, project: s.project, stack: s.stack };
      const resources = points(first, 'pulumi_stack_resources').filter((p) => keyOf(p.attributes) === keyOf(stack));
      expect(resources.map((p) => [p.type, p.value])).toEqual([['gauge', s.resourceCount]]);
      const done = s.updates.filter((u) => u.result !== 'in-progress');
      for (const kind of new Set(done.map((u) => u.kind))) {
        const newest = done.filter((u) => u.kind === kind).reduce((a, b) => ((b.endTime ?? 0) >= (a.endTime ?? 0) ? b : a));
        const last = points(first, 'pulumi_stack_last_update_timestamp_seconds').filter(
          (p) => keyOf(p.attributes) === keyOf({ ...stack, kind }),
        );
        expect(last.map((p) => p.value)).toEqual([newest.endTime]);
      }
    }
  });

  it('carries the exporter resource and the same series and values as /metrics', async () => {
    for (const p of first) {
      expect(p.resource['service.name']).toBe('pulumi-update-exporter');
      expect(p.resource['service.instance.id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(p.scope.name).toBe('pulumi-update-exporter');
    }
    const scraped = parseExposition((await app!.metrics.render()).body);
    // Every store-backed counter and gauge series of the scrape, with its value (the store did not move since the push).
    let compared = 0;
    for (const p of first.filter((x) => x.type !== 'histogram' && !x.name.startsWith('pulumi_exporter_'))) {
      expect(sumOf(scraped, p.name, p.attributes as Record<string, string>), `${p.name} ${JSON.stringify(p.attributes)}`).toBe(p.value);
      compared += 1;
    }
    expect(compared).toBeGreaterThan(50);
    const scrapedStoreSeries = scraped.filter(
      (x) => x.name.startsWith('pulumi_') && !x.name.startsWith('pulumi_exporter_') && !/_(bucket|sum|count)$/.test(x.name),
    );
    expect(scrapedStoreSeries).toHaveLength(compared);
    // Self-metrics travel too, under their Prometheus names.
    expect(points(first, 'pulumi_exporter_leader').map((p) => p.value)).toEqual([1]);
    expect(total(first, 'pulumi_exporter_updates_exported_total')).toBe(terminal(truth).length);
  });

  it('continues from the stored totals after a restart, with the same start time', async () => {
    await app!.stop();
    const before = points(receiver.latest(), 'pulumi_updates_total');
    const stack = truth.stacks[0]!;
    const ref = { org: stack.org, project: stack.project, stack: stack.stack };
    sim.control.addCompletedUpdate(ref, { kind: 'update', result: 'succeeded' });
    app = createApp(pushConfig(sim, statePath, receiver.url), capturingLogger().logger, { http: false });
    await app.start();
    expect((await app.runOnce()).result).toBe('success');
    const after = await pushWithUpdates(receiver, terminal(truth).length + 1);
    const key = keyOf({ ...ref, kind: 'update', result: 'succeeded' });
    const valueOf = (list: readonly DecodedPoint[]): number => list.find((p) => keyOf(p.attributes) === key)?.value ?? 0;
    expect(valueOf(points(after, 'pulumi_updates_total'))).toBe(valueOf(before) + 1);
    // Store-backed series keep their start (when the store began); the process's own restart.
    const startOf = (list: readonly DecodedPoint[], name: string): bigint[] => [...new Set(points(list, name).map((p) => p.startTimeUnixNano))];
    expect(startOf(after, 'pulumi_updates_total')).toEqual(startOf(first, 'pulumi_updates_total'));
    expect(startOf(after, 'pulumi_updates_total')).toHaveLength(1);
    // A new process is a new instance (as a new scrape target would be); the totals are not reset.
    expect(after[0]?.resource['service.instance.id']).not.toBe(first[0]?.resource['service.instance.id']);
    expect(startOf(after, 'pulumi_exporter_polls_total')[0]).toBeGreaterThan(startOf(after, 'pulumi_updates_total')[0]!);
  }, 60_000);

  it('logs and counts pushes a down collector missed, and loses nothing once it is back', async () => {
    await app!.stop();
    const port = Number(new URL(receiver.url).port);
    await receiver.close();
    const stack = truth.stacks[1]!;
    sim.control.addCompletedUpdate({ org: stack.org, project: stack.project, stack: stack.stack }, { kind: 'refresh', result: 'failed' });
    const log = capturingLogger();
    app = createApp(pushConfig(sim, statePath, `http://127.0.0.1:${port}/v1/metrics`), log.logger, { http: false });
    await app.start();
    expect((await app.runOnce()).result).toBe('success');
    const failures = await eventually(
      async () => {
        const n = sumOf(parseExposition((await app!.metrics.render()).body), 'pulumi_exporter_errors_total', { code: 'METRICS_PUSH_FAILED' });
        return n >= 2 ? n : undefined;
      },
      20_000,
      'two failed pushes counted',
    );
    expect(failures).toBeGreaterThanOrEqual(2);
    const warning = log.lines().find((l) => l['code'] === 'METRICS_PUSH_FAILED');
    expect(warning?.['level']).toBe(40);
    expect(warning?.['endpoint']).toBe(`http://127.0.0.1:${port}/v1/metrics`);
    expect(String(warning?.['msg'])).toMatch(/did not accept the metrics/);

    receiver = await startOtlpMetricsReceiver(port);
    const back = await pushWithUpdates(receiver, terminal(truth).length + 2);
    expect(total(back, 'pulumi_update_failures_total')).toBe(terminal(truth).filter(({ u }) => u.result === 'failed').length + 1);
    await eventually(
      async () => log.lines().find((l) => String(l['msg']).includes('accepts pushes again')),
      10_000,
      'the recovery log line',
    );
  }, 60_000);
});

describe('OTLP metrics push with several replicas', () => {
  it('pushes the pulumi_* store series only while leading; the self-metrics always', async () => {
    const sim = await startTestSimulator({ seed: 3 });
    const receiver = await startOtlpMetricsReceiver();
    let leading = false;
    const coordinator: Coordinator = {
      owner: undefined,
      start: async () => {},
      claimStacks: async (stacks) => [...stacks],
      holds: () => true,
      isLeader: () => leading,
      stop: async () => {},
    };
    const store = await memoryStore();
    const app = createApp(pushConfig(sim, ':memory:', receiver.url), capturingLogger().logger, { http: false, store, coordinator });
    try {
      await app.start();
      await app.runOnce();
      const asFollower = await eventually(
        async () => {
          const latest = receiver.latest();
          return total(latest, 'pulumi_exporter_updates_exported_total') > 0 ? latest : undefined;
        },
        20_000,
        'a push after the cycle',
      );
      expect(asFollower.filter((p) => !p.name.startsWith('pulumi_exporter_'))).toEqual([]);
      expect(points(asFollower, 'pulumi_exporter_leader').map((p) => p.value)).toEqual([0]);

      leading = true;
      app.metrics.setLeader(true);
      const asLeader = await pushWithUpdates(receiver, terminal(sim.truth()).length);
      expect(points(asLeader, 'pulumi_exporter_leader').map((p) => p.value)).toEqual([1]);
    } finally {
      await app.stop();
      await receiver.close();
      await sim.close();
    }
  }, 60_000);
});

describe('OTLP metrics push over http/json with gzip', () => {
  it('sends the same values as JSON', async () => {
    const sim = await startTestSimulator({ seed: 5 });
    const receiver = await startOtlpMetricsReceiver();
    const base = pushConfig(sim, ':memory:', receiver.url);
    const app = createApp({ ...base, metricsPush: { ...base.metricsPush, protocol: 'http/json', compression: 'gzip' } }, capturingLogger().logger, {
      http: false,
    });
    try {
      await app.start();
      await app.runOnce();
      const latest = await pushWithUpdates(receiver, terminal(sim.truth()).length);
      expect(receiver.requests.at(-1)).toMatchObject({ contentType: 'application/json', contentEncoding: 'gzip' });
      expect(total(latest, 'pulumi_update_duration_seconds')).toBe(terminal(sim.truth()).length);
      expect(points(latest, 'pulumi_updates_total').every((p) => p.temporality === OTLP_TEMPORALITY.CUMULATIVE && p.monotonic)).toBe(true);
    } finally {
      await app.stop();
      await receiver.close();
      await sim.close();
    }
  }, 60_000);
});

describe('OTLP metrics push from the run command, configured by the standard variables', () => {
  it('pushes while running and once more on SIGTERM', async () => {
    const sim = await startTestSimulator({ seed: 9 });
    const receiver = await startOtlpMetricsReceiver();
    const tmp = tempDir('pue-otlp-metrics-cli-');
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('PULUMI_') && !k.startsWith('EXPORTER_') && !k.startsWith('OTEL_')) env[k] = v;
    }
    const run = spawnProcess(process.execPath, ['--import', 'tsx', `${ROOT}src/cli.ts`, 'run'], {
      ...env,
      PULUMI_BACKEND_URL: sim.url,
      PULUMI_ACCESS_TOKEN: TEST_TOKEN,
      EXPORTER_ORGS: orgsOf(sim.truth()).join(','),
      EXPORTER_STATE: `${tmp.dir}/state.db`,
      EXPORTER_BACKFILL_DAYS: '3650',
      EXPORTER_PORT: '0',
      EXPORTER_HOST: '127.0.0.1',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: receiver.url,
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '500',
    });
    try {
      await pushWithUpdates(receiver, terminal(sim.truth()).length);
      const before = receiver.requests.length;
      await run.stop();
      expect(run.child.exitCode).toBe(0);
      // The shutdown push, after the last timed one.
      expect(receiver.requests.length).toBeGreaterThan(before);
      expect(total(receiver.latest(), 'pulumi_updates_total')).toBe(terminal(sim.truth()).length);
      expect(run.output()).toMatch(/metrics push: pushing the metrics over OTLP/);
    } finally {
      await run.stop();
      await receiver.close();
      await sim.close();
      tmp.cleanup();
    }
  }, 90_000);
});
