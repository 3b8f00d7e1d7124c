import { z } from 'zod';
import { stateLocationProblem } from './state-location.js';

/**
 * The one schema for the merged configuration (defaults < file < env < *_FILE secrets).
 * Objects are strict: an unknown key is an error, reported with its path.
 * Keep config/default.yaml and docs/configuration.md in step (a test checks both).
 */
const orgSchema = z
  .object({
    name: z.string().min(1),
    /** Globs on `project/stack`; empty = everything. */
    include: z.array(z.string().min(1)).default([]),
    exclude: z.array(z.string().min(1)).default([]),
  })
  .strict();

/**
 * A duration with an upper bound: Node.js timers hold at most 2^31-1 ms (about 24.8 days)
 * and fire at once beyond it, so an unbounded value would turn a poll interval into a
 * busy loop or a timeout into an instant failure. The bounds are far below that limit, at
 * what is still a sensible setting.
 */
function duration(unit: 'milliseconds' | 'seconds' | 'days', max: number, readable: string): z.ZodNumber {
  return z.number().max(max, `must be at most ${max} ${unit} (${readable})`);
}

const TEN_MINUTES_MS = 600_000;

/** Tokens are one printable-ASCII word; a space or line break is a broken token file, not a token. */
const PRINTABLE_WORD = /^[\x21-\x7e]*$/;

