import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { orgsOf, startTestSimulator, tempDir, TEST_TOKEN } from '../../helpers/e2e.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PULUMI_') && !k.startsWith('EXPORTER_') && !k.startsWith('OTEL_')) clean[k] = v;
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: clean });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the pulumi-update-exporter command', () => {
  let sim: RunningSimulator;
  const tmp = tempDir('pue-cli-');

  beforeAll(async () => {
    sim = await startTestSimulator({ seed: 2 });
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('prints the trace id of an update', async () => {
    const r = await cli(['trace-id', 'acme/web/prod', 'c30c74e6-9576-4c63-95a4-4f96e7793ebb']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(traceIdFor({ org: 'acme', project: 'web', stack: 'prod' }, 'c30c74e6-9576-4c63-95a4-4f96e7793ebb'));
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses to run without a token, says what to set and mentions the demo, with exit status 2 and no stack trace', async () => {
    const r = await cli(['run'], { EXPORTER_ORGS: 'acme', EXPORTER_STATE: ':memory:' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('PULUMI_ACCESS_TOKEN');
    expect(r.stderr).toContain('demo');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports every configuration problem at once with exit status 2', async () => {
    const r = await cli(['validate'], { EXPORTER_PORT: 'eighty', EXPORTER_POLL_INTERVAL_SECONDS: '-5', PULUMI_BACKEND_URL: 'not a url' });
    expect(r.code).toBe(2);
    expect(r.stderr + r.stdout).toContain('EXPORTER_PORT');
    expect(r.stderr + r.stdout).toContain('EXPORTER_POLL_INTERVAL_SECONDS');
    expect(r.stderr + r.stdout).toMatch(/backendUrl|PULUMI_BACKEND_URL/);
  });

  it('runs one complete cycle against the simulator with `once` and exits 0', async () => {
    // The default rate limit (10 requests/s) is meant for Pulumi Cloud; the simulator takes more.
    writeFileSync(`${tmp.dir}/fast.yaml`, 'pulumi:\n  requestsPerSecond: 1000\n  retryBaseDelayMillis: 10\n');
    const r = await cli(['once', '--config', `${tmp.dir}/fast.yaml`], {
      PULUMI_BACKEND_URL: sim.url,
      PULUMI_ACCESS_TOKEN: TEST_TOKEN,
      EXPORTER_ORGS: orgsOf(sim.truth()).join(','),
      EXPORTER_STATE: `${tmp.dir}/once.db`,
      EXPORTER_BACKFILL_DAYS: '0',
      OTEL_TRACES_EXPORTER: 'none',
      EXPORTER_LOG_LEVEL: 'info',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('poll cycle finished');
  });

  it('exits non-zero with `once` when the token is wrong, without printing the token', async () => {
    const wrong = 'pul-wrong-token-abcdef123456';
    const r = await cli(['once'], {
      PULUMI_BACKEND_URL: sim.url,
      PULUMI_ACCESS_TOKEN: wrong,
      EXPORTER_ORGS: orgsOf(sim.truth()).join(','),
      EXPORTER_STATE: ':memory:',
      OTEL_TRACES_EXPORTER: 'none',
      EXPORTER_LOG_LEVEL: 'debug',
    });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('API_UNAUTHORIZED');
    expect(r.stdout + r.stderr).not.toContain(wrong);
  });
});
