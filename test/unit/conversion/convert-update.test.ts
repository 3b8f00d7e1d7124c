import { describe, expect, it } from 'vitest';
import { convertUpdate, type ConversionResult } from '../../../src/conversion/convert-update.js';
import { rootSpanIdFor, stepSpanIdFor, traceIdFor } from '../../../src/conversion/trace-ids.js';
import type { EngineEvent } from '../../../src/domain/engine-event.js';
import type { SpanRecord } from '../../../src/domain/trace.js';
import {
  OPTIONS,
  STACK_URN,
  T0,
  diag,
  failed,
  outputs,
  policy,
  pre,
  step,
  summary,
  update,
  urn,
} from './event-builders.js';

const BUCKET = urn('bucket');
const COMPONENT_TYPE = 'acme:index:Web';
const COMPONENT = urn('web', COMPONENT_TYPE);
const CHILD = urn('web-bucket', 'aws:s3/bucket:Bucket', `${COMPONENT_TYPE}$`);

function spansOf(r: ConversionResult, u: string): SpanRecord[] {
  return r.trace.spans.filter((s) => s.attributes['pulumi.resource.urn'] === u);
}

function only(r: ConversionResult, u: string): SpanRecord {
  const spans = spansOf(r, u);
  expect(spans).toHaveLength(1);
  return spans[0]!;
}

function root(r: ConversionResult): SpanRecord {
  return r.trace.spans[0]!;
}

function convert(events: EngineEvent[], overrides: Parameters<typeof update>[0] = {}, options = OPTIONS): ConversionResult {
  return convertUpdate(update(overrides), events, options);
}

