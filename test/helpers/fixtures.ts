import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EngineEvent } from '../../src/domain/engine-event.js';
import { parseEngineEvent } from '../../src/pulumi/wire-events.js';

/** The repository's copy of shared/fixtures/pulumi-samples (real Pulumi engine events). */
export const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/pulumi-samples/', import.meta.url));

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.ndjson'))
    .sort();
}

/** The raw JSON objects of one fixture file, one per line. */
export function loadFixtureRaw(name: string): Record<string, unknown>[] {
  return readFileSync(`${FIXTURE_DIR}${name}`, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The fixture as `GET .../events` would return it: `sequence` dropped and the trailing
 * cancelEvent removed (the service never stores it), then mapped to domain events.
 */
export function loadFixtureEvents(name: string): EngineEvent[] {
  return loadFixtureRaw(name)
    .filter((e) => e['cancelEvent'] === undefined)
    .map((e) => {
      const r = parseEngineEvent(e);
      if (!r.ok) throw new Error(`${name}: ${r.problem}`);
      return r.event;
    });
}
