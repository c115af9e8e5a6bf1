// A job's result checked by someone other than the provider, on their own machine and in
// their own sandbox: the buyer before paying, the arbiter ruling on a dispute. One
// implementation, so the two never disagree about what "verified" means. Per kind (DESIGN §3):
//   PatchGen    hash, stats, allowed paths (pure); then the patch applied to our own checkout
//               at the ref and the test command run there, both in the sandbox
//   CodeReview  hash, schema, non-trivial, every referenced file is in the reviewed diff
//   RepoIndex   schema and paths (pure); a seeded sample of files checked against our checkout
//   SandboxRun  hashes and totals consistent; with `rerun`, the commands run again and compared
//               (exit codes always; output hashes where the command is deterministic)
//   TextGen     accepted on reputation (it answers the request and is not empty)
// A check we could not run — our checkout, our sandbox, a kind without a verifier — throws a
// ReplayUnavailableError: no outcome rather than a guess against the provider.
import { lstat, mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import type { EventLike } from '@bazaar/dvm-kinds/tags';
import { problem, type Problem } from '@bazaar/dvm-kinds/problem';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { PATCH_GEN_KIND, verifyPatchGen, type PatchGenRequest, type PatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { CODE_REVIEW_KIND, verifyCodeReview, type CodeReviewRequest, type CodeReviewResult } from '@bazaar/dvm-kinds/kinds/code-review';
import { REPO_INDEX_KIND, verifyRepoIndexSample, type RepoIndexRequest, type RepoIndexResult } from '@bazaar/dvm-kinds/kinds/repo-index';
import { SANDBOX_RUN_KIND, verifySandboxRun, type SandboxRunOutput, type SandboxRunRequest, type SandboxRunResult } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { TEXT_GEN_KIND, verifyTextGen, type TextGenRequest, type TextGenResult } from '@bazaar/dvm-kinds/kinds/text-gen';
import { SandboxError, type Runner, type RunResult } from '../sandbox/runner.ts';
import { checkoutRepo, fetchRepo, normalizeSource, RepoError } from '../sandbox/repo-cache.ts';
import { replayPatch, runCommandSequence } from '../sandbox/replay.ts';

export interface VerifyOptions {
  readonly runner: Runner;
  readonly logger: Logger;
  /** Scratch space for checkouts (removed after each verification). */
  readonly workDir: string;
  /** Bare repository cache shared by verifications. */
  readonly repoCacheDir: string;
  /** SandboxRun: run the commands again and compare (default: pure checks only). */
  readonly rerun?: boolean;
  /** RepoIndex: files to spot-check (default 5). */
  readonly sample?: number;
  /** Accept file:// and absolute-path repositories (default true: a buyer's own mirrors). */
  readonly allowFileRepos?: boolean;
  readonly signal?: AbortSignal;
}

export interface Check {
  readonly name: string;
  readonly passed: boolean;
  /** The failed check's problems, one line. */
  readonly detail?: string;
}

export interface ResultVerification {
  readonly ok: boolean;
  /** Every check run, in order. */
  readonly checks: readonly Check[];
  /** The problems of the failed checks (paths name what failed: `test_exit_code`, `patch_sha256`…). */
  readonly problems: readonly Problem[];
  /** What the replays did: exit codes, output hashes and tails. */
  readonly replay: Record<string, unknown>;
}

export type UnavailableCause = 'repository' | 'sandbox' | 'kind' | 'unreadable';

/** The verification could not run on our side; says nothing about the result. */
export class ReplayUnavailableError extends Error {
  override name = 'ReplayUnavailableError';
  readonly reason: UnavailableCause;
  constructor(reason: UnavailableCause, message: string) {
    super(message);
    this.reason = reason;
  }
}

const tail = (s: string, n = 2000): string => (s.length > n ? s.slice(-n) : s);
export const runSummary = (r: RunResult | undefined) => (r ? { reason: r.reason, exitCode: r.exitCode, stdoutSha256: r.stdoutSha256, stderrSha256: r.stderrSha256, stdoutTail: tail(r.stdout), stderrTail: tail(r.stderr), wallMs: Math.round(r.wallMs) } : undefined);

type Record_ = (name: string, found: readonly Problem[]) => void;

/** Verifies `result` (opened) against the request in clear tags (with its id). */
export async function verifyResult(request: EventLike & { id: string }, result: EventLike & { id: string }, o: VerifyOptions): Promise<ResultVerification> {
  const checks: Check[] = [];
  const problems: Problem[] = [];
  const replay: Record<string, unknown> = {};
  const record: Record_ = (name, found) => {
    checks.push({ name, passed: found.length === 0, ...(found.length ? { detail: found.map((p) => `${p.path}: ${p.message}`).join('; ').slice(0, 500) } : {}) });
    problems.push(...found);
  };
  const spec = JOB_KINDS.get(request.kind);
  if (!spec) throw new ReplayUnavailableError('kind', `kind ${request.kind} has no verifier`);
  const req = spec.parseRequest(request);
  if (!req.ok) throw new ReplayUnavailableError('unreadable', `the request does not parse: ${req.errors.map((p) => p.message).join('; ')}`);
  const res = spec.parseResult(result);
  record('result parses', res.ok ? [] : res.errors);
  if (res.ok) {
    const work = await mkdtemp(join(await ensureDir(o.workDir), 'verify-'));
    try {
      switch (request.kind) {
        case PATCH_GEN_KIND:
          await verifyPatch(req.value as PatchGenRequest, res.value as PatchGenResult, work, o, record, replay);
          break;
        case CODE_REVIEW_KIND:
          record('review: hash, schema, non-trivial, files in the diff', verifyCodeReview(req.value as CodeReviewRequest, res.value as CodeReviewResult).problems);
          break;
        case REPO_INDEX_KIND:
          await verifyIndex(req.value as RepoIndexRequest, res.value as RepoIndexResult, work, o, record);
          break;
        case SANDBOX_RUN_KIND: {
          const r = req.value as SandboxRunRequest;
          const s = res.value as SandboxRunResult;
          record('sandbox run: commands, hashes, totals', verifySandboxRun(r, s).problems);
          if (o.rerun && checks.every((c) => c.passed)) await rerunSandbox(r, s, work, o, record, replay);
          break;
        }
        case TEXT_GEN_KIND:
          record('text: answers the request, not empty (accepted on reputation)', verifyTextGen(req.value as TextGenRequest, res.value as TextGenResult).problems);
          break;
        default:
          throw new ReplayUnavailableError('kind', `kind ${request.kind} has no verifier`);
      }
    } catch (err) {
      throw unavailable(err);
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }
  return { ok: problems.length === 0, checks, problems, replay };
}

/** Our own failures, named: a sandbox that cannot start, a repository we cannot fetch. */
function unavailable(err: unknown): Error {
  if (err instanceof ReplayUnavailableError) return err;
  if (err instanceof SandboxError) return new ReplayUnavailableError('sandbox', `the sandbox is unavailable: ${err.message}`);
  if (err instanceof RepoError) return new ReplayUnavailableError('repository', err.message);
  return err as Error;
}

async function ensureDir(d: string): Promise<string> {
  await mkdir(d, { recursive: true });
  return d;
}

async function checkoutFor(url: string, ref: string | undefined, parentDir: string, o: VerifyOptions): Promise<string> {
  try {
    if (o.allowFileRepos === false) {
      const source = normalizeSource(url);
      if (source.startsWith('/') || source.startsWith('file:')) throw new RepoError(`file repositories are not accepted here (${url})`);
    }
    const fetched = await fetchRepo({ source: url, ...(ref ? { ref } : {}), cacheDir: o.repoCacheDir, log: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
    return await checkoutRepo({ repo: fetched, parentDir, ...(o.signal ? { signal: o.signal } : {}) });
  } catch (err) {
    if (o.signal?.aborted) throw err;
    // Our own checkout failing is not the provider's fault: no outcome against it.
    throw new ReplayUnavailableError('repository', `cannot check out ${url}@${ref ?? 'HEAD'}: ${(err as Error).message}`);
  }
}

async function verifyPatch(req: PatchGenRequest, res: PatchGenResult, work: string, o: VerifyOptions, record: Record_, replay: Record<string, unknown>): Promise<void> {
  // The price (amount ≤ max_cost_msats) is the payment step's to judge against the budget
  // (never above max_cost): an overcharge is refused, not disputed as bad work.
  const pure = verifyPatchGen(req, res).problems.filter((p) => p.path !== 'tags.amount');
  record('patch: hash, stats, allowed paths, reported tests', pure);
  if (pure.length) return;
  const checkout = await checkoutFor(req.repo.url, req.repo.ref, work, o);
  const workspace = await mkdtemp(join(work, 'apply-'));
  const r = await replayPatch(o.runner, {
    repo: checkout,
    workspace,
    patch: res.output.patch,
    rules: { ...(req.params.allow_path ? { allowed: req.params.allow_path } : {}), ...(req.params.deny_path ? { disallowed: req.params.deny_path } : {}) },
    ...(req.params.test_cmd ? { testCmd: req.params.test_cmd } : {}),
    wallMs: req.params.time_limit_secs * 1000,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  replay.apply = r.applied ? runSummary(r.apply) : { stage: r.stage, reason: r.reason, run: runSummary(r.apply) };
  record('patch applies cleanly to our checkout', r.applied ? [] : [problem('patch', 'mismatch', `does not apply (${r.stage}): ${r.reason}`)]);
  if (!r.applied || !req.params.test_cmd) return;
  replay.test = { command: req.params.test_cmd, ...runSummary(r.test) };
  record('tests pass on our replay', r.testExitCode === 0 ? [] : [problem('test_exit_code', 'mismatch', `tests exited ${r.testExitCode} on our replay: ${tail((r.test?.stdout ?? '') + (r.test?.stderr ?? ''), 300).trim().split('\n').slice(-3).join(' | ')}`)]);
}

async function verifyIndex(req: RepoIndexRequest, res: RepoIndexResult, work: string, o: VerifyOptions, record: Record_): Promise<void> {
  const checkout = await checkoutFor(req.repo.url, req.repo.ref, work, o);
  const root = await realpath(checkout);
  // Reads only regular files inside the checkout: a symlink in a stranger's repo never makes us read outside it.
  const readFromCheckout = async (path: string): Promise<Uint8Array | undefined> => {
    const full = resolve(root, path);
    if (!full.startsWith(root + sep)) return undefined;
    try {
      const st = await lstat(full);
      if (!st.isFile()) return undefined;
      if ((await realpath(full)) !== full) return undefined;
      return await readFile(full);
    } catch {
      return undefined;
    }
  };
  const v = await verifyRepoIndexSample(req, res, readFromCheckout, { seed: `${res.envelope.requestId}`, sample: o.sample ?? 5, ...(o.signal ? { signal: o.signal } : {}) });
  record('index: paths, symbols, and sampled files against our checkout', v.problems);
}

/**
 * Runs the commands again and compares. Exit codes must match. An output hash that differs is
 * checked once more: when our own two runs disagree on a stream, the command is not
 * deterministic there (a timestamp, a random number) and that hash proves nothing either way.
 */
async function rerunSandbox(req: SandboxRunRequest, res: SandboxRunResult, work: string, o: VerifyOptions, record: Record_, replay: Record<string, unknown>): Promise<void> {
  const checkout = req.repo ? await checkoutFor(req.repo.url, req.repo.ref, work, o) : undefined;
  const run = (): Promise<SandboxRunOutput> =>
    runCommandSequence(o.runner, {
      cmds: req.params.cmd,
      timeLimitSecs: req.params.time_limit_secs,
      workRoot: work,
      ...(checkout ? { checkout } : {}),
      ...(req.params.memory_mb ? { memoryMb: req.params.memory_mb } : {}),
      ...(req.params.cpus ? { cpus: req.params.cpus } : {}),
      ...(req.params.max_output_bytes !== undefined ? { maxOutputBytes: req.params.max_output_bytes } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  const first = await run();
  const theirs = res.output.commands;
  const differs = theirs.some((c, i) => first.commands[i] && (c.stdout_sha256 !== first.commands[i].stdout_sha256 || c.stderr_sha256 !== first.commands[i].stderr_sha256));
  const second = differs ? await run() : undefined;
  const found: Problem[] = [];
  const nondeterministic: string[] = [];
  if (first.commands.length !== theirs.length) found.push(problem('content.commands', 'mismatch', `the re-run ran ${first.commands.length} commands, the result ${theirs.length}`));
  theirs.forEach((c, i) => {
    const r = first.commands[i];
    if (!r) return;
    if (c.exit_code !== r.exit_code) found.push(problem(`content.commands[${i}].exit_code`, 'mismatch', `exited ${c.exit_code} in the result, ${r.exit_code} on our re-run`));
    for (const k of ['stdout_sha256', 'stderr_sha256'] as const) {
      if (c[k] === r[k]) continue;
      if (second && second.commands[i] && second.commands[i][k] !== r[k]) nondeterministic.push(`content.commands[${i}].${k}`);
      else found.push(problem(`content.commands[${i}].${k}`, 'mismatch', 'differs from our re-run (which reproduces itself)'));
    }
  });
  replay.rerun = { commands: first.commands.map((c) => ({ cmd: c.cmd, exitCode: c.exit_code, stdoutSha256: c.stdout_sha256, stderrSha256: c.stderr_sha256, timedOut: c.timed_out })), ...(nondeterministic.length ? { nondeterministic } : {}) };
  record('sandbox run: re-run matches (exit codes; output hashes where deterministic)', found);
}
