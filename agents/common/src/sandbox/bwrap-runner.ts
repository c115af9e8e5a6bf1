// BwrapRunner: the default isolation on Linux. bubblewrap with every namespace
// unshared (the network namespace has only `lo`), read-only system and repo, tmpfs
// workspace and /tmp with size caps, the sandbox user nobody (bwrap itself runs as
// nobody when we are root, so no file the sandbox sees is owned by its kernel uid),
// no capabilities, a clean env, --die-with-parent, a new session; memory/pids limits
// and metering through a per-job cgroup, falling back to rlimits (prlimit).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chown, lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { detectCgroups, JobCgroup, type CgroupSupport } from './cgroup.ts';
import { capturedStreams, DEFAULT_CAPTURE_BYTES, OutputStream } from './output.ts';
import { sandboxSeccompFilter } from './seccomp.ts';
import { descendants, execHost, listProcesses, shellQuote, signalName, signalPids } from './proc.ts';
import {
  baseEnv, resolveLimits, SandboxError, validateSpec,
  type RunLimits, type RunOptions, type RunReason, type RunResult, type Runner, type RunSpec,
} from './runner.ts';

export interface BwrapRunnerOptions {
  readonly log: Logger;
  readonly bwrapPath?: string;
  readonly prlimitPath?: string;
  /** The sandbox user (outside and inside). Default nobody (65534). */
  readonly uid?: number;
  readonly gid?: number;
  /** 'auto' (default) uses cgroups when usable, else rlimits; 'off' forces rlimits. */
  readonly cgroups?: 'auto' | 'off';
  readonly cgroupRoot?: string;
  /** Directory (under each hierarchy) holding the job cgroups. */
  readonly cgroupParent?: string;
  /** Bytes of each stream kept in the result. */
  readonly captureBytes?: number;
  /** The seccomp deny-list (default on, x86_64 only); false disables it. */
  readonly seccomp?: boolean;
}

/** Host directories mounted read-only as the sandbox's system. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** The only host /etc entries the sandbox sees: the dynamic linker, TLS roots, alternatives (users are generated). */
const ETC_ENTRIES = [
  'nsswitch.conf', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives',
  'ssl', 'ca-certificates', 'localtime', 'os-release', 'debian_version', 'mime.types', 'protocols', 'services',
];
const CPU_POLL_MS = 200;
/** Mount point of each job's staging tmpfs, inside the job's private mount namespace only. */
const STAGE_DIR = '/run/bazaar-sandbox-stage';
const SETUP_FAILED = 'bazaar-sandbox: setup failed';

export class BwrapRunner implements Runner {
  readonly kind = 'bwrap';
  readonly #log: Logger;
  readonly #bwrap: string;
  readonly #prlimit: string;
  readonly #uid: number;
  readonly #gid: number;
  readonly #captureBytes: number;
  readonly #cgroupParent: string;
  #cgroups: Promise<CgroupSupport> | undefined;
  #installed: Promise<void> | undefined;
  #systemArgs: Promise<string[]> | undefined;
  readonly #opts: BwrapRunnerOptions;
  readonly #seccomp: Buffer | null;

  constructor(opts: BwrapRunnerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#bwrap = opts.bwrapPath ?? 'bwrap';
    this.#prlimit = opts.prlimitPath ?? 'prlimit';
    this.#uid = opts.uid ?? 65534;
    this.#gid = opts.gid ?? 65534;
    this.#captureBytes = opts.captureBytes ?? DEFAULT_CAPTURE_BYTES;
    this.#cgroupParent = opts.cgroupParent ?? 'bazaar-sandbox';
    this.#seccomp = opts.seccomp === false ? null : sandboxSeccompFilter();
  }

