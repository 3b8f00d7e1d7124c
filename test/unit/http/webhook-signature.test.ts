import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signatureProblem } from '../../../src/http/webhook-signature.js';

// The test vector of shared pulumi-webhooks.md section 1.3 (secret, minified body, hex digest).
const SECRET = 'my-shared-secret';
const BODY =
  '{"user":{"name":"Morty Smith","githubLogin":"morty","avatarUrl":"https://crazy-adventures.net/morty.png"},"organization":{"name":"Crazy Adventures","githubLogin":"crazy-adventures","avatarUrl":"https://crazy-adventures.net/logo.png"},"projectName":"website","stackName":"website-prod","updateUrl":"https://app.pulumi.com/crazy-adventures/website/website-prod/updates/42","kind":"update","result":"succeeded","resourceChanges":{"create":2,"same":28,"update":1},"isPreview":false}';
const DIGEST = 'fa455ff944f47c4be7def47333504eac4928a5bc15c9bb36c6156acbf8848047';

describe('signatureProblem (shared pulumi-webhooks.md section 1.3)', () => {
  it('accepts the documented test vector, in lower or upper case and with surrounding spaces', () => {
    expect(signatureProblem(Buffer.from(BODY), DIGEST, SECRET)).toBeUndefined();
    expect(signatureProblem(Buffer.from(BODY), DIGEST.toUpperCase(), SECRET)).toBeUndefined();
    expect(signatureProblem(Buffer.from(BODY), ` ${DIGEST} `, SECRET)).toBeUndefined();
  });

  it('refuses the same JSON pretty-printed: the signature covers the raw bytes', () => {
    const pretty = JSON.stringify(JSON.parse(BODY), null, 2);
    expect(signatureProblem(Buffer.from(pretty), DIGEST, SECRET)).toBe('mismatch');
  });

  it('refuses another secret, a missing header and headers that are not 64 hex digits', () => {
    expect(signatureProblem(Buffer.from(BODY), DIGEST, 'another-secret-value')).toBe('mismatch');
    expect(signatureProblem(Buffer.from(BODY), undefined, SECRET)).toBe('missing');
    expect(signatureProblem(Buffer.from(BODY), '  ', SECRET)).toBe('missing');
    expect(signatureProblem(Buffer.from(BODY), `sha256=${DIGEST}`, SECRET)).toBe('malformed');
    expect(signatureProblem(Buffer.from(BODY), DIGEST.slice(2), SECRET)).toBe('malformed');
    expect(signatureProblem(Buffer.from(BODY), `${DIGEST}00`, SECRET)).toBe('malformed');
    // The base64 digest of the docs' Python snippet never matches (shared pulumi-webhooks.md section 4).
    const base64 = createHmac('sha256', SECRET).update(BODY).digest('base64');
    expect(signatureProblem(Buffer.from(BODY), base64, SECRET)).toBe('malformed');
  });
});
