import diagnosticsChannel from 'node:diagnostics_channel';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';

/** What one HTTP attempt of the OTLP exporter looked like on the wire. */
export interface HttpExchange {
  status?: number;
  /** Body of a 2xx answer (for partial success), capped at MAX_BODY_BYTES. */
  body?: Buffer;
  /** Error code of a network failure (ECONNREFUSED, ...), or the error name when it has none. */
  errorCode?: string;
  timedOut: boolean;
}

/** Recording window of one batch: the exchanges it caused, and a way to cut it short. */
export interface ExchangeWindow {
  readonly exchanges: readonly HttpExchange[];
  /** Destroys in-flight requests and every later one until the window is closed. */
  abandon(): void;
}

const MAX_BODY_BYTES = 64 * 1024;
const REQUEST_START = 'http.client.request.start';

interface WindowState extends ExchangeWindow {
  readonly exchanges: HttpExchange[];
  readonly inFlight: Set<ClientRequest>;
  abandoned: boolean;
}

/**
 * The SDK exporter reports only SUCCESS/FAILED: it hides the status of retried answers
 * (429 vs 503) and only logs partial-success bodies to the global diag logger. To report
 * bounded failure reasons and count rejected spans, the sink hands the exporter its own
 * agent and watches the requests made through it on Node's documented
 * `http.client.request.start` diagnostics channel. Exports are serialized by the sink, so
 * every request seen while a window is open belongs to that window's batch.
 */
export class ExchangeRecorder {
  private readonly agents = new Set<http.Agent>();
  private current: WindowState | undefined;
  private readonly onRequestStart = (message: unknown): void => {
    const request = (message as { request?: ClientRequest }).request;
    if (request === undefined) return;
    // ClientRequest keeps the agent it was created with; it is just not in the typings.
    const agent = (request as ClientRequest & { agent?: unknown }).agent;
    if (!this.agents.has(agent as http.Agent)) return;
    this.track(request);
  };
  private subscribed = false;

  /** For the exporter's `httpAgentOptions`: one keep-alive agent per protocol, observed. */
  readonly agentFactory = (protocol: string): Promise<http.Agent> => {
    const agent = protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.agents.add(agent);
    if (!this.subscribed) {
      diagnosticsChannel.subscribe(REQUEST_START, this.onRequestStart);
      this.subscribed = true;
    }
    return Promise.resolve(agent);
  };

  open(): ExchangeWindow {
    const state: WindowState = {
      exchanges: [],
      inFlight: new Set(),
      abandoned: false,
      abandon: () => {
        state.abandoned = true;
        for (const request of state.inFlight) request.destroy(new Error('export deadline exceeded'));
      },
    };
    this.current = state;
    return state;
  }

  close(window: ExchangeWindow): void {
    if (this.current === window) this.current = undefined;
  }

  /** Stops watching and closes the agents' sockets. */
  dispose(): void {
    if (this.subscribed) diagnosticsChannel.unsubscribe(REQUEST_START, this.onRequestStart);
    this.subscribed = false;
    for (const agent of this.agents) agent.destroy();
    this.agents.clear();
  }

  private track(request: ClientRequest): void {
    const window = this.current;
    if (window === undefined || window.abandoned) {
      // A retry the SDK scheduled for a batch we already gave up on: it must not reach the
      // collector after the sink reported the batch as failed, nor count for the next batch.
      request.destroy(new Error('export abandoned'));
      return;
    }
    const exchange: HttpExchange = { timedOut: false };
    window.exchanges.push(exchange);
    window.inFlight.add(request);
    const done = (): void => {
      window.inFlight.delete(request);
    };
    request.once('response', (response: IncomingMessage) => {
      exchange.status = response.statusCode;
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_BODY_BYTES) chunks.push(chunk);
        });
        response.once('end', () => {
          exchange.body = Buffer.concat(chunks);
        });
      }
    });
    request.once('timeout', () => {
      exchange.timedOut = true;
    });
    request.once('error', (err: Error & { code?: unknown }) => {
      exchange.errorCode = typeof err.code === 'string' ? err.code : err.name;
    });
    request.once('close', done);
  }
}
