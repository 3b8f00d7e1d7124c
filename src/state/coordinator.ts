import type { StackRef } from '../domain/stack.js';
import type { StackRecord } from './state-store.js';

/**
 * Who exports which stack, and which replica serves the pulumi_* series, when several
 * exporter replicas share one state store. The poll cycle asks for its stacks every cycle;
 * the metrics endpoint asks whether this replica leads.
 */
export interface Coordinator {
  /**
   * The lease owner id passed into every commit (UpdateCommit.leaseOwner); undefined when
   * this replica is the only writer and commits need no lease.
   */
  readonly owner: string | undefined;
  /** Joins the replica set (takes part in leader election); called once before the first cycle. */
  start(): Promise<void>;
  /**
   * Keeps this replica's leases, gives back the ones above its share of `stacks` (every
   * listed stack) and claims up to its share of the unowned or expired ones. Returns the
   * stacks it may sync now.
   */
  claimStacks(stacks: readonly StackRecord[]): Promise<StackRecord[]>;
  /** True while this replica holds the stack's lease (checked again before each export). */
  holds(stack: StackRef): boolean;
  /** True while this replica is the elected leader, the one that serves pulumi_* series. */
  isLeader(): boolean;
  /** Releases leases and leadership so the other replicas take over at once. Idempotent. */
  stop(): Promise<void>;
}

/** One replica on its own store (SQLite): it syncs every stack and always leads. */
export class SingleReplicaCoordinator implements Coordinator {
  readonly owner = undefined;

  async start(): Promise<void> {}

  async claimStacks(stacks: readonly StackRecord[]): Promise<StackRecord[]> {
    return [...stacks];
  }

  holds(): boolean {
    return true;
  }

  isLeader(): boolean {
    return true;
  }

  async stop(): Promise<void> {}
}
