import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { core } from 'zod';
import { ExporterError, isExporterError } from '../errors.js';
import { redact, registerSecret, registerUrlPassword } from '../secrets.js';
import type { ConfigProblem } from './config-problem.js';
import { didYouMean } from './did-you-mean.js';
import { readEnvLayer, type ConfigPath, type EnvLayer } from './env-vars.js';
import { configSchema, type Config } from './schema.js';
import { knownKeysAt } from './schema-paths.js';
import { isSecretHeader } from './secret-header.js';

export interface LoadConfigOptions {
  /** The `--config` flag; wins over EXPORTER_CONFIG. */
  readonly configPath?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a file as UTF-8 text; injectable for tests. */
  readonly readFile?: (path: string) => string;
}

/** CONFIG_INVALID with every problem found, for callers that want them one by one. */
export class ConfigValidationError extends ExporterError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super('CONFIG_INVALID', formatProblemList(problems));
    this.problems = problems;
  }
}

type PlainObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function defaultReadFile(path: string): string {
  return readFileSync(path, 'utf8');
}

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

function readConfigFile(path: string, readFile: (path: string) => string): PlainObject {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ExporterError('CONFIG_FILE_UNREADABLE', redact(`cannot read config file ${path}: ${describeReadError(err)}`), {
      cause: err,
      details: { file: path },
    });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    // Only the first line: the rest of a YAMLParseError message quotes the source, which
    // may hold the token.
    const firstLine = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new ExporterError('CONFIG_FILE_UNREADABLE', redact(`cannot parse config file ${path} as YAML: ${firstLine}`), {
      details: { file: path },
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) {
    throw new ExporterError(
      'CONFIG_FILE_UNREADABLE',
      `config file ${path} must hold a mapping of keys at the top level, not ${Array.isArray(parsed) ? 'a list' : `a ${typeof parsed}`}`,
      { details: { file: path } },
    );
  }
  return parsed;
}

/** Objects merge key by key; anything else (arrays included) is replaced by the upper layer. */
function deepMerge(lower: unknown, upper: unknown): unknown {
  if (!isPlainObject(lower) || !isPlainObject(upper)) return upper;
  const out: PlainObject = { ...lower };
  for (const [key, value] of Object.entries(upper)) {
    out[key] = key in lower ? deepMerge(lower[key], value) : value;
  }
  return out;
}

/** EXPORTER_ORGS sets which orgs are polled; an org the file also names keeps its include/exclude. */
function mergeOrgs(merged: PlainObject, orgNames: readonly string[]): void {
  const pulumi = isPlainObject(merged.pulumi) ? merged.pulumi : {};
  const fileOrgs = Array.isArray(pulumi.orgs) ? pulumi.orgs : [];
  const orgs = orgNames.map((name) => fileOrgs.find((org) => isPlainObject(org) && org.name === name) ?? { name });
  merged.pulumi = { ...pulumi, orgs };
}

function readSecretFiles(layer: EnvLayer, merged: PlainObject, readFile: (path: string) => string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const secret of layer.secretFiles) {
    let content: string;
    try {
      content = readFile(secret.file).trim();
    } catch (err) {
      throw new ExporterError(
        'CONFIG_FILE_UNREADABLE',
        redact(`cannot read ${secret.variable}=${secret.file}: ${describeReadError(err)}`),
        { cause: err, details: { variable: secret.variable, file: secret.file } },
      );
    }
    if (content === '') {
      problems.push({
        path: formatPath(secret.path),
        variable: secret.variable,
        message: `the file ${secret.file} is empty`,
      });
      continue;
    }
    registerSecret(content);
    let node = merged;
    secret.path.forEach((segment, index) => {
      const key = String(segment);
      if (index === secret.path.length - 1) {
        node[key] = content;
        return;
      }
      const next = isPlainObject(node[key]) ? { ...(node[key] as PlainObject) } : {};
      node[key] = next;
      node = next;
    });
  }
  return problems;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(top level)' : out;
}

function startsWith(path: readonly PropertyKey[], prefix: ConfigPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, index) => path[index] === segment);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

