import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BENCH_TOKEN, ISSUE_SCALE } from './backfill-config.js';
import type { BenchSuite } from './run.js';
import { startBenchServers, type BenchServers } from './servers.js';

const run = promisify(execFile);
const ENTRY = fileURLToPath(new URL('./backfill-process.ts', import.meta.url));

/*
 * Peak RSS of a first backfill (traces to a local collector, SQLite in a file) of the
 * issue-7 data set and of ten times its history, two ways: ten times the updates of each
 * stack (the same stacks and series), and ten times the stacks (ten times the projects, so
 * also ten times the project-level series the store and its caches hold). Each backfill runs
 * in a fresh process, so the figure is that backfill's own peak; the simulator runs in
 * another process. Nothing is held per update after its commit, so the first two should be
 * close; the third adds what the extra series hold.
 */
export const memorySuite: BenchSuite = {
  name: 'memory',
  description: 'peak RSS of a first backfill: the issue-7 history vs ten times that history',
  async groups() {
    const projects = ISSUE_SCALE.projectsPerOrg ?? 4;
    const updates = ISSUE_SCALE.updatesPerStack ?? 19;
    const [one, longer, ten] = await Promise.all([
      startBenchServers({ token: BENCH_TOKEN, scale: ISSUE_SCALE }),
      startBenchServers({ token: BENCH_TOKEN, scale: { ...ISSUE_SCALE, updatesPerStack: updates * 10 } }),
      startBenchServers({ token: BENCH_TOKEN, scale: { ...ISSUE_SCALE, projectsPerOrg: projects * 10 } }),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
    let runs = 0;

    const backfill = async (servers: BenchServers): Promise<number> => {
      const statePath = join(dir, `state-${runs++}.db`);
      const job = { url: servers.url, collectorUrl: servers.collectorUrl, orgs: servers.orgs, statePath };
      const { stdout } = await run(process.execPath, ['--import', 'tsx', ENTRY, JSON.stringify(job)], { maxBuffer: 1 << 20 });
      const out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { result: string; exported: number; peakRssBytes: number };
      rmSync(statePath, { force: true });
      if (out.result !== 'success' || out.exported !== servers.updates) {
        throw new Error(`the backfill process exported ${out.exported} of ${servers.updates} updates (${out.result})`);
      }
      return out.peakRssBytes;
    };

    const baseline = `1x: ${one.stacks} stacks, ${one.updates} updates, ${one.events} events`;
    return [
      {
        title: 'peak RSS of the exporter process during a first backfill',
        notes: ['each call is a fresh `node --import tsx` process (the tsx loader is part of both figures)'],
        measure: 'peak-rss',
        iterations: 1,
        warmup: 0,
        cases: [
          { name: baseline, items: one.updates, unit: 'updates', fn: () => backfill(one) },
          { name: `10x updates: ${longer.stacks} stacks, ${longer.updates} updates, ${longer.events} events`, items: longer.updates, unit: 'updates', fn: () => backfill(longer), baseline },
          { name: `10x stacks: ${ten.stacks} stacks, ${ten.updates} updates, ${ten.events} events`, items: ten.updates, unit: 'updates', fn: () => backfill(ten), baseline },
        ],
        done: async () => {
          await Promise.all([one.close(), longer.close(), ten.close()]);
          rmSync(dir, { recursive: true, force: true });
        },
      },
    ];
  },
};
