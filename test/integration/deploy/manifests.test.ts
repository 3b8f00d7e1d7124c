import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load-config.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { requireTool } from '../../helpers/processes.js';
import { schemaProblems } from '../../helpers/kube-schema.js';
import { PROMETHEUS_RULE_FILE, renderPrometheusRule, RULES_FILE } from '../../../scripts/render-prometheus-rule.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(requireTool('docker-compose'))('docker-compose.yml', () => {
  it('is a valid compose file whose exporter points at the simulator and an OTLP collector', () => {
    const r = run('docker-compose', ['-f', 'docker-compose.yml', 'config']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    const doc = parseAllDocuments(r.stdout)[0]!.toJS() as { services: Record<string, { environment?: Record<string, string>; profiles?: string[] }> };
    const byDefault = Object.entries(doc.services).filter(([, s]) => s.profiles === undefined);
    expect(byDefault.map(([name]) => name).sort()).toEqual(['exporter', 'grafana', 'jaeger', 'prometheus', 'simulator']);
    expect(doc.services['exporter']!.environment).toMatchObject({
      PULUMI_BACKEND_URL: 'http://simulator:8080',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
    });
  });
});

describe.runIf(requireTool('docker-compose'))('the postgres profile of docker-compose.yml', () => {
  it('runs two exporter replicas on one PostgreSQL container', () => {
    const r = run('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'postgres', 'config']);
    expect(r.status).toBe(0);
    const doc = parseAllDocuments(r.stdout)[0]!.toJS() as {
      services: Record<string, { environment?: Record<string, string>; profiles?: string[]; depends_on?: unknown }>;
    };
    const profiled = Object.entries(doc.services).filter(([, s]) => s.profiles?.includes('postgres'));
    expect(profiled.map(([name]) => name).sort()).toEqual(['exporter-replica-1', 'exporter-replica-2', 'postgres']);
    const replicas = profiled.filter(([name]) => name.startsWith('exporter-'));
    const urls = replicas.map(([, s]) => s.environment?.['EXPORTER_STATE'] ?? '');
    expect(urls[0]).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\//);
    expect(urls[1]).toBe(urls[0]);
    for (const [, s] of replicas) expect(JSON.stringify(s.depends_on)).toContain('postgres');
  });
});

describe.runIf(requireTool('docker-compose'))('the tempo profile of docker-compose.yml', () => {
  it('runs Grafana Tempo with the bundled config where Grafana\'s Tempo data source and the exporter reach it', () => {
    const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'tempo', 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, OTLP_ENDPOINT: 'http://tempo:4318' },
    });
    expect(r.status).toBe(0);
    const doc = parseAllDocuments(r.stdout)[0]!.toJS() as {
      services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; profiles?: string[]; volumes?: string[] }>;
    };
    const tempo = doc.services['tempo']!;
    expect(tempo.profiles).toEqual(['tempo']);
    expect(tempo.image).toMatch(/^grafana\/tempo:\d+\.\d+\.\d+$/);
    const configPath = tempo.command?.find((a) => a.startsWith('-config.file='))?.slice('-config.file='.length);
    const mounted = tempo.volumes?.find((v) => v.split(':')[1] === configPath)?.split(':')[0];
    expect(mounted).toBe(join(ROOT, 'deploy/tempo/tempo.yaml'));
    const config = parseAllDocuments(readFileSync(mounted!, 'utf8'))[0]!.toJS() as {
      server: { http_listen_port: number };
      distributor: { receivers: { otlp: { protocols: { http: { endpoint: string } } } } };
    };
    // The exporter's OTLP endpoint and Grafana's Tempo data source point at the ports Tempo listens on.
    expect(doc.services['exporter']!.environment!['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe(`http://tempo:${config.distributor.receivers.otlp.protocols.http.endpoint.split(':')[1]}`);
    const datasources = parseAllDocuments(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources.yml'), 'utf8'))[0]!.toJS() as {
      datasources: { type: string; url: string }[];
    };
    expect(datasources.datasources.find((d) => d.type === 'tempo')?.url).toBe(`http://tempo:${config.server.http_listen_port}`);
  });
});

