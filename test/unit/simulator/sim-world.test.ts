import { describe, expect, it } from 'vitest';
import { SimulatorError } from '../../../src/simulator/simulator-error.js';
import type { SimStack, SimUpdate } from '../../../src/simulator/sim-model.js';
import { SimWorld } from '../../../src/simulator/sim-world.js';
import { legacyInfo } from '../../../src/simulator/wire-format.js';
import { countChanges, meta, pairSteps, payload, stepResults, type RawEvent } from './stream-rules.js';

const NOW = 1_750_000_000;

function world(seed = 1, extra: Partial<ConstructorParameters<typeof SimWorld>[0]> = {}): SimWorld {
  return new SimWorld({ seed, nowSeconds: NOW, ...extra });
}

function generated(w: SimWorld): SimStack[] {
  return w.stacks.filter((s) => !s.isFixture);
}

function allUpdates(w: SimWorld): Array<{ stack: SimStack; update: SimUpdate }> {
  return generated(w).flatMap((stack) => [...stack.updates, ...stack.previews].map((update) => ({ stack, update })));
}

function events(u: SimUpdate): RawEvent[] {
  return u.events as unknown as RawEvent[];
}

function nonZero(changes: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(changes).filter(([, n]) => n !== 0));
}

describe('the simulator data generator', () => {
  it('produces identical data for the same seed and different data for another seed', () => {
    const a = world(42);
    const b = world(42);
    expect(b.truth()).toEqual(a.truth());
    expect(JSON.stringify(allUpdates(b).map((x) => x.update))).toBe(JSON.stringify(allUpdates(a).map((x) => x.update)));
    const c = world(43);
    expect(c.truth()).not.toEqual(a.truth());
  });

  it('keeps the default data set small: ~25 stacks and a few hundred updates', () => {
    const t = world().truth();
    expect(t.stacks.length).toBeGreaterThanOrEqual(20);
    expect(t.stacks.length).toBeLessThanOrEqual(40);
    const updates = t.stacks.reduce((n, s) => n + s.updates.length, 0);
    expect(updates).toBeGreaterThan(100);
    expect(updates).toBeLessThan(400);
  });

  it('honours the scale options', () => {
    const t = world(1, { scale: { orgs: 3, projectsPerOrg: 2, stacksPerProject: 2, updatesPerStack: 2, resourcesPerStack: 4 }, fixtures: false }).truth();
    expect(new Set(t.stacks.map((s) => s.org)).size).toBe(3);
    expect(t.stacks).toHaveLength(12);
    expect(t.stacks.some((s) => s.project === 'pulumi-samples')).toBe(false);
  });

  it.each([1, 2, 3, 4, 5])('reports resourceChanges in the summary, the history and the truth alike, as the steps imply (seed %i)', (seed) => {
    const w = world(seed);
    const truth = new Map(w.truth().stacks.flatMap((s) => [...s.updates, ...s.previews]).map((u) => [u.updateId, u]));
    let checked = 0;
    for (const { update } of allUpdates(w)) {
      const evs = events(update);
      const summary = evs.filter((e) => e.type === 'summaryEvent');
      expect(summary).toHaveLength(1);
      expect(evs[evs.length - 1]?.type).toBe('summaryEvent');
      const summaryChanges = payload(summary[0] as RawEvent)['resourceChanges'] as Record<string, number>;
      expect(Object.values(summaryChanges).every((n) => n > 0)).toBe(true);
      expect(summaryChanges).toEqual(countChanges(evs));
      expect(truth.get(update.updateId)?.resourceChanges).toEqual(summaryChanges);
      const history = legacyInfo(update)['resourceChanges'] as Record<string, number>;
      expect(nonZero(history)).toEqual(summaryChanges);
      // The service fills the zero counts it always reports.
      for (const k of ['create', 'delete', 'same', 'update']) expect(history[k]).toBeTypeOf('number');
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('records each step in the truth with the result its events show', () => {
    const w = world(9);
    const truth = new Map(w.truth().stacks.flatMap((s) => [...s.updates, ...s.previews]).map((u) => [u.updateId, u]));
    for (const { update } of allUpdates(w)) {
      expect(truth.get(update.updateId)?.resourceOperations).toEqual(stepResults(events(update)));
      const policies = events(update)
        .filter((e) => e.type === 'policyEvent')
        .map((e) => ({ policyPack: payload(e)['policyPackName'], policy: payload(e)['policyName'], enforcementLevel: payload(e)['enforcementLevel'] }));
      expect(truth.get(update.updateId)?.policyViolations).toEqual(policies);
      expect(truth.get(update.updateId)?.eventCount).toBe(update.events.length);
    }
  });

  it('stamps events in whole seconds, non-decreasing, inside the update start and end, and orders the history', () => {
    for (const stack of generated(world(3))) {
      let previousEnd = 0;
      stack.updates.forEach((u, i) => {
        expect(u.version).toBe(i + 1);
        expect(u.startTime).toBeGreaterThan(previousEnd);
        expect(u.endTime).toBeGreaterThanOrEqual(u.startTime);
        previousEnd = u.endTime;
      });
      for (const u of [...stack.updates, ...stack.previews]) {
        let last = u.startTime;
        for (const e of u.events) {
          expect(Number.isInteger(e.timestamp)).toBe(true);
          expect(e.timestamp).toBeGreaterThanOrEqual(last);
          expect(e.timestamp).toBeLessThanOrEqual(u.endTime);
          last = e.timestamp;
        }
      }
      for (const p of stack.previews) expect(p.version).toBe(stack.updates.length);
    }
  });

  it.each([1, 7, 11])('covers every update kind and result, and every preview kind (seed %i)', (seed) => {
    const all = allUpdates(world(seed)).map((x) => x.update);
    const seen = new Set(all.map((u) => `${u.kind}/${u.result}`));
    for (const k of ['update', 'refresh', 'destroy']) {
      expect(seen.has(`${k}/succeeded`)).toBe(true);
      expect(seen.has(`${k}/failed`)).toBe(true);
    }
    expect(seen.has('update/cancelled')).toBe(true);
    for (const k of ['Pupdate', 'Prefresh', 'Pdestroy', 'preview']) expect(all.some((u) => u.isPreview && u.kind === k)).toBe(true);
    const cancelled = all.find((u) => u.result === 'cancelled' && !u.isPreview);
    expect(legacyInfo(cancelled as SimUpdate)['result']).toBe('failed');
    const summary = events(cancelled as SimUpdate).find((e) => e.type === 'summaryEvent');
    expect(payload(summary as RawEvent)['result']).toBe('canceled');
  });

  it('shows every engine-event semantic of shared pulumi-api.md section 6', () => {
    const all = allUpdates(world(1)).map((x) => x.update);
    const history = all.filter((u) => !u.isPreview);
    const steps = (u: SimUpdate) => pairSteps(events(u));

    // The root stack: its outputs come last in a successful update.
    for (const u of history.filter((x) => x.kind === 'update' && x.result === 'succeeded')) {
      const outputs = events(u).filter((e) => e.type === 'resOutputsEvent');
      expect(meta(outputs[outputs.length - 1] as RawEvent)['type']).toBe('pulumi:pulumi:Stack');
    }
    // Components (custom false) with children, some never getting a terminal event.
    const componentSteps = history.flatMap((u) => steps(u).filter((s) => !s.custom && s.type !== 'pulumi:pulumi:Stack'));
    expect(componentSteps.length).toBeGreaterThan(0);
    expect(componentSteps.some((s) => s.terminal === null)).toBe(true);
    expect(componentSteps.some((s) => s.terminal === 'outputs')).toBe(true);
    expect(history.some((u) => events(u).some((e) => String(meta(e)['urn'] ?? '').includes('$aws:')))).toBe(true);
    // Explicit providers are custom resources.
    const provider = history.flatMap((u) => events(u)).find((e) => meta(e)['type'] === 'pulumi:providers:aws');
    expect(((meta(provider as RawEvent)['new'] ?? meta(provider as RawEvent)['old']) as Record<string, unknown>)['custom']).toBe(true);
    expect(history.some((u) => steps(u).some((s) => s.op === 'same'))).toBe(true);

    // Create-before-delete: create-replacement, replace, later delete-replaced on one URN.
    const cbd = history.some((u) => {
      const ss = steps(u);
      return ss.some((cr) => {
        if (cr.op !== 'create-replacement') return false;
        const rep = ss.find((s) => s.urn === cr.urn && s.op === 'replace');
        const del = ss.find((s) => s.urn === cr.urn && s.op === 'delete-replaced');
        return rep !== undefined && del !== undefined && cr.preIndex < rep.preIndex && rep.preIndex < del.preIndex && !cr.logical && rep.logical;
      });
    });
    expect(cbd).toBe(true);
    // Delete-before-replace: delete-replaced, replace, create-replacement.
    const dbr = history.some((u) => {
      const ss = steps(u);
      return ss.some((del) => {
        if (del.op !== 'delete-replaced') return false;
        const rep = ss.find((s) => s.urn === del.urn && s.op === 'replace');
        const cr = ss.find((s) => s.urn === del.urn && s.op === 'create-replacement');
        return rep !== undefined && cr !== undefined && del.preIndex < rep.preIndex && rep.preIndex < cr.preIndex;
      });
    });
    expect(dbr).toBe(true);

    // Deletes of components and of the stack get their outputs event at step end.
    const destroys = history.filter((x) => x.kind === 'destroy' && x.result === 'succeeded');
    expect(destroys.length).toBeGreaterThan(0);
    expect(destroys.some((u) => steps(u).some((s) => !s.custom))).toBe(true);
    for (const u of destroys) expect(steps(u).every((s) => s.terminal === 'outputs')).toBe(true);

    // Refresh: pre op refresh, outputs with the result op.
    const refreshOps = history.filter((u) => u.kind === 'refresh').flatMap((u) => steps(u));
    expect(refreshOps.every((s) => s.op === 'refresh')).toBe(true);
    const resultOps = new Set(refreshOps.map((s) => s.terminalOp).filter((x) => x !== undefined));
    expect(resultOps.has('same') && resultOps.has('update')).toBe(true);

    // Failures: an error diagnostic with the URN and colour codes, then resOpFailedEvent.
    const failedUpdate = history.find((u) => events(u).some((e) => e.type === 'resOpFailedEvent')) as SimUpdate;
    const evs = events(failedUpdate);
    const failedAt = evs.findIndex((e) => e.type === 'resOpFailedEvent');
    const urn = meta(evs[failedAt] as RawEvent)['urn'];
    const diag = evs.slice(0, failedAt).reverse().find((e) => e.type === 'diagnosticEvent' && payload(e)['urn'] === urn);
    expect(payload(diag as RawEvent)['severity']).toBe('error');
    expect(`${String(payload(diag as RawEvent)['prefix'])}${String(payload(diag as RawEvent)['message'])}`).toContain('<{%fg 1%}>');
    expect(history.some((u) => events(u).some((e) => e.type === 'resOpFailedEvent' && payload(e)['status'] === 2))).toBe(
      history.some((u) => events(u).some((e) => e.type === 'summaryEvent' && payload(e)['maybeCorrupt'] === true)),
    );

    // Policy events of both enforcement levels.
    const levels = new Set(all.flatMap((u) => events(u).filter((e) => e.type === 'policyEvent').map((e) => payload(e)['enforcementLevel'])));
    expect(levels).toEqual(new Set(['advisory', 'mandatory']));
    expect(all.some((u) => events(u)[0]?.type === 'policyLoadEvent')).toBe(true);

    // Interrupted custom steps in failed and cancelled updates.
    for (const result of ['failed', 'cancelled'] as const) {
      expect(history.some((u) => u.result === result && steps(u).some((s) => s.custom && s.terminal === null))).toBe(true);
    }
    // Diagnostics of other severities.
    const severities = new Set(all.flatMap((u) => events(u).filter((e) => e.type === 'diagnosticEvent').map((e) => payload(e)['severity'])));
    for (const s of ['info', 'warning', 'info#err', 'error']) expect(severities.has(s)).toBe(true);

    // Previews: planning on every resource event, isPreview on the summary, no resOpFailedEvent.
    for (const p of all.filter((u) => u.isPreview)) {
      for (const e of events(p).filter((x) => x.type === 'resourcePreEvent' || x.type === 'resOutputsEvent')) expect(payload(e)['planning']).toBe(true);
      expect(events(p).some((e) => e.type === 'resOpFailedEvent')).toBe(false);
      expect(payload(events(p).find((e) => e.type === 'summaryEvent') as RawEvent)['isPreview']).toBe(true);
    }
  });

  it('fills history entries in the service format with environment, a secret config value and the requester', () => {
    const all = allUpdates(world(1)).map((x) => x.update);
    const keys = ['git.head', 'git.headName', 'git.committer.email', 'vcs.owner', 'vcs.repo', 'vcs.kind', 'ci.system', 'ci.build.url', 'exec.kind'];
    expect(all.some((u) => keys.every((k) => typeof u.environment[k] === 'string'))).toBe(true);
    expect(all.every((u) => typeof u.environment['exec.kind'] === 'string')).toBe(true);
    for (const u of all) {
      expect(u.updateId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Object.values(u.config).some((c) => c.secret)).toBe(true);
      expect(u.requestedBy.githubLogin.length).toBeGreaterThan(0);
      expect(u.environment['git.committer.email'] ?? 'x@example.com').toMatch(/@example\.com$/);
    }
    expect(all.some((u) => u.message.length > 0)).toBe(true);
  });

  it('leaves one stack per org never updated, with no lastUpdate and zero resources', () => {
    const w = world(1);
    const t = w.truth();
    for (const org of w.orgs) {
      const idle = t.stacks.filter((s) => s.org === org && s.updates.length === 0);
      expect(idle.length).toBeGreaterThanOrEqual(1);
      for (const s of idle) {
        expect(s.lastUpdate).toBeUndefined();
        expect(s.resourceCount).toBe(0);
      }
    }
  });
});

describe('the simulator world controls', () => {
  const ref = (w: SimWorld) => {
    const s = generated(w).find((x) => x.updates.length > 0) as SimStack;
    return { org: s.org, project: s.project, stack: s.stack };
  };

  it('runs a started update tick by tick to its planned end', () => {
    const w = world(2, { tickEvents: 3 });
    const r = ref(w);
    const id = w.startUpdate(r, { kind: 'update', result: 'failed' });
    const stack = w.findStack(r) as SimStack;
    const u = stack.updates[stack.updates.length - 1] as SimUpdate;
    expect(u.updateId).toBe(id);
    expect(u.visible).toBe(0);
    const t0 = w.truth().stacks.find((s) => s.stack === r.stack && s.project === r.project && s.org === r.org);
    expect(t0?.lastUpdate).toBe(u.startTime);
    expect(t0?.updates.at(-1)).toMatchObject({ updateId: id, historyResult: 'in-progress', result: 'in-progress' });
    expect(t0?.updates.at(-1)?.endTime).toBeUndefined();
    w.tick();
    expect(u.visible).toBe(3);
    w.tick();
    expect(u.complete).toBe(false);
    w.completeUpdate(r, id);
    expect(u.complete).toBe(true);
    expect(u.visible).toBe(u.events.length);
    expect(w.truth().stacks.flatMap((s) => s.updates).find((x) => x.updateId === id)).toMatchObject({ historyResult: 'failed', result: 'failed', endTime: u.endTime });
  });

  it('starts new updates after the clock and the stack history, and refuses bad control calls', () => {
    const w = world(2);
    const r = ref(w);
    w.advanceClock(3_600);
    const id = w.startUpdate(r);
    const stack = w.findStack(r) as SimStack;
    const u = stack.updates.at(-1) as SimUpdate;
    expect(u.startTime).toBeGreaterThanOrEqual(NOW + 3_600);
    expect(() => w.startUpdate(r)).toThrow(SimulatorError);
    w.completeUpdate(r, id);
    const fixture = w.stacks.find((s) => s.isFixture) as SimStack;
    expect(() => w.startUpdate({ org: fixture.org, project: fixture.project, stack: fixture.stack })).toThrow(/fixture stack/);
    expect(() => w.startUpdate({ org: 'nope', project: 'x', stack: 'y' })).toThrow(/no stack nope\/x\/y/);
    expect(() => w.completeUpdate(r, 'not-an-id')).toThrow(/no update/);
    expect(() => w.startUpdate(r, { kind: 'import' as 'update' })).toThrow(/unknown update kind "import"/);
  });

  it('starts updates and previews on its own in live mode', () => {
    const w = world(4);
    const before = allUpdates(w).length;
    for (let i = 0; i < 60; i++) w.tick(true);
    expect(allUpdates(w).length).toBeGreaterThan(before);
  });
});