interface Origins {
  readonly layer: EnvLayer;
  readonly file: PlainObject | undefined;
  readonly filePath: string | undefined;
}

function locate(path: readonly PropertyKey[], origins: Origins): Pick<ConfigProblem, 'variable' | 'file'> {
  let best: { path: ConfigPath; variable: string } | undefined;
  // A *_FILE secret is the top layer, so it wins over a variable that set the same key.
  for (const source of [...origins.layer.sources, ...origins.layer.secretFiles]) {
    if (startsWith(path, source.path) && (best === undefined || source.path.length > best.path.length)) best = source;
  }
  if (best !== undefined) return { variable: best.variable };
  if (origins.filePath !== undefined && valueAt(origins.file, path) !== undefined) return { file: origins.filePath };
  return {};
}

function problemsFromIssues(issues: readonly core.$ZodIssue[], origins: Origins): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(issue.path);
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        problems.push({ path: formatPath(path), message: `unknown key${didYouMean(key, known)}`, ...locate(path, origins) });
      }
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message, ...locate(issue.path, origins) });
    }
  }
  return problems;
}

function formatProblem(problem: ConfigProblem): string {
  const origin =
    problem.variable !== undefined ? ` (from ${problem.variable})` : problem.file !== undefined ? ` (in ${problem.file})` : '';
  return redact(`${problem.path}: ${problem.message}${origin}`);
}

function formatProblemList(problems: readonly ConfigProblem[]): string {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return [`invalid configuration (${count}):`, ...problems.map((p) => `  - ${formatProblem(p)}`)].join('\n');
}

/**
 * A readable, secret-free text of any error raised while loading or checking the config,
 * for the CLI to print: the code, then the message (for CONFIG_INVALID, one problem a line).
 */
export function formatConfigProblems(err: unknown): string {
  if (isExporterError(err)) return redact(`${err.code}: ${err.message}`);
  return redact(`INTERNAL: ${err instanceof Error ? err.message : String(err)}`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function registerSecretsOf(merged: PlainObject): void {
  const pulumi = merged.pulumi;
  if (isPlainObject(pulumi) && typeof pulumi.accessToken === 'string') registerSecret(pulumi.accessToken);
  // Passwords in URL-valued settings, whether or not the schema then accepts the URL.
  for (const path of [['pulumi', 'backendUrl'], ['traces', 'endpoint'], ['metricsPush', 'endpoint'], ['state', 'path']]) {
    const url = valueAt(merged, path);
    if (typeof url === 'string') registerUrlPassword(url);
  }
  for (const section of [merged.traces, merged.metricsPush]) {
    if (!isPlainObject(section) || !isPlainObject(section.headers)) continue;
    for (const [name, value] of Object.entries(section.headers)) {
      if (typeof value === 'string' && isSecretHeader(name, value)) registerSecret(value);
    }
  }
}

/**
 * Builds the one configuration of the process: schema defaults < config file (`configPath`,
 * else EXPORTER_CONFIG) < environment < `*_FILE` secrets. Validates once, reporting every
 * problem together as CONFIG_INVALID (ConfigValidationError); an unreadable or unparsable
 * file is CONFIG_FILE_UNREADABLE. The token and credential-like OTLP header values are
 * registered as secrets before any message is built. The result is deeply frozen.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const readFile = options.readFile ?? defaultReadFile;
  const layer = readEnvLayer(options.env);
  for (const secret of layer.secrets) registerSecret(secret);

  const filePath = options.configPath ?? layer.configPath;
  const file = filePath === undefined ? undefined : readConfigFile(filePath, readFile);

  const merged = deepMerge(file ?? {}, layer.values) as PlainObject;
  if (layer.orgNames !== undefined) mergeOrgs(merged, layer.orgNames);
  const problems: ConfigProblem[] = [...layer.problems, ...readSecretFiles(layer, merged, readFile)];
  registerSecretsOf(merged);

  const origins: Origins = { layer, file, filePath };
  const result = configSchema.safeParse(merged);
  if (!result.success) problems.push(...problemsFromIssues(result.error.issues, origins));
  if (problems.length > 0 || !result.success) throw new ConfigValidationError(problems);
  return deepFreeze(result.data);
}
