/**
 * Structural checks of an exposition that promtool cannot do for us: promtool (2.42) only
 * parses the Prometheus text format, so OpenMetrics rules are checked here.
 */

/** A sample, optionally followed by an exemplar: `# {labels} value [timestamp]`. */
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*?\})? (\S+)(?: # (\{[^}]*\}) (\S+)(?: (\S+))?)?$/;
const EXEMPLAR_LABELS = /^\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\}$/;
const SUFFIXES: Readonly<Record<string, readonly string[]>> = {
  counter: ['_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['', '_sum', '_count', '_created'],
};

/** Problems with an OpenMetrics text exposition; empty when it is well formed. */
export function openMetricsProblems(body: string): string[] {
  const problems: string[] = [];
  if (!body.endsWith('# EOF\n')) problems.push('does not end with "# EOF" and a newline');
  const lines = body.slice(0, -1).split('\n');
  const declared = new Map<string, string>();
  const closed = new Set<string>();
  let current: string | undefined;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === '') {
      problems.push(`${where}: blank lines are not allowed`);
      return;
    }
    if (line === '# EOF') {
      if (i !== lines.length - 1) problems.push(`${where}: # EOF before the end`);
      return;
    }
    const meta = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name = '', rest = ''] = meta;
      if (name !== current) {
        if (current !== undefined) closed.add(current);
        if (closed.has(name)) problems.push(`${where}: family ${name} is split`);
        current = name;
      }
      if (kind === 'TYPE') {
        if (declared.has(name)) problems.push(`${where}: ${name} declared twice`);
        declared.set(name, rest);
        if (rest === 'counter' && name.endsWith('_total')) problems.push(`${where}: counter family ${name} must not end in _total`);
      }
      if (kind === 'HELP' && /(^|[^\\])"/.test(rest)) problems.push(`${where}: unescaped quote in HELP`);
      return;
    }
    const m = SAMPLE.exec(line);
    if (!m) {
      problems.push(`${where}: not a sample: ${line}`);
      return;
    }
    const name = m[1] ?? '';
    const type = current === undefined ? undefined : declared.get(current);
    if (current === undefined || type === undefined) {
      problems.push(`${where}: sample ${name} before any TYPE`);
      return;
    }
    const allowed = (SUFFIXES[type] ?? ['']).map((s) => `${current}${s}`);
    if (!allowed.includes(name)) problems.push(`${where}: sample ${name} does not belong to ${type} family ${current}`);
    const value = m[3] ?? '';
    if (!/^(?:[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\.\d+)|[+-]Inf|NaN)$/i.test(value)) problems.push(`${where}: bad value ${value}`);
    const exemplar = m[4];
    if (exemplar !== undefined) {
      // OpenMetrics allows exemplars on histogram buckets and counter totals only, 128 characters of labels at most.
      if (!(type === 'histogram' && name.endsWith('_bucket')) && !(type === 'counter' && name.endsWith('_total'))) {
        problems.push(`${where}: exemplar on ${name}, which is not a bucket or a counter total`);
      }
      if (!EXEMPLAR_LABELS.test(exemplar)) problems.push(`${where}: malformed exemplar labels ${exemplar}`);
      if ([...exemplar.slice(1, -1)].length > 128) problems.push(`${where}: exemplar labels longer than 128 characters`);
      if (!Number.isFinite(Number(m[5])) || (m[6] !== undefined && !Number.isFinite(Number(m[6])))) {
        problems.push(`${where}: bad exemplar value or timestamp`);
      }
    }
  });
  return problems;
}

/** Lines of the family `name` (HELP, TYPE and samples) in order. */
export function familyLines(body: string, name: string): string[] {
  return body
    .split('\n')
    .filter((l) => l === `# HELP ${name}` || l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `) || sampleOf(l, name));
}

function sampleOf(line: string, family: string): boolean {
  if (line.startsWith('#')) return false;
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  return name === family || ['_total', '_bucket', '_sum', '_count'].some((s) => name === `${family}${s}`);
}
