import { createHmac, randomUUID } from 'node:crypto';
import type { StackRef } from '../domain/stack.js';
import type { SimStack, SimUpdate } from './sim-model.js';

/** Where the simulator delivers its webhooks, and the secret it signs them with (unset: unsigned). */
export interface WebhookTarget {
  readonly url: string;
  readonly secret?: string;
}

/** One delivery the simulator made (for tests and the demo). */
export interface SentDelivery {
  readonly id: string;
  readonly kind: 'stack_update' | 'stack_preview' | 'deployment';
  readonly stack: StackRef;
  readonly updateId: string;
  /** The answer's status; 0 when the request failed (refused connection, timeout). */
  readonly status: number;
  /** Wall clock when the answer (or the failure) came, Unix ms. */
  readonly answeredAtMs: number;
}

const CONSOLE = 'https://app.pulumi.com';
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Delivers Pulumi Cloud webhooks (raw format, shared pulumi-webhooks.md sections 1 and 2) for
 * the simulator's updates: `stack_update` (or `stack_preview`) when one finishes, and, since
 * Pulumi Cloud has no event for a started CLI update, `deployment` with status `running` when
 * one starts (what Pulumi Deployments sends for deployment_started). Signed with the target's
 * secret like Pulumi Cloud signs them: hex HMAC-SHA256 of the body, no prefix. Fire and
 * forget, as Pulumi Cloud's own queue: a failed delivery is recorded, never retried.
 */
export class WebhookSender {
  private target: WebhookTarget | undefined;
  private readonly sent: SentDelivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(target?: WebhookTarget) {
    this.target = target;
  }

  setTarget(target: WebhookTarget | undefined): void {
    this.target = target;
  }

  updateStarted(stack: SimStack, update: SimUpdate): void {
    if (update.isPreview) return;
    this.deliver('deployment', stack, update, {
      deploymentUrl: `${CONSOLE}/${stack.org}/${stack.project}/${stack.stack}/deployments/${update.version}`,
      version: update.version,
      operation: update.kind,
      status: 'running',
    });
  }

  updateFinished(stack: SimStack, update: SimUpdate): void {
    const preview = update.isPreview;
    this.deliver(preview ? 'stack_preview' : 'stack_update', stack, update, {
      updateUrl: `${CONSOLE}/${stack.org}/${stack.project}/${stack.stack}/${preview ? `previews/${update.updateId}` : `updates/${update.version}`}`,
      // The operation; a preview reports the previewed one (Pupdate -> update).
      kind: preview ? previewedKind(update.kind) : update.kind,
      result: update.result === 'succeeded' ? 'succeeded' : 'failed',
      resourceChanges: { ...update.resourceChanges },
      isPreview: preview,
    });
  }

  deliveries(): readonly SentDelivery[] {
    return [...this.sent];
  }

  /** Waits for every delivery started so far to be answered (or to fail). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private deliver(kind: SentDelivery['kind'], stack: SimStack, update: SimUpdate, fields: Record<string, unknown>): void {
    const target = this.target;
    if (target === undefined) return;
    const body = JSON.stringify({
      user: { name: update.requestedBy.name, githubLogin: update.requestedBy.githubLogin, avatarUrl: update.requestedBy.avatarUrl },
      organization: { name: stack.org, githubLogin: stack.org, avatarUrl: `https://avatars.example.com/${stack.org}.png` },
      projectName: stack.project,
      stackName: stack.stack,
      ...fields,
    });
    const id = randomUUID();
    const headers: Record<string, string> = {
      accept: '*/*',
      'content-type': 'application/json',
      'pulumi-webhook-id': id,
      'pulumi-webhook-kind': kind,
    };
    if (target.secret !== undefined) headers['pulumi-webhook-signature'] = createHmac('sha256', target.secret).update(body).digest('hex');
    const record = (status: number): void => {
      this.sent.push({ id, kind, stack: { org: stack.org, project: stack.project, stack: stack.stack }, updateId: update.updateId, status, answeredAtMs: Date.now() });
    };
    const request = fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) })
      .then(async (res) => {
        await res.arrayBuffer();
        record(res.status);
      })
      .catch(() => record(0))
      .finally(() => this.inFlight.delete(request));
    this.inFlight.add(request);
  }
}

function previewedKind(kind: string): string {
  if (kind === 'Prefresh') return 'refresh';
  if (kind === 'Pdestroy') return 'destroy';
  return 'update';
}
