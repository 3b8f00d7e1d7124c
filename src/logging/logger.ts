import { pino, type Logger, type DestinationStream } from 'pino';
import { redact } from '../secrets.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go; stdout by default. Tests pass a sink to read what was logged. */
  readonly destination?: DestinationStream;
}

/**
 * The one root logger. Modules take `logger.child({ module })`. Secrets are removed
 * twice: by key (redact paths) and by value (every registered secret in the final line).
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
      hooks: { streamWrite: (line: string) => redact(line) },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything; for unit tests of layers that need one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
