import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createApp } from './app.js';
import { describeConfig } from './config/describe-config.js';
import { formatConfigProblems, loadConfig } from './config/load-config.js';
import { processEnvironment } from './config/process-environment.js';
import { requireToken } from './config/require-token.js';
import type { Config } from './config/schema.js';
import { validateCommand } from './config/validate-command.js';
import { traceIdFor } from './conversion/trace-ids.js';
import { parseStackKey } from './domain/stack.js';
import { isExporterError } from './errors.js';
import { createLogger, type Logger } from './logging/logger.js';
import { redact } from './secrets.js';
import { unknownEnvWarnings } from './config/env-warnings.js';
import { VERSION } from './version.js';

/** Where a command writes; injectable for tests. */
export interface CommandIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const PROCESS_IO: CommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | Array<string | boolean> | undefined>;

interface Command {
  /** One line for the command list. */
  readonly summary: string;
  /** The command's own usage, printed by `COMMAND --help` and after a usage error. */
  readonly usage: string;
  readonly options: Options;
  /** Exact number of positional arguments (default 0). */
  readonly positionals?: number;
  /** The command parses its own arguments (it has its own parseArgs table and --help). */
  readonly passThrough?: boolean;
  run(values: Values, positionals: string[], args: string[], io: CommandIo): Promise<number>;
}

const CONFIG_OPTION: Options = { config: { type: 'string', short: 'c' } };
const CONFIG_USAGE = '  -c, --config FILE   YAML config file (also EXPORTER_CONFIG)';
const HELP_USAGE = '  -h, --help          this text';

function configPathOf(values: Values): string | undefined {
  return typeof values['config'] === 'string' ? values['config'] : undefined;
}

function configFrom(values: Values): Config {
  const configPath = configPathOf(values);
  return loadConfig({ ...(configPath ? { configPath } : {}), env: processEnvironment() });
}

/** Exit status of a `once` run stopped by a signal: 128 + the signal number, as a shell reports it. */
const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs the service (`run`) or one cycle (`once`). SIGINT and SIGTERM stop either gracefully
 * (abort the cycle, flush spans, close HTTP and the store); SIGHUP is logged and ignored.
 * Only this shell handles signals.
 */
