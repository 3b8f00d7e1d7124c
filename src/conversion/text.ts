import type { AttributeValue, Attributes } from '../domain/trace.js';

// Pulumi colour directives look like <{%reset%}> or <{%fg 1%}>; ANSI escapes can appear in
// program output (info#err) as well.
const COLOR_DIRECTIVE = /<\{%[^%]*%\}>/g;
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** Message text fit for an attribute: colour codes removed, secrets redacted by `redact`, trimmed. */
export function cleanMessage(message: string, redact: (text: string) => string): string {
  return redact(message.replace(COLOR_DIRECTIVE, '').replace(ANSI_ESCAPE, '')).trim();
}

/** Cuts a string to at most `max` UTF-16 units without leaving half a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

function limitValue(value: AttributeValue, max: number): AttributeValue {
  if (typeof value === 'string') return truncateText(value, max);
  if (Array.isArray(value)) return (value as readonly string[]).map((v) => truncateText(v, max));
  return value;
}

/** Applies the configured attribute length limit to every string (and string-array element). */
export function limitAttributes(attributes: Readonly<Record<string, AttributeValue>>, max: number): Attributes {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(attributes)) out[k] = limitValue(v, max);
  return out;
}

/** The resource name of a URN: the part after the last `::`. */
export function resourceNameOf(urn: string): string {
  const at = urn.lastIndexOf('::');
  return at < 0 ? urn : urn.slice(at + 2);
}
