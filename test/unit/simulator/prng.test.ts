import { describe, expect, it } from 'vitest';
import { createPrng } from '../../../src/simulator/prng.js';

describe('createPrng', () => {
  it('repeats its sequence for a seed and differs for another seed', () => {
    const seq = (seed: number) => {
      const r = createPrng(seed);
      return Array.from({ length: 20 }, () => r.next());
    };
    expect(seq(7)).toEqual(seq(7));
    expect(seq(8)).not.toEqual(seq(7));
    for (const x of seq(7)) expect(x >= 0 && x < 1).toBe(true);
  });

  it('draws integers inside the inclusive range and UUID-shaped ids', () => {
    const r = createPrng(1);
    const ints = Array.from({ length: 500 }, () => r.int(3, 6));
    expect(new Set(ints)).toEqual(new Set([3, 4, 5, 6]));
    expect(r.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.hex(13)).toMatch(/^[0-9a-f]{13}$/);
  });

  it('forks independent but reproducible streams', () => {
    const a = createPrng(5).fork('x');
    const b = createPrng(5).fork('x');
    const c = createPrng(5).fork('y');
    expect(a.next()).toBe(b.next());
    expect(createPrng(5).fork('x').next()).not.toBe(c.next());
  });
});
