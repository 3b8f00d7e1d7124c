import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkBySpans, splitInHalf } from '../../../src/tracing/batching.js';

describe('chunkBySpans', () => {
  it('keeps every item once and in order, in runs of at most maxSpans, only the last one shorter', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 50 }), fc.integer({ min: 1, max: 12 }), (items, maxSpans) => {
        const chunks = chunkBySpans(items, maxSpans);
        expect(chunks.flat()).toEqual(items);
        chunks.forEach((chunk, i) => {
          expect(chunk.length).toBeGreaterThan(0);
          if (i < chunks.length - 1) expect(chunk).toHaveLength(maxSpans);
          else expect(chunk.length).toBeLessThanOrEqual(maxSpans);
        });
      }),
    );
  });

  it('returns no chunk for no spans', () => {
    expect(chunkBySpans([], 10)).toEqual([]);
  });
});

describe('splitInHalf', () => {
  it('cuts a batch into two non-empty halves in order, the first taking the odd item', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { minLength: 2, maxLength: 50 }), (items) => {
        const [first, second] = splitInHalf(items);
        expect([...first, ...second]).toEqual(items);
        expect(first.length - second.length).toBeGreaterThanOrEqual(0);
        expect(first.length - second.length).toBeLessThanOrEqual(1);
        expect(second.length).toBeGreaterThan(0);
      }),
    );
  });
});
