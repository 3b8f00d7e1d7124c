import type { Config } from './config/schema.js';
import type { BackfillStatus } from './domain/backfill-status.js';
import { systemClock, type Clock } from './domain/clock.js';
import { createHttpApp } from './http/http-app.js';
import { startHttpServer } from './http/http-server.js';
import { createWebhookApp, WEBHOOK_PATH, webhookRouter } from './http/webhook-route.js';
import { buildStatusReport } from './http/status-report.js';
import type { Logger } from './logging/logger.js';
import { ExporterMetrics } from './metrics/exporter-metrics.js';
import { PulumiClient } from './pulumi/pulumi-client.js';
import type { PulumiCloudApi } from './pulumi/pulumi-api.js';
import { IntervalJob } from './scheduler/interval-job.js';
import { KeyedQueue } from './scheduler/keyed-queue.js';
import type { Coordinator } from './state/coordinator.js';
import { createCoordinator, createStateStore } from './state/create-state.js';
import type { StateStore } from './state/state-store.js';
import { BackfillProgress } from './sync/backfill-progress.js';
import { noopSyncMetrics } from './sync/sync-metrics.js';
import { runFollowCycle, type FollowCycleDeps, type FollowCycleResult } from './sync/follow-cycle.js';
import { FollowedStreams } from './sync/follow-update.js';
import { runPollCycle, type PollCycleDeps, type PollCycleResult } from './sync/poll-cycle.js';
import type { StackSyncResult } from './sync/stack-sync.js';
import { stackSyncer, SyncTrigger } from './sync/sync-trigger.js';
import { UpdateAttempts } from './sync/update-attempts.js';
import { errorCodeOf } from './errors.js';
import { redact } from './secrets.js';
import { createSpanSink } from './tracing/create-span-sink.js';
import { withSelfSpan } from './tracing/self-spans.js';
import type { SpanSink } from './tracing/span-sink.js';
import { REVISION, VERSION } from './version.js';

export interface AppOverrides {
  readonly api?: PulumiCloudApi;
  readonly store?: StateStore;
  /** Defaults to leases on a PostgreSQL store, else a single replica that always leads. */
  readonly coordinator?: Coordinator;
  readonly sink?: SpanSink;
  readonly clock?: Clock;
  /** Skip the HTTP listener (the `once` command). */
  readonly http?: boolean;
}

export interface App {
  /** Migrates the store, starts /metrics and the poll scheduler. */
  start(): Promise<void>;
  /** Runs one complete poll cycle now (the `once` command and tests); stop() aborts it. */
  runOnce(): Promise<PollCycleResult>;
  /** Runs one follow round now (tests); undefined when following is off (poll.followIntervalSeconds 0). */
  followOnce(): Promise<FollowCycleResult> | undefined;
  /** Stops the scheduler, waits for the in-flight sync, flushes spans, closes HTTP and the store. Idempotent. */
  stop(): Promise<void>;
  readonly metrics: ExporterMetrics;
  readonly store: StateStore;
  /** Set once start() has bound the HTTP listener. */
  httpUrl(): string | undefined;
  /** The URL of POST /webhooks/pulumi once it is served (on its own port or the metrics port). */
  webhookUrl(): string | undefined;
  lastPoll(): PollCycleResult | undefined;
}

const STOP_SYNC_TIMEOUT_MS = 15_000;
/** A running update without a new event for this long is followed by the poll cycle alone until it moves. */
const FOLLOW_IDLE_MS = 5 * 60_000;
/** Updates listed under "Recent updates" on the status page. */
const STATUS_RECENT_UPDATES = 50;

