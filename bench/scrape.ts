import { get } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import type { ResourceOperation } from '../src/domain/trace.js';
import { createHttpApp } from '../src/http/http-app.js';
import { startHttpServer, type RunningHttpServer } from '../src/http/http-server.js';
import { silentLogger } from '../src/logging/logger.js';
import { METRIC_DEFINITIONS } from '../src/metrics/definitions.js';
import { ExporterMetrics } from '../src/metrics/exporter-metrics.js';
import { storeSamples, type Sample } from '../src/metrics/store-samples.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../src/metrics/update-deltas.js';
import { SqliteStateStore } from '../src/state/sqlite-store.js';
import type { StateStore } from '../src/state/state-store.js';
import type { BenchCase, BenchGroup, BenchSuite } from './run.js';

/*
 * GET /metrics through the real HTTP app and a real SQLite store seeded with N stacks
 * (issue 7's shape: 2 updates per stack, 5 resource steps per update), plain and gzip.
 * "store unchanged" scrapes reuse the rendered store part; "after a commit" cases commit one
 * more update first, so the scrape reads and re-renders what that commit changed. The
 * "full read" cases scrape a second app whose store view hides readMetricsChanges (as
 * PostgreSQL does), so each of its scrapes after a commit reads and renders everything (what
 * /metrics did before incremental scrapes). The baseline renders the same store rows through
 * a prom-client Registry per scrape, as /metrics did before ADR 0003.
 */

const RESOURCE_TYPES = [
  'aws:s3/bucket:Bucket',
  'aws:iam/role:Role',
  'aws:lambda/function:Function',
  'aws:ec2/securityGroup:SecurityGroup',
  'aws:dynamodb/table:Table',
  'kubernetes:apps/v1:Deployment',
  'kubernetes:core/v1:Service',
  'random:index/randomPet:RandomPet',
  'gcp:storage/bucket:Bucket',
  'azure-native:storage:StorageAccount',
];
const STACKS_PER_PROJECT = 100;
const ORG = 'acme-corp';

export interface Seeded {
  readonly store: SqliteStateStore;
  readonly dir: string;
  readonly stacks: number;
  commitOne(): Promise<void>;
}

function stackRef(i: number): { org: string; project: string; stack: string } {
  return { org: ORG, project: `project-${String(Math.floor(i / STACKS_PER_PROJECT)).padStart(3, '0')}`, stack: `stack-${String(i).padStart(5, '0')}` };
}

function operations(i: number, version: number): ResourceOperation[] {
  return Array.from({ length: 5 }, (_, r) => ({
    urn: `urn:pulumi:s::p::t::r${r}`,
    op: version === 1 ? 'create' : r === 0 ? 'update' : 'same',
    resourceType: RESOURCE_TYPES[(i + r) % RESOURCE_TYPES.length] as string,
    result: 'succeeded' as const,
    durationSeconds: (i * 7 + r * 3 + version) % 40,
  }));
}

/** A SQLite store with issue 7's data for `stacks` stacks (also used by the metrics-push suite). */
export async function seed(stacks: number): Promise<Seeded> {
  // On tmpfs where there is one: fsync is then free, so 20,000 seeding commits take seconds
  // instead of minutes. Scrapes read through the page cache either way.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pue-bench-scrape-'));
  const store = new SqliteStateStore({ path: join(dir, 'state.db') });
  await store.migrate();
  await store.replaceOrgStacks(
    ORG,
    Array.from({ length: stacks }, (_, i) => ({ ...stackRef(i), lastUpdate: 2, resourceCount: 5 })),
    1_000,
  );
  let version = 0;
  const commit = async (i: number, v: number): Promise<void> => {
    const stack = stackRef(i);
    const startTime = 1_700_000_000 + i * 10 + v * 3_600;
    // One update in ten fails; durations spread over the buckets.
    const result = (i + v) % 10 === 0 ? 'failed' : 'succeeded';
    const endTime = startTime + 20 + ((i * 37 + v * 11) % 900);
    const updateId = `${stack.stack}-u${v}`;
    const ops = operations(i, v);
    await store.commitUpdate({
      update: { stack, updateId, kind: 'update', version: v, result, startTime, endTime },
      deltas: updateMetricDeltas({
        stack,
        updateId,
        kind: 'update',
        result,
        startTime,
        endTime,
        resourceChanges: v === 1 ? { create: 5 } : { update: 1, same: 4 },
        operations: ops,
        policyViolations: [],
        detail: DEFAULT_METRIC_DETAIL,
      }),
      exportedAtMs: endTime * 1000 + 5_000,
    });
  };
  for (let i = 0; i < stacks; i++) {
    await commit(i, 1);
    await commit(i, 2);
  }
  version = 2;
  let next = 0;
  return {
    store,
    dir,
    stacks,
    commitOne: async () => {
      version += 1;
      await commit(next, version);
      next = (next + 1) % stacks;
    },
  };
}

