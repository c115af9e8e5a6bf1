// The Docker API for tests: $DOCKER_HOST when it answers (scripts/test.sh starts podman's
// service and exports it), else a private `podman system service` started for this file.
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { dockerClient } from '../src/sandbox/detect.ts';
import { execHost } from '../src/sandbox/proc.ts';

export interface DockerForTests {
  docker: Docker;
  endpoint: string;
  stop(): Promise<void>;
}

async function answers(docker: Docker, timeoutMs: number): Promise<boolean> {
  try {
    await (docker.ping as (o: object) => Promise<unknown>).call(docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

/** Resolves with a Docker API, or with a reason why none can exist on this machine. */
export async function dockerForTests(): Promise<DockerForTests | { unavailable: string }> {
  if (process.env.DOCKER_HOST) {
    const docker = dockerClient(process.env.DOCKER_HOST);
    if (await answers(docker, 5_000)) return { docker, endpoint: process.env.DOCKER_HOST, stop: async () => undefined };
  }
  try {
    await execHost('podman', ['--version'], { timeoutMs: 10_000 });
  } catch {
    return { unavailable: 'podman is not installed (scripts/setup.sh installs it; needs root and apt)' };
  }
  const sock = join(tmpdir(), `bazaar-podman-test-${process.pid}.sock`);
  const child: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${sock}`], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const docker = dockerClient(`unix://${sock}`);
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  // Wait for the service to answer (a condition, polled; the service gives no ready signal).
  while (!(await answers(docker, 1_000))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      return { unavailable: `podman system service did not start on ${sock}` };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { docker, endpoint: `unix://${sock}`, stop };
}
