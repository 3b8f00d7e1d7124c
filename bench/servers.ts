import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServersOptions, ServersReady, ServersStats } from './bench-servers.js';

export interface BenchServers extends Omit<ServersReady, 'type'> {
  /** Requests served since the last call (the counters restart). */
  stats(): Promise<Omit<ServersStats, 'type'>>;
  close(): Promise<void>;
}

const ENTRY = fileURLToPath(new URL('./bench-servers.ts', import.meta.url));

/** Starts the simulator and a collector in a child process (see bench-servers.ts). */
export async function startBenchServers(options: ServersOptions): Promise<BenchServers> {
  const child: ChildProcess = fork(ENTRY, [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(type: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (msg: { type: string }) => {
        if (msg.type !== type) return;
        cleanup();
        resolve(msg as T);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`the bench servers exited (code ${String(code)}) before answering ${type}`));
      };
      const cleanup = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  const { type: _type, ...ready } = await next<ServersReady>('ready');
  let closing: Promise<void> | undefined;
  return {
    ...ready,
    async stats() {
      const answer = next<ServersStats>('stats');
      child.send({ type: 'stats' });
      const { type: _t, ...stats } = await answer;
      return stats;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ type: 'stop' });
      });
      return closing;
    },
  };
}
