// A Docker API to talk to: the given endpoint / $DOCKER_HOST when it answers, else (when
// allowed) a private `podman system service` on a temporary socket, stopped by `stop()`.
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { dockerClient } from './detect.ts';
import { execHost } from './proc.ts';

export interface DockerEndpoint {
  readonly docker: Docker;
  readonly endpoint: string;
  /** Stops the podman service if this call started one. */
  stop(): Promise<void>;
}

export async function dockerAnswers(docker: Docker, timeoutMs: number): Promise<boolean> {
  try {
    await (docker.ping as (o: object) => Promise<unknown>).call(docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

/** No Docker API: why, and whether there was anything to try (an endpoint or podman) at all. */
export interface NoDockerApi {
  readonly unavailable: string;
  /** False when neither an endpoint is configured nor podman installed: nothing here is broken. */
  readonly attempted: boolean;
}

/** Resolves with a Docker API, or with the reason none is available. */
export async function connectDocker(opts: { endpoint?: string; startPodman?: boolean; startTimeoutMs?: number } = {}): Promise<DockerEndpoint | NoDockerApi> {
  const endpoint = opts.endpoint ?? process.env.DOCKER_HOST;
  if (endpoint) {
    const docker = dockerClient(endpoint);
    if (await dockerAnswers(docker, 5_000)) return { docker, endpoint, stop: async () => undefined };
    if (!opts.startPodman) return { unavailable: `no Docker API answers at ${endpoint}`, attempted: true };
  }
  if (!opts.startPodman) return { unavailable: 'no Docker API configured (DOCKER_HOST)', attempted: false };
  try {
    await execHost('podman', ['--version'], { timeoutMs: 10_000 });
  } catch {
    return { unavailable: 'podman is not installed (scripts/setup.sh installs it; needs root and apt)', attempted: endpoint !== undefined };
  }
  // The service runs in a directory of its own: the conmon processes it starts inherit its
  // working directory and write an empty "oom" file there when a container is OOM-killed.
  const dir = await mkdtemp(join(tmpdir(), 'bazaar-podman-'));
  const sock = join(dir, 'api.sock');
  // execa: killed with this process if it dies; SIGKILL 10 s after a SIGTERM it ignores.
  const child = execa('podman', ['system', 'service', '--time=0', `unix://${sock}`], { cwd: dir, stdio: 'ignore', reject: false, cleanup: true, forceKillAfterDelay: 10_000 });
  const docker = dockerClient(`unix://${sock}`);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await child;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  // The service gives no ready signal: poll the condition "the API answers".
  while (!(await dockerAnswers(docker, 1_000))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      return { unavailable: `podman system service did not start on ${sock}`, attempted: true };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { docker, endpoint: `unix://${sock}`, stop };
}
