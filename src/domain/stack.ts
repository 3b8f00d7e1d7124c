/** Identifies one Pulumi stack. Names are as Pulumi Cloud spells them (not URL-encoded). */
export interface StackRef {
  readonly org: string;
  readonly project: string;
  readonly stack: string;
}

/** One row of the stack list (`GET /api/user/stacks`). */
export interface StackSummary extends StackRef {
  /** Unix seconds: START time of the stack's newest update; absent when never updated. */
  readonly lastUpdate?: number;
  /** Resources in the stack; absent when unknown. */
  readonly resourceCount?: number;
}

export function stackKey(ref: StackRef): string {
  return `${ref.org}/${ref.project}/${ref.stack}`;
}

export function parseStackKey(key: string): StackRef | undefined {
  const parts = key.split('/');
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) return undefined;
  const [org, project, stack] = parts as [string, string, string];
  return { org, project, stack };
}
