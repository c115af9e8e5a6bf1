// A Docker API to talk to: the given endpoint / $DOCKER_HOST when it answers, else (when
// allowed) a private `podman system service` on a temporary socket, stopped by `stop()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
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

/** Resolves with a Docker API, or with the reason none is available. */
export async function connectDocker(opts: { endpoint?: string; startPodman?: boolean; startTimeoutMs?: number } = {}): Promise<DockerEndpoint | { unavailable: string }> {
  const endpoint = opts.endpoint ?? process.env.DOCKER_HOST;
  if (endpoint) {
    const docker = dockerClient(endpoint);
    if (await dockerAnswers(docker, 5_000)) return { docker, endpoint, stop: async () => undefined };
    if (!opts.startPodman) return { unavailable: `no Docker API answers at ${endpoint}` };
  }
  if (!opts.startPodman) return { unavailable: 'no Docker API configured (DOCKER_HOST)' };
  try {
    await execHost('podman', ['--version'], { timeoutMs: 10_000 });
  } catch {
    return { unavailable: 'podman is not installed (scripts/setup.sh installs it; needs root and apt)' };
  }
  const sock = join(tmpdir(), `bazaar-podman-${process.pid}-${Date.now()}.sock`);
  const child: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${sock}`], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('error', () => undefined);
  const docker = dockerClient(`unix://${sock}`);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(force);
    }
    await rm(sock, { force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  // The service gives no ready signal: poll the condition "the API answers".
  while (!(await dockerAnswers(docker, 1_000))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      return { unavailable: `podman system service did not start on ${sock}` };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { docker, endpoint: `unix://${sock}`, stop };
}
