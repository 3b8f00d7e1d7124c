import { describe, expect, it } from 'vitest';
import { shareOf, surplusOf } from '../../../src/state/postgres-coordinator.js';

const keys = (n: number, prefix = 'acme/p/s'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);

describe('lease shares', () => {
  it('rounds a share up, so the shares of the live replicas cover every listed stack', () => {
    expect(shareOf(24, 3)).toBe(8);
    expect(shareOf(25, 3)).toBe(9);
    expect(shareOf(2, 3)).toBe(1);
    expect(shareOf(5, 0)).toBe(5);
    for (let stacks = 0; stacks < 40; stacks++) for (let live = 1; live < 7; live++) expect(shareOf(stacks, live) * live).toBeGreaterThanOrEqual(stacks);
  });

  it('gives back the stacks no longer listed first, then the listed ones above the share, the last in key order', () => {
    const listed = new Set(keys(24));
    expect(surplusOf(keys(8), listed, 3)).toEqual([]);
    expect(surplusOf(keys(24), listed, 3)).toEqual(keys(24).slice(8));
    const gone = ['acme/old/x', 'acme/old/y'];
    expect(surplusOf([...gone, ...keys(3)], listed, 3)).toEqual(gone);
    expect(surplusOf([...keys(10), ...gone], listed, 3)).toEqual([...gone, ...keys(10).slice(8)]);
  });

  it('keeps every listed stack it holds while it is within its share, whatever order it learnt them in', () => {
    const listed = new Set(keys(12));
    expect(surplusOf(keys(6).reverse(), listed, 2)).toEqual([]);
    expect(surplusOf(keys(7).reverse(), listed, 2)).toEqual([keys(7)[6]]);
  });
});
