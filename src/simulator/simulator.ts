import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { StackRef } from '../domain/stack.js';
import { ENDPOINTS, FaultInjector, type Endpoint, type FaultRule } from './fault-injector.js';
import type { SimStack, SimUpdate } from './sim-model.js';
import { SimWorld, type SimulatorScale } from './sim-world.js';
import { SimulatorError } from './simulator-error.js';
import type { SimulatorTruth } from './simulator-truth.js';
import { WebhookSender, type SentDelivery, type WebhookTarget } from './webhook-sender.js';
import {
  decodeEventToken,
  decodeStackToken,
  encodeEventToken,
  encodeStackToken,
  legacyInfo,
  serviceEntry,
  stackDetail,
  stackListItem,
  updateStatus,
} from './wire-format.js';

export interface SimulatorOptions {
  /** Default 1; same seed (and nowSeconds) => byte-identical data. */
  seed?: number;
  /** The simulator's "now" (default: the wall clock); generated updates start within the ~5 days before it. */
  nowSeconds?: number;
  /** Small defaults (~25 stacks, a few hundred updates); raise for benchmarks. */
  scale?: Partial<SimulatorScale>;
  /** Stacks per /api/user/stacks page (default 10). */
  stackPageSize?: number;
  /** Events per /events page (default 100). */
  eventPageSize?: number;
  /** Serve fixtures/pulumi-samples as `${firstOrg}/pulumi-samples/fixtures` (default: when present). */
  fixtures?: boolean;
  /** When set, any other token gets 401; when unset any non-empty token is accepted. */
  acceptedToken?: string;
  /** Live mode driven by unref'd timers (the demo); tests call control.tick() instead. */
  live?: { intervalMs: number };
  /** Initial fault rules (also settable at runtime). */
  faults?: FaultRule[];
  /** Events revealed per running update by each tick (default 4). */
  tickEvents?: number;
  /** Deliver signed Pulumi Cloud webhooks when updates start and finish (also settable at runtime). */
  webhooks?: WebhookTarget;
}

/** An update starting or finishing, seen as it happens (Date.now() at that moment). */
export interface SimUpdateEvent {
  readonly phase: 'started' | 'finished';
  readonly stack: StackRef;
  readonly updateId: string;
  readonly kind: string;
  readonly isPreview: boolean;
  readonly atMs: number;
}

export type UpdateKindOption = 'update' | 'refresh' | 'destroy';
export type UpdateResultOption = 'succeeded' | 'failed' | 'cancelled';

export interface RunningSimulator {
  /** The backend base URL, e.g. http://127.0.0.1:PORT (no trailing slash). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /** Computed from the simulator's own generated plan, never from exporter code. */
  truth(): SimulatorTruth;
  /** Requests served (including faulted ones). */
  stats(): { total: number; byEndpoint: Record<Endpoint, number> };
  resetStats(): void;
  faults: { add(rule: FaultRule): void; clear(): void };
  webhooks: {
    /** Where deliveries go from now on; undefined stops them. */
    setTarget(target: WebhookTarget | undefined): void;
    /** Every delivery made, with the receiver's answer. */
    deliveries(): readonly SentDelivery[];
    /** Waits until every delivery started so far was answered. */
    flush(): Promise<void>;
  };
  /** Calls `listener` whenever an update starts or finishes; returns the unsubscribe function. */
  onUpdate(listener: (event: SimUpdateEvent) => void): () => void;
  control: {
    /** Starts an update: history shows it in-progress (endTime 0), lastUpdate moves to its start, events appear as it is advanced. */
    startUpdate(stack: StackRef, opts?: { kind?: UpdateKindOption; result?: UpdateResultOption }): string;
    /** Reveals the next chunk of events of running updates (and, in live mode, may start new ones). */
    tick(): void;
    /** Runs a started update to its end: all remaining events, summary, history result/endTime. */
    completeUpdate(stack: StackRef, updateId: string): void;
    /** Starts a preview of the latest version: served by the previews endpoints, never by the history; lastUpdate does not move. */
    startPreview(stack: StackRef, opts?: { kind?: UpdateKindOption; result?: Exclude<UpdateResultOption, 'cancelled'> }): string;
    /** startPreview + completeUpdate. */
    addCompletedPreview(stack: StackRef, opts?: { kind?: UpdateKindOption; result?: Exclude<UpdateResultOption, 'cancelled'> }): string;
    /** startUpdate + completeUpdate. */
    addCompletedUpdate(stack: StackRef, opts?: { kind?: UpdateKindOption; result?: UpdateResultOption }): string;
    /** Advances the simulator clock (seconds) used for new updates' timestamps. */
    advanceClock(seconds: number): void;
  };
}

