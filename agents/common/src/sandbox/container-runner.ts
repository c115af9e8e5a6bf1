// ContainerRunner: jobs in a container through the Docker API (dockerode), against
// Docker or podman's Docker-compatible service. The seed flags: --network none
// --cap-drop ALL --read-only --tmpfs /workspace:rw,noexec,nosuid --pids-limit --memory,
// plus a read-only repo bind, explicit ulimits, no-new-privileges and user nobody.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { capturedStreams, DEFAULT_CAPTURE_BYTES, OutputStream } from './output.ts';
import { signalName } from './proc.ts';
import {
  baseEnv, resolveLimits, SandboxError, validateSpec,
  type RunOptions, type RunReason, type RunResult, type Runner, type RunSpec,
} from './runner.ts';

export interface ContainerRunnerOptions {
  readonly docker: Docker;
  readonly log: Logger;
  /** Default image for specs without one (see sandbox-images/). */
  readonly image: string;
  /** OCI runtime, e.g. 'runsc' for gVisor; default: the engine's default runtime. */
  readonly runtime?: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly captureBytes?: number;
  /** Timeout of each Docker API call (not of the job). */
  readonly apiTimeoutMs?: number;
}

const STATS_POLL_MS = 500;
/** Where the init shell finds stdin and writes its meter, inside the container. */
const IO_DIR = '/run/bazaar-io';

function initScript(hasStdin: boolean): string {
  return [
    `"$@" ${hasStdin ? `< ${IO_DIR}/stdin` : ''} &`,
    'p=$!',
    "trap 'kill -TERM $p 2>/dev/null' TERM INT",
    // wait returns early when the trap runs: wait again until the command is really gone.
    'while :; do wait $p; rc=$?; kill -0 $p 2>/dev/null || break; done',
    `times > ${IO_DIR}/meter/times 2>/dev/null`,
    'exit $rc',
  ].join('\n');
}

/** Sums the user and system times of the shell and its children from POSIX `times` output. */
async function readTimes(file: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (!text) return null;
  let total = 0;
  let found = false;
  for (const m of text.matchAll(/(\d+)m(\d+(?:\.\d+)?)s/g)) {
    total += Number(m[1]) * 60 + Number(m[2]);
    found = true;
  }
  return found ? total : null;
}
/** How long we wait for the output stream to drain after the container exited. */
const DRAIN_MS = 5_000;

export class ContainerRunner implements Runner {
  readonly kind = 'container';
  readonly #o: ContainerRunnerOptions;
  readonly #uid: number;
  readonly #gid: number;
  #engineKind: Promise<'podman' | 'docker'> | undefined;

  constructor(opts: ContainerRunnerOptions) {
    this.#o = opts;
    this.#uid = opts.uid ?? 65534;
    this.#gid = opts.gid ?? 65534;
  }

  #engine(): Promise<'podman' | 'docker'> {
    this.#engineKind ??= (this.#o.docker.version as (o: object) => Promise<{ Components?: Array<{ Name?: string }> }>)
      .call(this.#o.docker, { abortSignal: AbortSignal.timeout(this.#o.apiTimeoutMs ?? 30_000) })
      .then((v) => (v.Components ?? []).some((c) => /podman/i.test(c.Name ?? '')) ? 'podman' as const : 'docker' as const)
      .catch(() => 'docker' as const);
    return this.#engineKind;
  }