async function runService(values: Values, once: boolean): Promise<number> {
  const config = configFrom(values);
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
/**
 * For `demo` and `simulate`: resolves at SIGINT/SIGTERM. SIGHUP (a closed terminal, a
 * supervisor's reload) is ignored with a line on stderr, as `run` does, instead of killing
 * the process without stopping what it started.
 */
function untilSignal(err: (line: string) => void): Promise<string> {
  const onHangup = (): void => err('SIGHUP ignored: stop with SIGINT (Ctrl-C) or SIGTERM');
  process.on('SIGHUP', onHangup);
  return new Promise((resolve) => {
    const done = (signal: string): void => {
      process.off('SIGHUP', onHangup);
      resolve(signal);
    };
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
}

const COMMANDS: Readonly<Record<string, Command>> = {
  run: {
    summary: 'the long-running exporter (default)',
    usage: `Usage: pulumi-update-exporter run [options]\n\nRuns the exporter until SIGINT/SIGTERM (SIGHUP is logged and ignored).\n\nOptions:\n${CONFIG_USAGE}\n${HELP_USAGE}`,
    options: CONFIG_OPTION,
    run: (values) => runService(values, false),
  },
  once: {
    summary: 'one complete poll cycle, flush spans, exit 0 (1 on failure, 130/143 on SIGINT/SIGTERM)',
    usage: `Usage: pulumi-update-exporter once [options]\n\nRuns one complete poll cycle, flushes the spans and exits (0 on success, 1 on failure, 130/143 when\nstopped by SIGINT/SIGTERM; SIGHUP is ignored).\n\nOptions:\n${CONFIG_USAGE}\n${HELP_USAGE}`,
    options: CONFIG_OPTION,
    run: (values) => runService(values, true),
  },
  validate: {
    summary: 'check the configuration and print the effective (redacted) config',
    usage: `Usage: pulumi-update-exporter validate [options]\n\nChecks the configuration and prints the effective config (secrets redacted); exit 2 when invalid.\n\nOptions:\n${CONFIG_USAGE}\n${HELP_USAGE}`,
    options: CONFIG_OPTION,
    run: (values, _positionals, _args, io) => Promise.resolve(validateCommand(configPathOf(values), processEnvironment(), io.out)),
  },
  simulate: {
    summary: 'run the bundled Pulumi Cloud simulator (see simulate --help)',
    usage: '',
    options: {},
    passThrough: true,
    async run(_values, _positionals, args, io) {
      const { simulateCommand } = await import('./simulator/simulate-command.js');
      const stop = new AbortController();
      void untilSignal(io.err).then(() => stop.abort());
      return simulateCommand(args, io.out, stop.signal);
    },
  },
  demo: {
    summary: 'simulator + exporter pointed at it; prints the URLs to open',
    usage: `Usage: pulumi-update-exporter demo [options]

Runs the bundled simulator in live mode and the exporter pointed at it, until SIGINT/SIGTERM.

Options:
${CONFIG_USAGE}
  --seed S                  simulator data seed (default 1)
  --state FILE              the demo's own SQLite state file, recreated on start (default ./data/demo.db)
  --simulator-port N        simulator port (default 0: any free port)
  --live-interval-ms MS     how often running updates advance (default 3000)
${HELP_USAGE}`,
    options: {
      ...CONFIG_OPTION,
      seed: { type: 'string', default: '1' },
      state: { type: 'string', default: './data/demo.db' },
      'simulator-port': { type: 'string', default: '0' },
      'live-interval-ms': { type: 'string', default: '3000' },
    },
    async run(values, _positionals, _args, io) {
      const { startDemo } = await import('./demo.js');
      const configPath = configPathOf(values);
      const demo = await startDemo(
        {
          seed: String(values['seed']),
          state: String(values['state']),
          simulatorPort: String(values['simulator-port']),
          liveIntervalMs: String(values['live-interval-ms']),
          ...(configPath ? { configPath } : {}),
        },
        processEnvironment(),
        io.out,
      );
      await untilSignal(io.err);
      await demo.stop();
      return 0;
    },
  },
  'trace-id': {
    summary: 'print the trace id of an update',
    usage: 'Usage: pulumi-update-exporter trace-id ORG/PROJECT/STACK UPDATE_ID\n\nPrints the trace id the exporter gives that update.',
    options: {},
    positionals: 2,
    run(_values, [key = '', updateId = ''], _args, io) {
      const ref = parseStackKey(key);
      if (!ref || updateId === '') throw new UsageError(`"${key}" is not ORG/PROJECT/STACK`);
      io.out(traceIdFor(ref, updateId));
      return Promise.resolve(0);
    },
  },
};

const USAGE = `pulumi-update-exporter ${VERSION}

Usage: pulumi-update-exporter [command] [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Options:
${CONFIG_USAGE} (run, once, validate, demo)
${HELP_USAGE}; COMMAND --help prints that command's own
  -v, --version       the version
`;

class UsageError extends Error {}

function parseCommand(command: Command, args: string[]): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: (command.positionals ?? 0) > 0,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (parsed.values['help'] !== true && parsed.positionals.length !== (command.positionals ?? 0)) {
    throw new UsageError(`expected ${command.positionals ?? 0} argument(s), got ${parsed.positionals.length}`);
  }
  return parsed;
}

/** The process shell: picks the command, parses its arguments with its own table, runs it and returns the exit code. */
export async function main(argv: string[], io: CommandIo = PROCESS_IO): Promise<number> {
  const [first, ...rest] = argv;
  const named = first !== undefined && !first.startsWith('-');
  if (!named && (argv.includes('-v') || argv.includes('--version'))) {
    io.out(VERSION);
    return 0;
  }
  if (!named && (argv.includes('-h') || argv.includes('--help'))) {
    io.out(USAGE);
    return 0;
  }
  const name = named ? first : 'run';
  const args = named ? rest : argv;
  const command = COMMANDS[name];
  if (!command) {
    io.err(`unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    if (command.passThrough) return await command.run({}, [], args, io);
    const { values, positionals } = parseCommand(command, args);
    if (values['help'] === true) {
      io.out(command.usage);
      return 0;
    }
    return await command.run(values, positionals, args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    if (isExporterError(e) && e.code.startsWith('CONFIG_')) {
      io.err(formatConfigProblems(e));
      return 2;
    }
    io.err(redact(`pulumi-update-exporter: ${isExporterError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`));
    return 1;
  }
}
