import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createApp, type App } from '../src/app.js';
import { silentLogger } from '../src/logging/logger.js';
import { BENCH_TOKEN, benchConfig } from './backfill-config.js';
import type { BenchSuite } from './run.js';
import { startBenchServers } from './servers.js';

/*
 * What previews.enabled costs a poll cycle over unchanged stacks: the same ~1,000 stacks,
 * once with previews off (the baseline: the stack-list pages alone) and once with them on
 * (one latest-previews call more per stack). Each app first backfills its own state file
 * (not timed); every timed cycle checks the simulator's request counts and fails otherwise.
 */
export const previewsCycleSuite: BenchSuite = {
  name: 'previews-cycle',
  description: 'a poll cycle over 1,000 unchanged stacks with previews off vs on',
  async groups() {
    const servers = await startBenchServers({
      token: BENCH_TOKEN,
      scale: { orgs: 2, projectsPerOrg: 10, stacksPerProject: 50, updatesPerStack: 1, resourcesPerStack: 3 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'bench-previews-'));
    const appFor = (previews: boolean): App => {
      const config = benchConfig(servers, join(dir, `state-${previews ? 'on' : 'off'}.db`), 'none');
      return createApp({ ...config, previews: { enabled: previews } }, silentLogger(), { http: false });
    };
    const off = appFor(false);
    const on = appFor(true);
    const backfill = async (app: App): Promise<{ exported: number; seconds: number }> => {
      const t = performance.now();
      const r = await app.runOnce();
      if (r.result !== 'success') throw new Error(`the first backfill failed: ${JSON.stringify(r)}`);
      return { exported: r.updatesExported, seconds: (performance.now() - t) / 1000 };
    };
    const firstOff = await backfill(off);
    const firstOn = await backfill(on);
    if (firstOff.exported !== servers.updates || firstOn.exported <= servers.updates) {
      throw new Error(`the backfills exported ${firstOff.exported} (off) and ${firstOn.exported} (on) of ${servers.updates} updates`);
    }
    await servers.stats();

    const cycle = (app: App, previews: boolean, listCalls: () => number) => async (): Promise<number> => {
      const r = await app.runOnce();
      if (r.result !== 'success' || r.updatesExported !== 0) throw new Error(`the idle cycle did work: ${JSON.stringify(r)}`);
      const { total, byEndpoint } = await servers.stats();
      const lists = byEndpoint['listStacks'] ?? 0;
      const expected = lists + (previews ? servers.stacks : 0);
      if (lists !== listCalls() || total !== expected || (byEndpoint['latestPreviews'] ?? 0) !== (previews ? servers.stacks : 0)) {
        throw new Error(`previews ${previews ? 'on' : 'off'}: the idle cycle made ${JSON.stringify(byEndpoint)}`);
      }
      return r.stacksWatched;
    };
    // The list pages of one cycle: what the first untimed cycle with previews off asks for.
    await off.runOnce();
    const pages = (await servers.stats()).byEndpoint['listStacks'] ?? 0;

    const baseline = `idle cycle, previews off (${pages} list pages)`;
    return [
      {
        title: `${servers.stacks} unchanged stacks in ${servers.orgs.length} orgs: previews off vs on`,
        notes: [
          `simulator in a child process (generated in ${(servers.generationMs / 1000).toFixed(1)} s); SQLite state in a file per app`,
          `setup (not timed): first backfills ${firstOff.exported} updates in ${firstOff.seconds.toFixed(1)} s (off), ` +
            `${firstOn.exported} updates and previews in ${firstOn.seconds.toFixed(1)} s (on)`,
          `each timed cycle checks the requests it made: ${pages} list pages, plus ${servers.stacks} latest-previews calls with previews on`,
        ],
        iterations: 5,
        warmup: 1,
        cases: [
          { name: baseline, items: servers.stacks, unit: 'stacks', fn: cycle(off, false, () => pages) },
          { name: 'idle cycle, previews on', items: servers.stacks, unit: 'stacks', fn: cycle(on, true, () => pages), baseline },
        ],
        done: async () => {
          await off.stop();
          await on.stop();
          await servers.close();
          rmSync(dir, { recursive: true, force: true });
        },
      },
    ];
  },
};

