// Small process helpers: run a host command (git, podman, bwrap, debootstrap, tar…) through
// execa — a deadline, SIGTERM then SIGKILL after a grace, the child killed if this process
// exits, clear errors — and walk /proc to find a process tree (used to signal a sandbox's
// processes and, in tests, to prove none survive).
import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';

export interface ExecResult {
  /** Exit code; null when the command was ended by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecHostOptions {
  readonly signal?: AbortSignal;
  /** Deadline (default 120 s): SIGTERM, then SIGKILL `killAfterMs` later, then a "timed out" error. */
  readonly timeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL on timeout or abort (default 5 s). */
  readonly killAfterMs?: number;
  readonly cwd?: string;
  /** The command's whole environment (nothing inherited) when given; else this process's. */
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string | Buffer;
  readonly maxBuffer?: number;
}

/**
 * Runs a host command (never a job's code) and resolves with its exit code and output,
 * whatever the code. Rejects only when it could not run to an end: not installed, timed
 * out, aborted (with the signal's reason), or output over `maxBuffer`.
 */
export async function execHost(file: string, args: readonly string[], opts: ExecHostOptions = {}): Promise<ExecResult> {
  opts.signal?.throwIfAborted();
  const r = await execa(file, [...args], {
    reject: false,
    cleanup: true,
    timeout: opts.timeoutMs ?? 120_000,
    forceKillAfterDelay: opts.killAfterMs ?? 5_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.env ? { env: opts.env, extendEnv: false } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024,
    stripFinalNewline: false,
    encoding: 'utf8',
  });
  if (r.code === 'ENOENT') throw new Error(`${file} is not installed (not found on PATH)`);
  if (r.isCanceled) throw opts.signal?.reason instanceof Error ? opts.signal.reason : new DOMException('The operation was aborted', 'AbortError');
  if (r.timedOut) throw new Error(`${file} ${args[0] ?? ''} timed out after ${opts.timeoutMs ?? 120_000} ms`.replace('  ', ' '));
  if (r.isMaxBuffer) throw new Error(`${file} ${args[0] ?? ''}: output over ${opts.maxBuffer ?? 16 * 1024 * 1024} bytes`);
  if (r.exitCode === undefined && r.signal === undefined) throw new Error(`${file} could not run: ${r.shortMessage}`);
  return { code: r.exitCode ?? null, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, in clock ticks */
  ticks: number;
  cmdline: string;
}

/** Every process visible in /proc (those that vanish while reading are skipped). */
export async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // comm may contain spaces and parentheses: fields start after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
      out.push({ pid: Number(name), ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Pids of every descendant of `root` (not including root). */
export function descendants(procs: readonly ProcInfo[], root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function signalPids(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** POSIX single-quote a shell word. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-./=:,+@%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };
/** Name of a signal number (for exit codes 128+N), when it is a common one. */
export function signalName(n: number): string | null {
  return SIGNALS[n] ?? null;
}
