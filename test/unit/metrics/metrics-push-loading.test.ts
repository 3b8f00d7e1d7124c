import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Starts and stops an app in a fresh Node.js process and lists the OpenTelemetry packages
 * it loaded. They are CommonJS, so every one that was imported is in require.cache.
 */
function openTelemetryPackagesLoaded(exporter: 'none' | 'otlp'): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const { createApp } = await import('./src/app.ts');
    const { defaultConfig } = await import('./src/config/schema.ts');
    const { silentLogger } = await import('./src/logging/logger.ts');
    const config = defaultConfig({
      pulumi: { accessToken: 'unused-token', backendUrl: 'http://127.0.0.1:9' },
      state: { path: ':memory:' },
      poll: { initialJitterSeconds: 3600 },
      traces: { exporter: 'none' },
      metricsPush: { exporter: '${exporter}', endpoint: 'http://127.0.0.1:9/v1/metrics', timeoutMillis: 100 },
    });
    const app = createApp(config, silentLogger(), { http: false });
    await app.start();
    const loaded = Object.keys(createRequire(import.meta.url).cache)
      .map((file) => /@opentelemetry[\\\\/]([^\\\\/]+)/.exec(file)?.[1])
      .filter((name) => name !== undefined);
    await app.stop();
    process.stdout.write(JSON.stringify([...new Set(loaded)].sort()));
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout) as string[];
}

// @opentelemetry/sdk-metrics itself is loaded either way: otlp-transformer, which the span sink
// serializes with, imports it for its metric enums. What the push adds is the OTLP metrics
// exporters and their HTTP transport (otlp-exporter-base), and a reader with its timer.
const PUSH_ONLY = ['exporter-metrics-otlp-http', 'exporter-metrics-otlp-proto', 'otlp-exporter-base'];

describe('loading the metrics push', () => {
  it('does not load the OTLP metrics exporters while the push is off (the default)', () => {
    const loaded = openTelemetryPackagesLoaded('none');
    expect(loaded).toContain('otlp-transformer');
    expect(loaded.filter((name) => PUSH_ONLY.includes(name))).toEqual([]);
  }, 60_000);

  it('loads them when the push is on (so the check above can see them)', () => {
    expect(openTelemetryPackagesLoaded('otlp')).toEqual(expect.arrayContaining([...PUSH_ONLY, 'sdk-metrics']));
  }, 60_000);
});
