import { parseArgs } from 'node:util';
import { createApp } from './app.js';
import { describeConfig, loadConfig, requireToken, validateCommand, formatConfigProblems } from './config/load-config.js';
import type { Config } from './config/schema.js';
import { traceIdFor } from './conversion/trace-ids.js';
import { parseStackKey } from './domain/stack.js';
import { isExporterError } from './errors.js';
import { createLogger } from './logging/logger.js';
import { simulateCommand } from './simulator/simulate-command.js';
import { startDemo } from './demo.js';
import { processEnvironment } from './config/process-environment.js';
import { VERSION } from './version.js';

const USAGE = `pulumi-update-exporter ${VERSION}

Usage: pulumi-update-exporter [command] [options]

Commands:
  run                 the long-running exporter (default)
  once                one complete poll cycle, flush spans, exit 0 (non-zero on failure)
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

/** Runs the service until SIGINT/SIGTERM; only this shell handles signals. */
async function runService(argv: string[], once: boolean): Promise<number> {
  const config = configFromArgs(argv);
  requireToken(config);
  const logger = createLogger({ level: config.log.level });
  logger.info({ config: describeConfig(config), version: VERSION }, 'starting');
  const app = createApp(config, logger, once ? { http: false } : {});
  if (once) {
    try {
      const result = await app.runOnce();
      return result.result === 'success' ? 0 : 1;
    } finally {
      await app.stop();
      logger.flush();
    }
  }
  try {
    await app.start();
  } catch (err) {
    await app.stop();
    throw err;
  }
  const signal = await untilSignal();
  logger.info({ signal }, 'stopping');
  await app.stop();
  logger.flush();
  return 0;
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
    err(`pulumi-update-exporter: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