export const configSchema = z
  .object({
    pulumi: z
      .object({
        backendUrl: z
          .url()
          .refine((u) => {
            const parsed = URL.canParse(u) ? new URL(u) : undefined;
            return parsed === undefined || (parsed.username === '' && parsed.password === '');
          }, 'must not contain a user name or password: the access token goes in PULUMI_ACCESS_TOKEN')
          .default('https://api.pulumi.com'),
        accessToken: z
          .string()
          .regex(
            PRINTABLE_WORD,
            'contains whitespace or a control character (a line break inside the token file?); a token is one word of printable ASCII',
          )
          .default(''),
        orgs: z
          .array(orgSchema)
          .superRefine((orgs, ctx) => {
            const seen = new Map<string, number>();
            orgs.forEach((org, index) => {
              const first = seen.get(org.name);
              if (first === undefined) seen.set(org.name, index);
              else
                ctx.addIssue({
                  code: 'custom',
                  path: [index, 'name'],
                  message: `duplicate org "${org.name}" (first at pulumi.orgs[${first}])`,
                });
            });
          })
          .default([]),
        requestTimeoutMillis: duration('milliseconds', TEN_MINUTES_MS, '10 minutes').int().positive().default(30_000),
        maxAttempts: z.number().int().min(1).max(10).default(4),
        retryBaseDelayMillis: duration('milliseconds', TEN_MINUTES_MS, '10 minutes').int().min(0).default(1_000),
        retryMaxDelayMillis: duration('milliseconds', TEN_MINUTES_MS, '10 minutes').int().min(0).default(30_000),
        requestsPerSecond: z.number().min(0).default(0),
        maxConcurrentRequests: z.number().int().positive().default(8),
        historyPageSize: z.number().int().min(1).max(1000).default(100),
        maxResponseBytes: z.number().int().min(65_536).default(8_388_608),
        maxPagesPerListing: z.number().int().min(1).default(1000),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(9819),
      })
      .strict()
      .prefault({}),
    state: z
      .object({
        /** SQLite file path, `:memory:`, or a postgres:// / postgresql:// URL (several replicas). */
        path: z
          .string()
          .min(1)
          .superRefine((value, ctx) => {
            const problem = stateLocationProblem(value);
            if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
          })
          .default('./data/state.db'),
        /** PostgreSQL only: lifetime of a stack or leader lease without renewal (failover time). */
        leaseSeconds: z.number().min(1).max(600).default(15),
      })
      .strict()
      .prefault({}),
    poll: z
      .object({
        intervalSeconds: duration('seconds', 86_400, '1 day').positive().default(60),
        /**
         * Seconds between two follow rounds over the stacks with an update in progress: the
         * spans of its finished steps are sent within this time, and its end is seen as fast.
         * 0 = off (running updates are only seen by the poll cycle, their spans sent at the end).
         */
        followIntervalSeconds: duration('seconds', 3_600, '1 hour').min(0).default(5),
        backfillDays: duration('days', 3_650, 'about 10 years').min(0).default(7),
        stackConcurrency: z.number().int().positive().default(4),
        initialJitterSeconds: duration('seconds', 3_600, '1 hour').min(0).default(5),
        progressLogIntervalSeconds: duration('seconds', 3_600, '1 hour').positive().default(5),
        /**
         * Cycles in a row an update may fail with a non-retryable error (malformed events, a
         * rejected trace) before it is counted without its trace, so it cannot block its stack.
         */
        maxUpdateAttempts: z.number().int().min(1).default(5),
      })
      .strict()
      .prefault({}),
    previews: z
      .object({
        /**
         * Export previews (not in the update history) as traces and count them with
         * kind="preview". Costs one more listing call per watched stack and cycle.
         */
        enabled: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    traces: z
      .object({
        /** otlp, console or none (OTEL_TRACES_EXPORTER). */
        exporter: z.enum(['otlp', 'console', 'none']).default('otlp'),
        /** OTLP/HTTP traces URL; derived from OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces when unset. */
        endpoint: z.url().default('http://localhost:4318/v1/traces'),
        protocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
        headers: z.record(z.string(), z.string()).default({}),
        serviceName: z.string().min(1).default('pulumi'),
        /**
         * Link to a trace in the tracing UI, `{traceId}` replaced by the 32-hex trace id; used by
         * the status page. Unset: the page shows trace ids without links.
         */
        linkTemplate: z
          .string()
          .regex(/^https?:\/\/\S*\{traceId\}\S*$/, 'must be an http(s) URL containing {traceId}')
          .optional(),
        timeoutMillis: duration('milliseconds', TEN_MINUTES_MS, '10 minutes').int().positive().default(10_000),
        keepSameSteps: z.boolean().default(false),
        maxSpansPerTrace: z.number().int().min(1).default(10_000),
        maxAttributeLength: z.number().int().min(16).default(1_024),
        /** Spans per OTLP request; large updates are split. */
        batchMaxSpans: z.number().int().min(1).default(512),
        /** Upper bound of one OTLP request body, so a collector's size limit is not hit. */
        batchMaxBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
        /** Content-Encoding of OTLP request bodies (OTEL_EXPORTER_OTLP_COMPRESSION). */
        compression: z.enum(['none', 'gzip']).default('none'),
      })
      .strict()
      .prefault({}),
    selfTelemetry: z
      .object({
        /**
         * OTLP/HTTP (protobuf) traces URL for the exporter's own spans (poll cycles, stack
         * syncs, Pulumi Cloud requests). Unset: off, and the OpenTelemetry SDK is not loaded.
         */
        tracesEndpoint: z.url().optional(),
      })
      .strict()
      .prefault({}),
    metricsPush: z
      .object({
        /**
         * otlp pushes the pulumi_* and pulumi_exporter_* metrics as OpenTelemetry metrics
         * (OTEL_METRICS_EXPORTER); none (the default) does not load the metrics SDK. /metrics is served either way.
         */
        exporter: z.enum(['none', 'otlp']).default('none'),
        /** OTLP/HTTP metrics URL; derived from OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics when unset. */
        endpoint: z.url().default('http://localhost:4318/v1/metrics'),
        protocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
        headers: z.record(z.string(), z.string()).default({}),
        /** Time limit of one push, its retries included. */
        timeoutMillis: duration('milliseconds', TEN_MINUTES_MS, '10 minutes').int().positive().default(10_000),
        /** Time between two pushes (OTEL_METRIC_EXPORT_INTERVAL); at least timeoutMillis. */
        intervalMillis: duration('milliseconds', 86_400_000, '1 day').int().positive().default(60_000),
        compression: z.enum(['none', 'gzip']).default('none'),
      })
      .strict()
      .refine((push) => push.exporter === 'none' || push.intervalMillis >= push.timeoutMillis, {
        path: ['intervalMillis'],
        message: 'must be at least metricsPush.timeoutMillis (a push may not outlast the interval)',
      })
      .prefault({}),
    metrics: z
      .object({
        /** Adds the project and stack labels to pulumi_resource_operation_duration_seconds (cardinality!). */
        resourceOperationDurationByStack: z.boolean().default(false),
        /** Adds the stack label to pulumi_update_duration_seconds (16 series per stack, kind and result). */
        updateDurationByStack: z.boolean().default(false),
        /** Adds the stack label to pulumi_resource_operations_total. */
        resourceOperationsByStack: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        /** Serve POST /webhooks/pulumi: Pulumi Cloud deliveries trigger an immediate stack sync. */
        enabled: z.boolean().default(true),
        /** The webhook's shared secret: deliveries must carry its HMAC-SHA256 signature. Unset: unsigned deliveries are accepted. */
        secret: z.string().min(16, 'must be at least 16 characters: a short secret can be guessed').optional(),
        /** A listener of its own for the webhook (reachable from Pulumi Cloud); unset: served on server.port. */
        port: z.number().int().min(0).max(65535).optional(),
        /** Larger request bodies are refused with 413 (real deliveries are about 1 KiB). */
        maxBodyBytes: z.number().int().min(1024).max(16_777_216).default(65_536),
        /** Deliveries for one stack within this window trigger one sync (an org and a stack webhook both firing). */
        coalesceMillis: duration('milliseconds', 60_000, '1 minute').int().min(0).default(250),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const { port } = config.webhooks;
    if (port !== undefined && port !== 0 && port === config.server.port) {
      ctx.addIssue({ code: 'custom', path: ['webhooks', 'port'], message: 'must differ from server.port (leave it unset to serve the webhook on the metrics port)' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type OrgConfig = Config['pulumi']['orgs'][number];

/** A config with every default, for tests and for the `demo` command to start from. */
export function defaultConfig(overrides: ConfigInput = {}): Config {
  return configSchema.parse(overrides);
}
