// Applying an untrusted patch: the path policy is checked on the host first, then the
// checkout is copied into the job's workspace and `git apply --check` + `git apply`
// run inside the sandbox, so git itself never touches provider files with a stranger's patch.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPatch, type PatchRules } from './patch.ts';
import type { RunLimits, RunResult, Runner } from './runner.ts';

export type ApplyPatchResult =
  | { readonly applied: true; readonly run: RunResult }
  | { readonly applied: false; readonly stage: 'policy' | 'check' | 'apply'; readonly reason: string; readonly run?: RunResult };

const SCRIPT = [
  'set -e',
  'cp -R --preserve=mode,timestamps,links /repo/. /workspace/',
  'git apply --check --verbose /patch/patch.diff >&2 || exit 10',
  'git apply /patch/patch.diff || exit 11',
].join('\n');

export async function applyPatch(
  runner: Runner,
  opts: { repo: string; workspace: string; patch: string; rules?: PatchRules; limits?: Partial<RunLimits>; signal?: AbortSignal },
): Promise<ApplyPatchResult> {
  const check = checkPatch(opts.patch, opts.rules);
  if (!check.ok) return { applied: false, stage: 'policy', reason: check.reason };
  const dir = await mkdtemp(join(tmpdir(), 'bazaar-patch-'));
  try {
    await writeFile(join(dir, 'patch.diff'), opts.patch, { mode: 0o644 });
    await chmod(dir, 0o755);
    const run = await runner.run(
      {
        cmd: ['/bin/sh', '-c', SCRIPT],
        repo: opts.repo,
        workspace: opts.workspace,
        mounts: [{ hostPath: dir, sandboxPath: '/patch', readOnly: true }],
        limits: { wallMs: 60_000, ...opts.limits },
      },
      { signal: opts.signal },
    );
    if (run.reason === 'exit' && run.exitCode === 0) return { applied: true, run };
    const stage = run.exitCode === 10 ? 'check' : 'apply';
    const detail = run.stderr.trim().split('\n').slice(-3).join(' | ') || `${run.reason} (exit ${String(run.exitCode)})`;
    return { applied: false, stage, reason: `error: patch does not apply: ${detail}`, run };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
