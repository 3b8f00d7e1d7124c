import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { startSimulator, type RunningSimulator } from '../src/simulator/simulator.js';
import type { SimulatorScale } from '../src/simulator/sim-world.js';

/*
 * Child-process entry (forked by servers.ts): the Pulumi Cloud simulator and a minimal
 * OTLP/HTTP collector that drains each request and answers 200. They run in their own
 * process so that the benchmark's process measures the exporter, not the servers.
 */

export interface ServersOptions {
  readonly token: string;
  readonly scale: Partial<SimulatorScale>;
  readonly stackPageSize?: number;
}

export interface ServersReady {
  readonly type: 'ready';
  readonly url: string;
  readonly collectorUrl: string;
  readonly orgs: string[];
  readonly stacks: number;
  /** Completed history updates (what a backfill exports). */
  readonly updates: number;
  /** Engine events of those updates. */
  readonly events: number;
  readonly generationMs: number;
}

export interface ServersStats {
  readonly type: 'stats';
  readonly total: number;
  readonly byEndpoint: Record<string, number>;
  readonly collectorRequests: number;
}

async function startCollector(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests += 1;
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': '0' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServersOptions;
  const t = performance.now();
  const sim: RunningSimulator = await startSimulator({
    seed: 42,
    host: '127.0.0.1',
    port: 0,
    acceptedToken: options.token,
    scale: options.scale,
    ...(options.stackPageSize === undefined ? {} : { stackPageSize: options.stackPageSize }),
  });
  const generationMs = performance.now() - t;
  const collector = await startCollector();
  const truth = sim.truth();
  let updates = 0;
  let events = 0;
  for (const s of truth.stacks) {
    for (const u of s.updates) {
      if (u.result === 'in-progress') continue;
      updates += 1;
      events += u.eventCount;
    }
  }
  const ready: ServersReady = {
    type: 'ready',
    url: sim.url,
    collectorUrl: collector.url,
    orgs: [...new Set(truth.stacks.map((s) => s.org))],
    stacks: truth.stacks.length,
    updates,
    events,
    generationMs,
  };
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stats') {
      const stats: ServersStats = { type: 'stats', ...sim.stats(), collectorRequests: collector.requests() };
      sim.resetStats();
      process.send?.(stats);
    } else if (msg.type === 'stop') {
      void Promise.all([sim.close(), collector.close()]).then(() => process.disconnect());
    }
  });
  process.on('disconnect', () => {
    void Promise.all([sim.close(), collector.close()]);
  });
  process.send?.(ready);
}

await main();
