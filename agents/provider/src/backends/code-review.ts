// 5933 CodeReview: the configured agent reads the diff (in the task and at /workspace/diff.patch,
// with the head checkout around it for a repo subject) and writes /workspace/review.json. The
// provider then holds the review to the buyer's checks — schema, a non-trivial summary,
// every referenced file in the diff — and sends an error instead of an unchecked review.
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codeReviewResultSchema, verifyCodeReview, type CodeReviewOutput, type CodeReviewRequest } from '@bazaar/dvm-kinds/kinds/code-review';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { validateSchema } from '@bazaar/dvm-kinds/schema';
import type { AgentBackendConfig } from '../config.ts';
import { runAgent } from './agent.ts';
import { checkoutRepo } from './checkout.ts';
import { UnverifiedResultError } from './patch-gen.ts';
import type { BackendContext } from './backend.ts';
import { exitCodeOf } from './sandbox-run.ts';

const MAX_REVIEW_BYTES = 1024 * 1024;

export function codeReviewTask(req: CodeReviewRequest, diff: string): string {
  return [
    '# Code review',
    '',
    `Review the change in diff.patch (below and at /workspace/diff.patch)${req.params.focus?.length ? `, focusing on ${req.params.focus.join(', ')}` : ''}, depth: ${req.params.depth ?? 'standard'}.`,
    'Write your review as JSON to /workspace/review.json with exactly this shape:',
    JSON.stringify(codeReviewResultSchema.properties),
    'Reference only files that the diff changes; line numbers are in the new version of the file.',
    '',
    '```diff',
    diff,
    '```',
    '',
  ].join('\n');
}

export async function runCodeReview(req: CodeReviewRequest, agent: AgentBackendConfig, ctx: BackendContext): Promise<CodeReviewOutput> {
  const deadline = Date.now() + agent.timeLimitSecs * 1000;
  const work = await mkdtemp(join(ctx.workRoot, 'review-'));
  let diff: string;
  if ('diff' in req.subject) diff = req.subject.diff;
  else {
    const { url, baseRef, headRef } = req.subject.repo;
    await checkoutRepo(url, headRef, work, { signal: ctx.signal, timeoutMs: Math.max(1000, deadline - Date.now()), allowFile: ctx.allowFileRepos ?? false });
    // The diff is taken inside the sandbox: the repo is untrusted.
    const d = await ctx.runner.run({ cmd: ['git', 'diff', '--no-color', '--no-ext-diff', `${baseRef}`, `${headRef}`, '--'], workspace: work, cwd: '/workspace', limits: { wallMs: 60_000 } }, { signal: ctx.signal });
    ctx.trajectory.add({ step: 'diff', command: `git diff ${baseRef} ${headRef}`, exit: exitCodeOf(d), stdoutSha256: d.stdoutSha256 });
    if (d.exitCode !== 0 || d.stdoutTruncated) throw new UnverifiedResultError(`cannot diff ${baseRef}..${headRef}: ${d.stderr.slice(0, 300)}`);
    diff = d.stdout;
  }
  await writeFile(join(work, 'diff.patch'), diff);
  const run = await runAgent(agent, { task: codeReviewTask(req, diff), workspace: work, deadline, ctx });
  if (run.reason !== 'exit' || run.exitCode !== 0) throw new UnverifiedResultError(`the review agent failed (${run.reason}, exit ${exitCodeOf(run)})`);
  const path = join(work, 'review.json');
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_REVIEW_BYTES) throw new Error('not a regular file under 1 MiB');
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UnverifiedResultError(`the agent wrote no usable review.json: ${(err as Error).message}`);
  }
  let review: CodeReviewOutput;
  try {
    review = JSON.parse(text) as CodeReviewOutput;
  } catch {
    throw new UnverifiedResultError('review.json is not JSON');
  }
  const schema = validateSchema(codeReviewResultSchema, review, 'content');
  if (schema.length) throw new UnverifiedResultError(`the review does not match the schema: ${formatProblems(schema)}`);
  const content = JSON.stringify(review);
  const check = verifyCodeReview(req, { envelope: { content, requestId: req.envelope.id } as never, review, reviewSha256: sha256Hex(content) }, { diff });
  if (!check.ok) throw new UnverifiedResultError(`the review fails its own check: ${formatProblems(check.problems)}`);
  ctx.trajectory.add({ step: 'review', exit: 0, reviewSha256: sha256Hex(content), issues: review.issues.length });
  return review;
}
