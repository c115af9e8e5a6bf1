// 5931 RepoIndex: the repo is cloned on the host (git, no hooks), then indexed INSIDE the
// sandbox by a dependency-free Node script reading the checkout read-only at /repo — the
// untrusted content is never parsed by the provider process. The provider then applies the
// request's path globs and max_files, and checks its own result against dvm-kinds'
// verifier before offering it.
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globMatch } from '@bazaar/dvm-kinds/diff';
import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { validateSchema } from '@bazaar/dvm-kinds/schema';
import { repoIndexResultSchema, type RepoIndexOutput, type RepoIndexRequest } from '@bazaar/dvm-kinds/kinds/repo-index';
import { checkoutRepo } from './checkout.ts';
import type { BackendContext } from './backend.ts';
import { exitCodeOf } from './sandbox-run.ts';

const INDEXER_DIR = join(dirname(fileURLToPath(import.meta.url)), 'sandboxed');
const SANDBOX_INDEXER_DIR = '/opt/bazaar-indexer';
/** The walk stops here whatever max_files says; a result beyond it is not a useful index. */
const HARD_MAX_FILES = 200_000;

export async function runRepoIndex(req: RepoIndexRequest, ctx: BackendContext & { timeLimitSecs?: number }): Promise<{ output: RepoIndexOutput; units: number }> {
  const deadline = Date.now() + (ctx.timeLimitSecs ?? 300) * 1000;
  const checkout = await mkdtemp(join(ctx.workRoot, 'repo-'));
  try {
    const t0 = Date.now();
    const { commit } = await checkoutRepo(req.repo.url, req.repo.ref, checkout, { signal: ctx.signal, timeoutMs: Math.max(1000, deadline - Date.now()), allowFile: ctx.allowFileRepos ?? false });
    ctx.trajectory.add({ step: 'checkout', command: `git clone ${req.repo.url} @ ${req.repo.ref}`, exit: 0, durationMs: Date.now() - t0, commit });
    // Without globs the walk can stop at max_files; with globs it must see everything first.
    const walkMax = req.params.path?.length ? HARD_MAX_FILES : Math.min(HARD_MAX_FILES, req.params.max_files ?? HARD_MAX_FILES);
    const cmd = ['node', `${SANDBOX_INDEXER_DIR}/repo-indexer.mjs`, '/repo', String(walkMax), req.params.symbols === false ? '0' : '1'];
    const r = await ctx.runner.run(
      { cmd, repo: checkout, cwd: '/repo', mounts: [{ hostPath: INDEXER_DIR, sandboxPath: SANDBOX_INDEXER_DIR, readOnly: true }], limits: { wallMs: Math.max(1000, deadline - Date.now()), outputBytes: 64 * 1024 * 1024 } },
      { signal: ctx.signal },
    );
    ctx.trajectory.add({ step: 'index', command: cmd.join(' '), exit: exitCodeOf(r), reason: r.reason, durationMs: Math.round(r.wallMs), stdoutSha256: r.stdoutSha256, stderrSha256: r.stderrSha256 });
    if (r.reason !== 'exit' || r.exitCode !== 0) throw new Error(`the indexer failed in the sandbox (${r.reason}, exit ${exitCodeOf(r)}): ${r.stderr.slice(0, 300)}`);
    if (r.stdoutTruncated) throw new Error('the index is larger than the output cap');
    let raw: { files: RepoIndexOutput['files']; symbols: RepoIndexOutput['symbols'] };
    try {
      raw = JSON.parse(r.stdout) as typeof raw;
    } catch {
      throw new Error('the indexer printed something that is not JSON');
    }
    const globs = req.params.path;
    let files = globs?.length ? raw.files.filter((f) => globs.some((g) => globMatch(g, f.path))) : raw.files;
    if (req.params.max_files !== undefined) files = files.slice(0, req.params.max_files);
    const kept = new Set(files.map((f) => f.path));
    const output: RepoIndexOutput = { repo: req.repo.url, ref: req.repo.ref, commit, files, symbols: req.params.symbols === false ? [] : raw.symbols.filter((s) => kept.has(s.path)) };
    const problems = validateSchema(repoIndexResultSchema, output, 'content');
    if (problems.length) throw new Error(`the index does not match the result schema: ${formatProblems(problems)}`);
    return { output, units: files.length };
  } finally {
    await rm(checkout, { recursive: true, force: true }).catch(() => {});
  }
}
