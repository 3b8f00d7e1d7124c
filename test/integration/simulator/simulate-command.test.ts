import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseFaultFlag, simulateCommand } from '../../../src/simulator/simulate-command.js';
import { SimWorld } from '../../../src/simulator/sim-world.js';

function capture(): { lines: string[]; out: (line: string) => void } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l) };
}

describe('simulate command', () => {
  it('prints its usage for --help', async () => {
    const c = capture();
    expect(await simulateCommand(['--help'], c.out)).toBe(0);
    expect(c.lines.join('\n')).toContain('--fault KIND');
  });

  it.each([
    [['--nope'], /Unknown option/],
    [[], /--port is required/],
    [['--port', 'x'], /--port must be an integer/],
    [['--port', '70000'], /--port must be an integer between 0 and 65535/],
    [['--port', '0', '--fault', '418'], /unknown fault kind "418"/],
    [['--port', '0', '--fault', '429:every=0'], /everyNth must be a positive integer/],
    [['--port', '0', '--fault', '429@nowhere'], /unknown fault endpoint "nowhere"/],
    [['--port', '0', '--live-interval-ms', '1'], /--live-interval-ms must be an integer between 10/],
    [['--port', '0', '--token', ''], /--token must not be empty/],
    [['--port', '0', '--webhook-url', 'ftp://example.com/hook'], /--webhook-url must be an http\(s\) URL/],
    [['--port', '0', '--webhook-secret', 'abc'], /--webhook-secret needs --webhook-url/],
  ])('rejects %j with exit code 2 and a clear message', async (argv, message) => {
    const c = capture();
    expect(await simulateCommand(argv, c.out)).toBe(2);
    expect(c.lines[0]).toMatch(message);
  });

  it('delivers signed webhooks to --webhook-url as its live updates start and finish', async () => {
    const received: Array<{ kind: string; id: string; signature: string; body: string }> = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          kind: String(req.headers['pulumi-webhook-kind']),
          id: String(req.headers['pulumi-webhook-id']),
          signature: String(req.headers['pulumi-webhook-signature']),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/pulumi`;
    const c = capture();
    const stop = new AbortController();
    const done = simulateCommand(['--port', '0', '--live-interval-ms', '20', '--webhook-url', hook, '--webhook-secret', 'sim-secret-value'], c.out, stop.signal);
    try {
      for (let i = 0; i < 300 && !received.some((r) => r.kind.startsWith('stack_')); i++) await new Promise((r) => setTimeout(r, 20));
      expect(c.lines.join('\n')).toContain(`webhooks: delivered to ${hook} (signed)`);
      const finished = received.find((r) => r.kind === 'stack_update' || r.kind === 'stack_preview');
      expect(finished, 'a delivery for a finished update').toBeDefined();
      for (const r of received) {
        expect(r.signature).toBe(createHmac('sha256', 'sim-secret-value').update(r.body).digest('hex'));
        expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
        const payload = JSON.parse(r.body) as { organization: { githubLogin: string }; projectName: string; stackName: string };
        expect(typeof payload.organization.githubLogin).toBe('string');
        expect(payload.projectName.length).toBeGreaterThan(0);
        expect(payload.stackName.length).toBeGreaterThan(0);
      }
      expect(received.some((r) => r.kind === 'deployment' && (JSON.parse(r.body) as { status: string }).status === 'running')).toBe(true);
    } finally {
      stop.abort();
      expect(await done).toBe(0);
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('parses fault flags', () => {
    expect(parseFaultFlag('503')).toEqual({ kind: '503' });
    expect(parseFaultFlag('429:3')).toEqual({ kind: '429', count: 3 });
    expect(parseFaultFlag('slow@engineEvents:every=4')).toEqual({ kind: 'slow', endpoint: 'engineEvents', everyNth: 4 });
  });

  it('prints the truth as JSON without listening', async () => {
    const c = capture();
    expect(await simulateCommand(['--truth', '--seed', '4', '--now', '1750000000'], c.out)).toBe(0);
    expect(JSON.parse(c.lines.join('\n'))).toEqual(new SimWorld({ seed: 4, nowSeconds: 1_750_000_000 }).truth());
  });

  it('serves until stopped, then closes and returns 0', async () => {
    const c = capture();
    const stop = new AbortController();
    const done = simulateCommand(['--port', '0', '--seed', '2', '--token', 'tok-123', '--fault', '503:1'], c.out, stop.signal);
    for (let i = 0; i < 200 && !c.lines.some((l) => l.includes('listening on')); i++) await new Promise((r) => setImmediate(r));
    const url = /listening on (http:\/\/\S+)/.exec(c.lines.join('\n'))?.[1];
    if (!url) throw new Error(`no URL printed: ${c.lines.join('\n')}`);
    const headers = { authorization: 'token tok-123' };
    expect((await fetch(`${url}/api/user/stacks`, { headers })).status).toBe(503);
    expect((await fetch(`${url}/api/user/stacks`, { headers })).status).toBe(200);
    expect((await fetch(`${url}/api/user/stacks`, { headers: { authorization: 'token other' } })).status).toBe(401);
    stop.abort();
    expect(await done).toBe(0);
    await expect(fetch(`${url}/api/user/stacks`, { headers })).rejects.toThrow();
  });

  it('exits 1 when it cannot listen', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as AddressInfo).port;
      const c = capture();
      expect(await simulateCommand(['--port', String(port)], c.out)).toBe(1);
      expect(c.lines[0]).toMatch(/cannot start the simulator on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});
