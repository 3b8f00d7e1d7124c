/**
 * The label values of the webhook self-metrics and the hooks that count them (implemented by
 * ExporterMetrics). Every value is from a fixed set, so a sender cannot create series.
 */

/**
 * What the endpoint did with a delivery:
 * - accepted: a sync of its stack was asked for;
 * - duplicate: its Pulumi-Webhook-Id was seen a moment ago (nothing more to do);
 * - ignored: a kind that changes nothing the exporter reads (ping, previews, unknown kinds);
 * - filtered: its org is not configured or its stack is excluded by the org's filters;
 * - unauthorized: missing, malformed or wrong signature while a secret is set (401);
 * - malformed: not a JSON object, or a stack event without valid names (400);
 * - too_large: the body exceeded webhooks.maxBodyBytes (413).
 */
export const WEBHOOK_OUTCOMES = ['accepted', 'duplicate', 'ignored', 'filtered', 'unauthorized', 'malformed', 'too_large'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/**
 * What became of a sync a delivery asked for:
 * - synced / failed: the sync ran (a failure is retried by the next poll cycle);
 * - coalesced: joined a sync of the same stack already waiting (no extra API calls);
 * - unknown_stack: the stack is not in its org's stack list, even after listing it again;
 * - not_held: another replica holds the stack's lease (it syncs the stack on its next cycle).
 */
export const WEBHOOK_SYNC_RESULTS = ['synced', 'failed', 'coalesced', 'unknown_stack', 'not_held'] as const;
export type WebhookSyncResult = (typeof WEBHOOK_SYNC_RESULTS)[number];

/** Event kinds kept as label values (shared pulumi-webhooks.md section 2.1); any other is `other`. */
export const WEBHOOK_KINDS: ReadonlySet<string> = new Set([
  'stack_update',
  'stack_preview',
  'stack',
  'deployment',
  'drift_detection',
  'drift_remediation',
  'policy_violation',
  'ping',
  'environment',
  'environment_revision',
]);

export interface WebhookMetrics {
  webhookDelivery(kind: string, outcome: WebhookOutcome): void;
  webhookSync(result: WebhookSyncResult): void;
}
