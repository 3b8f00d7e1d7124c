import { z } from 'zod';
import type { StackRef, StackSummary } from '../domain/stack.js';
import type { UpdateInfo, UserRef } from '../domain/update.js';
import type { HistoryPage, UpdateStatus } from './pulumi-api.js';

/**
 * Zod schemas of the Pulumi Cloud responses the client reads (shared pulumi-api.md sections 1,
 * 2 and 5) and their mapping to domain types. Objects strip unknown keys; Go encodes nil
 * slices and maps as `null`, so collections accept null as empty. Config values, e-mail
 * addresses and other fields the exporter does not need never leave this module.
 */

const optStr = z.string().nullish();
const optNum = z.number().nullish();

export const wireErrorResponse = z.object({
  code: optNum,
  message: optStr,
});

const wireStackSummary = z.object({
  orgName: z.string().min(1),
  projectName: z.string().min(1),
  stackName: z.string().min(1),
  lastUpdate: optNum,
  resourceCount: optNum,
});

export const wireListStacksResponse = z.object({
  stacks: z.array(wireStackSummary).nullable(),
  continuationToken: optStr,
});

const wireUserInfo = z.object({
  name: optStr,
  githubLogin: optStr,
});

const wireUpdateInfoLegacy = z.object({
  kind: z.string(),
  startTime: z.number(),
  message: optStr,
  environment: z.record(z.string(), z.unknown()).nullish(),
  result: z.string(),
  endTime: optNum,
  version: optNum,
  resourceChanges: z.record(z.string(), z.unknown()).nullish(),
  resourceCount: optNum,
});

const wireUpdateInfoService = z.object({
  info: wireUpdateInfoLegacy,
  updateID: z.string().min(1),
  version: optNum,
  requestedBy: wireUserInfo.nullish(),
});

/** `GetStackUpdatesResponse`: the service-format history and the previews list. */
export const wireUpdatesResponse = z.object({
  updates: z.array(wireUpdateInfoService).nullable(),
  itemsPerPage: optNum,
  total: optNum,
});

export const wireUpdateStatus = z.object({
  status: z.string(),
  continuationToken: optStr,
});

/** The envelope of `GET .../events`; each event is parsed by parseEngineEvent. */
export const wireEventsResponse = z.object({
  events: z.array(z.unknown()).nullable(),
  continuationToken: optStr,
});

export type WireUpdateInfoService = z.infer<typeof wireUpdateInfoService>;

/** Describes the first few issues of a failed parse as `path: message; ...`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** A continuation token that means "more pages"; null for absent, null or empty. */
export function nextToken(token: string | null | undefined): string | null {
  return token === undefined || token === null || token === '' ? null : token;
}

export function toStackSummary(s: z.infer<typeof wireStackSummary>): StackSummary {
  return {
    org: s.orgName,
    project: s.projectName,
    stack: s.stackName,
    ...(typeof s.lastUpdate === 'number' && s.lastUpdate > 0 ? { lastUpdate: s.lastUpdate } : {}),
    ...(typeof s.resourceCount === 'number' ? { resourceCount: s.resourceCount } : {}),
  };
}

// E-mail addresses (`git.author.email`, `git.committer.email`) are personal data the
// exporter never needs, so they stop here like the requester's e-mail does.
function environmentOf(env: Record<string, unknown> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!env) return out;
  for (const [k, v] of Object.entries(env)) {
    if (typeof v === 'string' && !/email$/i.test(k)) out[k] = v;
  }
  return out;
}

// The service fills zero counts for ops that did not happen while the summary event
// carries only non-zero ones; keeping only non-zero finite counts makes the two agree.
function nonZeroCounts(changes: Record<string, unknown> | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!changes) return out;
  for (const [k, v] of Object.entries(changes)) if (typeof v === 'number' && Number.isFinite(v) && v !== 0) out[k] = v;
  return out;
}

function userRef(u: z.infer<typeof wireUserInfo> | null | undefined): UserRef | undefined {
  if (!u) return undefined;
  const name = u.name ?? '';
  const githubLogin = u.githubLogin ?? '';
  if (name === '' && githubLogin === '') return undefined;
  return { name, githubLogin };
}

/**
 * Maps one service-format history (or preview) entry. Returns a problem string when the
 * entry has no version at all. `environment` keeps string values except e-mail
 * addresses; `kind` is kept as the service spells it (`Pupdate` for
 * previews); `endTime` 0 (in progress) becomes undefined.
 */
export function toUpdateInfo(
  stack: StackRef,
  w: WireUpdateInfoService,
): { ok: true; update: UpdateInfo } | { ok: false; problem: string } {
  const version = w.info.version ?? w.version;
  if (typeof version !== 'number') return { ok: false, problem: `update ${w.updateID} has no version` };
  const requestedBy = userRef(w.requestedBy);
  const endTime = w.info.endTime;
  return {
    ok: true,
    update: {
      stack: { org: stack.org, project: stack.project, stack: stack.stack },
      updateId: w.updateID,
      kind: w.info.kind,
      version,
      result: w.info.result,
      startTime: w.info.startTime,
      ...(typeof endTime === 'number' && endTime > 0 ? { endTime } : {}),
      message: w.info.message ?? '',
      environment: environmentOf(w.info.environment),
      resourceChanges: nonZeroCounts(w.info.resourceChanges),
      ...(typeof w.info.resourceCount === 'number' ? { resourceCount: w.info.resourceCount } : {}),
      ...(requestedBy ? { requestedBy } : {}),
    },
  };
}

/**
 * Maps a `GetStackUpdatesResponse`. When the service omits `itemsPerPage` or `total`,
 * the requested page size and the count known so far stand in for them.
 */
export function toHistoryPage(
  stack: StackRef,
  data: z.infer<typeof wireUpdatesResponse>,
  page: number,
  pageSize: number,
): { ok: true; page: HistoryPage } | { ok: false; problem: string } {
  const updates: UpdateInfo[] = [];
  for (const [i, w] of (data.updates ?? []).entries()) {
    const r = toUpdateInfo(stack, w);
    if (!r.ok) return { ok: false, problem: `updates.${i}: ${r.problem}` };
    updates.push(r.update);
  }
  return {
    ok: true,
    page: {
      updates,
      itemsPerPage: data.itemsPerPage ?? pageSize,
      total: data.total ?? (page - 1) * pageSize + updates.length,
    },
  };
}

export function toUpdateStatus(data: z.infer<typeof wireUpdateStatus>): UpdateStatus {
  return { status: data.status, continuationToken: nextToken(data.continuationToken) };
}
