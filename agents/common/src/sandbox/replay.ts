// Replaying a job's work in the sandbox, the same way for everyone who checks it: the buyer
// verifying a result on its own machine, the arbiter ruling on a dispute, a provider checking
// its own result before offering it. Two replays: a patch applied to a fresh checkout with
// the test command run there (PatchGen), and a SandboxRun's commands run again in order.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_OUTPUT_BYTES, sandboxRunOutput, type SandboxCommandResult, type SandboxRunOutput } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { applyPatch, type ApplyPatchResult } from './apply-patch.ts';
import type { PatchRules } from './patch.ts';
import type { RunResult, Runner } from './runner.ts';

/** The exit status a job reports: the code, or 128 + the signal number when killed. */
export function exitCodeOf(r: RunResult): number {
  if (r.exitCode !== null) return r.exitCode;
  const signals: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 };
  return 128 + (signals[r.signal ?? 'SIGKILL'] ?? 9);
}

export type PatchReplay =
  | { readonly applied: false; readonly stage: 'policy' | 'check' | 'apply'; readonly reason: string; readonly apply?: RunResult }
  | { readonly applied: true; readonly apply: RunResult; readonly testExitCode?: number; readonly test?: RunResult };

/**
 * Applies `patch` to a copy of the read-only checkout `repo` in `workspace` (path rules checked
 * on the host first, `git apply` inside the sandbox), then runs `testCmd` there. Nothing of the
 * patch or the test runs outside the sandbox.
 */
export async function replayPatch(runner: Runner, o: { repo: string; workspace: string; patch: string; rules?: PatchRules; testCmd?: string; wallMs: number; signal?: AbortSignal }): Promise<PatchReplay> {
  const deadline = Date.now() + o.wallMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const applied: ApplyPatchResult = await applyPatch(runner, { repo: o.repo, workspace: o.workspace, patch: o.patch, ...(o.rules ? { rules: o.rules } : {}), limits: { wallMs: Math.min(120_000, left()) }, ...(o.signal ? { signal: o.signal } : {}) });
  if (!applied.applied) return { applied: false, stage: applied.stage, reason: applied.reason, ...(applied.run ? { apply: applied.run } : {}) };
  if (!o.testCmd) return { applied: true, apply: applied.run };
  const test = await runner.run({ cmd: ['/bin/sh', '-c', o.testCmd], workspace: o.workspace, cwd: '/workspace', limits: { wallMs: left() } }, { ...(o.signal ? { signal: o.signal } : {}) });
  return { applied: true, apply: applied.run, testExitCode: exitCodeOf(test), test };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });
const cut = (text: string, cap: number): string => {
  const bytes = encoder.encode(text);
  return bytes.length <= cap ? text : decoder.decode(bytes.subarray(0, cap));
};

/**
 * A SandboxRun's commands, each `/bin/sh -c` in one shared workspace, in order, stopping at the
 * first failure, all within `timeLimitSecs`. With `checkout`, the workspace starts as a copy of
 * it (made inside the sandbox, so the sandbox user owns every file).
 */
export async function runCommandSequence(
  runner: Runner,
  o: { cmds: readonly string[]; timeLimitSecs: number; workRoot: string; checkout?: string; memoryMb?: number; cpus?: number; maxOutputBytes?: number; signal?: AbortSignal; onCommand?: (i: number, r: SandboxCommandResult) => void },
): Promise<SandboxRunOutput> {
  const cap = o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const deadline = Date.now() + o.timeLimitSecs * 1000;
  const shared = o.checkout !== undefined || o.cmds.length > 1;
  const workspace = shared ? await mkdtemp(join(o.workRoot, 'ws-')) : undefined;
  const sig = o.signal ? { signal: o.signal } : {};
  try {
    if (o.checkout && workspace) {
      const cp = await runner.run({ cmd: ['/bin/sh', '-c', 'cp -R --preserve=mode,timestamps,links /repo/. /workspace/'], repo: o.checkout, workspace, cwd: '/workspace', limits: { wallMs: Math.max(1000, deadline - Date.now()) } }, sig);
      if (cp.exitCode !== 0) throw new Error(`could not prepare the checkout: ${cp.stderr.slice(0, 300)}`);
    }
    const commands: SandboxCommandResult[] = [];
    for (const [i, cmd] of o.cmds.entries()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const r = await runner.run(
        {
          cmd: ['/bin/sh', '-c', cmd],
          ...(workspace ? { workspace } : {}),
          cwd: '/workspace',
          limits: { wallMs: remaining, ...(o.memoryMb ? { memoryBytes: o.memoryMb * 1024 * 1024 } : {}), cpuSeconds: Math.max(1, Math.ceil((remaining / 1000) * (o.cpus ?? 1))) },
        },
        sig,
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
      o.onCommand?.(i, rec);
      if (o.signal?.aborted) throw new Error('aborted');
      if (rec.exit_code !== 0 || rec.timed_out) break;
    }
    return sandboxRunOutput(commands);
  } finally {
    if (workspace) await rm(workspace, { recursive: true, force: true }).catch(() => {});
  }
}
