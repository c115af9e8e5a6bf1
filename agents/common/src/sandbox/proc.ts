// Small process helpers: run a host command with a signal and a timeout, and walk
// /proc to find a process tree (used to signal a sandbox's processes and, in tests,
// to prove none survive).
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a host command (never a job's code) with a timeout; resolves with its exit code. */
export function execHost(
  file: string,
  args: readonly string[],
  opts: { signal?: AbortSignal; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; maxBuffer?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        signal: opts.signal,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        cwd: opts.cwd,
        env: opts.env,
        maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(`${file} is not installed`));
        if (err && (err.name === 'AbortError' || (err as { killed?: boolean }).killed)) {
          return reject(err.name === 'AbortError' ? err : new Error(`${file} ${args[0] ?? ''} timed out`));
        }
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
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