describe('pairing resource steps (shared pulumi-api.md 6.5)', () => {
  it('pairs a refresh pre with an outputs event carrying the result op and records that result', () => {
    const r = convert([pre('refresh', BUCKET, T0 + 1), outputs('update', BUCKET, T0 + 3, { diffs: ['tags'] })]);
    const span = only(r, BUCKET);
    expect(span.name).toBe('refresh aws:s3/bucket:Bucket');
    expect(span.attributes['pulumi.resource.refresh_result']).toBe('update');
    expect(span.attributes['pulumi.resource.diffs']).toEqual(['tags']);
    expect(span.endTimeMs - span.startTimeMs).toBe(2000);
    expect(r.operations).toEqual([
      { urn: BUCKET, op: 'refresh', resourceType: 'aws:s3/bucket:Bucket', result: 'succeeded', durationSeconds: 2 },
    ]);
  });

  it('matches refresh outputs to refresh steps of the same URN in FIFO order', () => {
    const r = convert([
      pre('refresh', BUCKET, T0 + 1),
      pre('refresh', BUCKET, T0 + 2),
      outputs('delete', BUCKET, T0 + 5),
      outputs('same', BUCKET, T0 + 7),
    ]);
    const [first, second] = spansOf(r, BUCKET);
    expect(first?.attributes['pulumi.resource.refresh_result']).toBe('delete');
    expect(first?.endTimeMs).toBe((T0 + 5) * 1000);
    expect(second?.attributes['pulumi.resource.refresh_result']).toBe('same');
    expect(second?.endTimeMs).toBe((T0 + 7) * 1000);
  });

  it('gives each step of a create-before-delete replacement its own span on the same URN', () => {
    const r = convert([
      ...step('create-replacement', BUCKET, T0 + 1, T0 + 4, { keys: ['name'], diffs: ['name'] }),
      ...step('replace', BUCKET, T0 + 4, T0 + 4, { keys: ['name'], diffs: ['name'] }),
      ...step('delete-replaced', BUCKET, T0 + 9, T0 + 12),
    ]);
    const spans = spansOf(r, BUCKET);
    expect(spans.map((s) => s.name)).toEqual([
      'create-replacement aws:s3/bucket:Bucket',
      'replace aws:s3/bucket:Bucket',
      'delete-replaced aws:s3/bucket:Bucket',
    ]);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(3);
    expect(spans.map((s) => (s.endTimeMs - s.startTimeMs) / 1000)).toEqual([3, 0, 3]);
    expect(spans[0]?.attributes['pulumi.resource.replace_keys']).toEqual(['name']);
    expect(spans[2]?.attributes['pulumi.resource.replace_keys']).toBeUndefined();
    expect(r.operations.map((o) => o.op)).toEqual(['create-replacement', 'replace', 'delete-replaced']);
  });

  it('closes the open step whose op matches, not simply the oldest, when several are open on one URN', () => {
    const r = convert([
      pre('create-replacement', BUCKET, T0 + 1),
      pre('replace', BUCKET, T0 + 2),
      outputs('replace', BUCKET, T0 + 3),
      outputs('create-replacement', BUCKET, T0 + 8),
    ]);
    const [cr, rep] = spansOf(r, BUCKET);
    expect(cr?.endTimeMs).toBe((T0 + 8) * 1000);
    expect(rep?.endTimeMs).toBe((T0 + 3) * 1000);
  });

  it('falls back to the oldest open step when no op matches', () => {
    const r = convert([pre('update', BUCKET, T0 + 1), pre('create', BUCKET, T0 + 2), outputs('same', BUCKET, T0 + 5)]);
    const [upd, create] = spansOf(r, BUCKET);
    expect(upd?.attributes['cicd.pipeline.task.run.result']).toBe('success');
    expect(create?.attributes['pulumi.resource.interrupted']).toBe(true);
  });

  it('keeps the delete-before-replace order: delete-replaced, replace, create-replacement', () => {
    const r = convert([
      ...step('delete-replaced', BUCKET, T0 + 1, T0 + 2),
      ...step('replace', BUCKET, T0 + 2, T0 + 2),
      ...step('create-replacement', BUCKET, T0 + 2, T0 + 6),
    ]);
    expect(spansOf(r, BUCKET).map((s) => s.attributes['pulumi.resource.operation'])).toEqual([
      'delete-replaced',
      'replace',
      'create-replacement',
    ]);
    expect(r.operations.every((o) => o.result === 'succeeded')).toBe(true);
  });

  it('ends a failed step with status ERROR and the preceding error diagnostic, colour codes stripped', () => {
    const r = convert([
      pre('create', BUCKET, T0 + 1),
      diag('<{%fg 1%}>error: <{%reset%}>creating bucket: \u001b[31mAccessDenied\u001b[0m<{%reset%}>\n', BUCKET, 'error', T0 + 4),
      failed('create', BUCKET, T0 + 4, 1),
    ]);
    const span = only(r, BUCKET);
    expect(span.status).toEqual({ code: 'error', message: 'error: creating bucket: AccessDenied' });
    expect(span.attributes['cicd.pipeline.task.run.result']).toBe('failure');
    expect(span.attributes['pulumi.resource.failure_state']).toBe('partial');
    expect(span.events).toEqual([
      { name: 'diagnostic', timeMs: (T0 + 4) * 1000, attributes: { severity: 'error', message: 'error: creating bucket: AccessDenied' } },
    ]);
    expect(r.operations[0]).toMatchObject({ result: 'failed', durationSeconds: 3 });
  });

  it('does not reuse an error diagnostic that came before the failing step began', () => {
    const r = convert([
      diag('old trouble', BUCKET, 'error', T0),
      pre('update', BUCKET, T0 + 1),
      failed('update', BUCKET, T0 + 2, 2),
    ]);
    expect(only(r, BUCKET).status).toEqual({ code: 'error', message: 'update step failed (resource state unknown)' });
  });

  it('ignores and counts an outputs event with no open step instead of failing', () => {
    const r = convert([outputs('create', BUCKET, T0 + 1), ...step('create', urn('other'), T0 + 1, T0 + 2)]);
    expect(r.unmatchedTerminalEvents).toBe(1);
    expect(spansOf(r, BUCKET)).toHaveLength(0);
    expect(r.operations).toHaveLength(1);
    expect(r.eventCounts['resOutputsEvent']).toBe(2);
  });

  it('closes a preview component with its first outputs event and ignores the second', () => {
    const r = convert(
      [
        pre('same', COMPONENT, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
        outputs('same', COMPONENT, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
        ...step('update', CHILD, T0 + 2, T0 + 3, { parent: COMPONENT }),
        outputs('same', COMPONENT, T0 + 9, { custom: false, type: COMPONENT_TYPE }),
      ],
      { kind: 'preview' },
    );
    const component = only(r, COMPONENT);
    expect(component.endTimeMs).toBe((T0 + 1) * 1000);
    expect(only(r, CHILD).parentSpanId).toBe(component.spanId);
    expect(r.unmatchedTerminalEvents).toBe(1);
  });

  it('marks a step that never finished as interrupted, ending at the update end with status unset', () => {
    const r = convert([pre('create', BUCKET, T0 + 10)]);
    const span = only(r, BUCKET);
    expect(span.attributes['pulumi.resource.interrupted']).toBe(true);
    expect(span.attributes['cicd.pipeline.task.run.result']).toBeUndefined();
    expect(span.status).toEqual({ code: 'unset' });
    expect(span.endTimeMs).toBe((T0 + 100) * 1000);
    expect(r.operations[0]).toMatchObject({ result: 'interrupted', durationSeconds: 0 });
  });

  it('leaves a failed preview step (error diagnostic, no failed event) open and interrupted, with the diagnostic on it', () => {
    const r = convert([pre('create', BUCKET, T0 + 1), diag('bad config', BUCKET, 'error', T0 + 2)], { kind: 'preview' });
    const span = only(r, BUCKET);
    expect(span.attributes['pulumi.resource.interrupted']).toBe(true);
    expect(span.events.map((e) => e.attributes['message'])).toEqual(['bad config']);
  });
});

describe('span tree shape', () => {
  it('parents a child to its component span and a resource without a parent span to the root', () => {
    const r = convert([
      ...step('create', COMPONENT, T0 + 1, T0 + 20, { custom: false, type: COMPONENT_TYPE }),
      ...step('create', CHILD, T0 + 2, T0 + 3, { parent: COMPONENT }),
      ...step('create', BUCKET, T0 + 2, T0 + 3, { parent: STACK_URN }),
    ]);
    expect(only(r, CHILD).parentSpanId).toBe(only(r, COMPONENT).spanId);
    expect(only(r, BUCKET).parentSpanId).toBe(root(r).spanId);
    expect(only(r, COMPONENT).parentSpanId).toBe(root(r).spanId);
  });

  it('keeps same steps that parent a kept span, recursively, and drops the other same steps', () => {
    const grand = urn('site', 'acme:index:Site');
    const mid = urn('web', COMPONENT_TYPE, 'acme:index:Site$');
    const leaf = urn('bucket', 'aws:s3/bucket:Bucket', `acme:index:Site$${COMPONENT_TYPE}$`);
    const idle = urn('idle');
    const events = [
      ...step('same', STACK_URN, T0, T0, { parent: '', custom: false, type: 'pulumi:pulumi:Stack' }),
      ...step('same', grand, T0 + 1, T0 + 1, { custom: false }),
      ...step('same', mid, T0 + 1, T0 + 1, { parent: grand, custom: false }),
      ...step('same', idle, T0 + 1, T0 + 1),
      ...step('update', leaf, T0 + 2, T0 + 5, { parent: mid }),
    ];
    const r = convert(events);
    expect(r.trace.spans.slice(1).map((s) => s.attributes['pulumi.resource.name'])).toEqual(['proj-dev', 'site', 'web', 'bucket']);
    expect(only(r, leaf).parentSpanId).toBe(only(r, mid).spanId);
    expect(only(r, mid).parentSpanId).toBe(only(r, grand).spanId);
    expect(only(r, grand).parentSpanId).toBe(only(r, STACK_URN).spanId);
    expect(r.operations).toHaveLength(5);

    const all = convert(events, {}, { ...OPTIONS, keepSameSteps: true });
    expect(all.trace.spans).toHaveLength(6);
  });

  it('parents children deleted before their component to the component delete step that follows', () => {
    const r = convert([
      ...step('delete', CHILD, T0 + 1, T0 + 2, { parent: COMPONENT }),
      ...step('delete', COMPONENT, T0 + 3, T0 + 3, { custom: false, type: COMPONENT_TYPE }),
    ]);
    expect(only(r, CHILD).parentSpanId).toBe(only(r, COMPONENT).spanId);
  });

  it('parents a resource moved out of a component (new.parent empty, old.parent the component) to the root', () => {
    const moved = urn('moved');
    const events = [
      ...step('same', COMPONENT, T0 + 1, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
      ...step('update', moved, T0 + 2, T0 + 4, { parent: '', oldParent: COMPONENT, diffs: ['tags'] }),
    ];
    const r = convert(events);
    expect(only(r, moved).parentSpanId).toBe(root(r).spanId);
    // The component's same step parents nothing kept, so it is dropped.
    expect(spansOf(r, COMPONENT)).toEqual([]);
    // A kept same step follows the same rule.
    const sameMoved = convert(
      [...step('same', COMPONENT, T0 + 1, T0 + 1, { custom: false, type: COMPONENT_TYPE }), ...step('same', moved, T0 + 2, T0 + 2, { parent: '', oldParent: COMPONENT })],
      {},
      { ...OPTIONS, keepSameSteps: true },
    );
    expect(only(sameMoved, moved).parentSpanId).toBe(root(sameMoved).spanId);
  });

  it('parents a step without new state (a delete) by old.parent', () => {
    const r = convert([
      ...step('create', COMPONENT, T0 + 1, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
      ...step('delete', CHILD, T0 + 2, T0 + 3, { parent: COMPONENT }),
    ]);
    expect(only(r, CHILD).parentSpanId).toBe(only(r, COMPONENT).spanId);
  });

  it("parents a child to its parent URN's latest step that started before it, even one that never finished", () => {
    // An update that destroys a component: its same step never finishes (components get no
    // outputs in an update), a child is deleted, then the component itself.
    const events = [
      pre('same', COMPONENT, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
      ...step('delete', CHILD, T0 + 2, T0 + 3, { parent: COMPONENT }),
      ...step('delete', COMPONENT, T0 + 4, T0 + 4, { custom: false, type: COMPONENT_TYPE }),
    ];
    const r = convert(events);
    const [same, del] = spansOf(r, COMPONENT);
    expect(same?.attributes['pulumi.resource.operation']).toBe('same');
    expect(same?.attributes['pulumi.resource.interrupted']).toBe(true);
    expect(del?.attributes['pulumi.resource.operation']).toBe('delete');
    expect(only(r, CHILD).parentSpanId).toBe(same?.spanId);
    // The same rule when every same step is kept.
    const all = convert(events, {}, { ...OPTIONS, keepSameSteps: true });
    expect(only(all, CHILD).parentSpanId).toBe(spansOf(all, COMPONENT)[0]?.spanId);
  });

  it('parents a refresh step that moves a resource by its new parent, not its old one', () => {
    const other = urn('api', 'acme:index:Api');
    const moved = urn('moved');
    const r = convert([
      ...step('create', COMPONENT, T0 + 1, T0 + 1, { custom: false, type: COMPONENT_TYPE }),
      ...step('create', other, T0 + 1, T0 + 1, { custom: false, type: 'acme:index:Api' }),
      pre('refresh', moved, T0 + 2, { parent: other, oldParent: COMPONENT }),
      outputs('same', moved, T0 + 3, { parent: other, oldParent: COMPONENT }),
    ]);
    expect(only(r, moved).parentSpanId).toBe(only(r, other).spanId);
  });

  it('never builds a parent cycle from steps that name each other as parent', () => {
    const a = urn('a');
    const b = urn('b');
    const r = convert([...step('create', a, T0, T0, { parent: b }), ...step('create', b, T0, T0, { parent: a })]);
    const ids = new Set(r.trace.spans.map((s) => s.spanId));
    for (const s of r.trace.spans.slice(1)) expect(ids.has(s.parentSpanId!)).toBe(true);
    expect([only(r, a).parentSpanId, only(r, b).parentSpanId]).toContain(root(r).spanId);
  });

  it('uses the documented id formulas, n being the pre event position among all events', () => {
    const r = convert([diag('hello', undefined, 'info'), ...step('create', BUCKET)]);
    const traceId = traceIdFor({ org: 'acme', project: 'proj', stack: 'dev' }, 'u-1');
    expect(r.trace.traceId).toBe(traceId);
    expect(root(r).spanId).toBe(rootSpanIdFor(traceId));
    expect(only(r, BUCKET).spanId).toBe(stepSpanIdFor(traceId, BUCKET, 'create', 1));
  });
});

describe('timestamps', () => {
  it('clamps spans into the update window and never ends a span before it starts', () => {
    const r = convert([
      ...step('create', BUCKET, T0 - 50, T0 + 500),
      pre('update', urn('b2'), T0 + 30),
      outputs('update', urn('b2'), T0 + 10),
      ...step('create', urn('zero'), 0, 0),
    ]);
    const bucket = only(r, BUCKET);
    expect([bucket.startTimeMs, bucket.endTimeMs]).toEqual([T0 * 1000, (T0 + 100) * 1000]);
    const backwards = only(r, urn('b2'));
    expect(backwards.endTimeMs).toBe(backwards.startTimeMs);
    const zero = only(r, urn('zero'));
    expect([zero.startTimeMs, zero.endTimeMs]).toEqual([T0 * 1000, T0 * 1000]);
  });

  it('ends an update still in progress at its last event time', () => {
    const r = convert([...step('create', BUCKET, T0 + 5, T0 + 7), pre('create', urn('slow'), T0 + 8)], {
      endTime: undefined,
      result: 'in-progress',
    });
    expect(root(r).endTimeMs).toBe((T0 + 8) * 1000);
    expect(only(r, urn('slow')).endTimeMs).toBe((T0 + 8) * 1000);
    expect(root(r).attributes['cicd.pipeline.result']).toBeUndefined();
    expect(root(r).attributes['pulumi.update.result']).toBe('in-progress');
  });
});

describe('root span', () => {
  it('names the update and links it to the console', () => {
    const r = convert([], { message: 'ship it', requestedBy: { name: 'Dana', githubLogin: 'dana' }, resourceChanges: { create: 2, same: 0 } });
    const span = root(r);
    expect(span.name).toBe('update proj/dev');
    expect(span.kind).toBe('server');
    expect(span.parentSpanId).toBeUndefined();
    expect([span.startTimeMs, span.endTimeMs]).toEqual([T0 * 1000, (T0 + 100) * 1000]);
    expect(span.attributes).toMatchObject({
      'cicd.pipeline.name': 'proj/dev',
      'cicd.pipeline.run.id': 'u-1',
      'cicd.pipeline.run.url.full': 'https://app.pulumi.com/acme/proj/dev/updates/42',
      'cicd.pipeline.result': 'success',
      'pulumi.update.kind': 'update',
      'pulumi.update.version': 42,
      'pulumi.update.message': 'ship it',
      'pulumi.update.requested_by': 'dana',
      'pulumi.update.resource_changes.create': 2,
      'pulumi.update.resource_changes.same': 0,
    });
    expect(r.trace.resource).toEqual({ 'service.name': 'pulumi', 'pulumi.org': 'acme', 'pulumi.project': 'proj', 'pulumi.stack': 'dev' });
  });

  it('links previews to the previews page by update id, for the P-prefixed service kinds too', () => {
    for (const kind of ['preview', 'Pupdate']) {
      const r = convertUpdate(update({ kind }), [], { ...OPTIONS, consoleUrl: 'https://app.example.com/' });
      expect(root(r).attributes['cicd.pipeline.run.url.full']).toBe('https://app.example.com/acme/proj/dev/previews/u-1');
    }
  });

  it('falls back to the summary resource changes when history has none', () => {
    const r = convert([summary('succeeded', { resourceChanges: { update: 3 } })]);
    expect(root(r).attributes['pulumi.update.resource_changes.update']).toBe(3);
  });

  it.each([
    ['succeeded', undefined, 'succeeded', 'success', 'unset'],
    ['failed', 'failed', 'failed', 'failure', 'error'],
    ['failed', 'canceled', 'cancelled', 'cancellation', 'unset'],
  ] as const)('maps history %s with summary %s to result %s / %s', (history, summaryResult, result, pipeline, code) => {
    const r = convert([summary(summaryResult)], { result: history });
    expect(r.result).toBe(result);
    expect(root(r).attributes['cicd.pipeline.result']).toBe(pipeline);
    expect(root(r).status.code).toBe(code);
  });

  it('classifies a failed update in error.type and uses the update-level error diagnostic as status', () => {
    const failedStep = convert([pre('create', BUCKET), diag('boom', BUCKET), failed('create', BUCKET), diag('<{%reset%}>update failed<{%reset%}>\n')], {
      result: 'failed',
    });
    expect(root(failedStep).attributes['error.type']).toBe('resource_operation_failed');
    expect(root(failedStep).status).toEqual({ code: 'error', message: 'update failed' });
    expect(root(failedStep).events.map((e) => e.attributes['message'])).toEqual(['update failed']);

    const policyOnly = convert([policy('no-public-buckets', 'mandatory')], { result: 'failed' });
    expect(root(policyOnly).attributes['error.type']).toBe('policy_violation');
    const other = convert([diag('program crashed', undefined, 'info#err')], { result: 'failed' });
    expect(root(other).attributes['error.type']).toBe('update_failed');
  });

  it('maps the environment to vcs.* and CI attributes and never copies e-mails or unknown keys', () => {
    const r = convert([], {
      environment: {
        'git.head': 'abc123',
        'git.headName': 'refs/tags/v1.2.0',
        'git.committer.email': 'c@example.com',
        'git.author.email': 'a@example.com',
        'git.committer': 'Committer Name',
        'vcs.kind': 'gitlab.com',
        'vcs.owner': 'group',
        'vcs.repo': 'sub/project',
        'ci.system': 'GitLab CI/CD',
        'ci.build.url': 'https://user:pw@gitlab.com/group/sub/project/-/jobs/9',
        'stack.environments': '[{"id":"x/y@1"}]',
        'updatePlan': 'true',
      },
    });
    const attrs = root(r).attributes;
    expect(attrs).toMatchObject({
      'vcs.ref.head.revision': 'abc123',
      'vcs.ref.head.name': 'v1.2.0',
      'vcs.ref.head.type': 'tag',
      'vcs.provider.name': 'gitlab',
      'vcs.owner.name': 'group',
      'vcs.repository.name': 'project',
      'vcs.repository.url.full': 'https://gitlab.com/group/sub/project',
      'pulumi.ci.system': 'GitLab CI/CD',
      'pulumi.ci.build.url': 'https://gitlab.com/group/sub/project/-/jobs/9',
    });
    const json = JSON.stringify(r);
    for (const leak of ['example.com', 'Committer Name', 'x/y@1', 'user:pw', 'updatePlan']) expect(json).not.toContain(leak);
  });

  it('builds the Azure DevOps repository link and skips the link for an unusable host', () => {
    const azure = convert([], { environment: { 'vcs.kind': 'dev.azure.com', 'vcs.owner': 'org', 'vcs.repo': 'proj/_git/repo' } });
    expect(root(azure).attributes['vcs.repository.url.full']).toBe('https://dev.azure.com/org/proj/_git/repo');
    expect(root(azure).attributes['vcs.provider.name']).toBeUndefined();
    const odd = convert([], { environment: { 'vcs.kind': 'not a host', 'vcs.owner': 'o', 'vcs.repo': 'r' } });
    expect(root(odd).attributes['vcs.repository.url.full']).toBeUndefined();
  });
});

describe('span events, limits and counting', () => {
  it('puts diagnostics and policy violations on the open step of their URN, else on the root', () => {
    const r = convert([
      pre('create', BUCKET, T0 + 1),
      diag('warned', BUCKET, 'warning', T0 + 2),
      policy('tags-required', 'advisory', BUCKET, T0 + 2),
      outputs('create', BUCKET, T0 + 2),
      diag('after the step finished', BUCKET, 'warning', T0 + 3),
      pre('same', urn('quiet'), T0 + 1),
      diag('about a dropped same step', urn('quiet'), 'info'),
      outputs('same', urn('quiet'), T0 + 1),
      policy('stack-wide', 'mandatory'),
    ]);
    expect(only(r, BUCKET).events.map((e) => e.name)).toEqual(['diagnostic', 'policy_violation']);
    expect(only(r, BUCKET).events[1]?.attributes).toMatchObject({
      'pulumi.policy.pack': 'pack',
      'pulumi.policy.name': 'tags-required',
      'pulumi.policy.enforcement_level': 'advisory',
      message: 'tags-required violated',
    });
    // A finished step takes no more events: its span is final once its step ends.
    expect(root(r).events.map((e) => e.attributes['message'])).toEqual([
      'after the step finished',
      'about a dropped same step',
      'stack-wide violated',
    ]);
    expect(r.policyViolations).toEqual([
      { policyPack: 'pack', policy: 'tags-required', enforcementLevel: 'advisory' },
      { policyPack: 'pack', policy: 'stack-wide', enforcementLevel: 'mandatory' },
    ]);
  });

  it('truncates attribute values, status messages and event messages to the configured length', () => {
    const long = 'x'.repeat(100);
    const r = convertUpdate(
      update({ message: long }),
      [pre('update', BUCKET, T0, { diffs: [long] }), diag(long, BUCKET), failed('update', BUCKET)],
      { ...OPTIONS, maxAttributeLength: 16 },
    );
    const span = r.trace.spans[1]!;
    expect(root(r).attributes['pulumi.update.message']).toBe('x'.repeat(16));
    expect(span.attributes['pulumi.resource.diffs']).toEqual(['x'.repeat(16)]);
    expect(span.status.message).toBe('x'.repeat(16));
    expect(span.events[0]?.attributes['message']).toBe('x'.repeat(16));
    expect((span.attributes['pulumi.resource.urn'] as string).length).toBe(16);
  });

  it('does not split a surrogate pair when truncating', () => {
    const r = convertUpdate(update({ message: `${'a'.repeat(15)}😀tail` }), [], { ...OPTIONS, maxAttributeLength: 16 });
    expect(root(r).attributes['pulumi.update.message']).toBe('a'.repeat(15));
  });

  it('cuts a trace over the span cap, keeping the root and the earliest steps, and reports the drop', () => {
    const events = [1, 2, 3, 4, 5].flatMap((i) => step('create', urn(`b${i}`), T0 + i, T0 + i));
    const r = convert(events, {}, { ...OPTIONS, maxSpansPerTrace: 3 });
    expect(r.trace.spans.map((s) => s.attributes['pulumi.resource.name'] ?? 'root')).toEqual(['root', 'b1', 'b2']);
    expect(r.trace.droppedSpans).toBe(3);
    expect(root(r).attributes['pulumi.trace.dropped_spans']).toBe(3);
    expect(r.operations).toHaveLength(5);
  });

  it('re-parents a kept span whose parent span was cut to the nearest kept ancestor', () => {
    const r = convert(
      [
        ...step('delete', CHILD, T0 + 1, T0 + 2, { parent: COMPONENT }),
        ...step('delete', COMPONENT, T0 + 3, T0 + 3, { custom: false, type: COMPONENT_TYPE }),
      ],
      {},
      { ...OPTIONS, maxSpansPerTrace: 2 },
    );
    expect(r.trace.spans).toHaveLength(2);
    expect(only(r, CHILD).parentSpanId).toBe(root(r).spanId);
  });

  it('counts every event by type, unknown types under unknown, without failing on them', () => {
    const events: EngineEvent[] = [
      { type: 'preludeEvent', timestamp: T0 },
      { type: 'unknown', wireType: 'shinyNewEvent', timestamp: T0 },
      { type: 'unknown', wireType: 'otherEvent', timestamp: T0 },
      { type: 'stdoutEvent', timestamp: T0 },
      ...step('create', BUCKET),
      summary('succeeded'),
    ];
    const r = convert(events);
    expect(r.eventCounts).toEqual({
      preludeEvent: 1,
      unknown: 2,
      stdoutEvent: 1,
      resourcePreEvent: 1,
      resOutputsEvent: 1,
      summaryEvent: 1,
    });
    expect(r.summary?.result).toBe('succeeded');
  });
});
