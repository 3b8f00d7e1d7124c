import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp } from '../src/app.js';
import { silentLogger } from '../src/logging/logger.js';
import { PulumiClient } from '../src/pulumi/pulumi-client.js';
import { BENCH_TOKEN, benchConfig } from './backfill-config.js';
import type { BenchSuite } from './run.js';
import { startBenchServers } from './servers.js';

/*
 * A poll cycle over 10,000 stacks none of which changed, after a first backfill of all of
 * them (not timed): it must cost the stack-list pages and nothing else. Each measured cycle
 * checks the simulator's request counts (list calls only, as many as one listing of every
 * org takes: ceil(stacks / page) per org) and fails the benchmark otherwise. The baseline is the list calls alone through the client.
 */
export const idleCycleSuite: BenchSuite = {
  name: 'idle-cycle',
  description: 'a poll cycle over 10,000 unchanged stacks vs the stack-list calls alone',
  async groups() {
    const servers = await startBenchServers({
      token: BENCH_TOKEN,
      scale: { orgs: 2, projectsPerOrg: 50, stacksPerProject: 100, updatesPerStack: 1, resourcesPerStack: 3 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'bench-idle-'));
    const config = benchConfig(servers, join(dir, 'state.db'), 'none');
    const app = createApp(config, silentLogger(), { http: false });
    const t = performance.now();
    const first = await app.runOnce();
    const backfillSeconds = (performance.now() - t) / 1000;
    if (first.result !== 'success' || first.updatesExported !== servers.updates) {
      throw new Error(`the first backfill exported ${first.updatesExported} of ${servers.updates} updates (${first.result})`);
    }
    await servers.stats();

    // The page size is the client's and the simulator's business: count the pages of one listing.
    const client = new PulumiClient({ ...config.pulumi, baseUrl: config.pulumi.backendUrl, version: 'bench' });
    let listed = 0;
    for (const org of servers.orgs) listed += (await client.listStacks(org)).length;
    const listCalls = (await servers.stats()).total;
    if (listed !== servers.stacks) throw new Error(`the client listed ${listed} of ${servers.stacks} stacks`);

    const expectOnlyListCalls = async (what: string): Promise<void> => {
      const stats = await servers.stats();
      if (stats.total !== listCalls || stats.byEndpoint['listStacks'] !== listCalls) {
        throw new Error(`${what} made ${JSON.stringify(stats.byEndpoint)}; expected ${listCalls} listStacks calls and nothing else`);
      }
    };
    const listOnly = async (): Promise<number> => {
      for (const org of servers.orgs) await client.listStacks(org);
      await expectOnlyListCalls('listing the stacks');
      return listCalls;
    };
    const idleCycle = async (): Promise<number> => {
      const r = await app.runOnce();
      if (r.result !== 'success' || r.updatesExported !== 0 || r.stacksSynced !== 0) throw new Error(`the idle cycle did work: ${JSON.stringify(r)}`);
      await expectOnlyListCalls('the idle cycle');
      return r.stacksWatched;
    };

    const baseline = `list calls alone (client, ${listCalls} pages)`;
    return [
      {
        title: `${servers.stacks} unchanged stacks in ${servers.orgs.length} orgs, ${listCalls} stack-list pages`,
        notes: [
          `simulator in a child process (generated in ${(servers.generationMs / 1000).toFixed(1)} s); SQLite state in a file`,
          `setup (not timed): the first backfill of ${servers.updates} updates took ${backfillSeconds.toFixed(1)} s`,
          'each timed call also asks the simulator (over IPC) how many requests it served, and fails unless they were the list calls alone',
        ],
        iterations: 5,
        warmup: 1,
        cases: [
          { name: baseline, items: servers.stacks, unit: 'stacks', fn: listOnly },
          { name: 'idle poll cycle (exporter)', items: servers.stacks, unit: 'stacks', fn: idleCycle, baseline },
        ],
        done: async () => {
          await app.stop();
          await servers.close();
          rmSync(dir, { recursive: true, force: true });
        },
      },
    ];
  },
};
