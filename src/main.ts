import { parseArgs } from 'node:util';
import { createApp } from './app.js';
import { describeConfig, loadConfig, requireToken, validateCommand, formatConfigProblems } from './config/load-config.js';
import type { Config } from './config/schema.js';
import { traceIdFor } from './conversion/trace-ids.js';
import { parseStackKey } from './domain/stack.js';
import { isExporterError } from './errors.js';
import { redact } from './secrets.js';
import { createLogger, type Logger } from './logging/logger.js';
import { simulateCommand } from './simulator/simulate-command.js';
import { startDemo } from './demo.js';
import { unknownEnvWarnings } from './config/env-warnings.js';
import { processEnvironment } from './config/process-environment.js';
import { VERSION } from './version.js';

const USAGE = `pulumi-update-exporter ${VERSION}

Usage: pulumi-update-exporter [command] [options]

Commands:
  run                 the long-running exporter (default)
  once                one complete poll cycle, flush spans, exit 0 (1 on failure, 130/143 on SIGINT/SIGTERM)
  validate            check the configuration and print the effective (redacted) config
  simulate            run the bundled Pulumi Cloud simulator (see --help)
  demo                simulator + exporter pointed at it; prints the URLs to open
  trace-id ORG/PROJECT/STACK UPDATE_ID   print the trace id of an update

Options for run, once, validate:
  --config FILE       YAML config file (also EXPORTER_CONFIG)
  -h, --help          this text
  -v, --version       the version
`;

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

function configFromArgs(argv: string[]): Config {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, allowPositionals: false, strict: true });
  return loadConfig({ ...(values.config ? { configPath: values.config } : {}), env: processEnvironment() });
}

/** Exit status of a `once` run stopped by a signal: 128 + the signal number, as a shell reports it. */
const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs the service (`run`) or one cycle (`once`). SIGINT and SIGTERM stop either gracefully
 * (abort the cycle, flush spans, close HTTP and the store); SIGHUP is logged and ignored.
 * Only this shell handles signals.
 */
async function runService(argv: string[], once: boolean): Promise<number> {
  const config = configFromArgs(argv);
  requireToken(config);
  const logger = createLogger({ level: config.log.level });
  const signals = watchSignals(logger);
  for (const warning of unknownEnvWarnings(processEnvironment())) logger.warn(warning);
  logger.info({ config: describeConfig(config), version: VERSION }, 'starting');
  const app = createApp(config, logger, once ? { http: false } : {});
  try {
    if (once) {
      const outcome = await Promise.race([app.runOnce(), signals.first]);
      if (typeof outcome === 'string') {
        logger.info({ signal: outcome }, 'stopping before the cycle completed');
        return SIGNAL_EXIT[outcome] ?? 1;
      }
      return outcome.result === 'success' ? 0 : 1;
    }
    await app.start();
    const signal = await signals.first;
    logger.info({ signal }, 'stopping');
    return 0;
  } finally {
    await app.stop();
    signals.dispose();
    logger.flush();
  }
}

interface SignalWatch {
  /** The name of the first SIGINT or SIGTERM. */
  readonly first: Promise<string>;
  /** Removes the handlers; a later signal has Node's default effect again. */
  dispose(): void;
}

/**
 * SIGINT/SIGTERM resolve `first`; a second one ends the process at once (Node's default). SIGHUP would otherwise kill the process without a flush; the configuration is
 * read only at start, so it is logged and ignored.
 */
function watchSignals(logger: Logger): SignalWatch {
  const onHangup = (): void => {
    logger.warn('SIGHUP ignored: the configuration is read only at start; restart the process to apply changes');
  };
  process.on('SIGHUP', onHangup);
  let stopHandlers: (() => void) | undefined;
  const first = new Promise<string>((resolve) => {
    // Both handlers go at the first signal, so any second one has the default effect.
    const onInt = (): void => {
      stopHandlers?.();
      resolve('SIGINT');
    };
    const onTerm = (): void => {
      stopHandlers?.();
      resolve('SIGTERM');
    };
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    stopHandlers = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  return {
    first,
    dispose: () => {
      process.off('SIGHUP', onHangup);
      stopHandlers?.();
    },
  };
}

/** Resolves with the name of the first SIGINT or SIGTERM. Only main.ts handles signals. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

function traceIdCommand(argv: string[]): number {
  const [key, updateId, ...rest] = argv;
  const ref = key ? parseStackKey(key) : undefined;
  if (!ref || !updateId || rest.length > 0) {
    err('usage: pulumi-update-exporter trace-id ORG/PROJECT/STACK UPDATE_ID');
    return 2;
  }
  out(traceIdFor(ref, updateId));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'run' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  if (args.includes('-h') || args.includes('--help')) {
    if (command === 'simulate') return simulateCommand(['--help'], out);
    out(USAGE);
    return 0;
  }
  if (args.includes('-v') || args.includes('--version')) {
    out(VERSION);
    return 0;
  }
  try {
    switch (command) {
      case 'run':
        return await runService(args, false);
      case 'once':
        return await runService(args, true);
      case 'validate':
        return validateCommand(args, processEnvironment(), out);
      case 'simulate': {
        const stop = new AbortController();
        void untilSignal().then(() => stop.abort());
        return await simulateCommand(args, out, stop.signal);
      }
      case 'demo': {
        const demo = await startDemo(args, processEnvironment(), out);
        await untilSignal();
        await demo.stop();
        return 0;
      }
      case 'trace-id':
        return traceIdCommand(args);
      default:
        err(`unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (isExporterError(e) && e.code.startsWith('CONFIG_')) {
      err(formatConfigProblems(e));
      return 2;
    }
    if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      err(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    err(redact(`pulumi-update-exporter: ${isExporterError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`));
    return 1;
  }
}
