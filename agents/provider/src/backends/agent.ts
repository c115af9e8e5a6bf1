// Running a configured coding agent (a Claude or Codex CLI, aider, a script) in the sandbox:
// the checkout read-write at /workspace, the task on stdin and at /task/TASK.md, and the
// model API reachable only through the provider's credential proxy (a unix socket mounted
// into the sandbox; the API key stays in the provider process). Whatever the agent does,
// the provider checks the outcome itself afterwards.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCredentialProxy, type CredentialProxy } from '@bazaar/agents-common/sandbox/credential-proxy';
import type { RunResult } from '@bazaar/agents-common/sandbox/runner';
import type { AgentBackendConfig } from '../config.ts';
import type { BackendContext } from './backend.ts';
import { exitCodeOf } from './sandbox-run.ts';

export async function runAgent(agent: AgentBackendConfig, o: { task: string; workspace: string; deadline: number; ctx: BackendContext; env?: Record<string, string> }): Promise<RunResult> {
  const { ctx } = o;
  const taskDir = await mkdtemp(join(ctx.workRoot, 'task-'));
  let proxy: CredentialProxy | undefined;
  try {
    await writeFile(join(taskDir, 'TASK.md'), o.task, { mode: 0o644 });
    await chmod(taskDir, 0o755);
    if (agent.allowDomains.length) {
      const key = agent.apiKeyEnv ? process.env[agent.apiKeyEnv] : undefined;
      proxy = await startCredentialProxy({
        log: ctx.log,
        routes: agent.allowDomains.map((host) => ({ host, upstream: `https://${host}`, headers: key ? { [agent.apiKeyHeader ?? 'authorization']: agent.apiKeyHeader && agent.apiKeyHeader !== 'authorization' ? key : `Bearer ${key}` } : {} })),
      });
    }
    const t0 = Date.now();
    const r = await ctx.runner.run(
      {
        cmd: agent.command,
        workspace: o.workspace,
        cwd: '/workspace',
        stdin: o.task,
        env: { BAZAAR_TASK_FILE: '/task/TASK.md', ...(proxy?.sandboxEnv ?? {}), ...o.env },
        mounts: [{ hostPath: taskDir, sandboxPath: '/task', readOnly: true }, ...(proxy ? [proxy.mount] : [])],
        limits: { wallMs: Math.max(1000, Math.min(o.deadline - Date.now(), agent.timeLimitSecs * 1000)) },
      },
      { signal: ctx.signal },
    );
    ctx.trajectory.add({ step: 'agent', command: agent.command.join(' '), exit: exitCodeOf(r), reason: r.reason, durationMs: Date.now() - t0, stdoutSha256: r.stdoutSha256, stderrSha256: r.stderrSha256, stdoutTail: r.stdout.slice(-2000), stderrTail: r.stderr.slice(-2000) });
    return r;
  } finally {
    await proxy?.close().catch(() => {});
    await rm(taskDir, { recursive: true, force: true }).catch(() => {});
  }
}