/** Wiring only: builds every component from the config and connects them. */
export function createApp(config: Config, logger: Logger, overrides: AppOverrides = {}): App {
  const clock = overrides.clock ?? systemClock;
  const store = overrides.store ?? createStateStore(config.state, logger.child({ module: 'state' }));
  // The self-metrics count from here (the start time of their pushed cumulative points).
  const metricsSinceMs = Date.now();
  const metrics = new ExporterMetrics({
    store,
    version: VERSION,
    revision: REVISION,
  });
  // SQLite: one process owns exporting and leads. PostgreSQL: replicas split the stacks by
  // lease and the elected leader alone serves pulumi_* (a follower until it is elected).
  const coordinator =
    overrides.coordinator ??
    createCoordinator(store, config.state, logger.child({ module: 'coordinator' }), (leader) => metrics.setLeader(leader));
  metrics.setLeader(coordinator.isLeader());
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
      maxResponseBytes: config.pulumi.maxResponseBytes,
      maxPagesPerListing: config.pulumi.maxPagesPerListing,
      observer: metrics,
      logger: logger.child({ module: 'pulumi' }),
    });
  const sink = overrides.sink ?? createSpanSink(config.traces, { logger: logger.child({ module: 'tracing' }), observer: metrics });

  const progress = new BackfillProgress({
    clock,
    logger: logger.child({ module: 'poll' }),
    intervalMs: config.poll.progressLogIntervalSeconds * 1000,
    metrics,
  });
  // One sync at a time per stack, whoever asks for it (the poll cycle, webhook deliveries).
  const syncQueue = new KeyedQueue<StackSyncResult>();
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
    batchMaxSpans: config.traces.batchMaxSpans,
    orgs: config.pulumi.orgs,
    stackConcurrency: config.poll.stackConcurrency,
    previews: config.previews.enabled,
    progressLogIntervalMs: config.poll.progressLogIntervalSeconds * 1000,
    progress,
    coordinator,
    syncQueue,
    ...(config.poll.followIntervalSeconds > 0
      ? { follow: { streams: new FollowedStreams(), spansFollowed: (n: number) => metrics.spansFollowed(n) } }
      : {}),
  };
  // Following running updates: a second job over the stacks with an update in progress.
  const followDeps: FollowCycleDeps | undefined =
    deps.follow === undefined || deps.syncQueue === undefined
      ? undefined
      : {
          ...deps,
          follow: deps.follow,
          syncQueue: deps.syncQueue,
          followIdleMs: FOLLOW_IDLE_MS,
          // Its syncs do not count in the poll cycle's backfill progress and gauges.
          followProgress: new BackfillProgress({
            clock,
            logger: logger.child({ module: 'follow' }),
            intervalMs: config.poll.progressLogIntervalSeconds * 1000,
            metrics: noopSyncMetrics,
          }),
        };
  // Webhook deliveries ask for syncs through the same queue (docs/webhooks.md).
  const trigger = new SyncTrigger({
    store,
    api,
    orgs: config.pulumi.orgs,
    coordinator,
    metrics,
    clock,
    queue: syncQueue,
    sync: stackSyncer(deps),
    logger: logger.child({ module: 'webhook' }),
    coalesceMillis: config.webhooks.coalesceMillis,
  });

  let last: PollCycleResult | undefined;
  let ready = false;
  let migrated: Promise<void> | undefined;
  const migrate = (): Promise<void> =>
    (migrated ??= (async () => {
      await store.migrate();
      await coordinator.start();
    })());

  // One cycle at a time, whether the scheduler or runOnce() asks: a second caller joins the running one.
  let running: Promise<PollCycleResult> | undefined;
  const cycle = (signal?: AbortSignal): Promise<PollCycleResult> => {
    running ??= (async () => {
      try {
        await migrate();
        const result = await withSelfSpan('poll cycle', {}, async (set) => {
          const r = await runPollCycle(deps, signal);
          set({ 'pulumi.poll.result': r.result, 'pulumi.poll.updates_exported': r.updatesExported, 'pulumi.poll.backlog': r.backlog });
          return r;
        });
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

  const follow = (signal?: AbortSignal): Promise<FollowCycleResult> | undefined =>
    followDeps === undefined
      ? undefined
      : (async () => {
          await migrate();
          return runFollowCycle(followDeps, signal);
        })();
  const followJob =
    followDeps === undefined
      ? undefined
      : new IntervalJob({
          name: 'follow',
          intervalMs: config.poll.followIntervalSeconds * 1000,
          run: async (signal) => {
            await follow(signal);
          },
          logger,
          onError: (err) => metrics.error(errorCodeOf(err), err),
        });

  let server: { url: string; close(): Promise<void> } | undefined;
  let webhookServer: { url: string; close(): Promise<void> } | undefined;
  let selfTelemetry: { shutdown(): Promise<void> } | undefined;
  let metricsPush: { shutdown(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  // Aborts a cycle started by runOnce(), as job.stop() aborts the scheduler's.
  const onceAbort = new AbortController();

  return {
    metrics,
    store,
    httpUrl: () => server?.url,
    webhookUrl: () => {
      const base = webhookServer?.url ?? (config.webhooks.enabled ? server?.url : undefined);
      return base === undefined ? undefined : `${base}${WEBHOOK_PATH}`;
    },
    lastPoll: () => last,
    async start() {
      const selfTracesEndpoint = config.selfTelemetry.tracesEndpoint;
      if (selfTracesEndpoint !== undefined) {
        // Loaded only when switched on: the SDK and its instrumentation cost start-up time and memory.
        const { startSelfTelemetry } = await import('./tracing/self-telemetry.js');
        selfTelemetry = startSelfTelemetry({
          tracesEndpoint: selfTracesEndpoint,
          headers: config.traces.headers,
          version: VERSION,
          logger: logger.child({ module: 'self-telemetry' }),
        });
      }
      await migrate();
      if (config.metricsPush.exporter === 'otlp') {
        // Loaded only when switched on, like self-telemetry: the metrics SDK is not needed for /metrics.
        const { startMetricsPush } = await import('./metrics/otlp-metrics-push.js');
        metricsPush = startMetricsPush({
          config: config.metricsPush,
          store,
          metrics,
          isLeader: () => coordinator.isLeader(),
          selfMetricsSinceMs: metricsSinceMs,
          version: VERSION,
          logger: logger.child({ module: 'metrics-push' }),
        });
      }
      if (overrides.http !== false) {
        const webhook = config.webhooks.enabled
          ? webhookRouter({
              secret: config.webhooks.secret,
              maxBodyBytes: config.webhooks.maxBodyBytes,
              previews: config.previews.enabled,
              trigger,
              metrics,
              logger: logger.child({ module: 'webhook' }),
            })
          : undefined;
        const everyOrgListed = (): boolean => ready || progress.snapshot().listedAllOrgs;
        const app = createHttpApp({
          metrics,
          // Ready once a cycle has listed every org, not once the first backfill is over: from
          // then on /metrics is true (if incomplete) and the backfill gauges show how far it is,
          // so an hour-long first run is not reported as a pod that never became ready.
          readiness: async () => {
            if (metrics.storeReadFailure() !== undefined) {
              return { ready: false, reason: 'the last metrics scrape could not read the state store (see the logs)' };
            }
            if (!everyOrgListed()) {
              const reason = last
                ? 'no poll cycle has read the stack list of every configured org yet (see pulumi_exporter_errors_total and the logs)'
                : 'the first poll cycle has not listed the stacks of every configured org yet';
              return { ready: false, reason };
            }
            try {
              await store.ping();
              return { ready: true };
            } catch {
              return { ready: false, reason: 'the state store does not answer' };
            }
          },
          status: () =>
            buildStatusReport({
              store,
              version: VERSION,
              ready: everyOrgListed(),
              nowMs: clock.now(),
              backfill: backfillStatus(progress),
              orgs: config.pulumi.orgs.map((o) => o.name),
              ...(last
                ? {
                    lastPoll: {
                      result: last.result,
                      finishedAt: new Date(last.finishedAtMs).toISOString(),
                      durationSeconds: last.durationSeconds,
                      stacksFailed: last.stacksFailed,
                      updatesExported: last.updatesExported,
                      backlog: last.backlog,
                    },
                    orgListingErrors: last.orgListingErrors,
                  }
                : {}),
              consoleUrl: deps.conversion.consoleUrl,
              ...(config.traces.linkTemplate === undefined ? {} : { traceLinkTemplate: config.traces.linkTemplate }),
              recentLimit: STATUS_RECENT_UPDATES,
            }),
          logger: logger.child({ module: 'http' }),
          ...(webhook !== undefined && config.webhooks.port === undefined ? { webhook } : {}),
        });
        server = await startHttpServer(app, { host: config.server.host, port: config.server.port });
        logger.info({ url: server.url }, 'serving /metrics');
        if (webhook !== undefined && config.webhooks.port !== undefined) {
          const own = createWebhookApp(webhook, logger.child({ module: 'webhook' }));
          webhookServer = await startHttpServer(own, { host: config.server.host, port: config.webhooks.port });
        }
        if (webhook !== undefined) {
          const signed = config.webhooks.secret !== undefined;
          logger.info(
            { url: (webhookServer?.url ?? server.url) + WEBHOOK_PATH, signed },
            signed ? 'serving Pulumi Cloud webhooks' : 'serving Pulumi Cloud webhooks without a secret: unsigned deliveries are accepted (set EXPORTER_WEBHOOK_SECRET)',
          );
        }
      }
      job.start();
      followJob?.start();
    },
    runOnce: () => cycle(onceAbort.signal),
    followOnce: () => follow(onceAbort.signal),
    stop() {
      stopping ??= (async () => {
        // Abort the cycle first (no new update starts), then shut the sink so exports queued
        // behind a slow or dead collector end at once instead of each waiting out its
        // timeout; then wait (bounded) for the sync to unwind. An interrupted update commits
        // nothing half-way and is redone after the restart; every span sent is kept.
        // One deadline for the whole wait, however the cycle was started.
        const deadline = Date.now() + STOP_SYNC_TIMEOUT_MS;
        const inFlight = running;
        const jobStopped = job.stop(STOP_SYNC_TIMEOUT_MS);
        const followStopped = followJob?.stop(STOP_SYNC_TIMEOUT_MS);
        const triggerStopped = trigger.stop(STOP_SYNC_TIMEOUT_MS);
        onceAbort.abort(new Error('the exporter is stopping'));
        await sink.shutdown();
        await jobStopped;
        await followStopped;
        await triggerStopped;
        if (inFlight !== undefined) await settledWithin(inFlight, Math.max(0, deadline - Date.now()));
        // The last push reads the store, so it goes before the store closes.
        await metricsPush?.shutdown();
        await server?.close();
        await webhookServer?.close();
        await coordinator.stop();
        await store.close();
        await selfTelemetry?.shutdown();
      })();
      return stopping;
    },
  };
}

function backfillStatus(progress: BackfillProgress): BackfillStatus {
  const snap = progress.snapshot();
  const lastFinished = progress.lastFinished();
  return {
    ...(snap.phase === 'idle' ? {} : { running: snap }),
    ...(lastFinished === undefined ? {} : { lastFinished }),
  };
}

/** Waits for `work` to settle, but at most `timeoutMs`. */
function settledWithin(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

/** https://api.pulumi.com -> https://app.pulumi.com (shared pulumi-api.md section 1); other hosts unchanged. */
export function consoleUrlFor(backendUrl: string): string {
  const url = new URL(backendUrl);
  if (url.hostname.startsWith('api.')) url.hostname = `app.${url.hostname.slice(4)}`;
  return url.toString().replace(/\/$/, '');
}
