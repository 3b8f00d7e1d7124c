import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load-config.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { requireTool } from '../../helpers/processes.js';

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

describe('the Kubernetes config file', () => {
  it('is a valid exporter configuration', () => {
    const config = loadConfig({ configPath: `${ROOT}deploy/kubernetes/config.yaml`, env: {} });
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
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: number }>; readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } }; env: Array<{ name: string }> }> } } };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    expect(container.ports[0]!.containerPort).toBe(defaultConfig().server.port);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.env.map((e) => e.name)).toContain('PULUMI_ACCESS_TOKEN_FILE');
  });
});

interface Rendered {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

describe.runIf(requireTool('kubectl'))('Kubernetes overlay for several replicas on PostgreSQL', () => {
  const rendered = (): Rendered[] => {
    const r = run('kubectl', ['kustomize', 'deploy/kubernetes-postgres']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return parseAllDocuments(r.stdout).map((d) => d.toJS() as Rendered);
  };

  it('runs at least two replicas with the state URL from a Secret, no volume for state and no PVC', () => {
    const docs = rendered();
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor']);
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
