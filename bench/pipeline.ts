import { createApp } from '../src/app.js';
import { defaultConfig, type Config } from '../src/config/schema.js';
import { silentLogger } from '../src/logging/logger.js';
import { PulumiClient } from '../src/pulumi/pulumi-client.js';
import { startSimulator } from '../src/simulator/simulator.js';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import type { BenchSuite } from './run.js';

/*
 * The whole exporter against the bundled simulator on loopback: a full backfill (history,
 * events, conversion, trace export, SQLite commits) measured against the time it takes
 * only to read the same data through the same client. The ratio is the exporter's own cost
 * over the unavoidable cost of fetching; the simulator and the exporter share the machine.
 */
const TOKEN = 'bench-token';

export const pipelineSuite: BenchSuite = {
  name: 'pipeline',
  description: 'full backfill through the exporter vs reading the same API data alone',
  async groups() {
    const sim = await startSimulator({
      seed: 42,
      host: '127.0.0.1',
      port: 0,
      acceptedToken: TOKEN,
      scale: { orgs: 1, projectsPerOrg: 4, stacksPerProject: 5, updatesPerStack: 20 },
    });
    const receiver = await startOtlpReceiver();
    const truth = sim.truth();
    const orgs = [...new Set(truth.stacks.map((s) => s.org))];
    const updates = truth.stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);
    const events = truth.stacks.reduce((n, s) => n + s.updates.reduce((m, u) => m + u.eventCount, 0), 0);

    const config = (traces: 'none' | 'otlp'): Config =>
      defaultConfig({
        pulumi: {
          backendUrl: sim.url,
          accessToken: TOKEN,
          orgs: orgs.map((name) => ({ name })),
          requestsPerSecond: 100_000,
          maxConcurrentRequests: 16,
        },
        state: { path: ':memory:' },
        poll: { backfillDays: 0, initialJitterSeconds: 0 },
        traces: { exporter: traces, endpoint: receiver.url },
        log: { level: 'silent' },
      });

    const backfill = async (traces: 'none' | 'otlp'): Promise<number> => {
      const app = createApp(config(traces), silentLogger(), { http: false });
      const result = await app.runOnce();
      await app.stop();
      if (result.result !== 'success' || result.updatesExported !== updates) throw new Error(`backfill exported ${result.updatesExported} of ${updates}`);
      receiver.requests.length = 0;
      return result.updatesExported;
    };

    const readOnly = async (): Promise<number> => {
      const c = config('none');
      const client = new PulumiClient({ ...c.pulumi, baseUrl: c.pulumi.backendUrl, version: 'bench' });
      let read = 0;
      for (const org of orgs) {
        const stacks = await client.listStacks(org);
        await Promise.all(
          stacks.map(async (s) => {
            for (const u of await client.historySince(s, { afterVersion: 0 })) {
              if (u.result !== 'succeeded' && u.result !== 'failed') continue;
              for await (const page of client.engineEvents(s, u.updateId)) read += page.events.length;
            }
          }),
        );
      }
      return read;
    };

    const steady = createApp(config('none'), silentLogger(), { http: false });
    await steady.runOnce();

    return [
      {
        title: `${truth.stacks.length} stacks, ${updates} completed updates, ${events} engine events`,
        notes: ['stack syncs run 4 at a time in the exporter; the read-only baseline reads all stacks of an org at once'],
        cases: [
          { name: 'read history + events only (client)', items: updates, unit: 'updates', fn: readOnly },
          { name: 'backfill, traces off', items: updates, unit: 'updates', fn: () => backfill('none'), baseline: 'read history + events only (client)' },
          { name: 'backfill, OTLP protobuf to a local receiver', items: updates, unit: 'updates', fn: () => backfill('otlp'), baseline: 'read history + events only (client)' },
          { name: 'steady-state cycle, nothing new', items: truth.stacks.length, unit: 'stacks', fn: () => steady.runOnce(), baseline: 'read history + events only (client)' },
        ],
      },
    ];
  },
};
