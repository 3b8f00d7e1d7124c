/**
 * Process-wide registry of secret strings (the Pulumi token, secret OTLP header values).
 * Anything rendered for a log line, an error message or a metric label passes through
 * redact(), so a secret that reaches a message by accident is still not printed.
 */
const secrets = new Set<string>();

export const REDACTED = '[REDACTED]';

export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 4) secrets.add(value);
}

export function clearSecretsForTests(): void {
  secrets.clear();
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}
