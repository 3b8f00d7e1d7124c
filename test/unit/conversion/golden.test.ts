import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { convertUpdate } from '../../../src/conversion/convert-update.js';
import { fixtureNames, loadFixtureEvents, loadFixtureRaw } from '../../helpers/fixtures.js';
import { GOLDEN_OPTIONS as OPTIONS, UPDATES, fixtureUpdate } from './fixture-updates.js';
import { renderConversion } from './render-trace.js';

/*
 * Golden span trees of every fixture in fixtures/pulumi-samples, stored as readable text in
 * test/golden/<fixture>.txt. Regenerate with UPDATE_GOLDEN=1 npx vitest run test/unit/conversion,
 * then read the diff against the raw events before committing it.
 *
 * What each fixture shows, and what is surprising in it (reviewed by hand against the raw events):
 *
 * - engine-preview-create-before-delete-replace: default create-before-delete in a modern
 *   preview; three spans on ONE URN (create-replacement, replace, delete-replaced), told apart
 *   only by op and event position, so their span ids differ. create-replacement and
 *   replace run on provider default::3, delete-replaced on the old default::1: the default
 *   provider changed, hence replace_keys ["provider"]. Every engine-* event is stamped 0, so all spans are clamped to the
 *   update start and have zero length.
 * - engine-refresh: pre events say `refresh`, outputs carry the result op (same/update/delete);
 *   resA has three refresh steps and resC two (a live resource and its pending-delete copy).
 *   FIFO pairing gives resA same, same, update (the last one carries diffs ["oof"]) and resC
 *   delete, delete. resC's first outputs arrives before its second pre. Spans stay named
 *   `refresh ...`; the result op is the pulumi.resource.refresh_result attribute.
 * - engine-up-delete-before-replace: deletes first (resB then resA, reverse dependency order),
 *   then replace + create-replacement per resource. The only `same` step is the provider
 *   provA; it parents nothing, so it is in operations (7) but not in the spans (6 + root).
 *   resB's replace step has no replace keys, its create-replacement has ["A"] (as on the wire).
 * - engine-up-failures-continue-on-error: three creates fail with an error diagnostic just
 *   before each resOpFailedEvent (status 0, 1, 1 -> failure_state clean/partial/partial); the
 *   diagnostic is the span status message with <{%reset%}> and the trailing newline stripped.
 *   The un-attributed "update failed" diagnostic lands on the root and becomes its status.
 *   resourceChanges {create: 3} counts only the successes.
 * - engine-up-policy-violations: no resource steps at all. Ten policy events name resA, which
 *   has no span, so all ten land on the root. No error diagnostic exists, so the root status
 *   falls back to "update failed" and error.type is policy_violation (mandatory ones exist).
 *   Passive policy summary/load events are only counted.
 * - real-preview-nested-components: 59 pre events (57 same; cluster-nodes has TWO update
 *   steps in this preview although resourceChanges says update: 1), 71 outputs events: each
 *   of the 12 components (stack, vpc, cluster, 2 ServiceRoles, 2 NatGateways, 4 Subnets,
 *   InternetGateway) gets an immediate outputs event and a second one at registerOutputs;
 *   the 12 second ones match no open step (unmatched-terminal-events=12). Of the 57 same
 *   steps only the chain Stack -> cluster survives, because it parents the updates.
 * - real-preview-replace: window deliberately set to 910..921 while events run 909..922: the
 *   replacement steps at 922 are clamped to the update end (11s..11s). The stack's first
 *   outputs came immediately (0s..0s), so its children start after it ended; its second
 *   outputs event (between replace and delete-replaced) is unmatched.
 * - real-up-create-eks: 2022 CLI: the stack's outputs came early (2s..3s) while its children
 *   run until 503s, so children outlive their parent span. Role and security group overlap;
 *   the EKS cluster create is 495 s, from the real (upload-time) timestamps.
 * - real-up-failed-status-unknown: resOpFailedEvent status 2 (unknown) with summary
 *   maybeCorrupt true; the fixture has NO error diagnostic for test-x (the display testdata
 *   dropped diagnostic lines), so the status message is the fallback "update step failed
 *   (resource state unknown)". A lone delete-replaced (test-r) completes after the failure;
 *   the stack's outputs come at the very end (stack span 1s..9s). The old summary has no
 *   result, so history's `failed` decides.
 * - real-up-update-one-resource: 6 steps, one update; its diffs arrive as five copies of
 *   "ingress" and are exported once. Only the stack survives of the five same steps.
 */

