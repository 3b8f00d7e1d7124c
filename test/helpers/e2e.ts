import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/app.js';
import { defaultConfig, type Config, type ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/logging/logger.js';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import type { SimulatorTruth } from '../../src/simulator/simulator-truth.js';
import { parseExposition, type Sample } from './exposition.js';

export const TEST_TOKEN = 'e2e-secret-token-1234';

export function tempDir(prefix = 'pue-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startTestSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  return startSimulator({ seed: 7, host: '127.0.0.1', port: 0, acceptedToken: TEST_TOKEN, ...options });
}

export function orgsOf(truth: SimulatorTruth): string[] {
  return [...new Set(truth.stacks.map((s) => s.org))];
}

/** An exporter config pointed at the simulator: whole history, fast retries, no jitter. */
export function configFor(sim: RunningSimulator, statePath: string, overrides: Partial<ConfigInput> = {}): Config {
  const base = defaultConfig({
    pulumi: {
      backendUrl: sim.url,
      accessToken: TEST_TOKEN,
      orgs: orgsOf(sim.truth()).map((name) => ({ name })),
      retryBaseDelayMillis: 10,
      retryMaxDelayMillis: 1_500,
      maxConcurrentRequests: 16,
      ...overrides.pulumi,
    },
    server: { host: '127.0.0.1', port: 0, ...overrides.server },
    state: { path: statePath, ...overrides.state },
    poll: { backfillDays: 0, initialJitterSeconds: 0, intervalSeconds: 3600, ...overrides.poll },
    traces: { exporter: 'none', ...overrides.traces },
    ...(overrides.metrics ? { metrics: overrides.metrics } : {}),
    ...(overrides.webhooks ? { webhooks: overrides.webhooks } : {}),
    ...(overrides.previews ? { previews: overrides.previews } : {}),
    log: { level: 'silent' },
  });
  return base;
}

export function buildApp(config: Config, http = false): App {
  return createApp(config, silentLogger(), { http });
}

export async function scrape(app: App): Promise<Sample[]> {
  const { body } = await app.metrics.render();
  return parseExposition(body);
}
