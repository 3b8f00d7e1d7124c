import { stringify } from 'yaml';
import { isExporterError } from '../errors.js';
import { describeConfig } from './describe-config.js';
import { unknownEnvWarnings } from './env-warnings.js';
import { formatConfigProblems, loadConfig } from './load-config.js';
import { requireToken } from './require-token.js';
import type { Config } from './schema.js';

export interface ValidateCommandOptions {
  /** Reads a file as UTF-8 text; injectable for tests. */
  readonly readFile?: (path: string) => string;
}

function emit(text: string, out: (line: string) => void): void {
  for (const line of text.replace(/\n+$/, '').split('\n')) out(line);
}

/**
 * `pulumi-update-exporter validate [--config FILE]` (main.ts parses the arguments).
 * Prints `configuration OK` and the effective config (secrets redacted) as YAML and returns 0,
 * or prints every problem and returns 2. A missing token or org is
 * only a note: `demo` runs without them, `run` refuses to start.
 */
export function validateCommand(
  configPath: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  out: (line: string) => void,
  options: ValidateCommandOptions = {},
): number {
  let config: Config;
  try {
    config = loadConfig({ configPath, env, ...(options.readFile ? { readFile: options.readFile } : {}) });
  } catch (err) {
    if (!isExporterError(err)) throw err;
    emit(formatConfigProblems(err), out);
    for (const warning of unknownEnvWarnings(env)) out(`warning: ${warning}`);
    return 2;
  }

  out('configuration OK');
  for (const warning of unknownEnvWarnings(env)) out(`warning: ${warning}`);
  try {
    requireToken(config);
  } catch (err) {
    if (!isExporterError(err)) throw err;
    for (const line of err.message.split('\n')) out(`note: ${line}`);
  }
  emit(stringify(describeConfig(config)), out);
  return 0;
}
