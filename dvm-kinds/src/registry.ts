// The job kinds this package defines, by request kind: what a relay or agent needs to handle any of them generically.
import type { Parsed } from './problem.ts';
import type { JsonSchema } from './schema.ts';
import type { EventLike } from './tags.ts';
import { TEXT_GEN_KIND, parseTextGenRequest, parseTextGenResult, textGenParamsSchema, textGenResultSchema } from './kinds/text-gen.ts';
import { SANDBOX_RUN_KIND, parseSandboxRunRequest, parseSandboxRunResult, sandboxRunParamsSchema, sandboxRunResultSchema } from './kinds/sandbox-run.ts';
import { REPO_INDEX_KIND, parseRepoIndexRequest, parseRepoIndexResult, repoIndexParamsSchema, repoIndexResultSchema } from './kinds/repo-index.ts';
import { PATCH_GEN_KIND, parsePatchGenRequest, parsePatchGenResult, patchGenParamsSchema, patchGenResultSchema } from './kinds/patch-gen.ts';
import { CODE_REVIEW_KIND, parseCodeReviewRequest, parseCodeReviewResult, codeReviewParamsSchema, codeReviewResultSchema } from './kinds/code-review.ts';

export interface JobKindSpec {
  readonly kind: number;
  readonly resultKind: number;
  readonly name: string;
  readonly paramsSchema: JsonSchema;
  readonly resultSchema: JsonSchema;
  readonly parseRequest: (e: EventLike) => Parsed<unknown>;
  readonly parseResult: (e: EventLike) => Parsed<unknown>;
}

const spec = (kind: number, name: string, paramsSchema: JsonSchema, resultSchema: JsonSchema, parseRequest: JobKindSpec['parseRequest'], parseResult: JobKindSpec['parseResult']): JobKindSpec =>
  Object.freeze({ kind, resultKind: kind + 1000, name, paramsSchema, resultSchema, parseRequest, parseResult });

export const JOB_KINDS: ReadonlyMap<number, JobKindSpec> = new Map([
  [TEXT_GEN_KIND, spec(TEXT_GEN_KIND, 'TextGen', textGenParamsSchema, textGenResultSchema, parseTextGenRequest, parseTextGenResult)],
  [SANDBOX_RUN_KIND, spec(SANDBOX_RUN_KIND, 'SandboxRun', sandboxRunParamsSchema, sandboxRunResultSchema, parseSandboxRunRequest, parseSandboxRunResult)],
  [REPO_INDEX_KIND, spec(REPO_INDEX_KIND, 'RepoIndex', repoIndexParamsSchema, repoIndexResultSchema, parseRepoIndexRequest, parseRepoIndexResult)],
  [PATCH_GEN_KIND, spec(PATCH_GEN_KIND, 'PatchGen', patchGenParamsSchema, patchGenResultSchema, parsePatchGenRequest, parsePatchGenResult)],
  [CODE_REVIEW_KIND, spec(CODE_REVIEW_KIND, 'CodeReview', codeReviewParamsSchema, codeReviewResultSchema, parseCodeReviewRequest, parseCodeReviewResult)],
]);

/** Param schemas by kind, as a provider puts them in its NIP-89 announcement. */
export function paramSchemasFor(kinds: readonly number[]): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const k of kinds) {
    const s = JOB_KINDS.get(k);
    if (s) out[String(k)] = s.paramsSchema;
  }
  return out;
}