describe('the Kubernetes config file', () => {
  it('is a valid exporter configuration', () => {
    const config = loadConfig({ configPath: `${ROOT}deploy/kubernetes/base/config.yaml`, env: {} });
    expect(config.state.path).toBe('/data/state.db');
    expect(config.pulumi.orgs.map((o) => o.name)).toEqual(['my-org']);
  });
});

describe.runIf(requireTool('kubectl'))('Kubernetes manifests', () => {
  it('render with kustomize into a Deployment probing /healthz and /readyz on the default port, token from a secret file', () => {
    const r = run('kubectl', ['kustomize', 'deploy/kubernetes']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; spec?: Record<string, unknown> });
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'PersistentVolumeClaim', 'Service', 'ServiceAccount']);
    type Probe = { httpGet: { path: string }; periodSeconds: number; failureThreshold?: number };
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: number }>; startupProbe: Probe; readinessProbe: Probe; livenessProbe: Probe; env: Array<{ name: string }> }> } } };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    expect(container.ports[0]!.containerPort).toBe(defaultConfig().server.port);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    // A slow start (a large state file to migrate) gets minutes before liveness may restart it.
    expect(container.startupProbe.httpGet.path).toBe('/healthz');
    expect(container.startupProbe.periodSeconds * (container.startupProbe.failureThreshold ?? 3)).toBeGreaterThanOrEqual(300);
    // A pod that is not ready yet (listing its stacks) is still scraped through the Service.
    const service = docs.find((d) => d.kind === 'Service') as unknown as { spec: { publishNotReadyAddresses?: boolean } };
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(container.env.map((e) => e.name)).toContain('PULUMI_ACCESS_TOKEN_FILE');
  });
});

interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly spec?: Record<string, unknown>;
}

/** Every directory under deploy/kubernetes that a user can `kubectl apply -k`. */
const INSTALLS = ['deploy/kubernetes', ...readdirSync(`${ROOT}deploy/kubernetes/overlays`).map((d) => `deploy/kubernetes/overlays/${d}`)];

function render(dir: string): KubeObject[] {
  const r = run('kubectl', ['kustomize', dir]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as KubeObject);
}

/** Renders the base with the given components, from a throwaway overlay inside the repository. */
function renderWithComponents(components: string[]): KubeObject[] {
  const dir = mkdtempSync(join(ROOT, '.tmp-kustomize-'));
  try {
    const rel = (p: string) => relative(dir, join(ROOT, p));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      [
        'namespace: pulumi-update-exporter',
        'resources:',
        `  - ${rel('deploy/kubernetes/base')}`,
        'components:',
        ...components.map((c) => `  - ${rel(c)}`),
        '',
      ].join('\n'),
    );
    return render(relative(ROOT, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

describe.runIf(requireTool('kubectl'))('every Kubernetes install (deploy/kubernetes and its overlays)', () => {
  it.each(INSTALLS)('%s renders objects that all validate against the Kubernetes and Prometheus Operator schemas', async (dir) => {
    const objects = render(dir);
    expect(objects.length).toBeGreaterThan(0);
    const problems = (await Promise.all(objects.map((o) => schemaProblems(o)))).flat();
    expect(problems).toEqual([]);
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('pulumi-update-exporter');
  });

  it('the schema check reports a wrong field type, a bad duration and an unknown kind', async () => {
    const wrongPort = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 'nine' }] } };
    const badInterval = { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'm' }, spec: { selector: {}, endpoints: [{ port: 'metrics', interval: 'thirty seconds' }] } };
    const unknown = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    expect((await schemaProblems(wrongPort)).join()).toMatch(/Service\/s: .*port/);
    expect((await schemaProblems(badInterval)).join()).toMatch(/ServiceMonitor\/m: .*interval/);
    expect(await schemaProblems(unknown)).toEqual(['Widget/w: no schema for example.com/v1 Widget']);
  });
});

