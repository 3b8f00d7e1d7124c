/**
 * Every error the exporter raises on purpose is an ExporterError with a stable code.
 * docs/errors.md lists each code; test/unit/errors.test.ts keeps the two in step.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'the merged configuration failed validation',
  CONFIG_FILE_UNREADABLE: 'a config file or *_FILE secret could not be read or parsed',
  CONFIG_MISSING_TOKEN: 'run mode needs a Pulumi access token',
  API_UNAUTHORIZED: 'Pulumi Cloud answered 401/403: the token is missing, wrong or lacks access',
  API_NOT_FOUND: 'Pulumi Cloud answered 404 for the resource',
  API_RATE_LIMITED: 'Pulumi Cloud kept answering 429 after every allowed retry, or asked (Retry-After) to wait longer than retryMaxDelayMillis',
  API_SERVER_ERROR: 'Pulumi Cloud kept answering 5xx after every allowed retry',
  API_HTTP_ERROR: 'Pulumi Cloud answered another non-success status',
  API_TIMEOUT: 'a request to Pulumi Cloud timed out after every allowed retry',
  API_NETWORK: 'a request to Pulumi Cloud failed at the network level after every allowed retry',
  API_MALFORMED_RESPONSE: 'a Pulumi Cloud response body was not JSON or did not match the expected shape',
  API_PAGING_LOOP: 'a completed resource returned the same continuation token twice',
  API_ABORTED: 'a call to Pulumi Cloud was abandoned because the exporter is stopping',
  API_RESPONSE_TOO_LARGE: 'a Pulumi Cloud response body was larger than pulumi.maxResponseBytes',
  API_TOO_MANY_PAGES: 'a stack listing, update history or update event stream had more pages than pulumi.maxPagesPerListing',
  API_REDIRECT_REFUSED: 'Pulumi Cloud answered with a redirect to another origin, which is not followed',
  TRACE_EXPORT_FAILED: 'the trace sink did not accept the spans of an update',
  METRICS_PUSH_FAILED: 'the OTLP collector did not accept a metrics push (metricsPush.exporter=otlp)',
  STATE_ERROR: 'the state store failed a read or write',
  STATE_MIGRATION_FAILED: 'the state store schema could not be migrated',
  STATE_LOCKED: 'the SQLite state file is in use by another exporter process',
  STATE_LEASE_LOST: 'a replica lost the lease of a stack before committing one of its updates; the update is committed by the new holder',
  HTTP_LISTEN_FAILED: 'the HTTP server could not listen on the configured host and port',
  INTERNAL: 'an unexpected error; please report it',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ExporterErrorOptions {
  readonly cause?: unknown;
  readonly retryable?: boolean;
  /** Extra, non-secret context for logs (endpoint, status, ...). */
  readonly details?: Readonly<Record<string, string | number | boolean | undefined>>;
}

export class ExporterError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, string | number | boolean | undefined>>;

  constructor(code: ErrorCode, message: string, options: ExporterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ExporterError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

export function isExporterError(err: unknown): err is ExporterError {
  return err instanceof ExporterError;
}

/** The error code used for self-metrics and logs of any thrown value. */
export function errorCodeOf(err: unknown): ErrorCode {
  return isExporterError(err) ? err.code : 'INTERNAL';
}
