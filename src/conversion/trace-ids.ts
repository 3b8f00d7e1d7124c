import type { StackRef } from '../domain/stack.js';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

/*
 * Deterministic ids (docs/traces.md, after the shared telemetry-conventions.md "Traces"): a re-export after a crash, or
 * from another replica, produces the same ids, and anyone can recompute the trace id of
 * an update from its stack and update id.
 */

/** One encoder for every id (noble's utf8ToBytes builds a TextEncoder and copies its output on every call). */
const UTF8 = new TextEncoder();

/** The first `hexChars` (even) hex digits of SHA-256 over the UTF-8 bytes of `text`. */
function sha256Hex(text: string, hexChars: number): string {
  return bytesToHex(sha256(UTF8.encode(text)).subarray(0, hexChars / 2));
}

/** Trace id of an update: first 16 bytes of SHA-256("{org}/{project}/{stack}/{updateID}"), 32 hex chars. */
export function traceIdFor(ref: StackRef, updateId: string): string {
  return sha256Hex(`${ref.org}/${ref.project}/${ref.stack}/${updateId}`, 32);
}

/** Span id of the update (root) span: first 8 bytes of SHA-256("{traceId}/root"), 16 hex chars. */
export function rootSpanIdFor(traceId: string): string {
  return sha256Hex(`${traceId}/root`, 16);
}

/**
 * Span id of a resource step: first 8 bytes of SHA-256("{traceId}/{urn}/{op}/{n}"), where
 * n is the 0-based position of the step's resourcePreEvent among the update's events.
 */
export function stepSpanIdFor(traceId: string, urn: string, op: string, eventIndex: number): string {
  return sha256Hex(`${traceId}/${urn}/${op}/${eventIndex}`, 16);
}
