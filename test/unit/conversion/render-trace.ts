import type { ConversionResult } from '../../../src/conversion/convert-update.js';
import type { AttributeValue, SpanRecord } from '../../../src/domain/trace.js';

/*
 * Readable text form of a conversion result for the golden files: the span tree indented
 * by parentage, short span ids (8 hex), times relative to the root start, status,
 * interrupted flag, attributes and span events; then the operations, policy violations
 * and event counts.
 */

function seconds(ms: number, baseMs: number): string {
  const s = (ms - baseMs) / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(3)}s`;
}

function value(v: AttributeValue): string {
  if (Array.isArray(v)) return `[${(v as readonly string[]).map((x) => JSON.stringify(x)).join(', ')}]`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function spanLines(span: SpanRecord, depth: number, baseMs: number): string[] {
  const pad = '  '.repeat(depth);
  const status =
    span.status.code === 'error' ? `ERROR ${JSON.stringify(span.status.message ?? '')}` : span.status.code;
  const flags = span.attributes['pulumi.resource.interrupted'] === true ? '  INTERRUPTED' : '';
  const lines = [
    `${pad}${span.name}  #${span.spanId.slice(0, 8)}  ${span.kind}  ${seconds(span.startTimeMs, baseMs)}..${seconds(
      span.endTimeMs,
      baseMs,
    )}  ${status}${flags}`,
  ];
  for (const [k, v] of Object.entries(span.attributes)) lines.push(`${pad}    | ${k} = ${value(v)}`);
  for (const e of span.events) {
    const attrs = Object.entries(e.attributes)
      .map(([k, v]) => `${k}=${value(v)}`)
      .join(' ');
    lines.push(`${pad}    * ${e.name} @${seconds(e.timeMs, baseMs)} ${attrs}`);
  }
  return lines;
}

export function renderConversion(result: ConversionResult): string {
  const { trace } = result;
  const root = trace.spans[0];
  if (!root) return '(no spans)\n';
  const base = root.startTimeMs;
  const children = new Map<string, SpanRecord[]>();
  for (const s of trace.spans.slice(1)) {
    const list = children.get(s.parentSpanId ?? '');
    if (list) list.push(s);
    else children.set(s.parentSpanId ?? '', [s]);
  }
  const out: string[] = [
    `trace ${trace.traceId}  spans=${trace.spans.length} dropped=${trace.droppedSpans}`,
    `resource ${Object.entries(trace.resource)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `result ${result.result}  unmatched-terminal-events=${result.unmatchedTerminalEvents}  summary=${
      result.summary ? JSON.stringify({ result: result.summary.result, maybeCorrupt: result.summary.maybeCorrupt }) : 'none'
    }`,
    '',
  ];
  const seen = new Set<string>();
  const walk = (span: SpanRecord, depth: number): void => {
    seen.add(span.spanId);
    out.push(...spanLines(span, depth, base));
    for (const c of children.get(span.spanId) ?? []) walk(c, depth + 1);
  };
  walk(root, 0);
  const dangling = trace.spans.filter((s) => !seen.has(s.spanId));
  if (dangling.length > 0) out.push('', 'DANGLING SPANS', ...dangling.flatMap((s) => spanLines(s, 1, base)));

  out.push('', `operations (${result.operations.length})`);
  for (const o of result.operations) {
    out.push(`  ${o.op.padEnd(18)} ${o.result.padEnd(11)} ${String(o.durationSeconds).padStart(4)}s  ${o.resourceType}  ${o.urn}`);
  }
  out.push('', `policy violations (${result.policyViolations.length})`);
  for (const p of result.policyViolations) out.push(`  ${p.policyPack}/${p.policy} ${p.enforcementLevel}`);
  out.push('', 'event counts');
  for (const [k, v] of Object.entries(result.eventCounts).sort(([a], [b]) => a.localeCompare(b))) out.push(`  ${k} ${v}`);
  return `${out.join('\n')}\n`;
}
