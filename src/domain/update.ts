import type { StackRef } from './stack.js';

/**
 * Result of an update as the history endpoint reports it. Pulumi Cloud uses
 * `not-started`, `in-progress`, `succeeded`, `failed`; anything else is kept verbatim.
 */
export type HistoryResult = 'not-started' | 'in-progress' | 'succeeded' | 'failed' | (string & {});

/** The `result` label value of the exported metrics and `cicd.pipeline.result` mapping. */
export type TerminalResult = 'succeeded' | 'failed' | 'cancelled';

export interface UserRef {
  readonly name: string;
  readonly githubLogin: string;
}

/** One entry of a stack's update history (service format), mapped to the domain. */
export interface UpdateInfo {
  readonly stack: StackRef;
  readonly updateId: string;
  /** update, refresh, destroy, import, rename, preview, ... (previews come from the previews endpoint). */
  readonly kind: string;
  readonly version: number;
  readonly result: HistoryResult;
  /** Unix seconds, service clock. */
  readonly startTime: number;
  /** Unix seconds; undefined (or 0 on the wire) while in progress. */
  readonly endTime?: number;
  readonly message: string;
  /** `git.head`, `ci.system`, ... Only string values are kept. */
  readonly environment: Readonly<Record<string, string>>;
  readonly resourceChanges: Readonly<Record<string, number>>;
  readonly resourceCount?: number;
  readonly requestedBy?: UserRef;
}

/** Preview kinds: `preview` as the domain names it, or the service's `Pupdate`, `Prefresh`, ... */
export function isPreviewKind(kind: string): boolean {
  return kind === 'preview' || /^P[a-z]/.test(kind);
}

export function isTerminal(result: HistoryResult): boolean {
  return result === 'succeeded' || result === 'failed';
}

/**
 * The exported result label: history says `failed` for a cancelled update, the
 * summary event says `canceled`; the metric uses `cancelled`.
 */
export function terminalResult(history: HistoryResult, summaryResult?: string): TerminalResult {
  if (summaryResult === 'canceled' || summaryResult === 'cancelled') return 'cancelled';
  if (history === 'succeeded') return 'succeeded';
  return 'failed';
}
