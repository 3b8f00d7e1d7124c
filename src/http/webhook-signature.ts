import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a signature was refused; undefined when it is valid. */
export type SignatureProblem = 'missing' | 'malformed' | 'mismatch';

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/**
 * Checks a Pulumi-Webhook-Signature header: the hex HMAC-SHA256 of the raw body bytes, keyed
 * with the webhook secret, no prefix (shared pulumi-webhooks.md section 1.3). The header is
 * checked for 64 hex digits first, so the constant-time comparison always gets equal lengths.
 */
export function signatureProblem(rawBody: Buffer, header: string | undefined, secret: string): SignatureProblem | undefined {
  if (header === undefined || header.trim() === '') return 'missing';
  const given = header.trim();
  if (!HEX_SHA256.test(given)) return 'malformed';
  return timingSafeEqual(Buffer.from(given, 'hex'), signBody(rawBody, secret)) ? undefined : 'mismatch';
}

/** The 32-byte HMAC-SHA256 of a body under a secret (as UTF-8 bytes). */
export function signBody(rawBody: Buffer | string, secret: string): Buffer {
  return createHmac('sha256', secret).update(rawBody).digest();
}
