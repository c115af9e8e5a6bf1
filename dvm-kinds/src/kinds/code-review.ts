// 5933 CodeReview: a diff (or repo + two refs) in, a structured review out.
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { isHex64, sha256Hex } from '../hash.ts';
import { diffPaths, parseUnifiedDiff } from '../diff.ts';
import { buildJobRequest, buildJobResult, decodeParams, encodeParams, readJobRequest, parseJobResult, parseJsonContent, type JobInput, type JobRequestCommon, type JobRequestEnvelope, type JobResultCommon, type JobResultEnvelope } from '../job.ts';
import { fail, problem, result, type Parsed, type Problem } from '../problem.ts';
import { JSON_SCHEMA_DIALECT, validateSchema, type JsonSchema } from '../schema.ts';
import { tagValue, type EventLike, shapeProblems } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const CODE_REVIEW_KIND = 5933;
export const CODE_REVIEW_RESULT_KIND = 6933;
export const REVIEW_FOCUS = ['correctness', 'security', 'performance', 'style', 'tests', 'docs'] as const;
export const REVIEW_DEPTH = ['quick', 'standard', 'thorough'] as const;
export const REVIEW_SEVERITY = ['info', 'minor', 'major', 'critical'] as const;
export const REVIEW_APPROVAL = ['approve', 'request_changes', 'comment'] as const;
/** A review summary shorter than this is trivial. */
export const MIN_SUMMARY_CHARS = 20;

export const codeReviewParamsSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5933/params.json',
  title: 'CodeReview params',
  type: 'object',
  additionalProperties: false,
  properties: {
    focus: { type: 'array', maxItems: REVIEW_FOCUS.length, items: { type: 'string', enum: REVIEW_FOCUS } },
    depth: { type: 'string', enum: REVIEW_DEPTH },
    base_ref: { description: 'With a repo input: the ref to diff from', type: 'string', minLength: 1, maxLength: 256 },
    head_ref: { description: 'With a repo input: the ref to review', type: 'string', minLength: 1, maxLength: 256 },
  },
} as const satisfies JsonSchema;

export const codeReviewResultSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5933/result.json',
  title: 'CodeReview result',
  type: 'object',
  additionalProperties: false,
  required: ['summary', 'approval', 'issues', 'suggestions'],
  properties: {
    summary: { type: 'string', minLength: 1 },
    approval: { type: 'string', enum: REVIEW_APPROVAL },
    issues: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['file', 'line_start', 'severity', 'message'],
        properties: {
          file: { type: 'string', minLength: 1 },
          line_start: { type: 'integer', minimum: 1 },
          line_end: { type: 'integer', minimum: 1 },
          severity: { type: 'string', enum: REVIEW_SEVERITY },
          message: { type: 'string', minLength: 1 },
          suggestion: { type: 'string' },
        },
      },
    },
    suggestions: { type: 'array', items: { type: 'string', minLength: 1 } },
  },
} as const satisfies JsonSchema;

export interface CodeReviewParams {
  readonly focus?: readonly (typeof REVIEW_FOCUS)[number][];
  readonly depth?: (typeof REVIEW_DEPTH)[number];
  readonly base_ref?: string;
  readonly head_ref?: string;
}

export interface CodeReviewOutput {
  readonly summary: string;
  readonly approval: (typeof REVIEW_APPROVAL)[number];
  readonly issues: readonly { readonly file: string; readonly line_start: number; readonly line_end?: number; readonly severity: (typeof REVIEW_SEVERITY)[number]; readonly message: string; readonly suggestion?: string }[];
  readonly suggestions: readonly string[];
}

export interface CodeReviewRequest {
  readonly envelope: JobRequestEnvelope;
  /** The diff under review (text input), or a repo with base and head refs. */
  readonly subject: { readonly diff: string } | { readonly repo: { readonly url: string; readonly baseRef: string; readonly headRef: string } };
  readonly params: CodeReviewParams;
}

export type CodeReviewRequestInput = JobRequestCommon & { readonly params?: CodeReviewParams } & ({ readonly diff: string } | { readonly repoUrl: string });

export function buildCodeReviewRequest(input: CodeReviewRequestInput): EventTemplate {
  const i: JobInput = 'diff' in input ? { data: input.diff, type: 'text' } : { data: input.repoUrl, type: 'url' };
  return buildJobRequest(CODE_REVIEW_KIND, [i], encodeParams((input.params ?? {}) as Record<string, unknown>, codeReviewParamsSchema), input);
}

