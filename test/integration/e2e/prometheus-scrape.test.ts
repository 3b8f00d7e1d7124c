import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { RunningSimulator } from '../../../src/simulator/simulator.js';
import { sumOf, parseExposition } from '../../helpers/exposition.js';
import { buildApp, configFor, startTestSimulator, tempDir } from '../../helpers/e2e.js';
import { eventually, freePort, requireTool, spawnProcess, type Spawned } from '../../helpers/processes.js';

const havePrometheus = requireTool('prometheus') && requireTool('promtool');

/** A real Prometheus server (Debian's package) scrapes the running exporter over HTTP. */
describe.runIf(havePrometheus)('scraped by a real Prometheus', () => {
  let sim: RunningSimulator;
  let app: App;
  let prometheus: Spawned;
  let promUrl: string;
  const tmp = tempDir('pue-prom-');

  beforeAll(async () => {
    sim = await startTestSimulator({ seed: 3 });
    app = buildApp(configFor(sim, `${tmp.dir}/state.db`), true);
    await app.start();
    await app.runOnce();
    const target = new URL(app.httpUrl()!).host;
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      `${tmp.dir}/prometheus.yml`,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pulumi-update-exporter\n    static_configs:\n      - targets: ['${target}']\n`,
    );
    prometheus = spawnProcess('prometheus', [
      `--config.file=${tmp.dir}/prometheus.yml`,
      `--storage.tsdb.path=${tmp.dir}/tsdb`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Prometheus then asks for OpenMetrics (gzip-encoded) and keeps the exemplars.
      '--enable-feature=exemplar-storage',
    ]);
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await app?.stop();
    await sim?.close();
    tmp.cleanup();
  });

  it('finds pulumi_updates_total equal to the ground truth through the Prometheus HTTP API', async () => {
    const expected = sim.truth().stacks.reduce((n, s) => n + s.updates.filter((u) => u.result !== 'in-progress').length, 0);
    const value = await eventually(
      async () => {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('sum(pulumi_updates_total)')}`);
        if (!res.ok) return undefined;
        const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
        const v = body.data.result[0]?.value[1];
        return v === undefined ? undefined : Number(v);
      },
      30_000,
      `Prometheus to scrape the exporter (${prometheus.output().slice(-500)})`,
    );
    expect(value).toBe(expected);
    const up = await (await fetch(`${promUrl}/api/v1/query?query=up`)).json() as { data: { result: Array<{ value: [number, string] }> } };
    expect(up.data.result[0]?.value[1]).toBe('1');
  });

  it('keeps the trace id of an exported update as an exemplar of the update duration buckets', async () => {
    const traceIds = new Set(
      sim.truth().stacks.flatMap((s) => s.updates.filter((u) => u.result !== 'in-progress').map((u) => traceIdFor(s, u.updateId))),
    );
    const now = Math.ceil(Date.now() / 1000);
    const found = await eventually(
      async () => {
        const query = encodeURIComponent('pulumi_update_duration_seconds_bucket');
        const res = await fetch(`${promUrl}/api/v1/query_exemplars?query=${query}&start=1&end=${now + 3600}`);
        if (!res.ok) return undefined;
        const body = (await res.json()) as { data: Array<{ exemplars: Array<{ labels: { trace_id?: string } }> }> };
        const ids = body.data.flatMap((series) => series.exemplars.map((e) => e.labels.trace_id ?? ''));
        return ids.length > 0 ? ids : undefined;
      },
      30_000,
      `Prometheus to store exemplars (${prometheus.output().slice(-500)})`,
    );
    expect(found.every((id) => traceIds.has(id))).toBe(true);
  });

  it('serves an exposition that promtool check metrics accepts without a remark', async () => {
    const body = await (await fetch(`${app.httpUrl()}/metrics`)).text();
    expect(sumOf(parseExposition(body), 'pulumi_updates_total')).toBeGreaterThan(0);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});
