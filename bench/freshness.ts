import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { defaultConfig } from '../src/config/schema.js';
import { traceIdFor } from '../src/conversion/trace-ids.js';
import { stackKey } from '../src/domain/stack.js';
import { silentLogger } from '../src/logging/logger.js';
import { startSimulator, type SimUpdateEvent } from '../src/simulator/simulator.js';
import { parseExposition } from '../test/helpers/exposition.js';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import type { BenchSuite } from './run.js';

/*
 * Freshness: how long after an update ends its trace root reaches the collector and its
 * metrics show in a scrape, over many live updates, with webhooks off (only the poll cycle
 * finds it: bounded by poll.intervalSeconds) and on (the simulator delivers signed webhooks
 * to the exporter). Both runs use the exporter's defaults (60 s poll interval, following of
 * running updates every 5 s) and the same seed, so the same stream of updates; the
 * webhooks-off run is the baseline, measured in the same run.
 *
 * An update's end is the wall-clock moment the simulator marks it finished (its history shows
 * the result from then on; the live simulator's clock follows the wall clock). The trace root's
 * arrival is when the OTLP receiver had the request carrying it; the metrics' is the first
 * scrape of /metrics (every 50 ms) whose pulumi_updates_total for the stack counts the update.
 * Previews are not exported, so they are not measured.
 */

const TOKEN = 'bench-token';
const SCRAPE_EVERY_MS = 50;
const UPDATES = Number(process.env['BENCH_FRESHNESS_UPDATES'] ?? 100);

interface Measured {
  readonly traceMs: number[];
  readonly metricsMs: number[];
  readonly syncs: string;
  /** [start, end] of each poll cycle that ended while updates were measured, Unix ms. */
  readonly cycles: Array<[number, number]>;
}

