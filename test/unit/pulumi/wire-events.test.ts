import { describe, expect, it } from 'vitest';
import { parseEngineEvent } from '../../../src/pulumi/wire-events.js';
import { fixtureNames, loadFixtureEvents, loadFixtureRaw } from '../../helpers/fixtures.js';

describe('parseEngineEvent', () => {
  it.each(fixtureNames())('parses every event of %s', (name) => {
    const raw = loadFixtureRaw(name);
    for (const e of raw) expect(parseEngineEvent(e).ok).toBe(true);
    expect(loadFixtureEvents(name).some((e) => e.type === 'unknown')).toBe(false);
  });

  it('never copies inputs, outputs or config values into domain events', () => {
    for (const name of fixtureNames()) {
      const text = JSON.stringify(loadFixtureEvents(name));
      expect(text).not.toContain('"inputs"');
      expect(text).not.toContain('"outputs"');
      expect(text).not.toContain('"config"');
      expect(text).not.toContain('ciphertext');
    }
  });

  it('keeps an unknown payload type as unknown with its wire name', () => {
    const r = parseEngineEvent({ timestamp: 5, type: 'fancyNewEvent', fancyNewEvent: { x: 1 } });
    expect(r).toEqual({ ok: true, event: { type: 'unknown', wireType: 'fancyNewEvent', timestamp: 5 } });
  });

  it('reports a known payload with a wrong shape as a problem naming the field', () => {
    const r = parseEngineEvent({ timestamp: 1, resourcePreEvent: { metadata: { op: 'create' } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(/resourcePreEvent: metadata\.urn/);
  });

  it('rejects a non-numeric timestamp and a non-object event', () => {
    expect(parseEngineEvent({ timestamp: 'x', preludeEvent: {} }).ok).toBe(false);
    expect(parseEngineEvent([1, 2]).ok).toBe(false);
  });

  it('maps the PascalCase PolicyPacks and optional summary fields', () => {
    const r = parseEngineEvent({
      timestamp: 9,
      summaryEvent: { maybeCorrupt: false, durationSeconds: 3, resourceChanges: { create: 1 }, PolicyPacks: { p: '1' }, result: 'canceled' },
    });
    expect(r.ok && r.event).toMatchObject({ type: 'summaryEvent', policyPacks: { p: '1' }, result: 'canceled', durationSeconds: 3 });
  });
});
