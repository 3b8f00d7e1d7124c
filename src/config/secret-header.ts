const CREDENTIAL_NAME = /auth|key|token|secret|password|signature|cookie|credential/i;

/**
 * Whether an OTLP header value is registered as a process-wide secret (redacted from every
 * log line and message). Values of credential-like headers always are, and so is any long
 * value (API keys are long); a short value of an ordinary header such as
 * `x-scope-orgid: platform` is not, because redacting a common word everywhere would
 * mangle unrelated log lines. describeConfig() hides every header value regardless.
 */
export function isSecretHeader(name: string, value: string): boolean {
  return CREDENTIAL_NAME.test(name) || value.length >= 16;
}
