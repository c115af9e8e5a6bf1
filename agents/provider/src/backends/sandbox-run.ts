// 5930 SandboxRun: the request's commands, each `/bin/sh -c` in one shared workspace (so a
// command sees what the previous one wrote), in order, stopping at the first failure, all
// under one wall-clock budget. A repo input is cloned on the host into the workspace first.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_OUTPUT_BYTES, sandboxRunOutput, type SandboxCommandResult, type SandboxRunOutput, type SandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import type { RunResult } from '@bazaar/agents-common/sandbox/runner';
import type { BackendContext } from './backend.ts';
import { checkoutRepo } from './checkout.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export function exitCodeOf(r: RunResult): number {
  if (r.exitCode !== null) return r.exitCode;
  const signals: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 };
  return 128 + (signals[r.signal ?? 'SIGKILL'] ?? 9);
}

function cut(text: string, cap: number): string {
  const bytes = encoder.encode(text);
  return bytes.length <= cap ? text : decoder.decode(bytes.subarray(0, cap));
}

export async function runSandboxRun(req: SandboxRunRequest, ctx: BackendContext): Promise<SandboxRunOutput> {
  const { params } = req;
  const cap = params.max_output_bytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const deadline = Date.now() + params.time_limit_secs * 1000;
  // One command and no repo needs no state between runs: the sandbox's own tmpfs
  // workspace is cheaper than a host directory made writable for the sandbox user.
  const shared = req.repo !== undefined || params.cmd.length > 1;
  const workspace = shared ? await mkdtemp(join(ctx.workRoot, 'ws-')) : undefined;
  try {
    if (req.repo && workspace) {
      const t0 = Date.now();
      const checkout = await mkdtemp(join(ctx.workRoot, 'repo-'));
      const co = await checkoutRepo(req.repo.url, req.repo.ref, checkout, { signal: ctx.signal, timeoutMs: Math.max(1000, deadline - Date.now()), allowFile: ctx.allowFileRepos ?? false });
      // Copied inside the sandbox so the sandbox user owns (and may change) every file of it.
      const cp = await ctx.runner.run({ cmd: ['/bin/sh', '-c', 'cp -R --preserve=mode,timestamps,links /repo/. /workspace/'], repo: checkout, workspace, cwd: '/workspace', limits: { wallMs: Math.max(1000, deadline - Date.now()) } }, { signal: ctx.signal });
      await rm(checkout, { recursive: true, force: true }).catch(() => {});
      if (cp.exitCode !== 0) throw new Error(`could not prepare the checkout: ${cp.stderr.slice(0, 300)}`);
      ctx.trajectory.add({ step: 'checkout', command: `git clone ${req.repo.url}${req.repo.ref ? ` @ ${req.repo.ref}` : ''}`, exit: 0, durationMs: Date.now() - t0, commit: co.commit });
    }
    const commands: SandboxCommandResult[] = [];
    for (const [i, cmd] of params.cmd.entries()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      ctx.onProgress?.(i / params.cmd.length, `command ${i + 1} of ${params.cmd.length}`);
      const r = await ctx.runner.run(
        {
          cmd: ['/bin/sh', '-c', cmd],
          ...(workspace ? { workspace } : {}),
          cwd: '/workspace',
          limits: {
            wallMs: remaining,
            ...(params.memory_mb ? { memoryBytes: params.memory_mb * 1024 * 1024 } : {}),
            cpuSeconds: Math.max(1, Math.ceil((remaining / 1000) * (params.cpus ?? 1))),
          },
        },
        { signal: ctx.signal },
      );
      const rec: SandboxCommandResult = {
        cmd,
        exit_code: exitCodeOf(r),
        timed_out: r.reason === 'timeout',
        stdout: cut(r.stdout, cap),
        stderr: cut(r.stderr, cap),
        stdout_sha256: r.stdoutSha256,
        stderr_sha256: r.stderrSha256,
        stdout_bytes: r.stdoutBytes,
        stderr_bytes: r.stderrBytes,
        stdout_truncated: r.stdoutBytes > cap,
        stderr_truncated: r.stderrBytes > cap,
        wall_ms: Math.round(r.wallMs),
        cpu_ms: Math.round((r.cpuSeconds ?? 0) * 1000),
      };
      commands.push(rec);
      ctx.trajectory.add({ step: 'command', command: cmd, exit: rec.exit_code, reason: r.reason, durationMs: rec.wall_ms, cpuMs: rec.cpu_ms, stdoutSha256: rec.stdout_sha256, stderrSha256: rec.stderr_sha256 });
      if (ctx.signal.aborted) throw new Error('job aborted');
      if (rec.exit_code !== 0 || rec.timed_out) break;
    }
    return sandboxRunOutput(commands);
  } finally {
    if (workspace) await rm(workspace, { recursive: true, force: true }).catch(() => {});
  }
}

/** Billable units of a SandboxRun: wall seconds, rounded up, at least one. */
export const sandboxRunUnits = (o: SandboxRunOutput): number => Math.max(1, Math.ceil(o.totals.wall_ms / 1000));
