import { z } from 'zod';
import {
  ENGINE_EVENT_WIRE_TYPES,
  PASSIVE_EVENT_TYPES,
  type EngineEvent,
  type PassiveEventType,
  type StepMetadata,
  type StepState,
} from '../domain/engine-event.js';
import { describeZodError } from './wire-schema.js';

/**
 * Wire schemas of engine events (shared pulumi-api.md section 3) and their mapping to the
 * domain. Unknown fields are ignored; inputs, outputs, config and detailed-diff values
 * are never copied into the domain objects.
 */

const optBool = z.boolean().optional().nullable();
const optStr = z.string().optional().nullable();
const strList = z.array(z.string()).optional().nullable();

const wireStepState = z.object({
  type: optStr,
  urn: optStr,
  custom: optBool,
  delete: optBool,
  id: optStr,
  parent: optStr,
  provider: optStr,
  external: optBool,
});

const wireStepMetadata = z.object({
  op: z.string(),
  urn: z.string(),
  type: z.string(),
  old: wireStepState.optional().nullable(),
  new: wireStepState.optional().nullable(),
  keys: strList,
  diffs: strList,
  detailedDiff: z.record(z.string(), z.unknown()).optional().nullable(),
  logical: optBool,
  provider: optStr,
});

const wireStepEvent = z.object({ metadata: wireStepMetadata, planning: optBool });

const wireResOpFailed = z.object({
  metadata: wireStepMetadata,
  status: z.number().optional().nullable(),
  steps: z.number().optional().nullable(),
});

const wireDiagnostic = z.object({
  urn: optStr,
  prefix: optStr,
  message: z.string().optional().nullable(),
  severity: z.string().optional().nullable(),
  ephemeral: optBool,
});

const wirePolicy = z.object({
  resourceUrn: optStr,
  message: optStr,
  policyName: optStr,
  policyPackName: optStr,
  policyPackVersion: optStr,
  enforcementLevel: optStr,
  severity: optStr,
});

const wireSummary = z.object({
  maybeCorrupt: optBool,
  durationSeconds: z.number().optional().nullable(),
  resourceChanges: z.record(z.string(), z.number()).optional().nullable(),
  PolicyPacks: z.record(z.string(), z.string()).optional().nullable(),
  isPreview: optBool,
  result: optStr,
});

const PASSIVE = new Set<string>(PASSIVE_EVENT_TYPES);
const KNOWN = new Set<string>(ENGINE_EVENT_WIRE_TYPES);

export type ParseEventResult =
  | { readonly ok: true; readonly event: EngineEvent }
  | { readonly ok: false; readonly problem: string };

function state(s: z.infer<typeof wireStepState> | null | undefined): StepState | null {
  if (!s) return null;
  return {
    type: s.type ?? '',
    urn: s.urn ?? '',
    custom: s.custom ?? false,
    delete: s.delete ?? false,
    id: s.id ?? '',
    parent: s.parent ?? '',
    provider: s.provider ?? '',
    external: s.external ?? false,
  };
}

function metadata(m: z.infer<typeof wireStepMetadata>): StepMetadata {
  return {
    op: m.op,
    urn: m.urn,
    type: m.type,
    old: state(m.old),
    new: state(m.new),
    keys: m.keys ?? [],
    diffs: m.diffs ?? [],
    detailedDiffPaths: m.detailedDiff ? Object.keys(m.detailedDiff) : [],
    logical: m.logical ?? false,
    provider: m.provider ?? '',
  };
}

/** Which payload an event carries: the first known payload key, else `type`, else any *Event key. */
export function payloadKeyOf(raw: Record<string, unknown>): string | undefined {
  for (const key of ENGINE_EVENT_WIRE_TYPES) {
    if (raw[key] !== undefined && raw[key] !== null) return key;
  }
  if (typeof raw['type'] === 'string' && raw['type'].length > 0) return raw['type'];
  return Object.keys(raw).find((k) => k.endsWith('Event'));
}

