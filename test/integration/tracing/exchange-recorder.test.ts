import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExchangeRecorder } from '../../../src/tracing/exchange-recorder.js';

let server: Server;
let url: string;
let hits = 0;
let recorder: ExchangeRecorder;

beforeEach(async () => {
  hits = 0;
  server = createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => {
      const status = req.url === '/busy' ? 503 : 200;
      res.writeHead(status).end(status === 200 ? 'ok-body' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  recorder = new ExchangeRecorder();
});

afterEach(async () => {
  recorder.dispose();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function send(agent: Agent, path: string): Promise<{ status?: number; error?: Error }> {
  return new Promise((resolve) => {
    const req = request(`${url}${path}`, { method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end('payload');
  });
}

describe('ExchangeRecorder', () => {
  it('records the status and 2xx body of each request made through its agent while a window is open', async () => {
    const agent = await recorder.agentFactory('http:');
    const window = recorder.open();
    expect(await send(agent, '/busy')).toEqual({ status: 503 });
    expect(await send(agent, '/')).toEqual({ status: 200 });
    recorder.close(window);
    expect(window.exchanges).toEqual([
      { status: 503, timedOut: false },
      { status: 200, body: Buffer.from('ok-body'), timedOut: false },
    ]);
  });

  it('cuts requests that start after their batch was given up, before they reach the collector', async () => {
    const agent = await recorder.agentFactory('http:');
    const window = recorder.open();
    window.abandon();
    const abandoned = await send(agent, '/');
    recorder.close(window);
    const outside = await send(agent, '/');

    expect(abandoned.error?.message).toBe('export abandoned');
    expect(outside.error?.message).toBe('export abandoned');
    expect(hits).toBe(0);
    expect(window.exchanges).toEqual([]);
  });

  it('ignores requests made through other agents', async () => {
    await recorder.agentFactory('http:');
    const window = recorder.open();
    const other = new Agent();
    expect(await send(other, '/')).toEqual({ status: 200 });
    other.destroy();
    expect(window.exchanges).toEqual([]);
  });
});
