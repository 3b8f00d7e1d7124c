import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import { sumOf } from '../../helpers/exposition.js';
import { buildApp, configFor, orgsOf, scrape, startTestSimulator, tempDir, TEST_TOKEN } from '../../helpers/e2e.js';
import { startOtlpReceiver } from '../../helpers/otlp-receiver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('a crash in the middle of a backfill', () => {
  it('loses and double-counts nothing: after SIGKILL and a restart every update is counted exactly once', async () => {
    // Slow event pages stretch the backfill so the kill lands in the middle of it.
    const sim = await startTestSimulator({ seed: 11, faults: [{ kind: 'slow', endpoint: 'engineEvents', everyNth: 1, delayMs: 15 }] });
    const receiver = await startOtlpReceiver();
    const tmp = tempDir('pue-crash-');
    cleanups.push(() => tmp.cleanup(), () => sim.close(), () => receiver.close());
    const statePath = `${tmp.dir}/state.db`;
    const truth = sim.truth();
    const expected = truth.stacks.flatMap((s) => s.updates.filter((u) => u.result !== 'in-progress').map((u) => traceIdFor(s, u.updateId)));

    const configPath = `${tmp.dir}/config.yaml`;
    writeFileSync(
      configPath,
      [
        'pulumi:',
        `  backendUrl: ${sim.url}`,
        `  orgs: [${orgsOf(truth).map((o) => `{ name: ${o} }`).join(', ')}]`,
        `state: { path: ${statePath} }`,
        'poll: { backfillDays: 0, initialJitterSeconds: 0, intervalSeconds: 3600 }',
        `traces: { exporter: otlp, endpoint: ${receiver.url} }`,
        'server: { host: 127.0.0.1, port: 0 }',
        'log: { level: warn }',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('PULUMI_') && !k.startsWith('EXPORTER_') && !k.startsWith('OTEL_')) env[k] = v;
    }
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'run'], {
      cwd: ROOT,
      env: { ...env, PULUMI_ACCESS_TOKEN: TEST_TOKEN, EXPORTER_CONFIG: configPath },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });

    const roots = () => receiver.spans().filter((s) => s.parentSpanId === '');
    const deadline = Date.now() + 60_000;
    while (roots().length < expected.length / 3) {
      if (child.exitCode !== null) throw new Error(`the exporter exited early: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`the backfill did not get a third of the way in 60 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;
    const beforeRestart = new Set(roots().map((s) => s.traceId));
    expect(beforeRestart.size).toBeLessThan(expected.length);

    sim.faults.clear();
    const app = buildApp(configFor(sim, statePath, { traces: { exporter: 'otlp', endpoint: receiver.url } }));
    cleanups.push(() => app.stop());
    const result = await app.runOnce();
    expect(result.result).toBe('success');
    expect(await app.store.countExported()).toBe(expected.length);
    expect(sumOf(await scrape(app), 'pulumi_updates_total')).toBe(expected.length);

    // Every update's trace arrived; the only ones sent twice are those whose spans were
    // accepted but whose commit the kill prevented: at most one export per stack syncing at
    // once, and an export carries consecutive updates of one stack.
    const sent = roots().map((s) => s.traceId);
    expect(new Set(sent)).toEqual(new Set(expected));
    const twice = new Set(sent.filter((id, i) => sent.indexOf(id) !== i));
    const stacksSentTwice = truth.stacks
      .map((s) => s.updates.filter((u) => u.result !== 'in-progress').map((u) => twice.has(traceIdFor(s, u.updateId))))
      .filter((flags) => flags.includes(true));
    expect(stacksSentTwice.length).toBeLessThanOrEqual(configFor(sim, statePath).poll.stackConcurrency);
    for (const flags of stacksSentTwice) {
      const first = flags.indexOf(true);
      expect(flags.slice(first, flags.lastIndexOf(true) + 1).every(Boolean)).toBe(true);
    }
    expect(sent.length - expected.length).toBe(twice.size);
  }, 120_000);
});
