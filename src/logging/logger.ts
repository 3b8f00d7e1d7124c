import { pino, type Logger, type DestinationStream } from 'pino';
import { redact, redactJson } from '../secrets.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go; stdout by default. Tests pass a sink to read what was logged. */
  readonly destination?: DestinationStream;
}

const MAX_DEPTH = 8;

/**
 * A copy of a value to be logged with every registered secret removed from its strings,
 * taken before JSON escaping (a token with a line break inside is written as `\n` in the
 * line and no longer matches). Errors become pino's serialized form (message and stack
 * include every cause) and are redacted like the rest.
 */
export function redactForLog(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Object]';
  seen.add(value);
  if (value instanceof Error) return redactForLog({ ...pino.stdSerializers.err(value) }, depth + 1, seen);
  if (Array.isArray(value)) return value.map((item) => redactForLog(item, depth + 1, seen));
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redactForLog(toJSON.call(value), depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = redactForLog(item, depth + 1, seen);
  return out;
}

/**
 * The one root logger. Modules take `logger.child({ module })`. Secrets are removed by key
 * (redact paths) and by value: every string of the message, the logged object, its errors
 * and their causes is redacted before serialization; the final line (child bindings
 * included) is checked once more for secrets in raw and JSON-escaped form.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'pulumi-update-exporter' },
      redact: {
        paths: [
          'token',
          'accessToken',
          '*.token',
          '*.accessToken',
          'headers.authorization',
          'headers.Authorization',
          '*.headers.authorization',
          '*.headers.Authorization',
          'config.pulumi.accessToken',
        ],
        censor: '[REDACTED]',
      },
      formatters: {
        bindings: (bindings) => redactForLog(bindings) as Record<string, unknown>,
        log: (object) => redactForLog(object) as Record<string, unknown>,
      },
      // Child bindings are serialized when the child is made, without formatters.bindings;
      // the finished line is checked for secrets in their JSON-escaped form too.
      hooks: { streamWrite: (line: string) => redactJson(line) },
      // formatters.log already turned errors into redacted plain objects (pino's own err
      // serializer would re-serialize them as type "Object"); `msg` is the formatted message.
      serializers: { err: (err: unknown) => err, msg: (msg: unknown) => redactForLog(msg) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything; for unit tests of layers that need one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
