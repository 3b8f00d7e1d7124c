import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { createApp } from './app.js';
import { loadConfig } from './config/load-config.js';
import type { Config } from './config/schema.js';
import { createLogger } from './logging/logger.js';
import { startSimulator } from './simulator/simulator.js';

const DEMO_TOKEN = 'demo-token';

/** True when something accepts TCP connections on host:port within timeoutMs. */
function listening(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface RunningDemo {
  stop(): Promise<void>;
}

/**
 * `demo`: the simulator in live mode plus the exporter pointed at it, with a fresh SQLite
 * state file of its own (`--state`, default ./data/demo.db; the simulator's data is
 * regenerated each run, so old state would not match). EXPORTER_STATE is ignored on purpose:
 * the demo must never delete the state of a real installation.
 */
export interface DemoOptions {
  readonly seed: string;
  readonly state: string;
  readonly simulatorPort: string;
  readonly liveIntervalMs: string;
  /** A config file for everything the demo does not set itself (backend, token, orgs, state). */
  readonly configPath?: string;
}

export async function startDemo(
  values: DemoOptions,
  env: Readonly<Record<string, string | undefined>>,
  out: (line: string) => void,
): Promise<RunningDemo> {
  const sim = await startSimulator({
    seed: Number(values.seed),
    port: Number(values.simulatorPort),
    host: '127.0.0.1',
    acceptedToken: DEMO_TOKEN,
    live: { intervalMs: Number(values.liveIntervalMs) },
  });
  const orgs = [...new Set(sim.truth().stacks.map((s) => s.org))];
  const statePath = values.state;
  if (statePath !== ':memory:') {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${statePath}${suffix}`, { force: true });
  }
  const otelConfigured = env['OTEL_TRACES_EXPORTER'] !== undefined || env['OTEL_EXPORTER_OTLP_ENDPOINT'] !== undefined || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] !== undefined;
  const collector = otelConfigured || (await listening('127.0.0.1', 4318, 300));
  // The simulator signs its webhook deliveries with this; the exporter checks them.
  const webhookSecret = randomBytes(24).toString('hex');
  let config: Config;
  try {
    config = loadConfig({
      ...(values.configPath ? { configPath: values.configPath } : {}),
      env: {
        ...env,
        PULUMI_BACKEND_URL: sim.url,
        PULUMI_ACCESS_TOKEN: DEMO_TOKEN,
        PULUMI_ACCESS_TOKEN_FILE: undefined,
        EXPORTER_ORGS: orgs.join(','),
        EXPORTER_STATE: statePath,
        EXPORTER_POLL_INTERVAL_SECONDS: env['EXPORTER_POLL_INTERVAL_SECONDS'] ?? '5',
        EXPORTER_BACKFILL_DAYS: '0',
        EXPORTER_WEBHOOK_SECRET: webhookSecret,
        EXPORTER_WEBHOOK_SECRET_FILE: undefined,
        ...(collector ? {} : { OTEL_TRACES_EXPORTER: 'none' }),
        // Jaeger's UI on its default port, as the compose quickstart runs it.
        EXPORTER_TRACE_LINK_TEMPLATE: env['EXPORTER_TRACE_LINK_TEMPLATE'] ?? (collector ? 'http://localhost:16686/trace/{traceId}' : undefined),
      },
    });
  } catch (err) {
    await sim.close();
    throw err;
  }
  const logger = createLogger({ level: config.log.level });
  const app = createApp(
    {
      ...config,
      server: { ...config.server, host: env['EXPORTER_HOST'] ?? '127.0.0.1' },
      poll: { ...config.poll, initialJitterSeconds: 0 },
    },
    logger,
  );
  try {
    await app.start();
  } catch (err) {
    await app.stop();
    await sim.close();
    throw err;
  }
  const url = (app.httpUrl() ?? '').replace('//0.0.0.0:', '//localhost:');
  const webhookUrl = app.webhookUrl()?.replace('//0.0.0.0:', '//127.0.0.1:');
  if (webhookUrl !== undefined) sim.webhooks.setTarget({ url: webhookUrl, secret: webhookSecret });
  out('');
  out('pulumi-update-exporter demo is running');
  out(`  status page             ${url}/   (recent updates with links to their traces; JSON at ${url}/status.json)`);
  out(`  Prometheus metrics      ${url}/metrics`);
  out(`  readiness               ${url}/readyz`);
  out(`  Pulumi Cloud simulator  ${sim.url}/api/user/stacks?organization=${orgs[0] ?? ''}  (token: ${DEMO_TOKEN})`);
  out(
    webhookUrl === undefined
      ? '  webhooks                off (webhooks.enabled is false): updates appear at the next poll'
      : `  webhooks                the simulator delivers signed webhooks to ${webhookUrl}: updates appear within a second`,
  );
  out(
    collector
      ? `  traces                  OTLP to ${config.traces.endpoint} (open your Jaeger/Tempo UI)`
      : '  traces                  off: nothing listens on localhost:4318 (start an OTLP collector or set OTEL_TRACES_EXPORTER=console)',
  );
  out('Press Ctrl+C to stop.');
  out('');
  return {
    async stop() {
      await app.stop();
      await sim.close();
      logger.flush();
    },
  };
}
