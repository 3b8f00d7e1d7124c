/** What one HTTP attempt to the collector came to. */
export type OtlpAttempt =
  | {
      readonly kind: 'answered';
      readonly status: number;
      /** The raw Retry-After header, if any. */
      readonly retryAfter: string | null;
      /** Body of a 2xx answer (for a partial success), at most MAX_ANSWER_BYTES; empty otherwise. */
      readonly body: Uint8Array;
    }
  /** The batch's deadline passed before the answer was complete. */
  | { readonly kind: 'timeout' }
  /** The sink was shut down while the request was in flight. */
  | { readonly kind: 'stopped' }
  /** No answer: connection refused or reset, DNS or TLS failure. */
  | { readonly kind: 'network'; readonly code: string; readonly message: string };

export interface OtlpRequest {
  readonly url: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

/** A partial success is a few bytes; a proxy's error page is not worth reading further. */
const MAX_ANSWER_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * POSTs one OTLP request with `fetch` and reads the answer. Redirects are not followed (the
 * configured headers may carry credentials meant for the collector only). Never rejects.
 */
export async function sendOtlpRequest(request: OtlpRequest, deadline: AbortSignal, stop: AbortSignal): Promise<OtlpAttempt> {
  // Not AbortSignal.any: on Node 20 every call leaves a little memory on the long-lived stop signal.
  const cut = new AbortController();
  const onAbort = (): void => cut.abort();
  for (const signal of [deadline, stop]) {
    if (signal.aborted) cut.abort();
    signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: cut.signal,
    });
    const retryAfter = response.headers.get('retry-after');
    if (response.status < 200 || response.status >= 300) {
      await response.body?.cancel().catch(() => undefined);
      return { kind: 'answered', status: response.status, retryAfter, body: EMPTY };
    }
    return { kind: 'answered', status: response.status, retryAfter, body: await readCapped(response) };
  } catch (err) {
    if (stop.aborted) return { kind: 'stopped' };
    if (deadline.aborted) return { kind: 'timeout' };
    return { kind: 'network', code: networkCode(err), message: networkMessage(err) };
  } finally {
    deadline.removeEventListener('abort', onAbort);
    stop.removeEventListener('abort', onAbort);
  }
}

async function readCapped(response: Response): Promise<Uint8Array> {
  if (response.body === null) return EMPTY;
  // A collector's answer is usually a few bytes with a length: read at once, not chunk by chunk.
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isSafeInteger(length) && length >= 0 && length <= MAX_ANSWER_BYTES) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    chunks.push(chunk);
    size += chunk.length;
    // Leaving the loop cancels the rest of the stream.
    if (size >= MAX_ANSWER_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES);
}

function networkMessage(err: unknown): string {
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Error && cause.message !== '') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** fetch wraps socket errors: TypeError('fetch failed', { cause: Error { code: 'ECONNREFUSED' } }). */
function networkCode(err: unknown): string {
  const cause = (err as { cause?: unknown } | undefined)?.cause as { code?: unknown; errors?: { code?: unknown }[]; name?: unknown } | undefined;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  if (typeof code === 'string' && code !== '') return code;
  const name = typeof cause?.name === 'string' ? cause.name : err instanceof Error ? err.name : 'Error';
  return name;
}
