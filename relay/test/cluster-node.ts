// A relay cluster node as a real process (`bazaar relay --cluster … --node …`), so tests can
// SIGKILL it: JSON log lines are kept and can be waited on (never on time).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { freePort } from '@bazaar/testkit/proc';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';

export type LogLine = Record<string, unknown> & { msg?: string };

export interface NodeChild {
  readonly name: string;
  readonly url: string;
  readonly dataDir: string;
  readonly pid: number;
  readonly lines: LogLine[];
  /** The first log line (already written or future) matching `pred`. */
  waitLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM, wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
}

const root = new URL('../..', import.meta.url).pathname;

export async function startNode(opts: { name: string; dataDir: string; nats: string; args?: readonly string[]; readyTimeoutMs?: number }): Promise<NodeChild> {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  // Dies with the test process even when tap kills it (die-with-parent.ts).
  const child: ChildProcess = spawn(...dieWithParent(process.execPath, [
    'scripts/bazaar.mjs', 'relay', '--port', String(port), '--host', '127.0.0.1', '--data', opts.dataDir, '--no-market',
    '--cluster', opts.nats, '--node', opts.name, '--log-level', 'info', ...(opts.args ?? []),
  ]), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAZAAR_LOG_FORMAT: 'json' } });
  const lines: LogLine[] = [];
  const raw: string[] = [];
  let waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on('line', (text) => {
      raw.push(text);
      if (raw.length > 50) raw.shift();
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          clearTimeout(w.timer);
          waiters = waiters.filter((x) => x !== w);
          w.resolve(line);
        }
      }
    });
  }
  const exited = once(child, 'exit');
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`node ${opts.name} exited:\n${raw.join('\n')}`));
    }
    waiters = [];
  });
  const waitLog = (pred: (l: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    if (gone) return Promise.reject(new Error(`node ${opts.name} has exited`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.timer !== timer);
        reject(new Error(`node ${opts.name}: no such log line after ${timeoutMs} ms; last lines:\n${raw.slice(-10).join('\n')}`));
      }, timeoutMs);
      waiters.push({ pred, resolve, reject, timer });
    });
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (gone) return;
    child.kill(signal);
    await exited;
  };
  try {
    await waitLog((l) => l.msg === 'following the stream', opts.readyTimeoutMs ?? 90_000);
  } catch (err) {
    await end('SIGKILL');
    throw err;
  }
  return { name: opts.name, url, dataDir: opts.dataDir, pid: child.pid!, lines, waitLog, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}
