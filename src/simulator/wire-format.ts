import type { SimStack, SimUpdate } from './sim-model.js';
import { historyResult, type SimWorld } from './sim-world.js';

/**
 * The JSON bodies the simulator serves, in Pulumi Cloud's shapes (shared pulumi-api.md sections
 * 2 and 5). Only this file decides what goes on the wire.
 */

/** The service fills these zero counts in history (the summary event carries non-zero keys only). */
const ZERO_FILLED = ['create', 'delete', 'same', 'update'] as const;

export function zeroFilled(changes: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ZERO_FILLED) out[k] = 0;
  return Object.assign(out, changes);
}

export function stackListItem(world: SimWorld, s: SimStack): Record<string, unknown> {
  const last = world.lastUpdate(s);
  return {
    id: s.id,
    orgName: s.org,
    projectName: s.project,
    stackName: s.stack,
    ...(last === undefined ? {} : { lastUpdate: last }),
    resourceCount: world.resourceCount(s),
    links: { self: `https://app.pulumi.com/${s.org}/${s.project}/${s.stack}` },
  };
}

export function stackDetail(world: SimWorld, s: SimStack): Record<string, unknown> {
  const running = [...s.updates, ...s.previews].find((u) => !u.complete);
  const latest = s.updates[s.updates.length - 1];
  return {
    id: s.id,
    orgName: s.org,
    projectName: s.project,
    stackName: s.stack,
    ...(running
      ? { currentOperation: { kind: running.isPreview ? 'preview' : running.kind, author: running.requestedBy.githubLogin, started: running.startTime } }
      : {}),
    activeUpdate: latest?.updateId ?? '',
    tags: s.tags,
    version: world.latestVersion(s),
  };
}

/** UpdateInfoLegacy (shared pulumi-api.md 5.1); `endTime` is 0 while the update runs. */
export function legacyInfo(u: SimUpdate): Record<string, unknown> {
  return {
    kind: u.kind,
    startTime: u.startTime,
    message: u.message,
    environment: u.environment,
    config: u.config,
    result: historyResult(u),
    endTime: u.complete ? u.endTime : 0,
    version: u.version,
    ...(u.complete ? { resourceChanges: zeroFilled(u.resourceChanges) } : {}),
    ...(u.complete && u.resourceCount !== undefined ? { resourceCount: u.resourceCount } : {}),
  };
}

/** UpdateInfoService (shared pulumi-api.md 5.2). */
export function serviceEntry(world: SimWorld, s: SimStack, u: SimUpdate): Record<string, unknown> {
  return {
    info: legacyInfo(u),
    updateID: u.updateId,
    ...(u.githubCommitInfo ? { githubCommitInfo: u.githubCommitInfo } : {}),
    version: u.version,
    latestVersion: world.latestVersion(s),
    requestedBy: u.requestedBy,
    ...(u.policyPacks ? { policyPacks: u.policyPacks } : {}),
  };
}

/** Legacy status of `GET .../{kind}/{updateID}` (note `cancelled` with two l's here). */
export function updateStatus(u: SimUpdate): string {
  return u.complete ? u.result : 'running';
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function unb64(token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  return Buffer.from(token, 'base64url').toString('utf8');
}

/** Opaque event-page token: the position in the update's stream, bound to the update. */
export function encodeEventToken(updateId: string, offset: number): string {
  return b64(`ev:${updateId}:${offset}`);
}

export function decodeEventToken(token: string, updateId: string): number | undefined {
  const m = /^ev:([^:]+):(\d+)$/.exec(unb64(token) ?? '');
  if (!m || m[1] !== updateId) return undefined;
  return Number(m[2]);
}

export function encodeStackToken(offset: number): string {
  return b64(`st:${offset}`);
}

export function decodeStackToken(token: string): number | undefined {
  const m = /^st:(\d+)$/.exec(unb64(token) ?? '');
  return m ? Number(m[1]) : undefined;
}
