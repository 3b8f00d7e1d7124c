import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import pg from 'pg';
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
import { PostgresStateStore } from '../src/state/postgres-store.js';
import { describePostgresUrl } from '../src/state/postgres-url.js';
import { SqliteStateStore } from '../src/state/sqlite-store.js';
import type { StateStore, UpdateCommit } from '../src/state/state-store.js';
import type { BenchCase, BenchGroup, BenchSuite } from './run.js';

/*
 * GET /metrics through the real HTTP app and a real SQLite store seeded with N stacks
 * (issue 7's shape: 2 updates per stack, 5 resource steps per update), plain and gzip.
 * "store unchanged" scrapes reuse the rendered store part; "after a commit" cases commit one
 * more update first, so the scrape reads and re-renders what that commit changed. The
 * "full read" cases scrape a second app whose store view hides readMetricsChanges, so each
 * of its scrapes after a commit reads and renders everything (what /metrics did before
 * incremental scrapes). The baseline renders the same store rows through a prom-client
 * Registry per scrape, as /metrics did before ADR 0003. At the largest size the same data is
 * also seeded into PostgreSQL and scraped after a commit, incrementally and as a full read.
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
  // On tmpfs where there is one: fsync is then free, so seeding takes seconds instead of
  // minutes. Scrapes read through the page cache either way.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pue-bench-scrape-'));
  const store = new SqliteStateStore({ path: join(dir, 'state.db') });
  await store.migrate();
  return { store, dir, stacks, commitOne: await seedStore(store, stacks) };
}

/** Seeds a migrated store with issue 7's data for `stacks` stacks; returns a function that commits one more update. */
async function seedStore(store: StateStore, stacks: number): Promise<() => Promise<void>> {
  await store.replaceOrgStacks(
    ORG,
    Array.from({ length: stacks }, (_, i) => ({ ...stackRef(i), lastUpdate: 2, resourceCount: 5 })),
    1_000,
  );
  const commitOf = (i: number, v: number): UpdateCommit => {
    const stack = stackRef(i);
    const startTime = 1_700_000_000 + i * 10 + v * 3_600;
    // One update in ten fails; durations spread over the buckets.
    const result = (i + v) % 10 === 0 ? 'failed' : 'succeeded';
    const endTime = startTime + 20 + ((i * 37 + v * 11) % 900);
    const updateId = `${stack.stack}-u${v}`;
    return {
      update: { stack, updateId, kind: 'update', version: v, result, startTime, endTime },
      deltas: updateMetricDeltas({
        stack,
        updateId,
        kind: 'update',
        result,
        startTime,
        endTime,
        resourceChanges: v === 1 ? { create: 5 } : { update: 1, same: 4 },
        operations: operations(i, v),
        policyViolations: [],
        detail: DEFAULT_METRIC_DETAIL,
      }),
      exportedAtMs: endTime * 1000 + 5_000,
    };
  };
  // Both updates of 250 stacks per transaction (the result is that of one commit after another).
  for (let first = 0; first < stacks; first += 250) {
    const commits: UpdateCommit[] = [];
    for (let i = first; i < Math.min(stacks, first + 250); i++) commits.push(commitOf(i, 1), commitOf(i, 2));
    await store.commitUpdates(commits);
  }
  let version = 2;
  let next = 0;
  return async () => {
    version += 1;
    await store.commitUpdate(commitOf(next, version));
    next = (next + 1) % stacks;
  };
}

/** The store without readMetricsChanges: every scrape after a commit reads everything. */
function fullReadView(store: StateStore): StateStore {
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
          `seeded through SqliteStateStore.commitUpdates in ${seedSeconds.toFixed(1)} s (database file in ${seeded.dir}, WAL)`,
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
        title: `${title}: full reads (the app before incremental scrapes) and the prom-client baseline`,
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

const ADMIN_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function admin(sql: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query(sql);
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The same data on PostgreSQL (a throwaway database on the machine's server): a scrape after
 * a commit, incremental (the change rows every write records, whichever replica wrote) and
 * as a full read; undefined when no server answers.
 */
async function postgresGroup(stacks: number): Promise<{ groups: BenchGroup[]; close: () => Promise<void> } | undefined> {
  const name = `pue_bench_${randomBytes(6).toString('hex')}`;
  if (!(await admin(`CREATE DATABASE ${name}`))) return undefined;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const store = new PostgresStateStore({ url: url.toString() });
  await store.migrate();
  const t = performance.now();
  const commitOne = await seedStore(store, stacks);
  const seedSeconds = (performance.now() - t) / 1000;
  const server = await serve(store);
  const fullServer = await serve(fullReadView(store));
  await scrape(server.url, 'gzip');
  await scrape(fullServer.url, 'gzip');
  await commitOne();
  const storePart = (text: string): string => text.slice(0, text.indexOf('# HELP pulumi_exporter_'));
  const body = await scrapeText(server.url);
  if (storePart(body) !== storePart(await scrapeText(fullServer.url))) throw new Error('PostgreSQL: incremental and full-read scrapes differ');
  const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  const FULL = 'PostgreSQL, full read: commit 1 update, then GET /metrics gzip';
  const FULL_PLAIN = 'PostgreSQL, full read: commit 1 update, then GET /metrics plain';
  const round = (target: string, encoding: 'gzip' | 'identity') => async (): Promise<number> => {
    await commitOne();
    return scrape(target, encoding);
  };
  return {
    groups: [
      {
        title: `PostgreSQL, ${stacks.toLocaleString('en-US')} stacks: ${series.toLocaleString('en-US')} series, scrapes after a commit`,
        notes: [`seeded through PostgresStateStore.commitUpdates in ${seedSeconds.toFixed(1)} s (${store.target}); the store parts of both apps are identical`],
        cases: [
          { name: FULL, items: series, unit: 'series', fn: round(fullServer.url, 'gzip') },
          { name: 'PostgreSQL, incremental: commit 1 update, then GET /metrics gzip', items: series, unit: 'series', fn: round(server.url, 'gzip'), baseline: FULL },
          { name: FULL_PLAIN, items: series, unit: 'series', fn: round(fullServer.url, 'identity') },
          { name: 'PostgreSQL, incremental: commit 1 update, then GET /metrics plain', items: series, unit: 'series', fn: round(server.url, 'identity'), baseline: FULL_PLAIN },
        ],
      },
    ],
    close: async () => {
      await server.close();
      await fullServer.close();
      await store.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

const closers: (() => Promise<void>)[] = [];

export const scrapeSuite: BenchSuite = {
  name: 'scrape',
  description: 'GET /metrics at 1,000 and 10,000 stacks from a seeded SQLite store, plain and gzip; after a commit on PostgreSQL at the largest size',
  async groups() {
    const sizes = (process.env['BENCH_SCRAPE_STACKS'] ?? '1000,10000').split(',').map(Number).filter((n) => n > 0);
    const out: BenchGroup[] = [];
    for (const stacks of sizes) {
      const { groups, close } = await group(stacks);
      closers.push(close);
      out.push(...groups);
    }
    const largest = Math.max(...sizes);
    const postgres = process.env['BENCH_SCRAPE_POSTGRES'] === '0' ? undefined : await postgresGroup(largest);
    if (postgres === undefined) console.log(`scrape: no PostgreSQL group (BENCH_SCRAPE_POSTGRES=0 or no server at ${describePostgresUrl(ADMIN_URL)})`);
    else {
      closers.push(postgres.close);
      out.push(...postgres.groups);
    }
    return out;
  },
  async close() {
    for (const close of closers.splice(0)) await close();
  },
};
