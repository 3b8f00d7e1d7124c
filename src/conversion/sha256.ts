/**
 * SHA-256 (FIPS 180-4) in plain TypeScript. The conversion core must not import
 * node:crypto (it stays runnable anywhere and free of Node), and trace/span ids are
 * defined as SHA-256 prefixes, so it carries its own small implementation.
 */

// Int32 arrays keep every intermediate a 32-bit integer (no heap numbers in the hot loop).
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19] as const;

let scratch = new Uint8Array(1024);

/** UTF-8 bytes of a string; lone surrogates become U+FFFD, as TextEncoder does. */
export function utf8Encode(text: string): Uint8Array {
  return encodeIntoScratch(text).slice();
}

/** Encodes into a buffer shared between calls; the view is valid until the next call. */
function encodeIntoScratch(text: string): Uint8Array {
  // Worst case 3 bytes per UTF-16 unit (a surrogate pair is 2 units -> 4 bytes).
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const out = scratch;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n));
}

// Scratch space reused across calls (the conversion runs on one thread and never re-enters).
const W = new Int32Array(64);
const TAIL = new Uint8Array(128);

function compress(h: Int32Array, bytes: Uint8Array, offset: number): void {
  for (let t = 0; t < 16; t++) {
    const o = offset + t * 4;
    W[t] = (bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15]!;
    const w2 = W[t - 2]!;
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
  }
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let f = h[5]!;
  let g = h[6]!;
  let hh = h[7]!;
  for (let t = 0; t < 64; t++) {
    const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + S1 + ch + K[t]! + W[t]!) | 0;
    const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + hh) | 0;
}

function digestWords(data: Uint8Array): Int32Array {
  const h = Int32Array.from(H0);
  const full = data.length - (data.length % 64);
  for (let offset = 0; offset < full; offset += 64) compress(h, data, offset);
  // Last partial block + 0x80 + zero padding + 64-bit big-endian bit length: one or two blocks.
  const rest = data.length - full;
  const tailLength = rest + 9 <= 64 ? 64 : 128;
  TAIL.fill(0);
  TAIL.set(data.subarray(full));
  TAIL[rest] = 0x80;
  const bitsHigh = Math.floor(data.length / 0x20000000);
  const bitsLow = (data.length << 3) >>> 0;
  const at = tailLength - 8;
  TAIL[at] = bitsHigh >>> 24;
  TAIL[at + 1] = (bitsHigh >>> 16) & 0xff;
  TAIL[at + 2] = (bitsHigh >>> 8) & 0xff;
  TAIL[at + 3] = bitsHigh & 0xff;
  TAIL[at + 4] = bitsLow >>> 24;
  TAIL[at + 5] = (bitsLow >>> 16) & 0xff;
  TAIL[at + 6] = (bitsLow >>> 8) & 0xff;
  TAIL[at + 7] = bitsLow & 0xff;
  compress(h, TAIL, 0);
  if (tailLength === 128) compress(h, TAIL, 64);
  return h;
}

/** The 32-byte SHA-256 digest of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  const h = digestWords(data);
  const digest = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = h[i]!;
    digest[i * 4] = w >>> 24;
    digest[i * 4 + 1] = (w >>> 16) & 0xff;
    digest[i * 4 + 2] = (w >>> 8) & 0xff;
    digest[i * 4 + 3] = w & 0xff;
  }
  return digest;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b]!;
  return s;
}

/** Lowercase hex SHA-256 of the UTF-8 encoding of `text`, optionally only its first `hexChars` characters. */
export function sha256Hex(text: string, hexChars = 64): string {
  const h = digestWords(encodeIntoScratch(text));
  let s = '';
  for (let i = 0; i < 8 && s.length < hexChars; i++) {
    const w = h[i]!;
    s += HEX[(w >>> 24) & 0xff]! + HEX[(w >>> 16) & 0xff]! + HEX[(w >>> 8) & 0xff]! + HEX[w & 0xff]!;
  }
  return s.length > hexChars ? s.slice(0, hexChars) : s;
}