/** The store without readMetricsChanges: every scrape after a commit reads everything. */
function fullReadView(store: SqliteStateStore): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readMetricsChanges') return undefined;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function serve(store: StateStore): Promise<RunningHttpServer> {
  const metrics = new ExporterMetrics({ store, version: 'bench', revision: 'bench' });
  return startHttpServer(
    createHttpApp({ metrics, readiness: () => Promise.resolve({ ready: true }), status: () => Promise.resolve({ version: 'bench', generatedAt: new Date(0).toISOString(), ready: true, orgs: [], recentUpdates: [], failingStacks: [], inProgress: [] }), logger: silentLogger() }),
    { host: '127.0.0.1', port: 0 },
  );
}

/** GETs /metrics (plain) and returns the body. */
function scrapeText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${url}/metrics`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** GETs /metrics and drains the body without keeping it; resolves to the bytes received. */
function scrape(url: string, encoding: 'gzip' | 'identity'): Promise<number> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time: a pooled one may be closed by the server's keep-alive timeout between cases.
    get(`${url}/metrics`, { agent: false, headers: { 'Accept-Encoding': encoding } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The previous render path: a prom-client Registry over this scrape's samples. */
async function promClientRender(store: SqliteStateStore): Promise<string> {
  const samples = storeSamples({
    counters: await store.readCounters(),
    histograms: await store.readHistograms(),
    stacks: await store.listStacks(),
    lastUpdates: await store.readLastUpdates(),
    lastSuccesses: await store.readLastSuccesses(),
    inProgress: await store.listInProgress(),
  });
  const registry = new Registry();
  for (const def of METRIC_DEFINITIONS) {
    if (def.source === 'process') continue;
    // prom-client takes `le` as one of the labels.
    const values: readonly Sample[] = (samples.get(def.name) ?? []).map((v) => (v.le === undefined ? v : { ...v, labels: { ...v.labels, le: v.le } }));
    const family = { name: def.name, help: def.help, type: def.type, aggregator: 'sum', get: () => Promise.resolve({ name: def.name, help: def.help, type: def.type, aggregator: 'sum', values }) };
    registry.registerMetric(family as unknown as Metric);
  }
  return registry.metrics();
}

const gc = (globalThis as { gc?: () => void }).gc;
const rssMb = (): number => process.memoryUsage().rss / 2 ** 20;

/** Idle RSS (after a GC) and the highest RSS seen while `work` runs, sampled every 2 ms. */
async function rssDuring(work: () => Promise<unknown>): Promise<{ idle: number; peak: number }> {
  gc?.();
  const idle = rssMb();
  let peak = idle;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb());
  }, 2);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { idle, peak: Math.max(peak, rssMb()) };
}

async function group(stacks: number): Promise<{ groups: BenchGroup[]; close: () => Promise<void> }> {
  const t = performance.now();
  const seeded = await seed(stacks);
  const seedSeconds = (performance.now() - t) / 1000;
  gc?.();
  const rssSeeded = rssMb();
  const server = await serve(seeded.store);
  const plainBytes = await scrape(server.url, 'identity');
  const gzipBytes = await scrape(server.url, 'gzip');
  const rounds = async (url: string): Promise<{ idle: number; peak: number }> =>
    rssDuring(async () => {
      for (let i = 0; i < 10; i++) {
        await seeded.commitOne();
        await scrape(url, i % 2 === 0 ? 'gzip' : 'identity');
      }
    });
  // The incremental app's RSS first, before the full-read app holds anything.
  const rssUnchanged = await rssDuring(async () => {
    for (let i = 0; i < 10; i++) await scrape(server.url, i % 2 === 0 ? 'gzip' : 'identity');
  });
  const rssAfterCommit = await rounds(server.url);
  const fullServer = await serve(fullReadView(seeded.store));
  await scrape(fullServer.url, 'gzip');
  const rssAfterCommitFull = await rounds(fullServer.url);
  const fullGzipBytes = await scrape(fullServer.url, 'gzip');
  // The store parts (everything before the self-metrics) of the two apps must be identical.
  const body = await scrapeText(server.url);
  const storePart = (text: string): string => text.slice(0, text.indexOf('# HELP pulumi_exporter_'));
  if (storePart(body) !== storePart(await scrapeText(fullServer.url))) throw new Error('incremental and full-read scrapes differ');
  const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  const fmt = (n: number): string => n.toFixed(0);

  const BASELINE = 'baseline: prom-client Registry render of the store rows';
  const afterCommit = (label: string, url: string): BenchCase[] =>
    (['identity', 'gzip'] as const).map((encoding) => ({
      name: `${label}commit 1 update, then GET /metrics ${encoding === 'gzip' ? 'gzip' : 'plain'}`,
      items: series,
      unit: 'series',
      fn: async () => {
        await seeded.commitOne();
        return scrape(url, encoding);
      },
    }));
  const title = `${stacks.toLocaleString('en-US')} stacks, ${(stacks * 2).toLocaleString('en-US')} updates: ${series.toLocaleString('en-US')} series, ${(plainBytes / 2 ** 20).toFixed(1)} MiB plain, ${(gzipBytes / 2 ** 20).toFixed(1)} MiB gzip`;
  return {
    groups: [
      {
        title: `${title}: incremental scrapes`,
        notes: [
          `seeded through SqliteStateStore.commitUpdate in ${seedSeconds.toFixed(1)} s (database file in ${seeded.dir}, WAL)`,
          `RSS after seeding, before any scrape ${fmt(rssSeeded)} MiB (the first scrapes build the kept exposition)`,
          `RSS idle ${fmt(rssUnchanged.idle)} MiB, peak during 10 scrapes of an unchanged store ${fmt(rssUnchanged.peak)} MiB (+${fmt(rssUnchanged.peak - rssUnchanged.idle)})`,
          `RSS idle ${fmt(rssAfterCommit.idle)} MiB, peak during 10 commit+scrape rounds ${fmt(rssAfterCommit.peak)} MiB (+${fmt(rssAfterCommit.peak - rssAfterCommit.idle)})` +
            (gc ? '' : ' (no --expose-gc: idle is not after a GC)'),
          `full read: RSS idle ${fmt(rssAfterCommitFull.idle)} MiB, peak during 10 commit+scrape rounds ${fmt(rssAfterCommitFull.peak)} MiB (+${fmt(rssAfterCommitFull.peak - rssAfterCommitFull.idle)})`,
          `gzip body ${(gzipBytes / 2 ** 10).toFixed(0)} KiB in chunks (full read: ${(fullGzipBytes / 2 ** 10).toFixed(0)} KiB); the store parts of both apps are identical`,
          'the commit cases include one SQLite commit before the scrape; the full-read group runs after this one, so its garbage does not land in these cases',
        ],
        cases: [
          { name: 'GET /metrics plain, store unchanged', items: series, unit: 'series', fn: () => scrape(server.url, 'identity') },
          { name: 'GET /metrics gzip, store unchanged', items: series, unit: 'series', fn: () => scrape(server.url, 'gzip') },
          ...afterCommit('', server.url),
        ],
      },
      {
        title: `${title}: full reads (the app before incremental scrapes, as with PostgreSQL) and the prom-client baseline`,
        cases: [
          { name: BASELINE, items: series, unit: 'series', fn: () => promClientRender(seeded.store) },
          ...afterCommit('full read: ', fullServer.url).map((c) => ({ ...c, baseline: BASELINE })),
        ],
      },
    ],
    close: async () => {
      await server.close();
      await fullServer.close();
      await seeded.store.close();
      rmSync(seeded.dir, { recursive: true, force: true });
    },
  };
}

const closers: (() => Promise<void>)[] = [];

export const scrapeSuite: BenchSuite = {
  name: 'scrape',
  description: 'GET /metrics at 1,000 and 10,000 stacks from a seeded SQLite store, plain and gzip',
  async groups() {
    const sizes = (process.env['BENCH_SCRAPE_STACKS'] ?? '1000,10000').split(',').map(Number).filter((n) => n > 0);
    const out: BenchGroup[] = [];
    for (const stacks of sizes) {
      const { groups, close } = await group(stacks);
      closers.push(close);
      out.push(...groups);
    }
    return out;
  },
  async close() {
    for (const close of closers.splice(0)) await close();
  },
};
