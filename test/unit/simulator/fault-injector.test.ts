import { describe, expect, it } from 'vitest';
import { FaultInjector } from '../../../src/simulator/fault-injector.js';

describe('FaultInjector', () => {
  it('fires a count rule for the next matching requests, then drops it', () => {
    const f = new FaultInjector();
    f.add({ kind: '503', endpoint: 'listUpdates', count: 2 });
    expect(f.pick('listStacks')).toBeUndefined();
    expect(f.pick('listUpdates')?.kind).toBe('503');
    expect(f.pick('listUpdates')?.kind).toBe('503');
    expect(f.pick('listUpdates')).toBeUndefined();
  });

  it('fires an everyNth rule on every Nth matching request only', () => {
    const f = new FaultInjector();
    f.add({ kind: '429', endpoint: 'engineEvents', everyNth: 2 });
    const fired = ['engineEvents', 'listStacks', 'engineEvents', 'engineEvents', 'engineEvents'].map((e) => f.pick(e as 'engineEvents')?.kind ?? '-');
    expect(fired).toEqual(['-', '-', '429', '-', '429']);
  });

  it('lets the first firing rule decide and keeps later count rules for later requests', () => {
    const f = new FaultInjector();
    f.add({ kind: 'slow' });
    f.add({ kind: '500', count: 1 });
    expect(f.pick('getStack')?.kind).toBe('slow');
    f.clear();
    f.add({ kind: '500', everyNth: 2 });
    f.add({ kind: '502', count: 1 });
    expect(f.pick('getStack')?.kind).toBe('502');
    expect(f.pick('getStack')?.kind).toBe('500');
    expect(f.pick('getStack')).toBeUndefined();
  });
});
