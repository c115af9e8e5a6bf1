// nats-server with JetStream, as the relay cluster's tests and bench:cluster run it: found on
// this machine (scripts/setup.sh installs Debian's), started on a free loopback port with its
// own store directory, stopped at the end — and killed by the kernel if the process that started
// it dies first (die-with-parent.ts).
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { freePort } from './proc.ts';
import { dieWithParent } from './die-with-parent.ts';

/** The nats-server binary: BAZAAR_NATS_SERVER, else the first on PATH or in /usr/sbin, /usr/bin, /usr/local/bin. */
export function findNatsServer(): { path?: string; reason?: string } {
  const explicit = process.env.BAZAAR_NATS_SERVER;
  const dirs = explicit ? [] : [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const c of explicit ? [explicit] : dirs.map((d) => join(d, 'nats-server'))) {
    try {
      accessSync(c, constants.X_OK);
      return { path: c };
    } catch {
      // next
    }
  }
  return { reason: explicit ? `no nats-server at ${explicit}` : 'nats-server is not installed (scripts/setup.sh installs Debian\'s)' };
}

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** `nats-server -js` (or without JetStream) on a free port of 127.0.0.1 with its store in `workDir`; resolves once it is ready. */
export async function startNatsServer(opts: { binary: string; workDir: string; readyTimeoutMs?: number; /** Default true; false: a plain NATS server (for tests of what needs JetStream). */ jetstream?: boolean }): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = join(opts.workDir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  // Dies with this process even when it is killed (tap's timeout), instead of holding the port and store.
  const child = spawn(...dieWithParent(opts.binary, [...(opts.jetstream === false ? [] : ['-js']), '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir, '--http_port', '0']), { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server not ready after ${opts.readyTimeoutMs ?? 30_000} ms:\n${tail.join('\n')}`)), opts.readyTimeoutMs ?? 30_000);
    for (const s of [child.stdout, child.stderr]) {
      createInterface({ input: s }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        if (/Server is ready/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (code ${code}, signal ${signal}):\n${tail.join('\n')}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
}
