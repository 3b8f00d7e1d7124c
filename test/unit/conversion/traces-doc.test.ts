import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { convertUpdate, type ConversionResult } from '../../../src/conversion/convert-update.js';
import { rootSpanIdFor, stepSpanIdFor, traceIdFor } from '../../../src/conversion/trace-ids.js';
import { fixtureNames, loadFixtureEvents } from '../../helpers/fixtures.js';
import { OPTIONS, diag, failed, policy, pre, step, summary, update, urn } from './event-builders.js';
import { GOLDEN_OPTIONS, fixtureUpdate } from './fixture-updates.js';

/* Keeps docs/traces.md in step with what the conversion emits. */

const DOC = readFileSync(new URL('../../../docs/traces.md', import.meta.url), 'utf8');
const GOLDEN_DIR = new URL('../../golden/', import.meta.url);

function attributeKeys(r: ConversionResult): Set<string> {
  const keys = new Set(Object.keys(r.trace.resource));
  for (const s of r.trace.spans) {
    for (const k of Object.keys(s.attributes)) keys.add(k.replace(/^pulumi\.update\.resource_changes\..+$/, 'pulumi.update.resource_changes.{op}'));
    for (const e of s.events) for (const k of Object.keys(e.attributes)) keys.add(k);
  }
  return keys;
}

describe('docs/traces.md', () => {
  it('shows a worked id example that the code reproduces', () => {
    const traceId = traceIdFor({ org: 'acme', project: 'web', stack: 'prod' }, 'c30c74e6-9576-4c63-95a4-4f96e7793ebb');
    expect(DOC).toContain(`| trace id | \`${traceId}\` |`);
    expect(DOC).toContain(`| root span id | \`${rootSpanIdFor(traceId)}\` |`);
    expect(DOC).toContain(`\`${stepSpanIdFor(traceId, 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::site', 'create', 3)}\` |`);
  });

  it('documents every attribute and span event the conversion emits', () => {
    const results: ConversionResult[] = fixtureNames().map((f) => {
      const events = loadFixtureEvents(f);
      return convertUpdate(fixtureUpdate(f, events), events, { ...GOLDEN_OPTIONS, keepSameSteps: true });
    });
    const b = urn('b');
    results.push(
      convertUpdate(
        update({ result: 'failed', environment: { 'git.headName': 'refs/heads/x', 'vcs.kind': 'github.com', 'vcs.owner': 'o', 'vcs.repo': 'r' } }),
        [
          pre('create', b),
          diag('no', b),
          failed('create', b, undefined, 2),
          pre('refresh', urn('c')),
          ...step('update', urn('c')),
          pre('create', urn('d')),
          policy('p', 'mandatory', b),
          ...[1, 2, 3].flatMap((i) => step('create', urn(`e${i}`))),
          summary('failed', { maybeCorrupt: true }),
        ],
        { ...OPTIONS, maxSpansPerTrace: 4 },
      ),
    );
    const keys = new Set(results.flatMap((r) => [...attributeKeys(r)]));
    const names = new Set(results.flatMap((r) => r.trace.spans.flatMap((s) => s.events.map((e) => e.name))));
    const missing = [...keys, ...names].filter((k) => !DOC.includes(`\`${k}\``));
    expect(missing).toEqual([]);
    expect(keys.has('pulumi.resource.failure_state') && keys.has('pulumi.trace.dropped_spans') && keys.has('pulumi.resource.interrupted')).toBe(true);
  });

  it('quotes its example lines from the golden file they name', () => {
    const golden = readFileSync(new URL('real-up-update-one-resource.txt', GOLDEN_DIR), 'utf8').split('\n');
    const block = /```\n(update eks\/dev[\s\S]*?)```/.exec(DOC)?.[1];
    expect(block).toBeDefined();
    for (const line of block!.trimEnd().split('\n')) expect(golden).toContain(line);
  });
});
