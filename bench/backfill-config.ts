import { defaultConfig, type Config } from '../src/config/schema.js';
import type { SimulatorScale } from '../src/simulator/sim-world.js';

/** The data set of issue 7: 40 generated stacks (+ the fixture stack), ~730 updates, ~73k engine events. */
export const ISSUE_SCALE: Partial<SimulatorScale> = { orgs: 2, projectsPerOrg: 4, stacksPerProject: 5, updatesPerStack: 19, resourcesPerStack: 40 };

export const BENCH_TOKEN = 'bench-token';

export interface BenchTarget {
  readonly url: string;
  readonly collectorUrl: string;
  readonly orgs: readonly string[];
}

/**
 * The exporter's defaults (the adaptive request limit included), except: the whole history
 * is read, there is no start-up jitter and logging is off.
 */
export function benchConfig(target: BenchTarget, statePath: string, traces: 'none' | 'otlp'): Config {
  return defaultConfig({
    pulumi: {
      backendUrl: target.url,
      accessToken: BENCH_TOKEN,
      orgs: target.orgs.map((name) => ({ name })),
    },
    state: { path: statePath },
    poll: { backfillDays: 0, initialJitterSeconds: 0 },
    traces: { exporter: traces, endpoint: target.collectorUrl },
    log: { level: 'silent' },
  });
}
