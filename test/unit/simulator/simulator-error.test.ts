import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/errors.js';
import { validateFaultRule } from '../../../src/simulator/fault-injector.js';
import { SIMULATOR_ERROR_CODES, SimulatorError } from '../../../src/simulator/simulator-error.js';
import { SimWorld } from '../../../src/simulator/sim-world.js';

describe('simulator error codes', () => {
  it('documents every simulator error code in docs/simulator.md and nothing else', () => {
    const doc = readFileSync(new URL('../../../docs/simulator.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `(SIMULATOR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(SIMULATOR_ERROR_CODES).sort());
  });

  it('keeps simulator codes out of the exporter error codes, so production /metrics never lists them', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code.startsWith('SIMULATOR_')).toBe(false);
  });

  it('raises a fault code for a malformed fault rule and a control code for an unknown stack', () => {
    expect(() => validateFaultRule({ kind: '429', count: 0 })).toThrow(expect.objectContaining({ code: 'SIMULATOR_FAULT_INVALID' }) as unknown as Error);
    const world = new SimWorld({ seed: 1, nowSeconds: 1_800_000_000, fixtures: false, scale: { orgs: 1, projectsPerOrg: 1, stacksPerProject: 1, updatesPerStack: 1 } });
    let caught: unknown;
    try {
      world.startUpdate({ org: 'nope', project: 'p', stack: 's' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SimulatorError);
    expect((caught as SimulatorError).code).toBe('SIMULATOR_CONTROL_INVALID');
  });
});
