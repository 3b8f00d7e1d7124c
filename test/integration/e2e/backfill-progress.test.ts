import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { createLogger } from '../../../src/logging/logger.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { parseExposition, sumOf } from '../../helpers/exposition.js';

interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function captureLines(): { destination: Writable; lines: () => LogLine[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    destination,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as LogLine),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function pendingGauge(url: string): Promise<number> {
  const body = await (await fetch(`${url}/metrics`)).text();
  return sumOf(parseExposition(body), 'pulumi_exporter_backfill_stacks_pending');
}

/**
 * A first run over an organization large enough that reading the histories takes many
 * ticks of the progress timer. The client's rate limit paces the run (about 250 requests at
 * 60 per second), so it lasts a few seconds however fast the machine is.
 */
describe('first-run progress on a large simulated organization', () => {
  let sim: RunningSimulator;
  let app: App;

  it('never claims to be nearly done while most stacks are unread, and the pending-stacks gauge falls to 0', async () => {
    sim = await startTestSimulator({
      fixtures: false,
      scale: { orgs: 2, projectsPerOrg: 4, stacksPerProject: 10, updatesPerStack: 2, resourcesPerStack: 2 },
    });
    cleanups.push(() => sim.close());
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const capture = captureLines();
    const config = configFor(sim, join(tmp.dir, 'state.db'), {
      pulumi: { requestsPerSecond: 60 },
      poll: { progressLogIntervalSeconds: 0.1 },
    });
    app = createApp(config, createLogger({ level: 'info', destination: capture.destination }), { http: true });
    cleanups.push(() => app.stop());
    const truth = sim.truth();
    const stacksWithHistory = truth.stacks.filter((s) => s.lastUpdate !== undefined).length;
    const terminalUpdates = truth.stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);

    await app.start();
    const url = app.httpUrl()!;
    const gauge: number[] = [];
    let midRunStatus: Record<string, unknown> | undefined;
    let readyDuringRun = false;
    while (app.lastPoll() === undefined) {
      gauge.push(await pendingGauge(url));
      if (midRunStatus === undefined && gauge.at(-1)! > 0) {
        midRunStatus = (await (await fetch(`${url}/`, { headers: { accept: 'application/json' } })).json()) as Record<string, unknown>;
        readyDuringRun = (await fetch(`${url}/readyz`)).status === 200;
      }
      await sleep(50);
    }
    gauge.push(await pendingGauge(url));

    const lines = capture.lines();
    const progress = lines.filter((l) => l.msg.startsWith('backfill progress:') && l['phase'] === 'reading');
    const last = lines.at(-1)!;
    expect(app.lastPoll()!.result).toBe('success');
    expect(last.msg).toMatch(new RegExp(`^first run finished in \\d+ s: ${terminalUpdates} updates and \\d+ events exported from ${stacksWithHistory} stacks$`));
    expect(last['events']).toBeGreaterThan(terminalUpdates);
    const endMs = last.time;

    // Discovery spans several ticks of the timer.
    const discovering = progress.filter((l) => (l['stacksPending'] as number) > 0);
    expect(discovering.length).toBeGreaterThanOrEqual(5);
    // Every line with an ETA: at least the time the run still needed, minus a tolerance of
    // a third of it and one second (the estimate assumes unread stacks hold as many updates
    // as those read so far, which the simulator's random histories do not exactly).
    const report = progress.map((l) => ({
      left: (endMs - l.time) / 1000,
      eta: l['etaSeconds'] as number | undefined,
      pending: l['stacksPending'] as number,
    }));
    for (const r of report) {
      if (r.eta === undefined) continue;
      expect(r.eta, JSON.stringify(report)).toBeGreaterThanOrEqual((r.left * 2) / 3 - 1);
    }
    // An ETA is missing only at the start, until the first update or stack is done.
    const firstEta = report.findIndex((r) => r.eta !== undefined);
    expect(report.slice(firstEta).every((r) => r.eta !== undefined)).toBe(true);
    expect(firstEta).toBeLessThanOrEqual(report.length / 5);

    // The gauge: 0 before listing ends, then from its peak it only falls, to 0.
    const peak = gauge.indexOf(Math.max(...gauge));
    expect(gauge[peak]).toBeGreaterThan(stacksWithHistory / 2);
    for (let i = peak + 1; i < gauge.length; i++) expect(gauge[i]).toBeLessThanOrEqual(gauge[i - 1]!);
    expect(gauge.at(-1)).toBe(0);

    // Ready as soon as the stacks are listed: scraped during the backfill, not after it.
    expect(readyDuringRun).toBe(true);
    const running = (midRunStatus!['backfill'] as { running: Record<string, unknown> }).running;
    expect(running['stacksToRead']).toBe(stacksWithHistory);
    expect(running['stacksPending']).toBeGreaterThan(0);
  }, 30_000);
});