  /** Which limit mechanism this runner uses here, and why. */
  cgroupSupport(): Promise<CgroupSupport> {
    this.#cgroups ??= this.#opts.cgroups === 'off'
      ? Promise.resolve({ version: null, root: '', why: 'disabled by configuration' })
      : process.getuid?.() === 0
        ? detectCgroups(this.#opts.cgroupRoot)
        : Promise.resolve({ version: null, root: '', why: 'not running as root' });
    return this.#cgroups;
  }

  async run(spec: RunSpec, opts: RunOptions = {}): Promise<RunResult> {
    validateSpec(spec);
    const limits = resolveLimits(spec.limits);
    if (opts.signal?.aborted) throw new SandboxError('aborted before start');
    const asRoot = process.getuid?.() === 0;
    const jobId = randomBytes(6).toString('hex');
    const log = this.#log.child({ sandboxJob: jobId, runner: 'bwrap' });

    this.#installed ??= (async () => {
      // As root we also need util-linux's setpriv and unshare (and mount).
      for (const [bin, args] of [[this.#bwrap, ['--version']], ...(asRoot ? [['setpriv', ['--version']], ['unshare', ['--version']]] : [])] as Array<[string, string[]]>) {
        const r = await execHost(bin, args, { timeoutMs: 10_000 });
        if (r.code !== 0) throw new Error(`${bin}: ${r.stderr.trim()}`);
      }
    })();
    await this.#installed.catch((err: Error) => {
      this.#installed = undefined;
      throw new SandboxError(`bubblewrap is not usable (${err.message}); apt-get install bubblewrap util-linux`);
    });
    await this.#checkReadable(spec);
    if (spec.workspace && asRoot) await chown(spec.workspace, this.#uid, this.#gid);

    const support = await this.cgroupSupport();
    let cgroup: JobCgroup | null = null;
    if (support.version !== null) {
      try {
        cgroup = await JobCgroup.create(support, this.#cgroupParent, jobId, limits);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cgroup setup failed; falling back to rlimits');
        await cgroup?.destroy();
        cgroup = null;
      }
    }

    const bindSpecs = [
      ...(spec.repo ? [{ hostPath: spec.repo, sandboxPath: '/repo', readOnly: true }] : []),
      ...(spec.workspace ? [{ hostPath: spec.workspace, sandboxPath: '/workspace', readOnly: false }] : []),
      ...(spec.mounts ?? []),
    ];
    // As root, bwrap runs as the sandbox user, who may not be able to walk to a bind source (e.g.
    // under a 0700 data dir). So a private mount namespace (gone with the job) first bind-mounts
    // every source onto a 0755 staging tmpfs, and bwrap binds from there.
    if (asRoot) await mkdir(STAGE_DIR, { recursive: true });
    const binds = await Promise.all(bindSpecs.map(async (b, i) => ({
      ...b,
      source: asRoot ? `${STAGE_DIR}/${i}` : b.hostPath,
      isDir: (await stat(b.hostPath)).isDirectory(),
    })));
    const bwrapArgs = await this.#bwrapArgs(spec, limits, binds);
    const cpuLimit = Math.ceil(limits.cpuSeconds) + 1;
    let argv: string[];
    if (asRoot) {
      // One root shell prepares everything, then drops to the sandbox user and becomes bwrap:
      // cgroup join first (no process of the job ever runs outside it), rlimits (no core dumps,
      // a per-process cpu backstop, the container runner's nofile; without a cgroup also
      // processes and data size), then the staged bind mounts.
      const steps = [
        ...(cgroup ? cgroup.procsFiles.map((f) => `echo $$ > ${shellQuote(f)}`) : []),
        'ulimit -c 0', `ulimit -t ${cpuLimit}`, 'ulimit -n 1024',
        ...(cgroup ? [] : [`ulimit -p ${limits.pids}`, `ulimit -d ${Math.ceil(limits.memoryBytes / 1024)}`]),
        ...(binds.length
          ? [
              `mount -t tmpfs -o mode=0755,size=64k bazaar-stage ${STAGE_DIR}`,
              ...binds.flatMap((b, i) => [b.isDir ? `mkdir ${b.source}` : `: > ${b.source}`, `mount --bind ${shellQuote(bindSpecs[i].hostPath)} ${b.source}`]),
            ]
          : []),
      ];
      // A failed step is the sandbox's failure, marked so it is not mistaken for the job's result.
      const script = `{ ${steps.join(' && ')}; } || { echo '${SETUP_FAILED}' >&2; exit 125; }\nexec setpriv --reuid=${this.#uid} --regid=${this.#gid} --clear-groups -- "$@"`;
      const shell = ['/bin/sh', '-c', script, 'bazaar-sandbox', this.#bwrap, ...bwrapArgs];
      // A private mount namespace only when there is something to stage.
      argv = binds.length ? ['unshare', '--mount', '--propagation', 'private', '--', ...shell] : shell;
    } else {
      const rl = ['--core=0', `--cpu=${cpuLimit}`, '--nofile=1024', `--nproc=${limits.pids}`, `--data=${limits.memoryBytes}`];
      argv = [this.#prlimit, ...rl, '--', this.#bwrap, ...bwrapArgs];
    }

    const started = performance.now();
    // The job process itself is spawned with node's own spawn, not execa like other host
    // commands: it needs extra pipes on fds 3-6 that bwrap reads during setup, streamed
    // stdout/stderr with our own byte caps and line callbacks, and a kill policy of its own
    // (SIGTERM to every process of the job's cgroup, SIGKILL to bwrap after the grace).
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    log.debug({ pid: child.pid, cmd: spec.cmd[0], cgroup: cgroup ? `v${cgroup.version}` : 'none' }, 'sandbox started');

    // Extra fds bwrap reads during setup: 3 the seccomp filter (when there is one for this
    // architecture), 4 /etc/hosts (localhost only, nothing about the provider's network),
    // 5 and 6 passwd and group with just root and the sandbox user (no host account names).
    const setupData: Array<[number, string | Buffer | null]> = [
      [3, this.#seccomp],
      [4, '127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n'],
      [5, `root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:${this.#uid}:${this.#gid}:nobody:/workspace:/usr/sbin/nologin\n`],
      [6, `root:x:0:\nnogroup:x:${this.#gid}:\n`],
    ];
    for (const [fd, data] of setupData) {
      const w = (child.stdio as unknown as Array<NodeJS.WritableStream | null>)[fd];
      w?.on('error', () => undefined);
      if (data) w?.end(data);
      else w?.end();
    }
    const out = new OutputStream(this.#captureBytes, opts.onStdoutLine);
    const err = new OutputStream(this.#captureBytes, opts.onStderrLine);
    let stopReason: RunReason | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let lastCpu: number | null = null;
    let procCpuTicks = 0;

    const killTree = async (): Promise<void> => {
      if (child.pid !== undefined) signalPids([child.pid], 'SIGKILL');
      await cgroup?.signalAll('SIGKILL');
    };
    const stop = (reason: RunReason, graceful: boolean): void => {
      if (stopReason !== null || exited) return;
      stopReason = reason;
      log.info({ reason }, 'stopping sandbox');
      if (!graceful) {
        void killTree();
        return;
      }
      // SIGTERM goes to the job's processes (bwrap itself would just die and take them with it).
      void (async () => {
        const pids = cgroup ? (await cgroup.pids()).filter((p) => p !== child.pid) : descendants(await listProcesses(), child.pid ?? -1);
        signalPids(pids, 'SIGTERM');
      })();
      killTimer = setTimeout(() => void killTree(), limits.killGraceMs);
    };

    let exited = false;
    child.stdout!.on('data', (c: Buffer) => {
      out.push(c);
      if (out.bytes + err.bytes > limits.outputBytes) stop('output-limit', false);
    });
    child.stderr!.on('data', (c: Buffer) => {
      err.push(c);
      if (out.bytes + err.bytes > limits.outputBytes) stop('output-limit', false);
    });
    child.stdin!.on('error', () => undefined); // the job may exit without reading its stdin
    child.stdin!.end(spec.stdin === undefined ? undefined : Buffer.from(spec.stdin));

    const wallTimer = setTimeout(() => stop('timeout', true), limits.wallMs);
    const onAbort = (): void => stop('killed', true);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const cpuTimer = setInterval(() => {
      void (async () => {
        if (cgroup) {
          lastCpu = await cgroup.cpuSeconds();
        } else if (child.pid !== undefined) {
          // Without a cgroup: sample the tree (an estimate; the last interval is lost).
          const procs = await listProcesses();
          const tree = new Set([child.pid, ...descendants(procs, child.pid)]);
          const ticks = procs.filter((p) => tree.has(p.pid)).reduce((s, p) => s + p.ticks, 0);
          procCpuTicks = Math.max(procCpuTicks, ticks);
          lastCpu = procCpuTicks / 100;
        }
        if (lastCpu !== null && lastCpu > limits.cpuSeconds) stop('timeout', true);
      })();
    }, CPU_POLL_MS);

    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })));
    let exit: { code: number | null; signal: NodeJS.Signals | null };
    try {
      exit = await Promise.race([closed, spawnError]);
    } catch (e) {
      await cgroup?.destroy();
      throw new SandboxError(`cannot start bwrap: ${(e as Error).message}`);
    } finally {
      exited = true;
      clearTimeout(wallTimer);
      clearTimeout(killTimer);
      clearInterval(cpuTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
    const wallMs = Math.round(performance.now() - started);

    let cpuSeconds: number | null = cgroup ? null : lastCpu;
    let peakMemoryBytes: number | null = null;
    let oom = false;
    if (cgroup) {
      // bwrap's exit takes its pid namespace with it; read the meters, then make sure and clean up.
      const [cpu, peak, ooms] = await Promise.all([cgroup.cpuSeconds(), cgroup.peakMemoryBytes(), cgroup.oomKills()]);
      cpuSeconds = cpu;
      peakMemoryBytes = peak;
      oom = ooms > 0;
      await cgroup.destroy();
    }

    const reason: RunReason = stopReason ?? (oom ? 'oom' : 'exit');
    const o = out.finish();
    const e = err.finish();
    if (stopReason === null && exit.code === 125 && e.text.trimEnd().endsWith(SETUP_FAILED)) {
      throw new SandboxError(`sandbox setup failed: ${e.text.trim().split('\n').slice(-3).join(' | ')}`);
    }
    const bwrapLine = stopReason === null && exit.code === 1 && o.bytes === 0 && /^bwrap: [^\n]*\n?$/.test(e.text);
    // The command missing (or its cwd) is the job's failure: exit 127 like a shell, as the container runner does.
    const notFound = bwrapLine && /^bwrap: (execvp|Can't chdir)/.test(e.text);
    if (bwrapLine && !notFound) {
      // bwrap's own failures (no user namespaces, a mount it cannot make) are setup errors, not
      // job results. A job could print the same line and exit 1; it would only fail its own run.
      throw new SandboxError(`sandbox setup failed: ${e.text.trim()}`);
    }
    const result: RunResult = {
      reason,
      exitCode: notFound ? 127 : exit.code,
      signal: exit.signal ?? (exit.code !== null && exit.code > 128 && exit.code < 160 ? signalName(exit.code - 128) : null),
      ...capturedStreams(o, e),
      cpuSeconds: cpuSeconds === null ? null : Math.round(cpuSeconds * 1000) / 1000,
      wallMs,
      peakMemoryBytes,
    };
    log.info({ reason, exitCode: result.exitCode, signal: result.signal, wallMs, cpuSeconds: result.cpuSeconds, stdoutBytes: o.bytes, stderrBytes: e.bytes }, 'sandbox finished');
    return result;
  }

  async #checkReadable(spec: RunSpec): Promise<void> {
    // bwrap runs as the sandbox user, so every bind source must be reachable by that user.
    const sources = [spec.repo, spec.workspace, ...(spec.mounts ?? []).map((m) => m.hostPath)].filter((p): p is string => p !== undefined);
    for (const p of sources) {
      if (!p.startsWith('/')) throw new SandboxError(`mount source must be an absolute path: ${p}`);
      try {
        await access(p, constants.F_OK);
      } catch {
        throw new SandboxError(`mount source does not exist: ${p}`);
      }
    }
  }

  #systemMounts(): Promise<string[]> {
    this.#systemArgs ??= (async () => {
      const args: string[] = [];
      for (const dir of SYSTEM_DIRS) {
        try {
          const st = await lstat(dir);
          if (st.isSymbolicLink()) args.push('--symlink', await readlink(dir), dir);
          else if (st.isDirectory()) args.push('--ro-bind', dir, dir);
        } catch {
          // absent on this host
        }
      }
      for (const name of ETC_ENTRIES) {
        const p = join('/etc', name);
        try {
          await lstat(p);
          args.push('--ro-bind', p, p);
        } catch {
          // absent on this host
        }
      }
      return args;
    })();
    return this.#systemArgs;
  }

  async #bwrapArgs(spec: RunSpec, limits: RunLimits, binds: Array<{ source: string; sandboxPath: string; readOnly: boolean }>): Promise<string[]> {
    const env = baseEnv(spec.env);
    const a: string[] = [
      '--unshare-all', '--unshare-user', '--disable-userns',
      '--uid', String(this.#uid), '--gid', String(this.#gid),
      '--hostname', 'sandbox',
      '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
      '--clearenv',
      ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
      ...(await this.#systemMounts()),
      ...(this.#seccomp ? ['--seccomp', '3'] : []),
      '--perms', '0644', '--file', '4', '/etc/hosts',
      '--perms', '0644', '--file', '5', '/etc/passwd',
      '--perms', '0644', '--file', '6', '/etc/group',
      '--proc', '/proc', '--dev', '/dev',
      // /dev is a tmpfs of bwrap's making: read-only, with a size-capped /dev/shm on top.
      '--perms', '1777', '--size', String(limits.tmpfsBytes), '--tmpfs', '/dev/shm', '--remount-ro', '/dev',
      '--perms', '1777', '--size', String(limits.tmpfsBytes), '--tmpfs', '/tmp',
    ];
    if (!spec.workspace) a.push('--perms', '0755', '--size', String(limits.tmpfsBytes), '--tmpfs', '/workspace');
    for (const b of binds) a.push(b.readOnly ? '--ro-bind' : '--bind', b.source, b.sandboxPath);
    a.push('--remount-ro', '/', '--chdir', spec.cwd ?? '/workspace', '--', ...spec.cmd);
    return a;
  }
}
