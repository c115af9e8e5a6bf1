// The backends, one per job kind. `prepareJob` parses a (decrypted) request once with its
// kind's dvm-kinds parser and binds the typed value to its backend: the pipeline then holds a
// PreparedJob and never sees the request's type, and no backend receives an untyped value.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { formatProblems, type Parsed, type Problem } from '@bazaar/dvm-kinds/problem';
import { SANDBOX_RUN_KIND, buildSandboxRunResult, parseSandboxRunRequest, type SandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { REPO_INDEX_KIND, buildRepoIndexResult, parseRepoIndexRequest, parseRepoIndexResult, verifyRepoIndex, type RepoIndexRequest } from '@bazaar/dvm-kinds/kinds/repo-index';
import { PATCH_GEN_KIND, buildPatchGenResult, parsePatchGenRequest, parsePatchGenResult, verifyPatchGen, type PatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { CODE_REVIEW_KIND, buildCodeReviewResult, parseCodeReviewRequest, type CodeReviewRequest } from '@bazaar/dvm-kinds/kinds/code-review';
import { TEXT_GEN_KIND, buildTextGenResult, parseTextGenRequest, type TextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import type { Verification } from '@bazaar/dvm-kinds/verify';
import type { ProviderConfig } from '../config.ts';
import type { Backend, Produced, RunContext } from './backend.ts';
import { runSandboxRun, sandboxRunUnits } from './sandbox-run.ts';
import { runRepoIndex } from './repo-index.ts';
import { runPatchGen, UnverifiedResultError } from './patch-gen.ts';
import { runCodeReview } from './code-review.ts';
import { runTextGen } from './text-gen.ts';

/** The buyer's pure checks, run on our own result before it is offered. */
function selfCheck<T>(parsed: Parsed<T>, verify: (res: T) => Verification): void {
  if (!parsed.ok) throw new UnverifiedResultError(`our own result does not parse: ${formatProblems(parsed.errors)}`);
  const v = verify(parsed.value);
  if (!v.ok) throw new UnverifiedResultError(`our own result fails verification: ${formatProblems(v.problems)}`);
}

const resultCommon = (ctx: RunContext) => (ctx.omitRequest ? { omitRequest: true } : {});
const agentName = (command: readonly string[], runner: string) => `agent: ${command.join(' ').slice(0, 60)} (${runner})`;

const sandboxRun: Backend<SandboxRunRequest> = {
  kind: SANDBOX_RUN_KIND,
  parse: parseSandboxRunRequest,
  describe: (_c, runner) => `sandbox (${runner})`,
  maxUnits: (r) => r.params.time_limit_secs,
  timeLimitSecs: (r) => r.params.time_limit_secs,
  maxCostMsats: () => undefined,
  async run(r, ctx) {
    const output = await runSandboxRun(r, ctx);
    return { template: buildSandboxRunResult(ctx.event, output, resultCommon(ctx)), units: sandboxRunUnits(output) };
  },
};

const repoIndex: Backend<RepoIndexRequest> = {
  kind: REPO_INDEX_KIND,
  parse: parseRepoIndexRequest,
  describe: (_c, runner) => `sandbox (${runner})`,
  maxUnits: () => 1,
  timeLimitSecs: () => undefined,
  maxCostMsats: () => undefined,
  async run(r, ctx) {
    const { output, units } = await runRepoIndex(r, ctx);
    const template = buildRepoIndexResult(ctx.event, output, resultCommon(ctx));
    selfCheck(parseRepoIndexResult(template), (res) => verifyRepoIndex(r, res));
    return { template, units };
  },
};

const patchGen: Backend<PatchGenRequest> = {
  kind: PATCH_GEN_KIND,
  parse: parsePatchGenRequest,
  describe: (c, runner) => (c.backends.patchGen ? agentName(c.backends.patchGen.command, runner) : undefined),
  maxUnits: () => 1,
  timeLimitSecs: (r) => r.params.time_limit_secs,
  maxCostMsats: (r) => r.params.max_cost_msats,
  async run(r, ctx) {
    const agent = ctx.config.backends.patchGen;
    if (!agent) throw new Error('no patch_gen backend configured');
    const out = await runPatchGen(r, agent, ctx);
    const template = buildPatchGenResult(ctx.event, out, resultCommon(ctx));
    selfCheck(parsePatchGenResult(template), (res) => verifyPatchGen(r, res));
    return { template, units: 1 };
  },
};

const codeReview: Backend<CodeReviewRequest> = {
  kind: CODE_REVIEW_KIND,
  parse: parseCodeReviewRequest,
  describe: (c, runner) => (c.backends.codeReview ? agentName(c.backends.codeReview.command, runner) : undefined),
  maxUnits: () => 1,
  timeLimitSecs: () => undefined,
  maxCostMsats: () => undefined,
  async run(r, ctx) {
    const agent = ctx.config.backends.codeReview;
    if (!agent) throw new Error('no code_review backend configured');
    const review = await runCodeReview(r, agent, ctx);
    return { template: buildCodeReviewResult(ctx.event, review, resultCommon(ctx)), units: 1 };
  },
};

const textGen: Backend<TextGenRequest> = {
  kind: TEXT_GEN_KIND,
  parse: parseTextGenRequest,
  describe: (c) => (c.backends.textGen ? `model ${c.backends.textGen.model} at ${c.backends.textGen.url}` : undefined),
  maxUnits: () => 1,
  timeLimitSecs: () => undefined,
  maxCostMsats: () => undefined,
  async run(r, ctx) {
    const backend = ctx.config.backends.textGen;
    if (!backend) throw new Error('no text_gen backend configured');
    const { text, units } = await runTextGen(r, backend, ctx);
    return { template: buildTextGenResult(ctx.event, text, resultCommon(ctx)), units };
  },
};

/** A request parsed once and bound to its backend; the typed value stays inside. */
export interface PreparedJob {
  readonly kind: number;
  /** The request as opened (decrypted for private jobs). */
  readonly event: NostrEvent;
  readonly maxUnits: number;
  readonly timeLimitSecs: number | undefined;
  readonly maxCostMsats: number | undefined;
  run(ctx: Omit<RunContext, 'event'>): Promise<Produced>;
}

interface Registered {
  readonly kind: number;
  describe(config: ProviderConfig, runner: string): string | undefined;
  prepare(event: NostrEvent): { ok: true; job: PreparedJob } | { ok: false; problems: readonly Problem[] };
}

function register<R>(b: Backend<R>): Registered {
  return {
    kind: b.kind,
    describe: (config, runner) => b.describe(config, runner),
    prepare(event) {
      const parsed = b.parse(event);
      if (!parsed.ok) return { ok: false, problems: parsed.errors };
      const req = parsed.value;
      return {
        ok: true,
        job: { kind: b.kind, event, maxUnits: b.maxUnits(req), timeLimitSecs: b.timeLimitSecs(req), maxCostMsats: b.maxCostMsats(req), run: (ctx) => b.run(req, { ...ctx, event }) },
      };
    },
  };
}

export const BACKENDS: ReadonlyMap<number, Registered> = new Map([register(sandboxRun), register(repoIndex), register(patchGen), register(codeReview), register(textGen)].map((r) => [r.kind, r]));

/** Parses an opened request with its kind's backend: the prepared job, or every problem found. */
export function prepareJob(event: NostrEvent): { ok: true; job: PreparedJob } | { ok: false; problems: readonly Problem[] } {
  const b = BACKENDS.get(event.kind);
  if (!b) return { ok: false, problems: [{ path: 'kind', code: 'kind', message: `kind ${event.kind} has no backend in this build` }] };
  return b.prepare(event);
}

/** What serves `kind` under `config`, for status: 'none' when nothing does. */
export function describeBackend(kind: number, config: ProviderConfig, runner: string): string {
  return BACKENDS.get(kind)?.describe(config, runner) ?? 'none';
}
