import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256, sha256Hex, toHex, utf8Encode } from '../../../src/conversion/sha256.js';
import { rootSpanIdFor, stepSpanIdFor, traceIdFor } from '../../../src/conversion/trace-ids.js';

function nodeSha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('sha256 (pure TypeScript)', () => {
  it('matches the FIPS 180-4 test vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('matches node:crypto at every length around the block and padding boundaries', () => {
    for (let n = 0; n <= 200; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(toHex(sha256(bytes))).toBe(nodeSha256(bytes));
    }
  });

  it('matches node:crypto for arbitrary strings, including non-ASCII and lone surrogates', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        expect(sha256Hex(s)).toBe(nodeSha256(s));
      }),
      { numRuns: 300 },
    );
  });

  it('returns the requested hex prefix of the digest', () => {
    for (const n of [0, 1, 8, 16, 31, 32, 63, 64]) expect(sha256Hex('prefix', n)).toBe(nodeSha256('prefix').slice(0, n));
  });

  it('encodes UTF-8 like Buffer does', () => {
    for (const s of ['\ud800x', 'a\udc00', '\udbff', '😀é€', '\u0000\u007f\u0080\u07ff\u0800\uffff']) {
      expect(Buffer.from(utf8Encode(s)).equals(Buffer.from(s, 'utf8'))).toBe(true);
      expect(sha256Hex(s)).toBe(nodeSha256(s));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
        expect(Buffer.from(utf8Encode(s)).equals(Buffer.from(s, 'utf8'))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('trace and span ids', () => {
  const ref = { org: 'acme', project: 'web', stack: 'prod' };

  it('derives the trace id from the first 16 bytes of SHA-256 of org/project/stack/updateID', () => {
    const id = traceIdFor(ref, 'c30c74e6-9576-4c63-95a4-4f96e7793ebb');
    expect(id).toBe(nodeSha256('acme/web/prod/c30c74e6-9576-4c63-95a4-4f96e7793ebb').slice(0, 32));
    expect(id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('derives the root and step span ids from the trace id', () => {
    const traceId = traceIdFor(ref, 'u');
    expect(rootSpanIdFor(traceId)).toBe(nodeSha256(`${traceId}/root`).slice(0, 16));
    const urn = 'urn:pulumi:prod::web::aws:s3/bucket:Bucket::site';
    expect(stepSpanIdFor(traceId, urn, 'create', 7)).toBe(nodeSha256(`${traceId}/${urn}/create/7`).slice(0, 16));
    expect(stepSpanIdFor(traceId, urn, 'create', 7)).not.toBe(stepSpanIdFor(traceId, urn, 'create', 8));
  });
});