  async run(spec: RunSpec, opts: RunOptions = {}): Promise<RunResult> {
    validateSpec(spec);
    const limits = resolveLimits(spec.limits);
    if (opts.signal?.aborted) throw new SandboxError('aborted before start');
    const docker = this.#o.docker;
    const image = spec.image ?? this.#o.image;
    const jobId = randomBytes(6).toString('hex');
    const log = this.#o.log.child({ sandboxJob: jobId, runner: 'container' });
    const apiTimeout = this.#o.apiTimeoutMs ?? 30_000;
    const api = (): { abortSignal: AbortSignal } => ({ abortSignal: AbortSignal.timeout(apiTimeout) });

    try {
      await docker.getImage(image).inspect(api() as {});
    } catch (err) {
      throw new SandboxError(`container image ${image} is not available (${(err as Error).message}); build it with \`npm run images\``);
    }
    for (const p of [spec.repo, spec.workspace, ...(spec.mounts ?? []).map((m) => m.hostPath)]) {
      if (p === undefined) continue;
      if (!p.startsWith('/')) throw new SandboxError(`mount source must be an absolute path: ${p}`);
      // Binds are "src:dst:mode" strings: a ':' or ',' in a path would change their meaning.
      if (/[:,]/.test(p)) throw new SandboxError(`mount source path contains ':' or ',': ${p}`);
      if (!(await stat(p).catch(() => null))) throw new SandboxError(`mount source does not exist: ${p}`);
    }
    for (const m of spec.mounts ?? []) {
      if (/[:,]/.test(m.sandboxPath)) throw new SandboxError(`mount target contains ':' or ',': ${m.sandboxPath}`);
    }
    if (spec.workspace && process.getuid?.() === 0) await chown(spec.workspace, this.#uid, this.#gid);

    // A small init shell runs the command: stdin from a read-only file (attaching stdin is not
    // portable: podman reads an attach request's JSON body as stdin), SIGTERM forwarded to the
    // command, and at exit the command's cpu time (`times`) written to a metering directory,
    // because the engine's stats disappear with the container. Empty stdin is /dev/null.
    const ioDir = await mkdtemp(join(tmpdir(), 'bazaar-container-io-'));
    let cmd: string[];
    const mounts = [...(spec.mounts ?? [])];
    try {
      const hasStdin = spec.stdin !== undefined && Buffer.byteLength(spec.stdin) > 0;
      await mkdir(join(ioDir, 'meter'));
      if (hasStdin) await writeFile(join(ioDir, 'stdin'), spec.stdin!, { mode: 0o644 });
      await chmod(ioDir, 0o755);
      await chown(join(ioDir, 'meter'), this.#uid, this.#gid).catch(() => chmod(join(ioDir, 'meter'), 0o777));
      mounts.push({ hostPath: ioDir, sandboxPath: IO_DIR, readOnly: false });
      cmd = ['/bin/sh', '-c', initScript(hasStdin), 'sh', ...spec.cmd];
    } catch (err) {
      await rm(ioDir, { recursive: true, force: true });
      throw new SandboxError(`cannot prepare the container's io directory: ${(err as Error).message}`);
    }
    const env = baseEnv(spec.env);
    const tmpfs: Record<string, string> = { '/tmp': `rw,noexec,nosuid,nodev,size=${limits.tmpfsBytes}` };
    // The workspace belongs to the sandbox user: Docker takes uid/gid tmpfs options, podman its own `U`.
    const owner = (await this.#engine()) === 'podman' ? 'U' : `uid=${this.#uid},gid=${this.#gid}`;
    if (!spec.workspace) tmpfs['/workspace'] = `rw,noexec,nosuid,nodev,size=${limits.tmpfsBytes},${owner}`;
    const binds = [
      ...(spec.repo ? [`${spec.repo}:/repo:ro`] : []),
      ...(spec.workspace ? [`${spec.workspace}:/workspace:rw`] : []),
      ...mounts.map((m) => `${m.hostPath}:${m.sandboxPath}:${m.readOnly ? 'ro' : 'rw'}`),
    ];
    const cpuLimit = Math.ceil(limits.cpuSeconds) + 1;
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        name: `bazaar-sandbox-${jobId}`,
        Image: image,
        Cmd: cmd,
        Entrypoint: [],
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: spec.cwd ?? '/workspace',
        User: `${this.#uid}:${this.#gid}`,
        Hostname: 'sandbox',
        AttachStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        OpenStdin: false,
        Tty: false,
        NetworkDisabled: true,
        Labels: { 'bazaar.sandbox': jobId },
        HostConfig: {
          NetworkMode: 'none',
          CapDrop: ['ALL'],
          ReadonlyRootfs: true,
          Tmpfs: tmpfs,
          PidsLimit: limits.pids,
          Memory: limits.memoryBytes,
          MemorySwap: limits.memoryBytes,
          // nproc counts every process of the uid on the host, so the per-job cap is PidsLimit.
          Ulimits: [
            { Name: 'nofile', Soft: 1024, Hard: 1024 },
            { Name: 'nproc', Soft: 4096, Hard: 4096 },
            { Name: 'core', Soft: 0, Hard: 0 },
            { Name: 'cpu', Soft: cpuLimit, Hard: cpuLimit },
          ],
          SecurityOpt: ['no-new-privileges'],
          Binds: binds,
          ...(this.#o.runtime ? { Runtime: this.#o.runtime } : {}),
        },
        ...api(),
      } as Docker.ContainerCreateOptions);
    } catch (err) {
      await rm(ioDir, { recursive: true, force: true });
      throw new SandboxError(`cannot create the container: ${(err as Error).message}`);
    }
    if (this.#o.runtime) {
      // Never run silently under a weaker runtime than asked for: podman's compat API ignores
      // HostConfig.Runtime (it reports "oci"); there, make runsc the engine's default instead.
      const got = ((await container.inspect(api()).catch(() => ({}))) as { HostConfig?: { Runtime?: string } }).HostConfig?.Runtime;
      if (got !== this.#o.runtime) {
        await container.remove({ force: true, ...api() }).catch(() => undefined);
        await rm(ioDir, { recursive: true, force: true });
        throw new SandboxError(`the engine ignored runtime ${this.#o.runtime} (container runtime: ${got ?? 'unknown'}); podman's Docker API cannot select a runtime per container: set it as the default runtime in containers.conf and leave the runner's runtime unset`);
      }
    }

    const out = new OutputStream(this.#o.captureBytes ?? DEFAULT_CAPTURE_BYTES, opts.onStdoutLine);
    const err = new OutputStream(this.#o.captureBytes ?? DEFAULT_CAPTURE_BYTES, opts.onStderrLine);
    let stopReason: RunReason | null = null;
    let exited = false;
    let killTimer: NodeJS.Timeout | undefined;
    let cpuSeconds: number | null = null;
    let peakMemoryBytes: number | null = null;

    const kill = (signal: string): void => {
      container.kill({ signal, ...api() }).catch(() => undefined);
    };
    const stop = (reason: RunReason, graceful: boolean): void => {
      if (stopReason !== null || exited) return;
      stopReason = reason;
      log.info({ reason }, 'stopping container');
      if (!graceful) return kill('SIGKILL');
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), limits.killGraceMs);
    };
    const sink = (s: OutputStream): Writable => new Writable({
      write(chunk: Buffer, _enc, cb) {
        s.push(chunk);
        if (out.bytes + err.bytes > limits.outputBytes) stop('output-limit', false);
        cb();
      },
    });

    const started = performance.now();
    let wallTimer: NodeJS.Timeout | undefined;
    let statsTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => stop('killed', true);
    const streamAbort = new AbortController();
    try {
      // Output only: stdin comes from a mounted file (see above). The stream lives as long as the job.
      let stream: NodeJS.ReadableStream;
      try {
        stream = (await container.attach({ stream: true, stdout: true, stderr: true, abortSignal: streamAbort.signal } as Docker.ContainerAttachOptions)) as NodeJS.ReadableStream;
      } catch (attachErr) {
        // podman creates the process when attaching: a missing command surfaces here.
        const nf = notFound(attachErr as Error, started);
        if (nf) return nf;
        throw attachErr;
      }
      const drained = new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
      docker.modem.demuxStream(stream, sink(out), sink(err));
      try {
        await container.start(api());
      } catch (startErr) {
        const nf = notFound(startErr as Error, started);
        if (nf) return nf;
        throw startErr;
      }

      wallTimer = setTimeout(() => stop('timeout', true), limits.wallMs);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.signal?.aborted) onAbort();
      const sample = async (): Promise<void> => {
        try {
          const s = (await container.stats({ stream: false, ...api() })) as unknown as {
            cpu_stats?: { cpu_usage?: { total_usage?: number } };
            memory_stats?: { max_usage?: number; usage?: number };
          };
          const ns = s.cpu_stats?.cpu_usage?.total_usage;
          if (typeof ns === 'number' && ns > 0) cpuSeconds = Math.max(cpuSeconds ?? 0, ns / 1e9);
          const mem = s.memory_stats?.max_usage || s.memory_stats?.usage;
          if (typeof mem === 'number' && mem > 0) peakMemoryBytes = Math.max(peakMemoryBytes ?? 0, mem);
          if (cpuSeconds !== null && cpuSeconds > limits.cpuSeconds) stop('timeout', true);
        } catch {
          // the container may have exited between two samples
        }
        if (!exited) statsTimer = setTimeout(() => void sample(), STATS_POLL_MS);
      };
      statsTimer = setTimeout(() => void sample(), STATS_POLL_MS);

      const waited = (await container.wait({ abortSignal: AbortSignal.timeout(limits.wallMs + limits.killGraceMs + apiTimeout) })) as { StatusCode: number };
      exited = true;
      const wallMs = Math.round(performance.now() - started);
      await Promise.race([drained, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      const state = (await container.inspect(api())).State as { OOMKilled?: boolean; ExitCode?: number };
      const exitCode = waited.StatusCode;
      // Exit 137 (SIGKILL) under a memory limit that we did not send is the OOM killer (podman here does not set OOMKilled).
      const oom = state.OOMKilled === true || (stopReason === null && exitCode === 137);
      const reason: RunReason = stopReason ?? (oom ? 'oom' : 'exit');
      const o = out.finish();
      const e = err.finish();
      const measured = await readTimes(join(ioDir, 'meter', 'times'));
      if (measured !== null) cpuSeconds = Math.max(cpuSeconds ?? 0, measured);
      const result: RunResult = {
        reason,
        exitCode,
        signal: exitCode > 128 && exitCode < 160 ? signalName(exitCode - 128) : null,
        ...capturedStreams(o, e),
        cpuSeconds: cpuSeconds === null ? null : Math.round((cpuSeconds as number) * 1000) / 1000,
        wallMs,
        peakMemoryBytes,
      };
      log.info({ reason, exitCode, wallMs, cpuSeconds: result.cpuSeconds, stdoutBytes: o.bytes, stderrBytes: e.bytes }, 'container finished');
      return result;
    } catch (e) {
      if (e instanceof SandboxError) throw e;
      throw new SandboxError(`container run failed: ${(e as Error).message}`);
    } finally {
      exited = true;
      clearTimeout(wallTimer);
      clearTimeout(killTimer);
      clearTimeout(statsTimer);
      streamAbort.abort();
      opts.signal?.removeEventListener('abort', onAbort);
      await rm(ioDir, { recursive: true, force: true });
      await container.remove({ force: true, v: true, ...api() }).catch((e: Error) => log.warn({ err: e.message }, 'container remove failed'));
    }
  }
}

/** A command that does not exist is the job's failure (exit 127, like a shell), not the sandbox's. */
function notFound(err: Error, started: number): RunResult | null {
  if (!/executable file not found|command that was not found|exec: "[^"]*": (stat [^:]*: )?no such file or directory/i.test(err.message)) return null;
  const text = `${err.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim()}\n`;
  const empty = createHash('sha256').digest('hex');
  return {
    reason: 'exit', exitCode: 127, signal: null, stdout: '', stderr: text, stdoutTruncated: false, stderrTruncated: false,
    stdoutSha256: empty, stderrSha256: createHash('sha256').update(text).digest('hex'), stdoutBytes: 0, stderrBytes: Buffer.byteLength(text),
    cpuSeconds: null, wallMs: Math.round(performance.now() - started), peakMemoryBytes: null,
  };
}
