import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { StackRef } from '../domain/stack.js';
import { errorCodeOf, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { WebhookMetrics, WebhookOutcome } from '../metrics/webhook-metrics.js';
import type { TriggerDecision } from '../sync/sync-trigger.js';
import { signatureProblem } from './webhook-signature.js';
import { bareApp } from './http-app.js';

export const WEBHOOK_PATH = '/webhooks/pulumi';

export interface WebhookRouteDeps {
  /** webhooks.secret: when set, every delivery must be signed with it. */
  readonly secret: string | undefined;
  readonly maxBodyBytes: number;
  /** previews.enabled: a finished preview (stack_preview) is exported too, so its delivery syncs the stack. */
  readonly previews?: boolean;
  readonly trigger: { request(ref: StackRef): TriggerDecision };
  readonly metrics: WebhookMetrics & { error(code: ErrorCode): void };
  readonly logger: Logger;
  /** Milliseconds since the epoch (tests pass a fake). */
  readonly now?: () => number;
}

/**
 * Event kinds after which the stack's update history or running set may have changed
 * (shared pulumi-webhooks.md section 2.1): finished updates, refreshes and destroys; deployments
 * (queued, started or finished, each an update run by Pulumi Deployments); drift remediation
 * (runs an update); a created stack. Previews leave the history alone (they sync only when
 * previews are exported), and so do pings, drift detection, policy and ESC events: they are
 * acknowledged and ignored.
 */
const SYNC_KINDS: ReadonlySet<string> = new Set(['stack_update', 'deployment', 'drift_remediation', 'stack']);

/** Org logins, project and stack names as Pulumi allows them; anything else is not a stack. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Redeliveries reuse the Pulumi-Webhook-Id (shared pulumi-webhooks.md section 3.2): remembered this long. */
const SEEN_IDS_TTL_MS = 10 * 60_000;
const SEEN_IDS_MAX = 4096;
/** Rejected deliveries are logged at WARN at most this often (a flood must not flood the log). */
const WARN_EVERY_MS = 60_000;

class Rejection extends Error {
  constructor(
    readonly status: number,
    readonly outcome: WebhookOutcome,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * POST /webhooks/pulumi: receives Pulumi Cloud webhook deliveries (raw format) and turns
 * each stack event into a sync request. The body is read as raw bytes (the signature covers
 * exactly them) up to maxBodyBytes, else 413. With a secret: a missing, malformed or wrong
 * Pulumi-Webhook-Signature is 401. A delivery is acknowledged at once (202 when a sync was
 * asked for, 200 otherwise); the sync runs in the background. Every delivery is counted by
 * kind and outcome. Other methods on the path answer 405.
 */
export function webhookRouter(deps: WebhookRouteDeps): express.Router {
  const router = express.Router();
  const now = deps.now ?? Date.now;
  const seen = new Map<string, number>();
  let lastWarnMs = -Infinity;
  let quietRejections = 0;

  const remembered = (id: string): boolean => {
    const at = seen.get(id);
    return at !== undefined && now() - at < SEEN_IDS_TTL_MS;
  };
  const remember = (id: string): void => {
    seen.delete(id);
    seen.set(id, now());
    // Map order is insertion order: the first entries are the oldest.
    for (const [old, at] of seen) {
      if (seen.size <= SEEN_IDS_MAX && now() - at < SEEN_IDS_TTL_MS) break;
      seen.delete(old);
    }
  };

  const reject = (req: Request, res: Response, kind: string, rejection: Rejection): void => {
    deps.metrics.webhookDelivery(kind, rejection.outcome);
    deps.metrics.error(rejection.code);
    const context = { code: rejection.code, kind, deliveryId: oneWord(req.get('pulumi-webhook-id')), remote: req.socket.remoteAddress };
    if (now() - lastWarnMs >= WARN_EVERY_MS) {
      deps.logger.warn({ ...context, similarSinceLastWarning: quietRejections }, `webhook delivery refused: ${rejection.message}`);
      lastWarnMs = now();
      quietRejections = 0;
    } else {
      quietRejections += 1;
      deps.logger.debug(context, `webhook delivery refused: ${rejection.message}`);
    }
    res.status(rejection.status).json({ outcome: rejection.outcome, code: rejection.code, error: rejection.message });
  };

  router.post(
    WEBHOOK_PATH,
    express.raw({ type: () => true, limit: deps.maxBodyBytes, inflate: false }),
    (req: Request, res: Response) => {
      const kind = oneWord(req.get('pulumi-webhook-kind')) ?? '';
      const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        if (deps.secret !== undefined) {
          const problem = signatureProblem(body, req.get('pulumi-webhook-signature'), deps.secret);
          if (problem !== undefined) throw new Rejection(401, 'unauthorized', 'WEBHOOK_SIGNATURE_INVALID', SIGNATURE_MESSAGES[problem]);
        }
        if (kind === '') throw new Rejection(400, 'malformed', 'WEBHOOK_PAYLOAD_INVALID', 'no Pulumi-Webhook-Kind header');
        const id = oneWord(req.get('pulumi-webhook-id'));
        if (id !== undefined && remembered(id)) {
          deps.metrics.webhookDelivery(kind, 'duplicate');
          res.status(200).json({ outcome: 'duplicate' });
          return;
        }
        const syncs = SYNC_KINDS.has(kind) || (kind === 'stack_preview' && deps.previews === true);
        const payload = syncs ? parsePayload(body) : undefined;
        if (payload === undefined || (kind === 'stack' && payload['action'] === 'deleted')) {
          // A deleted stack leaves the list on the next poll cycle; syncing it now would only 404.
          deps.metrics.webhookDelivery(kind, 'ignored');
          res.status(200).json({ outcome: 'ignored' });
          return;
        }
        const ref = stackOf(payload);
        const decision = deps.trigger.request(ref);
        if (id !== undefined) remember(id);
        deps.metrics.webhookDelivery(kind, decision);
        deps.logger.debug({ kind, deliveryId: id, stack: `${ref.org}/${ref.project}/${ref.stack}`, outcome: decision }, 'webhook delivery');
        res.status(decision === 'accepted' ? 202 : 200).json({ outcome: decision });
      } catch (err) {
        if (!(err instanceof Rejection)) throw err;
        reject(req, res, kind, err);
      }
    },
  );

  router.all(WEBHOOK_PATH, (_req, res) => {
    res.setHeader('Allow', 'POST');
    res.status(405).json({ error: 'method not allowed: Pulumi Cloud webhooks POST here' });
  });

  // Body reading failures (body-parser errors carry `type` and `status`).
  router.use(WEBHOOK_PATH, (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const type = (err as { type?: unknown } | undefined)?.type;
    const kind = oneWord(req.get('pulumi-webhook-kind')) ?? '';
    if (type === 'entity.too.large') {
      reject(req, res, kind, new Rejection(413, 'too_large', 'WEBHOOK_BODY_TOO_LARGE', `the body is larger than webhooks.maxBodyBytes (${deps.maxBodyBytes} bytes)`));
    } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      reject(req, res, kind, new Rejection(415, 'malformed', 'WEBHOOK_PAYLOAD_INVALID', 'a compressed or re-encoded body cannot be verified; send it as is'));
    } else if (type === 'request.aborted' || type === 'request.size.invalid') {
      deps.metrics.webhookDelivery(kind, 'malformed');
      deps.logger.debug({ code: errorCodeOf(err), kind }, 'webhook delivery cut off before its body was complete');
      if (!res.headersSent) res.status(400).json({ outcome: 'malformed', error: 'the body was incomplete' });
    } else {
      next(err);
    }
  });

  return router;
}

const SIGNATURE_MESSAGES: Readonly<Record<'missing' | 'malformed' | 'mismatch', string>> = {
  missing: 'no Pulumi-Webhook-Signature header, but a webhook secret is set (give the Pulumi webhook the same secret)',
  malformed: 'the Pulumi-Webhook-Signature header is not a hex HMAC-SHA256 (64 hex digits)',
  mismatch: 'the Pulumi-Webhook-Signature does not match the body under the configured secret (a different secret, or an altered body)',
};

/** A header value as one short word, or undefined (header values are the sender's: never trusted in logs). */
function oneWord(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v !== undefined && /^[A-Za-z0-9_.:-]{1,64}$/.test(v) ? v : undefined;
}

function parsePayload(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Rejection(400, 'malformed', 'WEBHOOK_PAYLOAD_INVALID', 'the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Rejection(400, 'malformed', 'WEBHOOK_PAYLOAD_INVALID', 'the body is not a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/**
 * The stack a payload is about: organization.githubLogin (the login used in API paths; the
 * 2019 format sent the login as a plain string), projectName and stackName
 * (shared pulumi-webhooks.md section 2.3).
 */
function stackOf(payload: Record<string, unknown>): StackRef {
  const organization = payload['organization'];
  const org =
    typeof organization === 'string'
      ? organization
      : typeof organization === 'object' && organization !== null
        ? (organization as Record<string, unknown>)['githubLogin']
        : undefined;
  const project = payload['projectName'];
  const stack = payload['stackName'];
  for (const [field, value] of [
    ['organization.githubLogin', org],
    ['projectName', project],
    ['stackName', stack],
  ] as const) {
    if (typeof value !== 'string' || !NAME.test(value)) {
      throw new Rejection(400, 'malformed', 'WEBHOOK_PAYLOAD_INVALID', `${field} is missing or not a valid name`);
    }
  }
  return { org: org as string, project: project as string, stack: stack as string };
}

/**
 * The app served on webhooks.port when the webhook has a listener of its own: the webhook
 * route and nothing else (no metrics, no status page on a port exposed to the internet).
 */
export function createWebhookApp(router: express.Router, logger: Logger): express.Express {
  const app = bareApp();
  app.use(router);
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    logger.error({ err, code: errorCodeOf(err), method: req.method, path: req.path }, 'webhook request failed');
    if (res.headersSent) res.destroy();
    else res.status(500).json({ error: 'internal error' });
  });
  return app;
}