/**
 * Maps one wire engine event to the domain. A known payload with a wrong shape is a
 * problem (the caller turns it into API_MALFORMED_RESPONSE); an unknown payload key is
 * kept as `{ type: 'unknown' }` so it can be counted.
 */
export function parseEngineEvent(raw: unknown): ParseEventResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, problem: 'event is not an object' };
  }
  const obj = raw as Record<string, unknown>;
  const ts = obj['timestamp'];
  if (ts !== undefined && ts !== null && typeof ts !== 'number') {
    return { ok: false, problem: 'timestamp is not a number' };
  }
  const timestamp = typeof ts === 'number' ? ts : 0;
  const key = payloadKeyOf(obj);
  if (key === undefined) return { ok: true, event: { type: 'unknown', wireType: '(none)', timestamp } };
  if (!KNOWN.has(key)) return { ok: true, event: { type: 'unknown', wireType: key, timestamp } };
  const payload = obj[key];
  if (PASSIVE.has(key)) {
    return { ok: true, event: { type: key as PassiveEventType, timestamp } };
  }
  if (typeof payload !== 'object' || payload === null) {
    return { ok: false, problem: `${key} payload is missing or not an object` };
  }
  switch (key) {
    case 'resourcePreEvent':
    case 'resOutputsEvent': {
      const r = wireStepEvent.safeParse(payload);
      if (!r.success) return { ok: false, problem: `${key}: ${describeZodError(r.error)}` };
      return { ok: true, event: { type: key, timestamp, metadata: metadata(r.data.metadata), planning: r.data.planning ?? false } };
    }
    case 'resOpFailedEvent': {
      const r = wireResOpFailed.safeParse(payload);
      if (!r.success) return { ok: false, problem: `${key}: ${describeZodError(r.error)}` };
      return {
        ok: true,
        event: { type: key, timestamp, metadata: metadata(r.data.metadata), status: r.data.status ?? 0, steps: r.data.steps ?? 0 },
      };
    }
    case 'diagnosticEvent': {
      const r = wireDiagnostic.safeParse(payload);
      if (!r.success) return { ok: false, problem: `${key}: ${describeZodError(r.error)}` };
      const d = r.data;
      return {
        ok: true,
        event: {
          type: key,
          timestamp,
          ...(d.urn ? { urn: d.urn } : {}),
          ...(d.prefix ? { prefix: d.prefix } : {}),
          message: d.message ?? '',
          severity: d.severity ?? 'info',
          ephemeral: d.ephemeral ?? false,
        },
      };
    }
    case 'policyEvent': {
      const r = wirePolicy.safeParse(payload);
      if (!r.success) return { ok: false, problem: `${key}: ${describeZodError(r.error)}` };
      const p = r.data;
      return {
        ok: true,
        event: {
          type: key,
          timestamp,
          ...(p.resourceUrn ? { resourceUrn: p.resourceUrn } : {}),
          message: p.message ?? '',
          policyName: p.policyName ?? '',
          policyPackName: p.policyPackName ?? '',
          policyPackVersion: p.policyPackVersion ?? '',
          enforcementLevel: p.enforcementLevel ?? '',
          ...(p.severity ? { severity: p.severity } : {}),
        },
      };
    }
    case 'summaryEvent': {
      const r = wireSummary.safeParse(payload);
      if (!r.success) return { ok: false, problem: `${key}: ${describeZodError(r.error)}` };
      const s = r.data;
      return {
        ok: true,
        event: {
          type: key,
          timestamp,
          maybeCorrupt: s.maybeCorrupt ?? false,
          durationSeconds: s.durationSeconds ?? 0,
          resourceChanges: s.resourceChanges ?? {},
          policyPacks: s.PolicyPacks ?? {},
          ...(s.isPreview === null || s.isPreview === undefined ? {} : { isPreview: s.isPreview }),
          ...(s.result ? { result: s.result } : {}),
        },
      };
    }
    case 'preludeEvent':
      return { ok: true, event: { type: key, timestamp } };
    default:
      return { ok: true, event: { type: 'unknown', wireType: key, timestamp } };
  }
}
