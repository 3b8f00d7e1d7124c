import { parseArgs } from 'node:util';
import { ENDPOINTS, FAULT_KINDS, validateFaultRule, type Endpoint, type FaultRule } from './fault-injector.js';
import { SimWorld } from './sim-world.js';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from './simulator.js';

const USAGE = `Usage: pulumi-update-exporter simulate --port N [options]

Runs the bundled Pulumi Cloud simulator (a fake of the REST API with generated stacks,
update histories and engine events) until SIGINT/SIGTERM. See docs/simulator.md.

Options:
  --port N                 port to listen on (0 = any free port); required unless --truth
  --host H                 interface to listen on (default 127.0.0.1)
  --seed S                 data seed (default 1); same seed and --now => same data
  --now SECONDS            the simulator's "now" in Unix seconds (default: the wall clock)
  --live-interval-ms MS    live mode: every MS ms running updates advance and new ones may start
  --token T                accept only this access token (default: any non-empty token)
  --webhook-url URL        deliver Pulumi Cloud webhooks (raw format) to URL when updates
                           start and finish (an exporter's /webhooks/pulumi)
  --webhook-secret S       sign those deliveries with S (Pulumi-Webhook-Signature)
  --fault KIND[@ENDPOINT][:COUNT|:every=N]
                           inject faults; repeatable. KIND: ${FAULT_KINDS.join(', ')}
                           ENDPOINT: ${ENDPOINTS.join(', ')}
  --truth                  print the ground truth as JSON and exit without listening
  -h, --help               show this help`;

/** Parses `KIND[@ENDPOINT][:COUNT|:every=N]`. */
export function parseFaultFlag(text: string): FaultRule {
  const m = /^([^@:]+)(?:@([^:]+))?(?::(?:(\d+)|every=(\d+)))?$/.exec(text);
  if (!m) throw new Error(`--fault "${text}" is not KIND[@ENDPOINT][:COUNT|:every=N]`);
  const [, kind, endpoint, count, every] = m;
  const rule: FaultRule = {
    kind: kind as FaultRule['kind'],
    ...(endpoint ? { endpoint: endpoint as Endpoint } : {}),
    ...(count ? { count: Number(count) } : {}),
    ...(every ? { everyNth: Number(every) } : {}),
  };
  validateFaultRule(rule);
  return rule;
}

function intFlag(name: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`--${name} must be an integer between ${min} and ${max}, got "${value}"`);
  }
  return Number(value);
}

/**
 * The `simulate` subcommand. Returns the process exit code: 0 after a clean stop on
 * SIGINT/SIGTERM or `stop` (or after printing --truth/--help), 2 for bad flags, 1 when the
 * server cannot start.
 */
export async function simulateCommand(argv: string[], out: (line: string) => void, stop?: AbortSignal): Promise<number> {
  let options: SimulatorOptions & { host: string; port: number };
  let truthOnly: boolean;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        seed: { type: 'string' },
        now: { type: 'string' },
        'live-interval-ms': { type: 'string' },
        token: { type: 'string' },
        'webhook-url': { type: 'string' },
        'webhook-secret': { type: 'string' },
        fault: { type: 'string', multiple: true },
        truth: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      out(USAGE);
      return 0;
    }
    truthOnly = values.truth === true;
    const port = intFlag('port', values.port, 0, 65535);
    if (port === undefined && !truthOnly) throw new Error('--port is required');
    const interval = intFlag('live-interval-ms', values['live-interval-ms'], 10);
    const seed = intFlag('seed', values.seed, -2147483648, 4294967295);
    const now = intFlag('now', values.now, 1);
    if (values.token !== undefined && values.token.length === 0) throw new Error('--token must not be empty');
    const webhookUrl = values['webhook-url'];
    if (webhookUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(webhookUrl)) throw new Error(`--webhook-url must be an http(s) URL, got "${webhookUrl}"`);
    if (values['webhook-secret'] !== undefined && webhookUrl === undefined) throw new Error('--webhook-secret needs --webhook-url');
    options = {
      host: values.host ?? '127.0.0.1',
      port: port ?? 0,
      ...(seed === undefined ? {} : { seed }),
      ...(now === undefined ? {} : { nowSeconds: now }),
      ...(interval === undefined ? {} : { live: { intervalMs: interval } }),
      ...(values.token === undefined ? {} : { acceptedToken: values.token }),
      ...(webhookUrl === undefined
        ? {}
        : { webhooks: { url: webhookUrl, ...(values['webhook-secret'] === undefined ? {} : { secret: values['webhook-secret'] }) } }),
      faults: (values.fault ?? []).map(parseFaultFlag),
    };
  } catch (err) {
    out(`simulate: ${err instanceof Error ? err.message : String(err)}`);
    out('Run "pulumi-update-exporter simulate --help" for usage.');
    return 2;
  }

  if (truthOnly) {
    const world = new SimWorld({ seed: options.seed ?? 1, nowSeconds: options.nowSeconds ?? Math.floor(Date.now() / 1000) });
    out(JSON.stringify(world.truth(), null, 2));
    return 0;
  }

  let sim: RunningSimulator;
  try {
    sim = await startSimulator(options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    out(`simulate: cannot start the simulator on ${options.host}:${options.port}: ${reason}`);
    return 1;
  }
  const orgs = [...new Set(sim.truth().stacks.map((s) => s.org))];
  out(`Pulumi Cloud simulator listening on ${sim.url}`);
  out(`  organizations: ${orgs.join(', ')}`);
  out(`  try: curl -H 'Authorization: token ${options.acceptedToken === undefined ? 'anything' : '<your --token>'}' '${sim.url}/api/user/stacks?organization=${orgs[0] ?? ''}'`);
  if (options.live) out(`  live mode: advancing every ${options.live.intervalMs} ms`);
  if (options.webhooks) out(`  webhooks: delivered to ${options.webhooks.url}${options.webhooks.secret === undefined ? ' (unsigned)' : ' (signed)'}`);
  out('Press Ctrl+C to stop.');

  await new Promise<void>((resolve) => {
    const done = () => {
      stop?.removeEventListener('abort', done);
      resolve();
    };
    // main.ts turns SIGINT/SIGTERM into this signal; tests abort it directly.
    if (stop?.aborted) done();
    else stop?.addEventListener('abort', done);
  });
  await sim.close();
  out('simulator stopped');
  return 0;
}