const KIND_SEGMENTS = new Set(['update', 'preview', 'refresh', 'destroy']);

interface Route {
  readonly endpoint: Endpoint;
  readonly ref?: StackRef;
  readonly updateId?: string;
  readonly version?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function route(pathname: string): Route | undefined {
  const raw = pathname.split('/').slice(1);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  let seg: string[];
  try {
    seg = raw.map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, 'Bad Request: malformed percent-encoding in the path');
  }
  if (seg.length === 3 && seg[0] === 'api' && seg[1] === 'user' && seg[2] === 'stacks') return { endpoint: 'listStacks' };
  if (seg.length < 5 || seg[0] !== 'api' || seg[1] !== 'stacks') return undefined;
  const ref: StackRef = { org: seg[2] ?? '', project: seg[3] ?? '', stack: seg[4] ?? '' };
  const rest = seg.slice(5);
  if (rest.length === 0) return { endpoint: 'getStack', ref };
  if (rest.length === 1 && rest[0] === 'updates') return { endpoint: 'listUpdates', ref };
  if (rest.length === 3 && rest[0] === 'updates' && rest[1] === 'latest' && rest[2] === 'previews') return { endpoint: 'latestPreviews', ref };
  if (rest.length === 3 && rest[0] === 'updates' && /^\d+$/.test(rest[1] ?? '') && rest[2] === 'previews') {
    return { endpoint: 'versionPreviews', ref, version: Number(rest[1]) };
  }
  // The kind segment is not checked against the update's kind, as the service ignores it.
  if (rest.length === 2 && KIND_SEGMENTS.has(rest[0] ?? '')) return { endpoint: 'updateStatus', ref, updateId: rest[1] ?? '' };
  if (rest.length === 3 && KIND_SEGMENTS.has(rest[0] ?? '') && rest[2] === 'events') return { endpoint: 'engineEvents', ref, updateId: rest[1] ?? '' };
  return undefined;
}

/** The largest /api/user/stacks page served, whatever maxResults asks for. */
export const MAX_STACK_PAGE = 500;

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new HttpError(400, `Bad Request: ${name} must be a non-negative integer`);
  return Number(v);
}

/** Applies the service's page/pageSize convention: page 0 or absent = everything. */
function paginate<T>(items: readonly T[], q: URLSearchParams): { page: T[]; itemsPerPage: number } {
  const page = intParam(q, 'page') ?? 0;
  const pageSize = intParam(q, 'pageSize');
  if (page === 0) return { page: [...items], itemsPerPage: pageSize ?? items.length };
  const size = pageSize ?? 10;
  if (size < 1) throw new HttpError(400, 'Bad Request: pageSize must be >= 1 when page > 0');
  return { page: items.slice((page - 1) * size, page * size), itemsPerPage: size };
}

function eventMatches(e: Readonly<Record<string, unknown>> & { type: string }, urn: string | null, types: string[]): boolean {
  // Numeric type codes are undocumented (shared pulumi-api.md 2.7); only payload names filter here.
  const named = types.filter((t) => !/^\d+$/.test(t));
  if (named.length > 0 && !named.includes(e.type)) return false;
  if (urn === null) return true;
  const payload = e[e.type] as Record<string, unknown> | undefined;
  const meta = payload?.['metadata'] as Record<string, unknown> | undefined;
  return meta?.['urn'] === urn || payload?.['urn'] === urn || payload?.['resourceUrn'] === urn;
}

