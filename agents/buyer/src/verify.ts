// Verification on the buyer's own machine, in its own sandbox (the same Runner providers
// use). Per kind (DESIGN §3):
//   PatchGen    hash, stats, allowed paths (pure); then the patch applied to the buyer's own
//               checkout at the ref and the test command run there, both in the sandbox
//   CodeReview  hash, schema, non-trivial, every referenced file is in the reviewed diff
//   RepoIndex   schema and paths (pure); a seeded sample of files checked against its own checkout
//   SandboxRun  hashes and totals consistent; with `rerun`, the commands run again and compared
//   TextGen     accepted on reputation (it answers the request and is not empty)
// The outcome is a Verdict (every check, failed ones with their problem) and an evidence
// bundle (written to DATA/evidence/<job>.json; its sha256 goes into a dispute).
import { lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import type { EventLike } from '@bazaar/dvm-kinds/tags';
import { problem, type Problem } from '@bazaar/dvm-kinds/problem';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { PATCH_GEN_KIND, verifyPatchGen, type PatchGenRequest, type PatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { CODE_REVIEW_KIND, verifyCodeReview, type CodeReviewRequest, type CodeReviewResult } from '@bazaar/dvm-kinds/kinds/code-review';
import { REPO_INDEX_KIND, verifyRepoIndexSample, type RepoIndexRequest, type RepoIndexResult } from '@bazaar/dvm-kinds/kinds/repo-index';
import { SANDBOX_RUN_KIND, verifySandboxRun, verifySandboxRunByRerun, type SandboxRunRequest, type SandboxRunResult } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { TEXT_GEN_KIND, verifyTextGen, type TextGenRequest, type TextGenResult } from '@bazaar/dvm-kinds/kinds/text-gen';
import type { Runner, RunResult } from '@bazaar/agents-common/sandbox/runner';
import { checkoutRepo, fetchRepo } from '@bazaar/agents-common/sandbox/repo-cache';
import { replayPatch, runCommandSequence } from '@bazaar/agents-common/sandbox/replay';
import type { Verdict } from './job-store.ts';

export interface VerifyOptions {
  readonly runner: Runner;
  readonly logger: Logger;
  /** Scratch space for checkouts (removed after each verification). */
  readonly workDir: string;
  /** Bare repository cache shared by verifications. */
  readonly repoCacheDir: string;
  /** Where evidence bundles are written. */
  readonly evidenceDir: string;
  /** SandboxRun: run the commands again and compare (default: pure checks only). */
  readonly rerun?: boolean;
  /** RepoIndex: files to spot-check (default 5). */
  readonly sample?: number;
  readonly signal?: AbortSignal;
}

export interface Evidence {
  readonly version: 1;
  readonly request: string;
  readonly result: string;
  readonly kind: number;
  readonly checks: Verdict['checks'];
  readonly problems: readonly Problem[];
  /** What the replays did: exit codes, output hashes and tails. */
  readonly replay: Record<string, unknown>;
}

const tail = (s: string, n = 2000): string => (s.length > n ? s.slice(-n) : s);
const runSummary = (r: RunResult | undefined) => (r ? { reason: r.reason, exitCode: r.exitCode, stdoutSha256: r.stdoutSha256, stderrSha256: r.stderrSha256, stdoutTail: tail(r.stdout), stderrTail: tail(r.stderr), wallMs: Math.round(r.wallMs) } : undefined);

/** Verifies `result` (opened) against the request as the buyer wrote it (`request`: clear tags, with id). */
export async function verifyResult(request: EventLike & { id: string }, result: EventLike & { id: string }, o: VerifyOptions): Promise<Verdict> {
  const checks: { name: string; passed: boolean; detail?: string }[] = [];
  const problems: Problem[] = [];
  const replay: Record<string, unknown> = {};
  const record = (name: string, found: readonly Problem[]) => {
    checks.push({ name, passed: found.length === 0, ...(found.length ? { detail: found.map((p) => `${p.path}: ${p.message}`).join('; ').slice(0, 500) } : {}) });
    problems.push(...found);
  };
  const spec = JOB_KINDS.get(request.kind);
  if (!spec) throw new Error(`kind ${request.kind} has no verifier`);
  const req = spec.parseRequest(request);
  if (!req.ok) throw new Error(`our own request does not parse: ${req.errors.map((p) => p.message).join('; ')}`);
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
          if (o.rerun && checks.every((c) => c.passed)) {
            const v = await verifySandboxRunByRerun(r, s, async (rq, opts) => {
              const checkout = rq.repo ? await checkoutFor(rq.repo.url, rq.repo.ref, work, o) : undefined;
              return runCommandSequence(o.runner, { cmds: rq.params.cmd, timeLimitSecs: rq.params.time_limit_secs, workRoot: work, ...(checkout ? { checkout } : {}), ...(rq.params.memory_mb ? { memoryMb: rq.params.memory_mb } : {}), ...(rq.params.max_output_bytes !== undefined ? { maxOutputBytes: rq.params.max_output_bytes } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
            }, o.signal ? { signal: o.signal } : {});
            record('sandbox run: re-run matches', v.problems);
          }
          break;
        }
        case TEXT_GEN_KIND:
          record('text: answers the request, not empty (accepted on reputation)', verifyTextGen(req.value as TextGenRequest, res.value as TextGenResult).problems);
          break;
        default:
          throw new Error(`kind ${request.kind} has no verifier`);
      }
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }
  const evidence: Evidence = { version: 1, request: request.id, result: result.id, kind: request.kind, checks, problems, replay };
  const text = JSON.stringify(evidence, null, 1) + '\n';
  const evidenceSha256 = sha256Hex(text);
  await writeFile(join(await ensureDir(o.evidenceDir), `${request.id}.json`), text, { mode: 0o600 });
  return { ok: problems.length === 0, checks, problems, evidenceSha256, checkedAt: Date.now() };
}

async function ensureDir(d: string): Promise<string> {
  await mkdir(d, { recursive: true });
  return d;
}

async function checkoutFor(url: string, ref: string | undefined, parentDir: string, o: VerifyOptions): Promise<string> {
  const fetched = await fetchRepo({ source: url, ...(ref ? { ref } : {}), cacheDir: o.repoCacheDir, log: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
  return checkoutRepo({ repo: fetched, parentDir, ...(o.signal ? { signal: o.signal } : {}) });
}

type Record_ = (name: string, found: readonly Problem[]) => void;

async function verifyPatch(req: PatchGenRequest, res: PatchGenResult, work: string, o: VerifyOptions, record: Record_, replay: Record<string, unknown>): Promise<void> {
  // The price (amount ≤ max_cost_msats) is the payment step's to judge against our budget
  // (never above max_cost): an overcharge is refused, not disputed as bad work.
  const pure = verifyPatchGen(req, res).problems.filter((p) => p.path !== 'tags.amount');
  record('patch: hash, stats, allowed paths, reported tests', pure);
  if (pure.length) return;
  let checkout: string;
  try {
    checkout = await checkoutFor(req.repo.url, req.repo.ref, work, o);
  } catch (err) {
    // Our own checkout failing is not the provider's fault: no verdict against it.
    throw new Error(`cannot check out ${req.repo.url}@${req.repo.ref} to verify: ${(err as Error).message}`);
  }
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
  record('tests pass on our replay', r.testExitCode === 0 ? [] : [problem('test_exit_code', 'mismatch', `tests exited ${r.testExitCode} on the buyer's replay: ${tail((r.test?.stdout ?? '') + (r.test?.stderr ?? ''), 300).trim().split('\n').slice(-3).join(' | ')}`)]);
}

async function verifyIndex(req: RepoIndexRequest, res: RepoIndexResult, work: string, o: VerifyOptions, record: Record_): Promise<void> {
  let checkout: string;
  try {
    checkout = await checkoutFor(req.repo.url, req.repo.ref, work, o);
  } catch (err) {
    throw new Error(`cannot check out ${req.repo.url}@${req.repo.ref} to verify: ${(err as Error).message}`);
  }
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