async function measure(webhooks: boolean): Promise<Measured> {
  const secret = randomBytes(24).toString('hex');
  const sim = await startSimulator({
    seed: 11,
    host: '127.0.0.1',
    port: 0,
    acceptedToken: TOKEN,
    fixtures: false,
    scale: { orgs: 1, projectsPerOrg: 4, stacksPerProject: 5, updatesPerStack: 2, resourcesPerStack: 10 },
    live: { intervalMs: 250 },
  });
  const receiver = await startOtlpReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'bench-freshness-'));
  const orgs = [...new Set(sim.truth().stacks.map((s) => s.org))];
  const config = defaultConfig({
    pulumi: { backendUrl: sim.url, accessToken: TOKEN, orgs: orgs.map((name) => ({ name })) },
    server: { host: '127.0.0.1', port: 0 },
    state: { path: join(dir, 'state.db') },
    poll: { backfillDays: 0, initialJitterSeconds: 0 },
    traces: { exporter: 'otlp', endpoint: receiver.url },
    webhooks: webhooks ? { secret } : { enabled: false },
    log: { level: 'silent' },
  });
  const app = createApp(config, silentLogger());
  let scraping = true;
  try {
    await app.start();
    const deadline = Date.now() + 120_000;
    while (app.lastPoll() === undefined) {
      if (Date.now() > deadline) throw new Error('the first poll cycle did not finish within 2 minutes');
      await new Promise((r) => setTimeout(r, 50));
    }
    if (webhooks) sim.webhooks.setTarget({ url: app.webhookUrl()!, secret });

    // Updates of a stack export oldest first, so the k-th update of a stack that finishes from
    // now on is counted once pulumi_updates_total of the stack reaches (finished before) + k.
    const finishedBefore = new Map(sim.truth().stacks.map((s) => [stackKey(s), s.updates.filter((u) => u.result !== 'in-progress').length]));
    const measured: Array<{ key: string; traceId: string; endMs: number; target: number; metricsAtMs?: number }> = [];
    const unsubscribe = sim.onUpdate((e: SimUpdateEvent) => {
      if (e.phase !== 'finished' || e.isPreview || measured.length >= UPDATES) return;
      const key = stackKey(e.stack);
      const target = (finishedBefore.get(key) ?? 0) + measured.filter((m) => m.key === key).length + 1;
      measured.push({ key, traceId: traceIdFor(e.stack, e.updateId), endMs: e.atMs, target });
    });

    const metricsUrl = `${app.httpUrl()!}/metrics`;
    const scrapeLoop = (async () => {
      while (scraping) {
        const body = await (await fetch(metricsUrl)).text();
        const seenAt = Date.now();
        const counts = new Map<string, number>();
        for (const s of parseExposition(body)) {
          if (s.name !== 'pulumi_updates_total') continue;
          const key = `${s.labels['org']}/${s.labels['project']}/${s.labels['stack']}`;
          counts.set(key, (counts.get(key) ?? 0) + s.value);
        }
        for (const m of measured) if (m.metricsAtMs === undefined && (counts.get(m.key) ?? 0) >= m.target) m.metricsAtMs = seenAt;
        await new Promise((r) => setTimeout(r, SCRAPE_EVERY_MS));
      }
    })();

    const rootArrival = (): Map<string, number> => {
      const first = new Map<string, number>();
      for (const r of receiver.requests) {
        if (r.status !== 200) continue;
        for (const span of r.spans) if (span.parentSpanId === '' && !first.has(span.traceId)) first.set(span.traceId, r.receivedAtMs);
      }
      return first;
    };
    const done = (): boolean => {
      if (measured.length < UPDATES) return false;
      const roots = rootArrival();
      return measured.every((m) => m.metricsAtMs !== undefined && roots.has(m.traceId));
    };
    const limit = Date.now() + UPDATES * 10_000 + 2 * config.poll.intervalSeconds * 1000;
    const cycles: Array<[number, number]> = [];
    while (!done()) {
      const last = app.lastPoll();
      if (last !== undefined && cycles.at(-1)?.[1] !== last.finishedAtMs) cycles.push([last.finishedAtMs - last.durationSeconds * 1000, last.finishedAtMs]);
      if (Date.now() > limit) {
        const roots = rootArrival();
        const missing = measured.filter((m) => m.metricsAtMs === undefined || !roots.has(m.traceId)).length;
        throw new Error(`${missing} of ${measured.length} measured updates were still not exported (webhooks ${webhooks ? 'on' : 'off'})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    unsubscribe();
    scraping = false;
    await scrapeLoop;
    const roots = rootArrival();
    const text = await (await fetch(metricsUrl)).text();
    const syncs = parseExposition(text)
      .filter((s) => s.name === 'pulumi_exporter_webhook_syncs_total' && s.value > 0)
      .map((s) => `${s.labels['result']} ${s.value}`)
      .join(', ');
    return {
      traceMs: measured.map((m) => roots.get(m.traceId)! - m.endMs),
      metricsMs: measured.map((m) => m.metricsAtMs! - m.endMs),
      syncs: syncs === '' ? 'none' : syncs,
      cycles: cycles.slice(1),
    };
  } finally {
    scraping = false;
    await app.stop();
    await sim.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const freshnessSuite: BenchSuite = {
  name: 'freshness',
  description: `update end -> trace root exported and metrics scraped, over ${UPDATES} live updates, webhooks off vs on (60 s poll interval)`,
  groups() {
    const runs = new Map<boolean, Promise<Measured>>();
    const run = (webhooks: boolean): Promise<Measured> => {
      let r = runs.get(webhooks);
      if (r === undefined) {
        r = measure(webhooks);
        runs.set(webhooks, r);
      }
      return r;
    };
    const off = 'trace root, webhooks off';
    const offMetrics = 'metrics, webhooks off';
    return [
      {
        title: `freshness over ${UPDATES} live updates per run (simulator live mode, 20 stacks, poll.intervalSeconds 60)`,
        notes: [
          'simulator, OTLP receiver and exporter in this process; SQLite state in a file; webhooks off runs first, then on, same seed',
          `metrics: the first /metrics scrape (every ${SCRAPE_EVERY_MS} ms) that counts the update; trace: when the receiver got its root span`,
          'set BENCH_FRESHNESS_UPDATES to change the number of updates',
        ],
        measure: 'latency',
        cases: [
          { name: off, items: UPDATES, unit: 'updates', fn: async () => (await run(false)).traceMs },
          { name: 'trace root, webhooks on', items: UPDATES, unit: 'updates', fn: async () => (await run(true)).traceMs, baseline: off },
          { name: offMetrics, items: UPDATES, unit: 'updates', fn: async () => (await run(false)).metricsMs },
          { name: 'metrics, webhooks on', items: UPDATES, unit: 'updates', fn: async () => (await run(true)).metricsMs, baseline: offMetrics },
        ],
        done: async () => {
          for (const [webhooks, r] of runs) {
            const { syncs, cycles } = await r;
            const durations = cycles.map(([start, end]) => `${((end - start) / 1000).toFixed(1)} s`).join(', ');
            console.log(`  webhooks ${webhooks ? 'on' : 'off'}: ${cycles.length} poll cycle(s) while measuring (${durations || 'none'}); webhook-triggered syncs: ${syncs}`);
          }
        },
      },
    ];
  },
};
