import type { Config } from './config/schema.js';
import { systemClock, type Clock } from './domain/clock.js';
import { createHttpApp } from './http/http-app.js';
import { startHttpServer } from './http/http-server.js';
import type { Logger } from './logging/logger.js';
import { ExporterMetrics } from './metrics/exporter-metrics.js';
import { PulumiClient } from './pulumi/pulumi-client.js';
import type { PulumiCloudApi } from './pulumi/pulumi-api.js';
import { IntervalJob } from './scheduler/interval-job.js';
import { SqliteStateStore } from './state/sqlite-store.js';
import type { StateStore } from './state/state-store.js';
import { runPollCycle, type PollCycleDeps, type PollCycleResult } from './sync/poll-cycle.js';
import { UpdateAttempts } from './sync/update-attempts.js';
import { errorCodeOf } from './errors.js';
import { redact } from './secrets.js';
import { createSpanSink } from './tracing/create-span-sink.js';
import type { SpanSink } from './tracing/span-sink.js';
import { REVISION, VERSION } from './version.js';

export interface AppOverrides {
  readonly api?: PulumiCloudApi;
  readonly store?: StateStore;
  readonly sink?: SpanSink;
  readonly clock?: Clock;
  /** Skip the HTTP listener (the `once` command). */
  readonly http?: boolean;
}

export interface App {
  /** Migrates the store, starts /metrics and the poll scheduler. */
  start(): Promise<void>;
  /** Runs one complete poll cycle now (the `once` command and tests). */
  runOnce(): Promise<PollCycleResult>;
  /** Stops the scheduler, waits for the in-flight sync, flushes spans, closes HTTP and the store. Idempotent. */
  stop(): Promise<void>;
  readonly metrics: ExporterMetrics;
  readonly store: StateStore;
  /** Set once start() has bound the HTTP listener. */
  httpUrl(): string | undefined;
  lastPoll(): PollCycleResult | undefined;
}

const STOP_SYNC_TIMEOUT_MS = 15_000;

/** Wiring only: builds every component from the config and connects them. */
export function createApp(config: Config, logger: Logger, overrides: AppOverrides = {}): App {
  const clock = overrides.clock ?? systemClock;
  const store = overrides.store ?? new SqliteStateStore({ path: config.state.path, logger: logger.child({ module: 'state' }) });
  const metrics = new ExporterMetrics({
    store,
    version: VERSION,
    revision: REVISION,
    logger: logger.child({ module: 'metrics' }),
  });
  // With the embedded store one process owns exporting; replicas with leases come with the PostgreSQL store.
  metrics.setLeader(true);
  const api =
    overrides.api ??
    new PulumiClient({
      baseUrl: config.pulumi.backendUrl,
      accessToken: config.pulumi.accessToken,
      version: VERSION,
      requestTimeoutMillis: config.pulumi.requestTimeoutMillis,
      maxAttempts: config.pulumi.maxAttempts,
      retryBaseDelayMillis: config.pulumi.retryBaseDelayMillis,
      retryMaxDelayMillis: config.pulumi.retryMaxDelayMillis,
      requestsPerSecond: config.pulumi.requestsPerSecond,
      maxConcurrentRequests: config.pulumi.maxConcurrentRequests,
      historyPageSize: config.pulumi.historyPageSize,
      observer: metrics,
      logger: logger.child({ module: 'pulumi' }),
    });
  const sink = overrides.sink ?? createSpanSink(config.traces, { logger: logger.child({ module: 'tracing' }), observer: metrics });

  const deps: PollCycleDeps = {
    api,
    store,
    sink,
    metrics,
    logger,
    clock,
    conversion: {
      serviceName: config.traces.serviceName,
      keepSameSteps: config.traces.keepSameSteps,
      maxSpansPerTrace: config.traces.maxSpansPerTrace,
      maxAttributeLength: config.traces.maxAttributeLength,
      consoleUrl: consoleUrlFor(config.pulumi.backendUrl),
      redact,
    },
    metricDetail: config.metrics,
    backfillDays: config.poll.backfillDays,
    attempts: new UpdateAttempts(),
    maxUpdateAttempts: config.poll.maxUpdateAttempts,
    orgs: config.pulumi.orgs,
    stackConcurrency: config.poll.stackConcurrency,
    progressLogIntervalMs: config.poll.progressLogIntervalSeconds * 1000,
  };

  let last: PollCycleResult | undefined;
  let ready = false;
  let migrated: Promise<void> | undefined;
  const migrate = (): Promise<void> => (migrated ??= store.migrate());

  // One cycle at a time, whether the scheduler or runOnce() asks: a second caller joins the running one.
  let running: Promise<PollCycleResult> | undefined;
  const cycle = (signal?: AbortSignal): Promise<PollCycleResult> => {
    running ??= (async () => {
      try {
        await migrate();
        const result = await runPollCycle(deps, signal);
        last = result;
        if (result.listedAllOrgs) ready = true;
        return result;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const job = new IntervalJob({
    name: 'poll',
    intervalMs: config.poll.intervalSeconds * 1000,
    initialJitterMs: config.poll.initialJitterSeconds * 1000,
    run: async (signal) => {
      await cycle(signal);
    },
    logger,
    onError: (err) => metrics.error(errorCodeOf(err), err),
  });

  let server: { url: string; close(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;

  return {
    metrics,
    store,
    httpUrl: () => server?.url,
    lastPoll: () => last,
    async start() {
      await migrate();
      if (overrides.http !== false) {
        const app = createHttpApp({
          metrics,
          readiness: async () => {
            if (!ready) {
              const reason = last
                ? 'no poll cycle has read the stack list of every configured org yet (see pulumi_exporter_errors_total and the logs)'
                : 'the first poll cycle has not finished yet';
              return { ready: false, reason };
            }
            try {
              await store.ping();
              return { ready: true };
            } catch {
              return { ready: false, reason: 'the state store does not answer' };
            }
          },
          status: () => ({
            version: VERSION,
            ...(last
              ? { lastPoll: { result: last.result, finishedAt: new Date(last.finishedAtMs).toISOString(), durationSeconds: last.durationSeconds } }
              : {}),
          }),
          logger: logger.child({ module: 'http' }),
        });
        server = await startHttpServer(app, { host: config.server.host, port: config.server.port });
        logger.info({ url: server.url }, 'serving /metrics');
      }
      job.start();
    },
    runOnce: () => cycle(),
    stop() {
      stopping ??= (async () => {
        // Abort the cycle first (no new update starts), then shut the sink so exports queued
        // behind a slow or dead collector end at once instead of each waiting out its
        // timeout; then wait (bounded) for the sync to unwind. An interrupted update commits
        // nothing half-way and is redone after the restart; every span sent is kept.
        const jobStopped = job.stop(STOP_SYNC_TIMEOUT_MS);
        await sink.shutdown();
        await jobStopped;
        await server?.close();
        await store.close();
      })();
      return stopping;
    },
  };
}

/** https://api.pulumi.com -> https://app.pulumi.com (pulumi-api.md section 1); other hosts unchanged. */
export function consoleUrlFor(backendUrl: string): string {
  const url = new URL(backendUrl);
  if (url.hostname.startsWith('api.')) url.hostname = `app.${url.hostname.slice(4)}`;
  return url.toString().replace(/\/$/, '');
}
