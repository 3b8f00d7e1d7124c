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
    const doc = parseAllDocuments(r.stdout)[0]!.toJS() as { services: Record<string, { environment?: Record<string, string> }> };
    expect(Object.keys(doc.services).sort()).toEqual(['exporter', 'grafana', 'jaeger', 'prometheus', 'simulator']);
    expect(doc.services['exporter']!.environment).toMatchObject({
      PULUMI_BACKEND_URL: 'http://simulator:8080',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
    });
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
