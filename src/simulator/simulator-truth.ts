/** The simulator's ground truth, computed from its own generated plan and never from exporter code. */

export interface SimulatorTruth {
  stacks: TruthStack[];
}

export interface TruthStack {
  org: string;
  project: string;
  stack: string;
  resourceCount: number;
  /** What the stack list reports. */
  lastUpdate?: number;
  /** Oldest first, history updates only. */
  updates: TruthUpdate[];
  /** Previews of the latest version (what latest/previews serves), oldest first. */
  previews: TruthUpdate[];
  /** Every preview of every version (what updates/{version}/previews serve together), oldest first. */
  allPreviews: TruthUpdate[];
}

export interface TruthUpdate {
  updateId: string;
  version: number;
  kind: string;
  historyResult: 'succeeded' | 'failed' | 'in-progress';
  result: 'succeeded' | 'failed' | 'cancelled' | 'in-progress';
  startTime: number;
  endTime?: number;
  /** Only non-zero keys, per shared pulumi-api.md 4.4. */
  resourceChanges: Record<string, number>;
  /** One entry per resourcePreEvent; null for the fixture stack. */
  resourceOperations: Array<{ op: string; type: string; result: 'succeeded' | 'failed' | 'interrupted' }> | null;
  policyViolations: Array<{ policyPack: string; policy: string; enforcementLevel: string }>;
  /** Events served by /events once complete. */
  eventCount: number;
}
