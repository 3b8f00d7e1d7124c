import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { eventually } from '../../helpers/processes.js';
import { orgsOf, startTestSimulator, tempDir, TEST_TOKEN } from '../../helpers/e2e.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

function startCli(args: string[], env: Record<string, string>): Running {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PULUMI_') && !k.startsWith('EXPORTER_') && !k.startsWith('OTEL_')) clean[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { ...clean, ...env } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() }));
  });
  return { child, output: () => output, exited };
}

describe('signals', () => {
  let sim: RunningSimulator;
  const tmp = tempDir('pue-signals-');

  beforeAll(async () => {
    // Every engine-events page takes 1.5 s, so a backfill is still running when the signal comes.
    sim = await startTestSimulator({ seed: 3, faults: [{ kind: 'slow', endpoint: 'engineEvents', delayMs: 1_500 }] });
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  function onceEnv(state: string): Record<string, string> {
    return {
      PULUMI_BACKEND_URL: sim.url,
      PULUMI_ACCESS_TOKEN: TEST_TOKEN,
      EXPORTER_ORGS: orgsOf(sim.truth()).join(','),
      EXPORTER_STATE: `${tmp.dir}/${state}`,
      EXPORTER_BACKFILL_DAYS: '3650',
      OTEL_TRACES_EXPORTER: 'none',
      EXPORTER_LOG_LEVEL: 'info',
    };
  }

  async function untilReading(run: Running): Promise<void> {
    await eventually(async () => (sim.stats().byEndpoint.engineEvents > 0 ? true : undefined), 15_000, 'an engine-events read');
    expect(run.child.exitCode).toBeNull();
  }

  it('stops `once` gracefully on SIGTERM within the time of one page read, with exit status 143', async () => {
    sim.resetStats();
    const run = startCli(['once'], onceEnv('term.db'));
    await untilReading(run);
    const sentAt = Date.now();
    run.child.kill('SIGTERM');
    const exit = await run.exited;
    expect(exit.signal).toBeNull();
    expect(exit.code).toBe(143);
    expect(exit.atMs - sentAt).toBeLessThan(8_000);
    expect(run.output()).toContain('stopping before the cycle completed');
    expect(run.output()).toContain('"signal":"SIGTERM"');
    expect(run.output()).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('logs and ignores SIGHUP, keeping `once` running until SIGINT stops it with exit status 130', async () => {
    sim.resetStats();
    const run = startCli(['once'], onceEnv('hup.db'));
    await untilReading(run);
    run.child.kill('SIGHUP');
    await eventually(async () => (run.output().includes('SIGHUP ignored') ? true : undefined), 5_000, 'the SIGHUP log line');
    expect(run.child.exitCode).toBeNull();
    expect(run.child.signalCode).toBeNull();
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(130);
    expect(run.output()).toContain('"signal":"SIGINT"');
  }, 30_000);

  it('keeps `demo` running through SIGHUP (a closed terminal) and stops it on SIGTERM with exit status 0', async () => {
    const demo = startCli(['demo', '--state', `${tmp.dir}/demo.db`, '--live-interval-ms', '1000'], {
      EXPORTER_PORT: '0',
      OTEL_TRACES_EXPORTER: 'none',
      EXPORTER_LOG_LEVEL: 'silent',
    });
    await eventually(async () => (demo.output().includes('Prometheus metrics') ? true : undefined), 20_000, 'the demo URLs');
    demo.child.kill('SIGHUP');
    await eventually(async () => (demo.output().includes('SIGHUP ignored') ? true : undefined), 5_000, 'the SIGHUP line');
    expect(demo.child.exitCode).toBeNull();
    expect(demo.child.signalCode).toBeNull();
    demo.child.kill('SIGTERM');
    const exit = await demo.exited;
    expect(exit.signal).toBeNull();
    expect(exit.code).toBe(0);
  }, 40_000);

  it('refuses a second `once` on a state file in use, with STATE_LOCKED and exit status 1, leaving the first running', async () => {
    sim.resetStats();
    const first = startCli(['once'], onceEnv('shared.db'));
    await untilReading(first);
    const second = startCli(['once'], onceEnv('shared.db'));
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.output()).toContain('STATE_LOCKED: state file');
    expect(second.output()).toContain('is in use by another process; only one exporter may use a SQLite state file');
    expect(first.child.exitCode).toBeNull();
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(143);
  }, 30_000);
});
