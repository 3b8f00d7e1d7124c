import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rootSpanIdFor, stepSpanIdFor, traceIdFor } from '../../../src/conversion/trace-ids.js';

function nodeSha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

describe('deterministic ids', () => {
  it('are SHA-256 prefixes of the documented strings, for any text including non-ASCII', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string(), fc.nat(10_000), (name, updateId, n) => {
        const ref = { org: 'acme', project: name, stack: 'dev' };
        const traceId = traceIdFor(ref, updateId);
        expect(traceId).toBe(nodeSha256(`acme/${name}/dev/${updateId}`).slice(0, 32));
        expect(rootSpanIdFor(traceId)).toBe(nodeSha256(`${traceId}/root`).slice(0, 16));
        expect(stepSpanIdFor(traceId, `urn:${name}`, 'create', n)).toBe(nodeSha256(`${traceId}/urn:${name}/create/${n}`).slice(0, 16));
      }),
    );
  });
});
