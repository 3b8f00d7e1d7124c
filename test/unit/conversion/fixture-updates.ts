import type { ConversionOptions } from '../../../src/conversion/convert-update.js';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { UpdateInfo } from '../../../src/domain/update.js';

/* The fixed synthetic updates the golden fixtures are converted with. */

export const GOLDEN_OPTIONS: ConversionOptions = {
  serviceName: 'pulumi',
  keepSameSteps: false,
  maxSpansPerTrace: 10_000,
  maxAttributeLength: 1024,
  consoleUrl: 'https://app.pulumi.com',
};

/** A CI run's environment as the CLI records it, including fields that must never be exported. */
export const ENVIRONMENT = {
  'git.head': '3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c',
  'git.headName': 'refs/heads/main',
  'git.dirty': 'false',
  'git.committer': 'Dana Dev',
  'git.committer.email': 'dana.committer@example.com',
  'git.author': 'Dana Dev',
  'git.author.email': 'dana.author@example.com',
  'vcs.kind': 'github.com',
  'vcs.owner': 'acme',
  'vcs.repo': 'infrastructure',
  'ci.system': 'GitHub',
  'ci.build.url': 'https://github.com/acme/infrastructure/actions/runs/4242',
  'ci.pr.number': '17',
  'exec.kind': 'cli',
  'stack.environments': '[{"id":"acme/secrets@3"}]',
};

/** Fixed update windows and results per fixture (Unix seconds). Engine fixtures stamp every event 0. */
export const UPDATES: Record<string, { result: string; startTime: number; endTime: number; version: number }> = {
  'engine-preview-create-before-delete-replace.ndjson': { result: 'succeeded', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 3 },
  'engine-refresh.ndjson': { result: 'succeeded', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 4 },
  'engine-up-delete-before-replace.ndjson': { result: 'succeeded', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 5 },
  'engine-up-failures-continue-on-error.ndjson': { result: 'failed', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 6 },
  'engine-up-policy-violations.ndjson': { result: 'failed', startTime: 1_700_000_000, endTime: 1_700_000_001, version: 7 },
  // Events 1649400238..1649400241, summary durationSeconds 2.
  'real-preview-nested-components.ndjson': { result: 'succeeded', startTime: 1_649_400_237, endTime: 1_649_400_242, version: 12 },
  // Deliberately narrower than the events (1649558909..1649558922) to show clamping into the window.
  'real-preview-replace.ndjson': { result: 'succeeded', startTime: 1_649_558_910, endTime: 1_649_558_921, version: 8 },
  // Events 1648798253..1648798755, summary durationSeconds 502.
  'real-up-create-eks.ndjson': { result: 'succeeded', startTime: 1_648_798_252, endTime: 1_648_798_756, version: 1 },
  // Events 1717087374..1717087382; history says failed (the old summary has no result field).
  'real-up-failed-status-unknown.ndjson': { result: 'failed', startTime: 1_717_087_373, endTime: 1_717_087_383, version: 9 },
  // Events 1648799480..1648799483.
  'real-up-update-one-resource.ndjson': { result: 'succeeded', startTime: 1_648_799_479, endTime: 1_648_799_484, version: 2 },
};

function kindOf(fixture: string): string {
  if (fixture.includes('-preview-')) return 'preview';
  if (fixture.includes('-refresh')) return 'refresh';
  if (fixture.includes('-destroy')) return 'destroy';
  return 'update';
}

/** The stack the fixture's URNs name (urn:pulumi:<stack>::<project>::...). */
function stackOf(events: readonly EngineEvent[]): { project: string; stack: string } {
  for (const e of events) {
    const urn =
      e.type === 'resourcePreEvent' ? e.metadata.urn : e.type === 'policyEvent' ? e.resourceUrn : e.type === 'diagnosticEvent' ? e.urn : undefined;
    const m = urn ? /^urn:pulumi:([^:]+)::([^:]+)::/.exec(urn) : null;
    if (m) return { stack: m[1]!, project: m[2]! };
  }
  return { project: 'test', stack: 'test' };
}

export function fixtureUpdate(fixture: string, events: readonly EngineEvent[]): UpdateInfo {
  const fixed = UPDATES[fixture];
  if (!fixed) throw new Error(`no synthetic update for ${fixture}: add it to UPDATES`);
  const { project, stack } = stackOf(events);
  return {
    stack: { org: 'acme', project, stack },
    updateId: `00000000-0000-4000-8000-${String(fixed.version).padStart(12, '0')}`,
    kind: kindOf(fixture),
    version: fixed.version,
    result: fixed.result,
    startTime: fixed.startTime,
    endTime: fixed.endTime,
    message: `golden run of ${fixture}`,
    environment: ENVIRONMENT,
    resourceChanges: {},
    requestedBy: { name: 'Dana Dev', githubLogin: 'dana' },
  };
}
