/**
 * Process-wide registry of secret strings (the Pulumi token, secret OTLP header values,
 * passwords in URL-valued settings).
 * Anything rendered for a log line, an error message or a metric label passes through
 * redact(), so a secret that reaches a message by accident is still not printed.
 */
const secrets = new Set<string>();
/** The JSON-escaped form of each secret that differs from it (computed once, used per log line). */
const escapedSecrets = new Set<string>();

export const REDACTED = '[REDACTED]';

export function registerSecret(value: string | undefined): void {
  if (value === undefined || value.length < 4) return;
  secrets.add(value);
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) escapedSecrets.add(escaped);
}

export function clearSecretsForTests(): void {
  secrets.clear();
  escapedSecrets.clear();
}

/** `scheme://user:password@`: the password part of the user info of a URL inside any text. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):([^\s/?#@]*)@/gi;

/**
 * Hides the password of every `scheme://user:password@host` URL in a text (a setting, a
 * driver's error message), keeping the user name and the rest so the URL stays recognisable.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_PASSWORD, `$1:${REDACTED}@`);
}

/** Registers the password of a URL-valued setting (as written and percent-decoded) as a secret. */
export function registerUrlPassword(value: string): void {
  if (!URL.canParse(value)) return;
  const password = new URL(value).password;
  if (password === '') return;
  registerSecret(password);
  try {
    registerSecret(decodeURIComponent(password));
  } catch {
    // Not valid percent-encoding: the text as written is what can appear.
  }
}

/**
 * redact() for text that is already JSON (a finished log line): a secret with a line
 * break, quote or control character inside appears there in its escaped form.
 */
export function redactJson(text: string): string {
  let out = text;
  for (const escaped of escapedSecrets) {
    if (out.includes(escaped)) out = out.split(escaped).join(REDACTED);
  }
  return redact(out);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return redactUrlCredentials(out);
}