export function parseCodeReviewRequest(e: EventLike): Parsed<CodeReviewRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems: out } = readJobRequest(e, CODE_REVIEW_KIND);
  if (envelope.encrypted) return fail([...out, problem('content', 'encrypted', 'inputs and params are encrypted: open the request with the provider key first')]);
  const { value, problems: paramProblems } = decodeParams(envelope.params, codeReviewParamsSchema);
  out.push(...paramProblems);
  const params = value as CodeReviewParams;
  const inputs = envelope.inputs;
  let subject: CodeReviewRequest['subject'] | undefined;
  if (inputs.length !== 1) out.push(problem('tags.i', inputs.length ? 'unexpected' : 'missing', 'exactly one input: a diff (["i", "<diff>", "text"]) or a repo (["i", "<url>", "url"])'));
  else if (inputs[0].type === 'text') {
    const d = parseUnifiedDiff(inputs[0].data);
    if (!d.ok) out.push(...d.errors.map((p) => problem(`tags.i[0].${p.path}`, p.code, `the diff input: ${p.message}`)));
    if (params.base_ref !== undefined || params.head_ref !== undefined) out.push(problem('tags.param[base_ref]', 'unexpected', 'base_ref/head_ref go with a repo input, not a diff'));
    subject = { diff: inputs[0].data };
  } else if (inputs[0].type === 'url') {
    if (params.base_ref === undefined) out.push(problem('tags.param[base_ref]', 'missing', 'a repo input needs base_ref'));
    if (params.head_ref === undefined) out.push(problem('tags.param[head_ref]', 'missing', 'a repo input needs head_ref'));
    subject = { repo: { url: inputs[0].data, baseRef: params.base_ref ?? '', headRef: params.head_ref ?? '' } };
  } else out.push(problem('tags.i[0]', 'unexpected', `CodeReview takes a text (diff) or url (repo) input, got ${inputs[0].type}`));
  return result(out, () => ({ envelope, subject: subject!, params }));
}

export interface CodeReviewResult {
  readonly envelope: JobResultEnvelope;
  readonly review: CodeReviewOutput;
  readonly reviewSha256: string;
}

export function buildCodeReviewResult(request: NostrEvent, review: CodeReviewOutput, common?: JobResultCommon): EventTemplate {
  const content = JSON.stringify(review);
  return buildJobResult(request, content, [['review_sha256', sha256Hex(content)]], common);
}

export function parseCodeReviewResult(e: EventLike): Parsed<CodeReviewResult> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const env = parseJobResult(e, CODE_REVIEW_RESULT_KIND);
  if (!env.ok) return env;
  if (env.value.encrypted) return fail([problem('content', 'encrypted', 'the result is encrypted: open it with the customer key first')]);
  const out: Problem[] = [];
  const h = tagValue(e.tags, 'review_sha256');
  if (h === undefined) out.push(problem('tags.review_sha256', 'missing', 'a ["review_sha256", "<hex>"] tag is required'));
  else if (!isHex64(h)) out.push(problem('tags.review_sha256', 'invalid', 'must be 64-char lowercase hex'));
  const json = parseJsonContent(e.content, out);
  if (json !== undefined) out.push(...validateSchema(codeReviewResultSchema, json, 'content'));
  return result(out, () => ({ envelope: env.value, review: json as CodeReviewOutput, reviewSha256: h! }));
}

/**
 * Pure checks: hash, non-trivial, line ranges sane, every referenced file is in the reviewed diff.
 * For a repo input, pass the diff between base_ref and head_ref from your own checkout as `opts.diff`.
 */
export function verifyCodeReview(request: CodeReviewRequest, res: CodeReviewResult, opts: { diff?: string } = {}): Verification {
  const out: Problem[] = [];
  const r = res.review;
  if (request.envelope.id !== undefined && res.envelope.requestId !== request.envelope.id) out.push(problem('tags.e', 'mismatch', 'the result answers another request'));
  if (sha256Hex(res.envelope.content) !== res.reviewSha256) out.push(problem('review_sha256', 'mismatch', 'does not match the sha256 of the content'));
  if (r.summary.trim().length < MIN_SUMMARY_CHARS) out.push(problem('content.summary', 'invalid', `a summary of at least ${MIN_SUMMARY_CHARS} characters is required`));
  if (r.approval !== 'approve' && r.issues.length === 0 && r.suggestions.length === 0) out.push(problem('content.issues', 'missing', `"${r.approval}" without any issue or suggestion is trivial`));
  let files: Set<string> | undefined;
  const diff = 'diff' in request.subject ? request.subject.diff : opts.diff;
  if (diff !== undefined) {
    const d = parseUnifiedDiff(diff);
    if (d.ok) files = new Set(diffPaths(d.value));
    else out.push(problem('diff', 'invalid', 'the reviewed diff does not parse'));
  }
  r.issues.forEach((iss, i) => {
    if (iss.line_end !== undefined && iss.line_end < iss.line_start) out.push(problem(`content.issues[${i}].line_end`, 'invalid', 'ends before it starts'));
    if (files && !files.has(iss.file)) out.push(problem(`content.issues[${i}].file`, 'mismatch', `${iss.file} is not in the diff`));
  });
  return verification(out);
}
