// The Runner contract: how agents run untrusted code. The provider runs jobs with it,
// arbiters and buyers replay them with it; the isolation behind it (bubblewrap or a
// container) is interchangeable and chosen by configuration.

/** Why a run ended. `timeout` covers both wall-clock and cpu-seconds limits. */
export const RunReason = {
  exit: 'exit',
  timeout: 'timeout',
  oom: 'oom',
  outputLimit: 'output-limit',
  killed: 'killed',
} as const;
export type RunReason = (typeof RunReason)[keyof typeof RunReason];

export interface RunLimits {
  /** Wall-clock limit; the whole process tree is killed when it passes. */
  readonly wallMs: number;
  /** Memory limit of the whole sandbox (cgroup), bytes. */
  readonly memoryBytes: number;
  /** Maximum number of processes/threads alive at once in the sandbox. */
  readonly pids: number;
  /** Total CPU time of the whole sandbox, seconds; exceeding it ends the run as `timeout`. */
  readonly cpuSeconds: number;
  /** Total bytes the job may write to stdout + stderr; beyond it the run ends as `output-limit`. */
  readonly outputBytes: number;
  /** Size cap of the tmpfs /workspace (when no host workspace is bound) and of /tmp, bytes. */
  readonly tmpfsBytes: number;
  /** Grace between SIGTERM and SIGKILL when a run is stopped (timeout, abort, limits). */
  readonly killGraceMs: number;
}

export const DEFAULT_LIMITS: RunLimits = {
  wallMs: 60_000,
  memoryBytes: 512 * 1024 * 1024,
  pids: 256,
  cpuSeconds: 120,
  outputBytes: 16 * 1024 * 1024,
  tmpfsBytes: 256 * 1024 * 1024,
  killGraceMs: 1_000,
};

export interface Mount {
  readonly hostPath: string;
  readonly sandboxPath: string;
  readonly readOnly: boolean;
}

export interface RunSpec {
  /** argv; argv[0] is looked up in the sandbox's PATH. */
  readonly cmd: readonly string[];
  /** Host path of a repository checkout, mounted read-only at /repo. */
  readonly repo?: string;
  /** Host directory mounted read-write at /workspace (it is made writable by the sandbox user).
   *  Without it /workspace is a fresh tmpfs capped at `limits.tmpfsBytes`, gone after the run. */
  readonly workspace?: string;
  /** Working directory inside the sandbox (default /workspace). */
  readonly cwd?: string;
  /** Added to the sandbox's clean environment (PATH, HOME=/workspace, LANG, TMPDIR). Nothing else leaks in. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to the job's stdin, which is then closed. Default: empty stdin. */
  readonly stdin?: string | Uint8Array;
  readonly limits?: Partial<RunLimits>;
  /** Extra mounts (e.g. the credential proxy's socket directory). */
  readonly mounts?: readonly Mount[];
  /** Container image (ContainerRunner only; defaults to the runner's configured image). */
  readonly image?: string;
}

export interface RunOptions {
  /** Aborting stops the run (SIGTERM, grace, SIGKILL of the whole tree); reason `killed`. */
  readonly signal?: AbortSignal;
  /** Called for each complete line (without the newline; long lines are cut at 64 KiB). */
  readonly onStdoutLine?: (line: string) => void;
  readonly onStderrLine?: (line: string) => void;
}

export interface RunResult {
  readonly reason: RunReason;
  /** Exit code of the command, or null when it was ended by a signal or killed. */
  readonly exitCode: number | null;
  /** Signal that ended the command (e.g. 'SIGKILL'), when known. */
  readonly signal: string | null;
  /** The first `captureBytes` of each stream, decoded as UTF-8. */
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  /** sha256 (hex) over every byte the job wrote to the stream, not just the captured part. */
  readonly stdoutSha256: string;
  readonly stderrSha256: string;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  /** CPU time (user + system) of the whole sandbox, or null when it cannot be measured. */
  readonly cpuSeconds: number | null;
  readonly wallMs: number;
  /** Peak memory of the sandbox in bytes, when the isolation can tell. */
  readonly peakMemoryBytes: number | null;
}

/** One isolation technology. Implementations never throw for what the job does (that is a
 *  RunResult); they throw only when the sandbox itself cannot be set up. */
export interface Runner {
  /** 'bwrap' | 'container' */
  readonly kind: string;
  run(spec: RunSpec, opts?: RunOptions): Promise<RunResult>;
}

export class SandboxError extends Error {
  override name = 'SandboxError';
}

export function resolveLimits(l?: Partial<RunLimits>): RunLimits {
  const out = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(l ?? {}).filter(([, v]) => v !== undefined)) } as RunLimits;
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SandboxError(`invalid limit ${k}: ${String(v)} (must be a positive number)`);
  }
  if (out.pids < 2) throw new SandboxError('invalid limit pids: at least 2 (the sandbox init and the command)');
  return out;
}

export function validateSpec(spec: RunSpec): void {
  if (!Array.isArray(spec.cmd) || spec.cmd.length === 0 || spec.cmd.some((a) => typeof a !== 'string')) {
    throw new SandboxError('invalid cmd: a non-empty array of strings is required');
  }
  if (spec.cmd.some((a) => a.includes('\0'))) throw new SandboxError('invalid cmd: NUL byte in an argument');
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new SandboxError(`invalid env name: ${JSON.stringify(k)}`);
    if (typeof v !== 'string' || v.includes('\0')) throw new SandboxError(`invalid env value for ${k}`);
  }
  for (const p of [spec.cwd, ...(spec.mounts ?? []).map((m) => m.sandboxPath)]) {
    if (p !== undefined && (!p.startsWith('/') || p.split('/').includes('..'))) throw new SandboxError(`invalid sandbox path: ${p}`);
  }
}

/** The environment every sandbox starts from; the spec's env is added on top. */
export function baseEnv(extra?: Readonly<Record<string, string>>): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/workspace',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    // Checkouts are owned by the provider, not by the sandbox user; git must still work on them.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'safe.directory',
    GIT_CONFIG_VALUE_0: '*',
    ...extra,
  };
}
