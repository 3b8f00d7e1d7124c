import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';

let receiver: OtlpReceiver;

beforeEach(async () => {
  receiver = await startOtlpReceiver();
});

afterEach(async () => {
  await receiver.close();
});

function post(body: string, contentType = 'application/json', url = receiver.url): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
}

const EMPTY = JSON.stringify({ resourceSpans: [] });

describe('startOtlpReceiver', () => {
  it('listens on a loopback port and answers an empty export with 200', async () => {
    expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/traces$/);
    const res = await post(EMPTY);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(receiver.requests.map((r) => r.status)).toEqual([200]);
  });

  it('lets a later failNext replace the planned failures and failNext(status, 0) clear them', async () => {
    receiver.failNext(503, 1_000_000);
    expect((await post(EMPTY)).status).toBe(503);
    receiver.failNext(500, 1);
    expect((await post(EMPTY)).status).toBe(500);
    expect((await post(EMPTY)).status).toBe(200);
    receiver.failNext(503, 5);
    receiver.failNext(503, 0);
    expect((await post(EMPTY)).status).toBe(200);
  });

  it('applies plans in order', async () => {
    receiver.acceptNext(1);
    receiver.failNext(429, 1);
    expect((await post(EMPTY)).status).toBe(200);
    expect((await post(EMPTY)).status).toBe(429);
    expect((await post(EMPTY)).status).toBe(200);
  });

  it('refuses other paths, other content types and undecodable bodies', async () => {
    expect((await post(EMPTY, 'application/json', receiver.url.replace('/v1/traces', '/v1/metrics'))).status).toBe(404);
    expect((await post(EMPTY, 'text/plain')).status).toBe(415);
    expect((await post('{not json')).status).toBe(400);
    expect(receiver.spans()).toEqual([]);
  });

  it('decodes OTLP/JSON numbers and strings for timestamps and int attributes alike', async () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
          scopeSpans: [
            {
              scope: { name: 'test' },
              spans: [
                {
                  traceId: '4BF92F3577B34DA6A3CE929D0E0E4736',
                  spanId: '00f067aa0ba902b7',
                  name: 's',
                  kind: 2,
                  startTimeUnixNano: '1700000000123000000',
                  endTimeUnixNano: 1_000,
                  attributes: [
                    { key: 'a', value: { intValue: '9007199254740993' } },
                    { key: 'b', value: { intValue: 5 } },
                    { key: 'c', value: { arrayValue: { values: [{ stringValue: 'x' }, { boolValue: true }] } } },
                  ],
                  status: { code: 2, message: 'm' },
                },
              ],
            },
          ],
        },
      ],
    });
    expect((await post(body)).status).toBe(200);
    const [span] = receiver.spans();
    expect(span).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentSpanId: '',
      startTimeUnixNano: 1_700_000_000_123_000_000n,
      endTimeUnixNano: 1_000n,
      attributes: { a: 9_007_199_254_740_993n, b: 5, c: ['x', true] },
      status: { code: 2, message: 'm' },
      resource: { 'service.name': 'svc' },
      scope: { name: 'test', version: '' },
    });
  });
});
