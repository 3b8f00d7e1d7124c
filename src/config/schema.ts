import { z } from 'zod';

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
        accessToken: z.string().default(''),
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
        requestTimeoutMillis: z.number().int().positive().default(30_000),
        maxAttempts: z.number().int().min(1).max(10).default(4),
        retryBaseDelayMillis: z.number().int().min(0).default(1_000),
        retryMaxDelayMillis: z.number().int().min(0).default(30_000),
        requestsPerSecond: z.number().positive().default(10),
        maxConcurrentRequests: z.number().int().positive().default(8),
        historyPageSize: z.number().int().min(1).max(1000).default(100),
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
        /** SQLite file path, or `:memory:`. */
        path: z.string().min(1).default('./data/state.db'),
      })
      .strict()
      .prefault({}),
    poll: z
      .object({
        intervalSeconds: z.number().positive().default(60),
        backfillDays: z.number().min(0).default(7),
        stackConcurrency: z.number().int().positive().default(4),
        initialJitterSeconds: z.number().min(0).default(5),
        progressLogIntervalSeconds: z.number().positive().default(5),
        /**
         * Cycles in a row an update may fail with a non-retryable error (malformed events, a
         * rejected trace) before it is counted without its trace, so it cannot block its stack.
         */
        maxUpdateAttempts: z.number().int().min(1).default(5),
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
        timeoutMillis: z.number().int().positive().default(10_000),
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
    metrics: z
      .object({
        /** Adds the stack label to pulumi_resource_operation_duration_seconds (cardinality!). */
        resourceOperationDurationByStack: z.boolean().default(false),
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
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type OrgConfig = Config['pulumi']['orgs'][number];

/** A config with every default, for tests and for the `demo` command to start from. */
export function defaultConfig(overrides: ConfigInput = {}): Config {
  return configSchema.parse(overrides);
}