export async function startSimulator(options: SimulatorOptions & { host?: string; port?: number } = {}): Promise<RunningSimulator> {
  const stackPageSize = options.stackPageSize ?? 10;
  const eventPageSize = options.eventPageSize ?? 100;
  for (const [name, v] of [
    ['stackPageSize', stackPageSize],
    ['eventPageSize', eventPageSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new SimulatorError('SIMULATOR_OPTION_INVALID', `simulator ${name} must be a positive integer`);
  }
  if (options.live && (!Number.isFinite(options.live.intervalMs) || options.live.intervalMs < 10)) {
    throw new SimulatorError('SIMULATOR_OPTION_INVALID', 'simulator live.intervalMs must be at least 10');
  }
  if (options.acceptedToken !== undefined && options.acceptedToken.length === 0) {
    throw new SimulatorError('SIMULATOR_OPTION_INVALID', 'simulator acceptedToken must not be empty');
  }
  const world = new SimWorld({
    seed: options.seed ?? 1,
    nowSeconds: options.nowSeconds ?? Math.floor(Date.now() / 1000),
    ...(options.scale ? { scale: options.scale } : {}),
    ...(options.fixtures === undefined ? {} : { fixtures: options.fixtures }),
    ...(options.tickEvents === undefined ? {} : { tickEvents: options.tickEvents }),
  });
  const faults = new FaultInjector();
  const webhooks = new WebhookSender(options.webhooks);
  const updateListeners = new Set<(event: SimUpdateEvent) => void>();
  world.onUpdate = (phase, stack, update) => {
    const event: SimUpdateEvent = {
      phase,
      stack: { org: stack.org, project: stack.project, stack: stack.stack },
      updateId: update.updateId,
      kind: update.kind,
      isPreview: update.isPreview,
      atMs: Date.now(),
    };
    if (phase === 'started') webhooks.updateStarted(stack, update);
    else webhooks.updateFinished(stack, update);
    for (const listener of updateListeners) listener(event);
  };
  for (const rule of options.faults ?? []) faults.add(rule);
  const live = options.live !== undefined;

  const emptyStats = (): Record<Endpoint, number> =>
    Object.fromEntries(ENDPOINTS.map((e) => [e, 0])) as Record<Endpoint, number>;
  let total = 0;
  let byEndpoint = emptyStats();
  let requestSerial = 0;
  const pendingDelays = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  const stackOf = (ref: StackRef | undefined): SimStack => {
    const s = ref ? world.findStack(ref) : undefined;
    if (!s) throw new HttpError(404, `Not Found: stack '${ref?.org ?? ''}/${ref?.project ?? ''}/${ref?.stack ?? ''}' not found`);
    return s;
  };
  const updateOf = (s: SimStack, id: string | undefined): SimUpdate => {
    const u = [...s.updates, ...s.previews].find((x) => x.updateId === id);
    if (!u) throw new HttpError(404, `Not Found: update '${id ?? ''}' not found`);
    return u;
  };

  const answer = (r: Route, q: URLSearchParams): unknown => {
    switch (r.endpoint) {
      case 'listStacks': {
        const org = q.get('organization');
        const project = q.get('project');
        const inOrg = org === null ? world.stacks : world.stacksOf(org);
        const all = project === null ? inOrg : inOrg.filter((s) => s.project === project);
        const token = q.get('continuationToken');
        const offset = token === null || token === '' ? 0 : decodeStackToken(token);
        if (offset === undefined) throw new HttpError(400, 'Bad Request: invalid continuationToken');
        const size = Math.min(intParam(q, 'maxResults') || stackPageSize, MAX_STACK_PAGE);
        const page = all.slice(offset, offset + size);
        const next = offset + size < all.length ? encodeStackToken(offset + size) : undefined;
        return { stacks: page.map((s) => stackListItem(world, s)), ...(next ? { continuationToken: next } : {}) };
      }
      case 'getStack':
        return stackDetail(world, stackOf(r.ref));
      case 'listUpdates': {
        const s = stackOf(r.ref);
        const newestFirst = [...s.updates].reverse();
        const { page, itemsPerPage } = paginate(newestFirst, q);
        if (q.get('output-type') !== 'service') return { updates: page.map((u) => legacyInfo(u)) };
        return { updates: page.map((u) => serviceEntry(world, s, u)), itemsPerPage, total: newestFirst.length };
      }
      case 'latestPreviews':
      case 'versionPreviews': {
        const s = stackOf(r.ref);
        const oldestFirst = r.version === undefined ? world.latestPreviews(s) : world.previewsOf(s, r.version);
        const ordered = q.get('asc') === 'true' ? oldestFirst : [...oldestFirst].reverse();
        const { page, itemsPerPage } = paginate(ordered, q);
        return { updates: page.map((u) => serviceEntry(world, s, u)), itemsPerPage, total: ordered.length };
      }
      case 'updateStatus': {
        const u = updateOf(stackOf(r.ref), r.updateId);
        return { status: updateStatus(u), events: [], continuationToken: u.complete ? null : encodeEventToken(u.updateId, u.visible) };
      }
      case 'engineEvents': {
        const u = updateOf(stackOf(r.ref), r.updateId);
        const token = q.get('continuationToken');
        const offset = token === null || token === '' ? 0 : decodeEventToken(token, u.updateId);
        if (offset === undefined || offset > u.events.length) throw new HttpError(400, 'Bad Request: invalid continuationToken');
        const urn = q.get('urn');
        const types = q.getAll('type');
        const events: unknown[] = [];
        let pos = offset;
        while (pos < u.visible && events.length < eventPageSize) {
          const e = u.events[pos];
          pos += 1;
          if (e && eventMatches(e, urn, types)) events.push(e);
        }
        const done = u.complete && pos >= u.events.length;
        // While running, the token at the end of what exists repeats until new events arrive.
        return { events, continuationToken: done ? null : encodeEventToken(u.updateId, Math.max(pos, offset)) };
      }
    }
  };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    requestSerial += 1;
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const payload = gzip ? gzipSync(body) : Buffer.from(body, 'utf8');
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-pulumi-request-id': `sim-${requestSerial}`,
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      'content-length': String(payload.length),
      ...headers,
    });
    res.end(payload);
  };
  const sendError = (req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) =>
    send(req, res, status, JSON.stringify({ code: status, message }), headers);

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          pendingDelays.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      pendingDelays.add(entry);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    total += 1;
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    let r: Route | undefined;
    try {
      r = route(url.pathname);
    } catch (err) {
      sendError(req, res, err instanceof HttpError ? err.status : 400, err instanceof Error ? err.message : 'Bad Request');
      return;
    }
    if (r) byEndpoint[r.endpoint] += 1;
    const auth = /^token (.+)$/.exec(String(req.headers['authorization'] ?? ''));
    const token = auth?.[1]?.trim() ?? '';
    if (token === '' || (options.acceptedToken !== undefined && token !== options.acceptedToken)) {
      sendError(req, res, 401, 'Unauthorized: No credentials provided or are invalid.');
      return;
    }
    if (req.method !== 'GET') {
      sendError(req, res, 405, `Method Not Allowed: ${req.method ?? ''}`);
      return;
    }
    if (!r) {
      sendError(req, res, 404, `Not Found: ${url.pathname}`);
      return;
    }
    const fault = faults.pick(r.endpoint);
    if (fault) {
      switch (fault.kind) {
        case '429':
          sendError(req, res, 429, 'Too Many Requests: rate limit exceeded', { 'retry-after': String(fault.retryAfterSeconds ?? 1) });
          return;
        case '500':
        case '502':
        case '503':
        case '504':
          sendError(req, res, Number(fault.kind), `Injected fault: HTTP ${fault.kind}`);
          return;
        case '401':
          sendError(req, res, 401, 'Unauthorized: No credentials provided or are invalid.');
          return;
        case 'slow':
          await delay(fault.delayMs ?? 1000);
          if (res.destroyed || res.writableEnded) return;
          break;
        default:
          break;
      }
    }
    let body: string;
    try {
      body = JSON.stringify(answer(r, url.searchParams));
    } catch (err) {
      if (err instanceof HttpError) sendError(req, res, err.status, err.message);
      else sendError(req, res, 500, 'Internal Server Error');
      return;
    }
    // A malformed answer is a 200 whose body is cut in half: never valid JSON.
    if (fault?.kind === 'malformed') body = body.slice(0, Math.max(1, Math.floor(body.length / 2)));
    send(req, res, 200, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(req, res, 500, 'Internal Server Error');
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let liveTimer: NodeJS.Timeout | undefined;
  if (options.live) {
    const wallStart = Date.now();
    const base = world.nowSeconds;
    liveTimer = setInterval(() => {
      try {
        world.syncClock(base + (Date.now() - wallStart) / 1000);
        world.tick(true);
      } catch {
        // A timer must never throw; a failed tick just leaves the data as it was.
      }
    }, options.live.intervalMs);
    liveTimer.unref();
  }

  let closing: Promise<void> | undefined;
  const toRef = (s: StackRef): StackRef => ({ org: s.org, project: s.project, stack: s.stack });

  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (liveTimer) clearInterval(liveTimer);
        webhooks.setTarget(undefined);
        for (const d of pendingDelays) {
          clearTimeout(d.timer);
          d.resolve();
        }
        pendingDelays.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
    truth: () => world.truth(),
    stats: () => ({ total, byEndpoint: { ...byEndpoint } }),
    resetStats() {
      total = 0;
      byEndpoint = emptyStats();
    },
    faults: {
      add: (rule) => faults.add(rule),
      clear: () => faults.clear(),
    },
    webhooks: {
      setTarget: (target) => webhooks.setTarget(target),
      deliveries: () => webhooks.deliveries(),
      flush: () => webhooks.flush(),
    },
    onUpdate(listener) {
      updateListeners.add(listener);
      return () => updateListeners.delete(listener);
    },
    control: {
      startUpdate: (stack, opts) => world.startUpdate(toRef(stack), opts ?? {}),
      tick: () => world.tick(live),
      completeUpdate: (stack, updateId) => world.completeUpdate(toRef(stack), updateId),
      startPreview: (stack, opts) => world.startPreview(toRef(stack), opts ?? {}),
      addCompletedPreview(stack, opts) {
        const id = world.startPreview(toRef(stack), opts ?? {});
        world.completeUpdate(toRef(stack), id);
        return id;
      },
      addCompletedUpdate(stack, opts) {
        const id = world.startUpdate(toRef(stack), opts ?? {});
        world.completeUpdate(toRef(stack), id);
        return id;
      },
      advanceClock: (seconds) => world.advanceClock(seconds),
    },
  };
}
