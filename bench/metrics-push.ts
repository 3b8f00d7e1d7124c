import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { defaultConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/logging/logger.js';
import { ExporterMetrics } from '../src/metrics/exporter-metrics.js';
import { startMetricsPush, type MetricsPush } from '../src/metrics/otlp-metrics-push.js';
import type { BenchCase, BenchGroup, BenchSuite } from './run.js';
import { seed } from './scrape.js';

/*
 * One OTLP metrics push (metricsPush.exporter=otlp) at N stacks from the scrape suite's seeded
 * SQLite store: the MetricProducer reads every store row, builds the metric data, the real OTLP
 * exporter serializes it (protobuf, or JSON) and POSTs it to a local sink that drains the body
 * and answers 200. The baseline is what a scrape after a commit costs: ExporterMetrics.render()
 * reading and rendering every pulumi_* family again (no HTTP), in the same run.
 */

interface Sink {
  readonly url: string;
  bytes(): number;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  /** Body size of the last request. */
  let bytes = 0;
  const server: Server = createServer((req, res) => {
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    req.on('end', () => {
      bytes = received;
      const json = (req.headers['content-type'] ?? '').startsWith('application/json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/metrics`,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const closers: (() => Promise<void>)[] = [];

async function group(stacks: number): Promise<BenchGroup> {
  const seeded = await seed(stacks);
  const metrics = new ExporterMetrics({ store: seeded.store, version: 'bench', revision: 'bench' });
  const sink = await startSink();
  const push = (protocol: 'http/protobuf' | 'http/json'): MetricsPush =>
    startMetricsPush({
      // A long interval: only flush() pushes.
      config: { ...defaultConfig().metricsPush, exporter: 'otlp', endpoint: sink.url, protocol, intervalMillis: 3_600_000, timeoutMillis: 60_000 },
      store: seeded.store,
      metrics,
      isLeader: () => true,
      selfMetricsSinceMs: Date.now(),
      version: 'bench',
      logger: silentLogger(),
    });
  const protobuf = push('http/protobuf');
  const json = push('http/json');
  await protobuf.flush();
  const protobufBytes = sink.bytes();
  await json.flush();
  const jsonBytes = sink.bytes();
  const series = (await metrics.render()).body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  closers.push(async () => {
    await protobuf.shutdown();
    await json.shutdown();
    await sink.close();
    await seeded.store.close();
    rmSync(seeded.dir, { recursive: true, force: true });
  });
  const BASELINE = 'baseline: commit 1 update, then render /metrics (every pulumi_* family again)';
  const cases: BenchCase[] = [
    {
      name: BASELINE,
      items: series,
      unit: 'series',
      fn: async () => {
        await seeded.commitOne();
        return (await metrics.render()).body.length;
      },
    },
    {
      name: 'commit 1 update, then push (http/protobuf)',
      items: series,
      unit: 'series',
      fn: async () => {
        await seeded.commitOne();
        await protobuf.flush();
      },
      baseline: BASELINE,
    },
    { name: 'push, store unchanged (http/protobuf)', items: series, unit: 'series', fn: () => protobuf.flush(), baseline: BASELINE },
    { name: 'push, store unchanged (http/json)', items: series, unit: 'series', fn: () => json.flush(), baseline: BASELINE },
  ];
  return {
    title: `${stacks.toLocaleString('en-US')} stacks: ${series.toLocaleString('en-US')} /metrics series; one push is ${(protobufBytes / 2 ** 20).toFixed(1)} MiB protobuf, ${(jsonBytes / 2 ** 20).toFixed(1)} MiB JSON`,
    notes: ['every push reads and sends every series (cumulative values); the self-metrics are included'],
    cases,
  };
}

export const metricsPushSuite: BenchSuite = {
  name: 'metrics-push',
  description: 'one OTLP metrics push at 10,000 stacks (BENCH_PUSH_STACKS) against a /metrics render after a commit',
  async groups() {
    const sizes = (process.env['BENCH_PUSH_STACKS'] ?? '10000').split(',').map(Number).filter((n) => n > 0);
    const out: BenchGroup[] = [];
    for (const stacks of sizes) out.push(await group(stacks));
    return out;
  },
  async close() {
    for (const close of closers.splice(0)) await close();
  },
};
