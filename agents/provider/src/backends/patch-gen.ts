// 5932 PatchGen: the configured coding agent edits a checkout in the sandbox; the provider
// takes the diff (computed by git inside the sandbox, since the agent may have tampered
// with .git), then checks its own result the way a buyer will — the path rules, a clean
// apply on a FRESH checkout, and the test command passing there — and refuses to offer
// anything that fails.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { applyPatch } from '@bazaar/agents-common/sandbox/apply-patch';
import type { PatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import type { AgentBackendConfig } from '../config.ts';
import { runAgent } from './agent.ts';
import { checkoutRepo } from './checkout.ts';
import type { BackendContext } from './backend.ts';
import { exitCodeOf } from './sandbox-run.ts';

export class UnverifiedResultError extends Error {
  override name = 'UnverifiedResultError';
}

export function patchGenTask(req: PatchGenRequest): string {
  const p = req.params;
  return [
    `# ${req.issue.title}`,
    '',
    req.issue.body,
    '',
    '---',
    'You are working in a git checkout (the current directory, /workspace). Edit the files to resolve the issue above.',
    'Do not commit; the provider takes the diff of the working tree.',
    ...(p.allow_path?.length ? [`Only change paths matching: ${p.allow_path.join(', ')}`] : []),
    ...(p.deny_path?.length ? [`Never change paths matching: ${p.deny_path.join(', ')}`] : []),
    ...(p.test_cmd ? [`When you are done, this must pass: ${p.test_cmd}`] : []),
    '',
  ].join('\n');
}

const COPY_SCRIPT = 'cp -R --preserve=mode,timestamps,links /repo/. /workspace/';
const DIFF_SCRIPT = 'git add -A >/dev/null && git -c core.quotepath=false diff --cached --no-color --no-ext-diff --binary HEAD';

export async function runPatchGen(req: PatchGenRequest, agent: AgentBackendConfig, ctx: BackendContext): Promise<{ patch: string; testExitCode?: number }> {
  const deadline = Date.now() + req.params.time_limit_secs * 1000;
  const remaining = () => Math.max(1000, deadline - Date.now());
  const checkout = await mkdtemp(join(ctx.workRoot, 'repo-'));
  const t0 = Date.now();
  const { commit } = await checkoutRepo(req.repo.url, req.repo.ref, checkout, { signal: ctx.signal, timeoutMs: remaining(), allowFile: ctx.allowFileRepos ?? false });
  ctx.trajectory.add({ step: 'checkout', command: `git clone ${req.repo.url} @ ${req.repo.ref}`, exit: 0, durationMs: Date.now() - t0, commit });

  // The agent's copy is made inside the sandbox, so every file in it belongs to the sandbox user.
  const work = await mkdtemp(join(ctx.workRoot, 'agent-'));
  const prep = await ctx.runner.run({ cmd: ['/bin/sh', '-c', COPY_SCRIPT], repo: checkout, workspace: work, cwd: '/workspace', limits: { wallMs: Math.min(120_000, remaining()) } }, { signal: ctx.signal });
  if (prep.exitCode !== 0) throw new Error(`could not prepare the agent's checkout: ${prep.stderr.slice(0, 300)}`);
  const run = await runAgent(agent, { task: patchGenTask(req), workspace: work, deadline, ctx });
  if (run.reason !== 'exit' || run.exitCode !== 0) throw new UnverifiedResultError(`the coding agent failed (${run.reason}, exit ${exitCodeOf(run)})`);

  const diff = await ctx.runner.run({ cmd: ['/bin/sh', '-c', DIFF_SCRIPT], workspace: work, cwd: '/workspace', limits: { wallMs: Math.min(60_000, remaining()) } }, { signal: ctx.signal });
  ctx.trajectory.add({ step: 'diff', command: DIFF_SCRIPT, exit: exitCodeOf(diff), durationMs: Math.round(diff.wallMs), stdoutSha256: diff.stdoutSha256 });
  if (diff.exitCode !== 0) throw new UnverifiedResultError(`could not take the diff: ${diff.stderr.slice(0, 300)}`);
  if (diff.stdoutTruncated) throw new UnverifiedResultError('the patch is larger than the output cap');
  const patch = diff.stdout;
  if (!patch.trim()) throw new UnverifiedResultError('the coding agent changed nothing');

  ctx.onProgress?.(0.6, 'the agent finished; checking its patch on a fresh checkout');
  // Replay on a fresh checkout, exactly as the buyer will.
  const verifyDir = await mkdtemp(join(ctx.workRoot, 'verify-'));
  const applied = await applyPatch(ctx.runner, { repo: checkout, workspace: verifyDir, patch, rules: { ...(req.params.allow_path ? { allowed: req.params.allow_path } : {}), ...(req.params.deny_path ? { disallowed: req.params.deny_path } : {}) }, limits: { wallMs: Math.min(60_000, remaining()) }, signal: ctx.signal });
  ctx.trajectory.add({ step: 'apply', command: 'git apply (fresh checkout)', exit: applied.applied ? 0 : 1, ...(applied.applied ? {} : { reason: applied.reason }) });
  if (!applied.applied) throw new UnverifiedResultError(`the patch fails its own check (${applied.stage}): ${applied.reason}`);
  let testExitCode: number | undefined;
  if (req.params.test_cmd) {
    const test = await ctx.runner.run({ cmd: ['/bin/sh', '-c', req.params.test_cmd], workspace: verifyDir, cwd: '/workspace', limits: { wallMs: remaining() } }, { signal: ctx.signal });
    testExitCode = exitCodeOf(test);
    ctx.trajectory.add({ step: 'test', command: req.params.test_cmd, exit: testExitCode, reason: test.reason, durationMs: Math.round(test.wallMs), stdoutSha256: test.stdoutSha256, stderrSha256: test.stderrSha256, stdoutTail: test.stdout.slice(-2000) });
    if (testExitCode !== 0) throw new UnverifiedResultError(`the tests fail with the patch applied (exit ${testExitCode}): ${(test.stdout + test.stderr).trim().split('\n').slice(-3).join(' | ').slice(0, 300)}`);
  }
  return { patch, ...(testExitCode !== undefined ? { testExitCode } : {}) };
}
