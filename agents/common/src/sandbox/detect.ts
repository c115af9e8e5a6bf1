// Which runners work on this machine, and why not: what the provider's `doctor` prints
// and what picks the default isolation.
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { BwrapRunner } from './bwrap-runner.ts';
import { baseImageTag, imageExists } from './base-image.ts';
import { ContainerRunner } from './container-runner.ts';
import { execHost } from './proc.ts';

export interface RunnerAvailability {
  readonly kind: 'bwrap' | 'container';
  readonly available: boolean;
  /** Why it is unavailable, or a note on a degraded mode (e.g. rlimits instead of cgroups). */
  readonly why?: string;
  /** Debian packages whose absence makes it unavailable (scripts/setup.sh installs them). */
  readonly missingPackages?: readonly string[];
  readonly details: Readonly<Record<string, string>>;
}

/** A Docker API client from `--docker-socket`/DOCKER_HOST (unix:// path, tcp://host:port) or the default socket. */
export function dockerClient(socketOrHost?: string): Docker {
  const target = socketOrHost ?? process.env.DOCKER_HOST;
  if (!target) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (target.startsWith('unix://')) return new Docker({ socketPath: target.slice('unix://'.length) });
  if (target.startsWith('/')) return new Docker({ socketPath: target });
  const u = new URL(target.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: u.protocol === 'https:' ? 'https' : 'http' });
}

/** `probe` (default true) also starts a trivial container to prove the engine can run one. */
export async function detectRunners(opts: { log: Logger; dockerSocket?: string; image?: string; runtime?: string; probe?: boolean; signal?: AbortSignal }): Promise<RunnerAvailability[]> {
  return Promise.all([detectBwrap(opts.log), detectContainer(opts)]);
}

/** Whether bubblewrap can run a trivial sandboxed command here (what `bazaar up` checks before starting a provider). */
export async function detectBwrap(log: Logger): Promise<RunnerAvailability> {
  if (process.platform !== 'linux') return { kind: 'bwrap', available: false, why: 'bubblewrap needs Linux', details: {} };
  let version: string;
  try {
    version = (await execHost('bwrap', ['--version'], { timeoutMs: 5_000 })).stdout.trim();
  } catch {
    return { kind: 'bwrap', available: false, why: 'bubblewrap is not installed (apt-get install bubblewrap)', missingPackages: ['bubblewrap'], details: {} };
  }
  const runner = new BwrapRunner({ log });
  const cg = await runner.cgroupSupport();
  const details = { version, limits: cg.version ? `cgroup v${cg.version}` : `rlimits (${cg.why ?? 'no cgroups'})` };
  try {
    const r = await runner.run({ cmd: ['true'], limits: { wallMs: 10_000 } });
    if (r.exitCode !== 0) return { kind: 'bwrap', available: false, why: `a trivial sandboxed command failed: ${r.stderr.trim()}`, details };
  } catch (err) {
    return { kind: 'bwrap', available: false, why: (err as Error).message, details };
  }
  return { kind: 'bwrap', available: true, ...(cg.version ? {} : { why: `limits through rlimits only: ${cg.why ?? ''}` }), details };
}

async function detectContainer(opts: { log: Logger; dockerSocket?: string; image?: string; runtime?: string; probe?: boolean; signal?: AbortSignal }): Promise<RunnerAvailability> {
  const docker = dockerClient(opts.dockerSocket);
  const details: Record<string, string> = { endpoint: opts.dockerSocket ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock' };
  try {
    const v = (await (docker.version as (o: object) => Promise<unknown>).call(docker, { abortSignal: opts.signal ?? AbortSignal.timeout(5_000) })) as { Version?: string; Components?: Array<{ Name: string }> };
    details.engine = `${v.Components?.[0]?.Name ?? 'docker'} ${v.Version ?? '?'}`;
  } catch (err) {
    return { kind: 'container', available: false, why: `no Docker API at ${details.endpoint}: ${(err as Error).message}`, details };
  }
  const image = opts.image ?? (await baseImageTag());
  details.image = image;
  if (!(await imageExists(docker, image, opts.signal))) return { kind: 'container', available: false, why: `image ${image} is missing (npm run images)`, details };
  if (opts.runtime) {
    const info = (await (docker.info as (o: object) => Promise<unknown>).call(docker, { abortSignal: AbortSignal.timeout(5_000) }).catch(() => ({}))) as { Runtimes?: Record<string, unknown> };
    details.runtime = opts.runtime;
    if (info.Runtimes && !(opts.runtime in info.Runtimes)) return { kind: 'container', available: false, why: `runtime ${opts.runtime} is not configured in the engine`, details };
  }
  if (opts.probe !== false) {
    // An engine can answer and still be unable to start containers (e.g. crun on hybrid cgroups).
    try {
      const runner = new ContainerRunner({ docker, image, log: opts.log, ...(opts.runtime ? { runtime: opts.runtime } : {}) });
      const r = await runner.run({ cmd: ['true'], limits: { wallMs: 30_000 } }, { signal: opts.signal });
      if (r.exitCode !== 0) return { kind: 'container', available: false, why: `a trivial container failed: exit ${String(r.exitCode)} ${r.stderr.trim()}`, details };
    } catch (err) {
      return { kind: 'container', available: false, why: (err as Error).message, details };
    }
  }
  return { kind: 'container', available: true, details };
}
