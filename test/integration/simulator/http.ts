import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The body as sent (before any decompression). */
  readonly raw: Buffer;
  /** The body decompressed when Content-Encoding is gzip. */
  readonly text: string;
}

/** A plain node:http GET, so tests control every header (fetch adds Accept-Encoding itself). */
export function get(baseUrl: string, path: string, headers: Record<string, string> = { authorization: 'token test-token' }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${path}`, { method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const gz = res.headers['content-encoding'] === 'gzip';
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text: (gz ? gunzipSync(raw) : raw).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function getJson(baseUrl: string, path: string): Promise<unknown> {
  const res = await get(baseUrl, path);
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.text}`);
  return JSON.parse(res.text) as unknown;
}

export function stackPath(s: { org: string; project: string; stack: string }): string {
  return `/api/stacks/${encodeURIComponent(s.org)}/${encodeURIComponent(s.project)}/${encodeURIComponent(s.stack)}`;
}

/** Every event of an update, following continuation tokens until null. */
export async function allEvents(baseUrl: string, path: string): Promise<{ events: unknown[]; pages: number; tokens: string[] }> {
  const events: unknown[] = [];
  const tokens: string[] = [];
  let token: string | null = null;
  for (let pages = 1; ; pages++) {
    const q: string = token === null ? '' : `?continuationToken=${encodeURIComponent(token)}`;
    const page = (await getJson(baseUrl, `${path}${q}`)) as { events: unknown[]; continuationToken: string | null };
    events.push(...page.events);
    if (page.continuationToken === null) return { events, pages, tokens };
    if (page.continuationToken === token) throw new Error(`a completed update repeated its token at page ${pages}`);
    token = page.continuationToken;
    tokens.push(token);
  }
}
