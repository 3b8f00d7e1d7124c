import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { isTerminal } from '../src/domain/update.js';
import { silentLogger } from '../src/logging/logger.js';
import { PulumiClient } from '../src/pulumi/pulumi-client.js';
import { mapWithConcurrency } from '../src/scheduler/concurrency.js';
import { BENCH_TOKEN, ISSUE_SCALE, benchConfig } from './backfill-config.js';
import type { BenchSuite } from './run.js';
import { startBenchServers } from './servers.js';

/*
 * A first backfill through the whole exporter (history, events, conversion, trace export,
 * SQLite commits to a file) against the floor: fetching and parsing the same pages through
 * the same client at the same concurrency (poll.stackConcurrency stacks at a time, each
 * stack's history then its updates' events in order) and doing nothing else. The simulator
 * and the collector run in a child process.
 */
export const backfillSuite: BenchSuite = {
  name: 'backfill',
  description: 'first backfill through the exporter vs fetching and parsing the same pages (the floor)',
  async groups() {
    const servers = await startBenchServers({ token: BENCH_TOKEN, scale: ISSUE_SCALE });
    const dir = mkdtempSync(join(tmpdir(), 'bench-backfill-'));
    let run = 0;

    const backfill = async (traces: 'none' | 'otlp'): Promise<number> => {
      const path = join(dir, `state-${run++}.db`);
      const app = createApp(benchConfig(servers, path, traces), silentLogger(), { http: false });
      const result = await app.runOnce();
      await app.stop();
      rmSync(path, { force: true });
      rmSync(`${path}-wal`, { force: true });
      rmSync(`${path}-shm`, { force: true });
      if (result.result !== 'success' || result.updatesExported !== servers.updates) {
        throw new Error(`backfill exported ${result.updatesExported} of ${servers.updates} updates (${result.result})`);
      }
      return result.updatesExported;
    };

    const floor = async (): Promise<number> => {
      const c = benchConfig(servers, ':memory:', 'none');
      const client = new PulumiClient({ ...c.pulumi, baseUrl: c.pulumi.backendUrl, version: 'bench' });
      let updates = 0;
      let events = 0;
      for (const org of servers.orgs) {
        const stacks = await client.listStacks(org);
        await mapWithConcurrency(stacks, c.poll.stackConcurrency, async (s) => {
          const history = await client.historySince(s, { afterVersion: 0 });
          for (const u of history.filter((x) => isTerminal(x.result)).reverse()) {
            for await (const page of client.engineEvents(s, u.updateId)) events += page.events.length;
            updates += 1;
          }
        });
      }
      if (updates !== servers.updates || events !== servers.events) throw new Error(`the floor read ${updates} updates / ${events} events`);
      return updates;
    };

    const floorName = 'floor: fetch + parse the same pages (client only)';
    return [
      {
        title: `${servers.stacks} stacks, ${servers.updates} completed updates, ${servers.events} engine events`,
        notes: [
          `simulator + collector in a child process (generated in ${Math.round(servers.generationMs)} ms); SQLite state in a file under ${tmpdir()}`,
          'the exporter with its defaults (4 stacks at a time, adaptive request limit starting at 8 in flight); the floor through the same client at the same concurrency',
        ],
        iterations: 5,
        warmup: 1,
        cases: [
          { name: floorName, items: servers.updates, unit: 'updates', fn: floor },
          { name: 'backfill, traces off', items: servers.updates, unit: 'updates', fn: () => backfill('none'), baseline: floorName },
          { name: 'backfill, OTLP protobuf to a local collector', items: servers.updates, unit: 'updates', fn: () => backfill('otlp'), baseline: floorName },
        ],
        done: async () => {
          await servers.close();
          rmSync(dir, { recursive: true, force: true });
        },
      },
    ];
  },
};
