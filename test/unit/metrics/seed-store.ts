import type { StackRef } from '../../../src/domain/stack.js';
import type { PolicyViolation, ResourceOperation } from '../../../src/domain/trace.js';
import type { TerminalResult } from '../../../src/domain/update.js';
import type { ExporterMetrics } from '../../../src/metrics/exporter-metrics.js';
import { DEFAULT_METRIC_DETAIL, updateMetricDeltas } from '../../../src/metrics/update-deltas.js';
import type { StateStore } from '../../../src/state/state-store.js';

export const PROD: StackRef = { org: 'acme', project: 'web', stack: 'prod' };
export const STAGING: StackRef = { org: 'acme', project: 'web', stack: 'staging' };

interface SeedUpdate {
  readonly stack: StackRef;
  readonly updateId: string;
  readonly version: number;
  readonly kind: string;
  readonly result: TerminalResult;
  readonly startTime: number;
  readonly endTime: number;
  readonly resourceChanges?: Record<string, number>;
  readonly operations?: ResourceOperation[];
  readonly policyViolations?: PolicyViolation[];
}

const step = (op: string, resourceType: string, result: ResourceOperation['result'], durationSeconds: number, name: string): ResourceOperation => ({
  urn: `urn:pulumi:prod::web::${resourceType}::${name}`,
  op,
  resourceType,
  result,
  durationSeconds,
});

/** Updates whose expected exposition the metrics tests spell out line by line. */
export const SEED_UPDATES: readonly SeedUpdate[] = [
  {
    stack: PROD,
    updateId: 'a1b2c3d4-0001',
    version: 1,
    kind: 'update',
    result: 'succeeded',
    startTime: 1_000,
    endTime: 1_042,
    resourceChanges: { create: 2, same: 5 },
    operations: [
      step('create', 'aws:s3/bucket:Bucket', 'succeeded', 1, 'site'),
      step('create', 'aws:s3/bucket:Bucket', 'succeeded', 12, 'logs'),
    ],
  },
  {
    stack: PROD,
    updateId: 'a1b2c3d4-0002',
    version: 2,
    kind: 'update',
    result: 'succeeded',
    startTime: 2_000,
    endTime: 2_400,
    resourceChanges: { same: 7 },
  },
  {
    stack: PROD,
    updateId: 'a1b2c3d4-0003',
    version: 3,
    kind: 'update',
    result: 'failed',
    startTime: 3_000,
    endTime: 3_005,
    resourceChanges: { create: 1, update: 1 },
    operations: [
      step('create', 'aws:s3/bucket:Bucket', 'succeeded', 2, 'assets'),
      step('update', 'aws:iam/role:Role', 'failed', 4, 'deployer'),
      step('delete', 'aws:s3/bucketPolicy:BucketPolicy', 'interrupted', 0, 'old'),
    ],
    policyViolations: [{ policyPack: 'aws-guard', policy: 's3-no-public-read', enforcementLevel: 'mandatory' }],
  },
  {
    stack: STAGING,
    updateId: 'a1b2c3d4-0004',
    version: 7,
    kind: 'destroy',
    result: 'cancelled',
    startTime: 4_000,
    endTime: 4_010,
  },
];

/** Two listed stacks, four exported updates and three running ones (one update, two previews). */
export async function seedStore(store: StateStore): Promise<void> {
  await store.migrate();
  await store.replaceOrgStacks(
    'acme',
    [
      { ...PROD, lastUpdate: 5_100, resourceCount: 12 },
      { ...STAGING, lastUpdate: 4_000, resourceCount: 3 },
    ],
    1_000_000,
  );
  for (const u of SEED_UPDATES) {
    const deltas = updateMetricDeltas({
      stack: u.stack,
      kind: u.kind,
      result: u.result,
      startTime: u.startTime,
      endTime: u.endTime,
      resourceChanges: u.resourceChanges ?? {},
      operations: u.operations ?? [],
      policyViolations: u.policyViolations ?? [],
      updateId: u.updateId,
      detail: DEFAULT_METRIC_DETAIL,
    });
    const { resourceChanges: _rc, operations: _ops, policyViolations: _pv, ...update } = u;
    await store.commitUpdate({ update, deltas, exportedAtMs: u.endTime * 1000 + 5_000 });
  }
  await store.setInProgress(PROD, [
    { stack: PROD, updateId: 'a1b2c3d4-0005', kind: 'update', version: 8, startTime: 5_000 },
    { stack: PROD, updateId: 'a1b2c3d4-0006', kind: 'preview', version: 0, startTime: 5_100 },
    { stack: PROD, updateId: 'a1b2c3d4-0007', kind: 'preview', version: 0, startTime: 5_050 },
  ]);
}

/** Touches every self-metric once, with the values the tests expect. */
export function exerciseSelfMetrics(metrics: ExporterMetrics): void {
  metrics.request('listStacks', '200', 0.2);
  metrics.request('listUpdates', '429', 0.05);
  metrics.request('engineEvents', 'timeout', 30);
  metrics.retry('listUpdates', '429');
  metrics.spansExported(17);
  metrics.exportFailed('http_5xx');
  metrics.pollFinished('success', 12.5, 1_700_000_000_000);
  metrics.setStacksWatched('acme', 2);
  metrics.setBacklog(4);
  metrics.updateExported('update', 90);
  metrics.engineEvents({ resourcePreEvent: 3, resOutputsEvent: 2, unknown: 1 });
  metrics.error('API_TIMEOUT');
  metrics.setLeader(true);
  metrics.webhookDelivery('stack_update', 'accepted');
  metrics.webhookSync('synced');
}