describe.runIf(requireTool('kubectl'))('Prometheus Operator objects', () => {
  it('the prometheus-operator overlay adds a ServiceMonitor that scrapes the Service\'s metrics port at /metrics', () => {
    const objects = render('deploy/kubernetes/overlays/prometheus-operator');
    const service = objects.find((o) => o.kind === 'Service') as unknown as KubeObject & { spec: { ports: { name: string }[] } };
    const monitor = objects.find((o) => o.kind === 'ServiceMonitor') as unknown as KubeObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    };
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    expect(service.spec.ports.map((p) => p.name)).toContain('metrics');
    expect(objects.filter((o) => o.kind === 'PrometheusRule')).toHaveLength(1);
  });

  it('the pod-monitor component adds a PodMonitor that selects the exporter pods and a port their container exposes', () => {
    const objects = renderWithComponents(['deploy/kubernetes/components/pod-monitor']);
    const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { name: string }[] }[] } } };
    };
    const monitor = objects.find((o) => o.kind === 'PodMonitor') as unknown as KubeObject & {
      spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
    };
    expect(matches(monitor.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    const ports = deployment.spec.template.spec.containers.flatMap((c) => c.ports.map((p) => p.name));
    expect(monitor.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    expect(ports).toContain('metrics');
  });

  it('the PrometheusRule holds exactly the rule groups of deploy/prometheus/alerts.yml (run `npm run deploy:rules` after editing them)', () => {
    const alerts = readFileSync(`${ROOT}${RULES_FILE}`, 'utf8');
    expect(readFileSync(`${ROOT}${PROMETHEUS_RULE_FILE}`, 'utf8')).toBe(renderPrometheusRule(alerts));
    const rule = parseAllDocuments(readFileSync(`${ROOT}${PROMETHEUS_RULE_FILE}`, 'utf8'))[0]!.toJS() as { spec: { groups: unknown } };
    expect(rule.spec.groups).toEqual((parseAllDocuments(alerts)[0]!.toJS() as { groups: unknown }).groups);
  });
});

interface Rendered {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

describe.runIf(requireTool('kubectl'))('Kubernetes overlay for several replicas on PostgreSQL', () => {
  const rendered = (): Rendered[] => {
    const r = run('kubectl', ['kustomize', 'deploy/kubernetes/overlays/postgres-ha']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return parseAllDocuments(r.stdout).map((d) => d.toJS() as Rendered);
  };

  it('runs at least two replicas with the state URL from a Secret, no volume for state and no PVC', () => {
    const docs = rendered();
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: {
        replicas: number;
        strategy: { type: string };
        template: { metadata: { labels: Record<string, string> }; spec: { volumes: { name: string }[]; containers: { env: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]; volumeMounts: { mountPath: string }[] }[] } };
      };
    };
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.type).toBe('RollingUpdate');
    const container = deployment.spec.template.spec.containers[0]!;
    const state = container.env.find((e) => e.name === 'EXPORTER_STATE');
    expect(state?.valueFrom?.secretKeyRef).toEqual({ name: 'pulumi-update-exporter-postgres', key: 'url' });
    expect(deployment.spec.template.spec.volumes.map((v) => v.name)).not.toContain('state');
    expect(container.volumeMounts.map((m) => m.mountPath)).not.toContain('/data');
    const lease = container.env.find((e) => e.name === 'EXPORTER_STATE_LEASE_SECONDS') as { value?: string } | undefined;
    expect(loadConfig({ env: { EXPORTER_STATE: 'postgres://db/x', EXPORTER_STATE_LEASE_SECONDS: lease?.value } }).state.leaseSeconds).toBeGreaterThan(0);

    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget') as unknown as { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } };
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(deployment.spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
  });
});
