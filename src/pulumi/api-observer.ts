/**
 * What the Pulumi client reports about its own requests. Implemented by src/metrics/
 * (pulumi_exporter_api_* self-metrics); a no-op by default.
 */
export type ApiEndpoint = 'listStacks' | 'listUpdates' | 'engineEvents' | 'latestPreviews' | 'versionPreviews' | 'updateStatus';

/** Status code as a string ("200", "429", ...) or an error class. */
export type ApiResponseCode = string | 'timeout' | 'network' | 'malformed';

export type RetryReason = '429' | '5xx' | 'network' | 'timeout';

export interface ApiObserver {
  request(endpoint: ApiEndpoint, code: ApiResponseCode, durationSeconds: number): void;
  retry(endpoint: ApiEndpoint, reason: RetryReason): void;
}

export const noopApiObserver: ApiObserver = {
  request: () => undefined,
  retry: () => undefined,
};
