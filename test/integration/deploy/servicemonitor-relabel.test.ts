import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/e2e.js';
import { eventually, freePort, requireTool, spawnProcess, type Spawned } from '../../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ready = requireTool('kubectl') && requireTool('prometheus');

interface Relabeling {
  sourceLabels?: string[];
  regex?: string;
  targetLabel?: string;
  replacement?: string;
  action?: string;
}

/** The ServiceMonitor's metricRelabelings, as the Prometheus Operator writes them into prometheus.yml. */
function metricRelabelConfigs(): Record<string, unknown>[] {
  const r = spawnSync('kubectl', ['kustomize', 'deploy/kubernetes/overlays/postgres-ha'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const monitor = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as { kind: string; spec: { endpoints: { metricRelabelings: Relabeling[] }[] } })
    .find((d) => d.kind === 'ServiceMonitor')!;
  return monitor.spec.endpoints[0]!.metricRelabelings.map((m) => ({
    ...(m.sourceLabels ? { source_labels: m.sourceLabels } : {}),
    ...(m.regex !== undefined ? { regex: m.regex } : {}),
    ...(m.targetLabel !== undefined ? { target_label: m.targetLabel } : {}),
    ...(m.replacement !== undefined ? { replacement: m.replacement } : {}),
    ...(m.action !== undefined ? { action: m.action } : {}),
  }));
}

/** A replica's /metrics: the leader serves pulumi_updates_total, every replica its self-metrics. */
function replicaServer(): { server: Server; setLeader(leader: boolean, updates?: number): void } {
  let body = '';
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(body);
  });
  return {
    server,
    setLeader(leader, updates = 0) {
      body = `pulumi_exporter_leader ${leader ? 1 : 0}\n` + (leader ? `pulumi_updates_total{org="acme",kind="update"} ${updates}\n` : '');
    },
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A real Prometheus scrapes two replicas with the overlay's ServiceMonitor relabelings. When
 * leadership moves from one to the other, pulumi_updates_total stays one series (no pod or
 * instance label) and continues; the self-metrics stay per pod.
 */
describe.runIf(ready)('the ServiceMonitor relabelings on a real Prometheus', () => {
  const tmp = tempDir('pue-relabel-');
  const a = replicaServer();
  const b = replicaServer();
  let prometheus: Spawned;
  let promUrl: string;

  beforeAll(async () => {
    a.setLeader(true, 5);
    b.setLeader(false);
    const targets = [
      { targets: [await listen(a.server)], labels: { pod: 'exporter-a' } },
      { targets: [await listen(b.server)], labels: { pod: 'exporter-b' } },
    ];
    const config = {
      global: { scrape_interval: '1s' },
      scrape_configs: [{ job_name: 'pulumi-update-exporter', static_configs: targets, metric_relabel_configs: metricRelabelConfigs() }],
    };
    writeFileSync(`${tmp.dir}/prometheus.yml`, stringify(config));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawnProcess('prometheus', [
      `--config.file=${tmp.dir}/prometheus.yml`,
      `--storage.tsdb.path=${tmp.dir}/tsdb`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    a.server.close();
    b.server.close();
    tmp.cleanup();
  });

  async function series(match: string): Promise<Record<string, string>[]> {
    const res = await fetch(`${promUrl}/api/v1/series?match[]=${encodeURIComponent(match)}`);
    if (!res.ok) throw new Error(`series answered ${res.status}`);
    return ((await res.json()) as { data: Record<string, string>[] }).data;
  }

  async function instant(query: string): Promise<number | undefined> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
    if (!res.ok) return undefined;
    const v = ((await res.json()) as { data: { result: { value: [number, string] }[] } }).data.result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  }

  it('keeps one pulumi_* series across a failover and one self-metric series per pod', async () => {
    await eventually(async () => ((await instant('pulumi_updates_total')) === 5 ? true : undefined), 30_000, `a first scrape (${prometheus.output().slice(-400)})`);
    // Failover: b becomes leader and serves the same counter, continued from the shared store.
    a.setLeader(false);
    b.setLeader(true, 7);
    await eventually(async () => ((await instant('pulumi_updates_total')) === 7 ? true : undefined), 30_000, 'the new leader scraped');
    const updates = await series('pulumi_updates_total');
    expect(updates).toEqual([{ __name__: 'pulumi_updates_total', job: 'pulumi-update-exporter', org: 'acme', kind: 'update' }]);
    const leaders = await series('pulumi_exporter_leader');
    expect(leaders.map((s) => s['pod']).sort()).toEqual(['exporter-a', 'exporter-b']);
    expect(leaders.every((s) => s['instance'] !== undefined && s['__tmp_self_metric'] === undefined)).toBe(true);
    expect(await instant('resets(pulumi_updates_total[1m])')).toBe(0);
  }, 90_000);
});