const GOLDEN_DIR = fileURLToPath(new URL('../../golden/', import.meta.url));

describe('golden span trees of the Pulumi sample fixtures', () => {
  it('has a synthetic update for every fixture', () => {
    expect(Object.keys(UPDATES).sort()).toEqual(fixtureNames());
  });

  it.each(fixtureNames())('converts %s to the reviewed span tree', (fixture) => {
    const events = loadFixtureEvents(fixture);
    const text = renderConversion(convertUpdate(fixtureUpdate(fixture, events), events, OPTIONS));
    const file = `${GOLDEN_DIR}${fixture.replace(/\.ndjson$/, '')}.txt`;
    if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) {
      if (process.env['UPDATE_GOLDEN'] !== '1') throw new Error(`missing golden file ${file}; run with UPDATE_GOLDEN=1`);
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, text);
    }
    expect(text).toBe(readFileSync(file, 'utf8'));
  });

  it.each(fixtureNames())('never exports e-mail addresses, config or stack-environment values from %s', (fixture) => {
    const events = loadFixtureEvents(fixture);
    const json = JSON.stringify(convertUpdate(fixtureUpdate(fixture, events), events, { ...OPTIONS, keepSameSteps: true }));
    expect(json).not.toContain('@example.com');
    expect(json).not.toContain('Dana Dev');
    expect(json).not.toContain('acme/secrets');
    expect(json).not.toContain('ciphertext');
  });

  it.each(fixtureNames())('exports no resource input or output value of %s', (fixture) => {
    const events = loadFixtureEvents(fixture);
    const json = JSON.stringify(convertUpdate(fixtureUpdate(fixture, events), events, { ...OPTIONS, keepSameSteps: true }));
    const { values, identities } = propertyValues(loadFixtureRaw(fixture));
    // Values that are (part of) a resource's identity — URN, name, type, id, parent,
    // provider — are exported legitimately; an auto-named resource's `name` input is one.
    const identity = [...identities];
    const leaked = [...values].filter((v) => json.includes(v) && !identity.some((id) => id.includes(v)));
    expect(leaked).toEqual([]);
  });
});

/**
 * Every string of 12+ characters inside the `inputs`/`outputs` of the raw step events,
 * and every identity string of those steps. The parser drops inputs and outputs, so this
 * checks the whole path, raw wire line to span, for values.
 */
function propertyValues(raw: readonly Record<string, unknown>[]): { values: Set<string>; identities: Set<string> } {
  const values = new Set<string>();
  const identities = new Set<string>();
  const collect = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.length >= 12) values.add(v);
    } else if (Array.isArray(v)) v.forEach(collect);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(collect);
  };
  for (const line of raw) {
    for (const key of ['resourcePreEvent', 'resOutputsEvent', 'resOpFailedEvent']) {
      const meta = (line[key] as { metadata?: Record<string, unknown> } | undefined)?.metadata;
      if (!meta) continue;
      for (const f of ['urn', 'type', 'provider']) if (typeof meta[f] === 'string') identities.add(meta[f]);
      for (const side of ['old', 'new']) {
        const state = meta[side] as Record<string, unknown> | null | undefined;
        if (!state) continue;
        for (const f of ['urn', 'type', 'id', 'parent', 'provider']) if (typeof state[f] === 'string') identities.add(state[f]);
        collect(state['inputs']);
        collect(state['outputs']);
      }
    }
  }
  return { values, identities };
}
