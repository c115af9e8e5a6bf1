// Process measurements from /proc (Linux) and the relay child process the
// benchmark starts: CPU ticks, RSS, fd limits, readiness, cleanup.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { dieWithParent } from './die-with-parent.ts';

let clkTck: number | undefined;
/** SC_CLK_TCK, the unit of utime/stime in /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux x86). */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime+stime of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself contain spaces or ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14 and stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / clockTicksPerSecond();
}

/** Resident set size in KiB (VmRSS of /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export interface MemoryKiB {
  /** VmRSS: resident now (anonymous + file-backed, e.g. mapped LMDB pages, + shared). */
  readonly rss: number;
  /** VmHWM: the peak resident set size since the process started. */
  readonly peak: number;
  /** RssAnon: heap, stacks, malloc'd buffers. */
  readonly anon: number;
  /** RssFile: resident file-backed pages (the mapped database, shared libraries). */
  readonly file: number;
}

/** Resident memory of a process from /proc/PID/status. */
export function memoryKiB(pid: number): MemoryKiB {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} for pid ${pid}`);
    return Number(m[1]);
  };
  return { rss: field('VmRSS'), peak: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') };
}

/**
 * Bytes a process caused to be written to storage (`write_bytes` of /proc/PID/io, all its
 * threads), or null when the kernel does not say (no task I/O accounting, or not permitted).
 */
export function diskWriteBytes(pid: number): number | null {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Bytes a process handed to write syscalls (`wchar` of /proc/PID/io: write, pwrite, writev, on
 * files, pipes and sockets written with write/writev — not send/sendto), or null. For an LMDB
 * writer this is what it really asks the disk to take: `write_bytes` counts a whole page-cache
 * folio each time one of its blocks is dirtied, and with large folios (ext4, Linux ≥ 6.16) that
 * overstates 4 KiB B-tree page writes several times over.
 */
export function writeSyscallBytes(pid: number): number | null {
  try {
    const m = /^wchar:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Bytes a directory tree takes on disk (allocated blocks, as `du`) and its files' apparent sizes. */
export function diskUsage(dir: string): { bytes: number; apparentBytes: number } {
  let bytes = 0;
  let apparentBytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = diskUsage(p);
      bytes += sub.bytes;
      apparentBytes += sub.apparentBytes;
    } else if (entry.isFile()) {
      const st = statSync(p);
      bytes += st.blocks * 512;
      apparentBytes += st.size;
    }
  }
  return { bytes, apparentBytes };
}

/** Soft and hard "Max open files" of a process. */
export function openFileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const n = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  srv.close();
  await once(srv, 'close');
  return port;
}

export interface RelayChild {
  readonly pid: number;
  readonly url: string;
  readonly port: number;
  /** The last lines the child wrote, for error reports. */
  readonly tail: string[];
  stop(): Promise<void>;
}

/**
 * Starts `command args…` (through `sh -c 'ulimit -n <hard>; exec …'`, so the PID is the
 * relay's own, with its open-file limit raised, killed by the kernel if this process dies
 * first: die-with-parent.ts) and waits until a line of its output
 * matches `readyLine` or, with `healthPath`, GET http://127.0.0.1:PORT<healthPath> answers 200.
 */
export async function startChild(opts: {
  command: string;
  args: readonly string[];
  port: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  readyLine: RegExp;
  healthPath?: string;
  readyTimeoutMs?: number;
}): Promise<RelayChild> {
  const { port } = opts;
  // setpriv's parent-death signal survives both execs: the child dies with this process.
  const child: ChildProcess = spawn(...dieWithParent('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', opts.command, ...opts.args]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: opts.env ?? process.env,
  });
  const tail: string[] = [];
  let ready = false;
  let resolveReady!: () => void;
  const readyP = new Promise<void>((res) => (resolveReady = res));
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (!ready && opts.readyLine.test(line)) {
        ready = true;
        resolveReady();
      }
    });
  }
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`${opts.command} exited before it was ready (code ${code}, signal ${signal}):\n${tail.join('\n')}`);
  });
  exited.catch(() => undefined);
  const url = `ws://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };
  const ac = new AbortController();
  const healthPoll = opts.healthPath === undefined
    ? new Promise<void>(() => {})
    : (async () => {
      while (!ac.signal.aborted) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}${opts.healthPath}`, { signal: AbortSignal.any([ac.signal, AbortSignal.timeout(1000)]) });
          await res.arrayBuffer();
          if (res.status === 200) return;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      readyP,
      healthPoll,
      exited,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${opts.command} not ready after ${timeoutMs} ms:\n${tail.join('\n')}`)), timeoutMs))),
    ]);
  } catch (err) {
    ac.abort();
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return { pid: child.pid!, url, port, tail, stop };
}

/** Starts `node scripts/bazaar.mjs relay …` on a free port of 127.0.0.1 with quiet JSON logs. */
export async function startRelayChild(opts: { bazaarScript: string; dataDir: string; transport: string; readyTimeoutMs?: number; extraArgs?: string[] }): Promise<RelayChild> {
  const port = await freePort();
  const args = [opts.bazaarScript, 'relay', '--port', String(port), '--host', '127.0.0.1', '--data', opts.dataDir, '--transport', opts.transport, ...(opts.extraArgs ?? [])];
  return startChild({
    command: process.execPath,
    args,
    port,
    // Quiet, unformatted logs: a benchmark should not measure pino-pretty. /health tells readiness.
    env: { ...process.env, BAZAAR_LOG_FORMAT: 'json', BAZAAR_RELAY_LOG_LEVEL: process.env.BAZAAR_RELAY_LOG_LEVEL ?? 'warn' },
    readyLine: /listening/i,
    healthPath: '/health',
    ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  });
}
