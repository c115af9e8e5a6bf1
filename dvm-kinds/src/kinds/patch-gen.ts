// 5932 PatchGen: an issue and a repo in, a unified diff out, with its sha256, test exit code and stats.
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { isHex64, sha256Hex } from '../hash.ts';
import { diffPaths, globMatch, parseUnifiedDiff, unsafeDiffPath } from '../diff.ts';
import { buildJobRequest, buildJobResult, decodeParams, encodeParams, readJobRequest, parseJobResult, type JobRequestCommon, type JobRequestEnvelope, type JobResultCommon, type JobResultEnvelope } from '../job.ts';
import { fail, problem, result, type Parsed, type Problem } from '../problem.ts';
import { JSON_SCHEMA_DIALECT, type JsonSchema } from '../schema.ts';
import { readUintTag, tagValue, type EventLike, shapeProblems } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const PATCH_GEN_KIND = 5932;
export const PATCH_GEN_RESULT_KIND = 6932;

export const patchGenParamsSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5932/params.json',
  title: 'PatchGen params',
  type: 'object',
  additionalProperties: false,
  required: ['repo_ref', 'issue_title', 'time_limit_secs'],
  properties: {
    repo_ref: { description: 'Git ref the patch applies to', type: 'string', minLength: 1, maxLength: 256 },
    issue_title: { type: 'string', minLength: 1, maxLength: 512 },
    allow_path: { description: 'Globs the patch may touch (anything when absent)', type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    deny_path: { description: 'Globs the patch must not touch', type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    test_cmd: { description: 'Shell command that must exit 0 after the patch is applied', type: 'string', minLength: 1, maxLength: 8192 },
    time_limit_secs: { type: 'integer', minimum: 1, maximum: 86400 },
    max_cost_msats: { description: 'The most the customer pays, in millisats', type: 'integer', minimum: 0 },
  },
} as const satisfies JsonSchema;

/** The result's tags as an object (the content is the unified diff itself). */
export const patchGenResultSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5932/result.json',
  title: 'PatchGen result tags (content: a unified diff, text/x-diff)',
  type: 'object',
  additionalProperties: false,
  required: ['patch_sha256', 'files_changed', 'additions', 'deletions'],
  properties: {
    patch_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    test_exit_code: { type: 'integer', minimum: 0, maximum: 255 },
    files_changed: { type: 'integer', minimum: 0 },
    additions: { type: 'integer', minimum: 0 },
    deletions: { type: 'integer', minimum: 0 },
    trajectory_sha256: { description: 'SHA-256 of the agent transcript the provider keeps', type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const satisfies JsonSchema;

export interface PatchGenParams {
  readonly repo_ref: string;
  readonly issue_title: string;
  readonly allow_path?: readonly string[];
  readonly deny_path?: readonly string[];
  readonly test_cmd?: string;
  readonly time_limit_secs: number;
  readonly max_cost_msats?: number;
}

export interface PatchGenRequest {
  readonly envelope: JobRequestEnvelope;
  readonly repo: { readonly url: string; readonly ref: string };
  readonly issue: { readonly title: string; readonly body: string };
  readonly params: PatchGenParams;
}

export interface PatchGenRequestInput extends JobRequestCommon {
  readonly repoUrl: string;
  /** The issue body (title goes in params.issue_title). */
  readonly issueBody: string;
  readonly params: PatchGenParams;
}

export function buildPatchGenRequest(input: PatchGenRequestInput): EventTemplate {
  const inputs = [{ data: input.repoUrl, type: 'url' as const }, { data: input.issueBody, type: 'text' as const }];
  return buildJobRequest(PATCH_GEN_KIND, inputs, encodeParams(input.params as unknown as Record<string, unknown>, patchGenParamsSchema), input);
}

export function parsePatchGenRequest(e: EventLike): Parsed<PatchGenRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems: out } = readJobRequest(e, PATCH_GEN_KIND);
  if (envelope.encrypted) return fail([...out, problem('content', 'encrypted', 'inputs and params are encrypted: open the request with the provider key first')]);
  const { value, problems: paramProblems } = decodeParams(envelope.params, patchGenParamsSchema);
  out.push(...paramProblems);
  const urls = envelope.inputs.filter((i) => i.type === 'url');
  const texts = envelope.inputs.filter((i) => i.type === 'text');
  if (urls.length !== 1) out.push(problem('tags.i', urls.length ? 'unexpected' : 'missing', 'exactly one repo input: ["i", "<repo url>", "url"]'));
  if (texts.length !== 1) out.push(problem('tags.i', texts.length ? 'unexpected' : 'missing', 'exactly one issue body input: ["i", "<issue body>", "text"]'));
  envelope.inputs.forEach((i, n) => {
    if (i.type !== 'url' && i.type !== 'text') out.push(problem(`tags.i[${n}]`, 'unexpected', `PatchGen takes url and text inputs, got ${i.type}`));
  });
  const params = value as unknown as PatchGenParams;
  if (envelope.bidMsats !== undefined && params.max_cost_msats !== undefined && envelope.bidMsats > params.max_cost_msats) out.push(problem('tags.bid', 'mismatch', `bid ${envelope.bidMsats} exceeds max_cost_msats ${params.max_cost_msats}`));
  return result(out, () => ({ envelope, repo: { url: urls[0].data, ref: params.repo_ref }, issue: { title: params.issue_title, body: texts[0].data }, params }));
}

export interface PatchGenOutput {
  readonly patch: string;
  readonly patch_sha256: string;
  readonly test_exit_code?: number;
  readonly files_changed: number;
  readonly additions: number;
  readonly deletions: number;
  readonly trajectory_sha256?: string;
}

export interface PatchGenResult {
  readonly envelope: JobResultEnvelope;
  readonly output: PatchGenOutput;
}

/** Builds the result; hashes and stats are computed from the patch so they cannot disagree. */
export function buildPatchGenResult(request: NostrEvent, r: { patch: string; testExitCode?: number; trajectorySha256?: string }, common?: JobResultCommon): EventTemplate {
  const stats = parseUnifiedDiff(r.patch);
  const s = stats.ok ? stats.value : { files: [], additions: 0, deletions: 0 };
  const tags: string[][] = [['patch_sha256', sha256Hex(r.patch)]];
  if (r.testExitCode !== undefined) tags.push(['test_exit_code', String(r.testExitCode)]);
  tags.push(['files_changed', String(s.files.length)], ['additions', String(s.additions)], ['deletions', String(s.deletions)]);
  if (r.trajectorySha256) tags.push(['trajectory_sha256', r.trajectorySha256]);
  return buildJobResult(request, r.patch, tags, common);
}

export function parsePatchGenResult(e: EventLike): Parsed<PatchGenResult> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const env = parseJobResult(e, PATCH_GEN_RESULT_KIND);
  if (!env.ok) return env;
  if (env.value.encrypted) return fail([problem('content', 'encrypted', 'the result is encrypted: open it with the customer key first')]);
  const out: Problem[] = [];
  const patchSha = tagValue(e.tags, 'patch_sha256');
  if (patchSha === undefined) out.push(problem('tags.patch_sha256', 'missing', 'a ["patch_sha256", "<hex>"] tag is required'));
  else if (!isHex64(patchSha)) out.push(problem('tags.patch_sha256', 'invalid', 'must be 64-char lowercase hex'));
  const testExit = readUintTag(e.tags, 'test_exit_code', out, false);
  const files = readUintTag(e.tags, 'files_changed', out, true);
  const additions = readUintTag(e.tags, 'additions', out, true);
  const deletions = readUintTag(e.tags, 'deletions', out, true);
  const traj = tagValue(e.tags, 'trajectory_sha256');
  if (traj !== undefined && !isHex64(traj)) out.push(problem('tags.trajectory_sha256', 'invalid', 'must be 64-char lowercase hex'));
  return result(out, () => ({
    envelope: env.value,
    output: {
      patch: e.content,
      patch_sha256: patchSha!,
      ...(testExit !== undefined ? { test_exit_code: testExit } : {}),
      files_changed: files!,
      additions: additions!,
      deletions: deletions!,
      ...(traj ? { trajectory_sha256: traj } : {}),
    },
  }));
}

/** Pure checks: hash, the diff parses and its stats match the tags, paths respect allow/deny, tests passed, price within max cost. */
export function verifyPatchGen(request: PatchGenRequest, res: PatchGenResult): Verification {
  const out: Problem[] = [];
  const o = res.output;
  if (request.envelope.id !== undefined && res.envelope.requestId !== request.envelope.id) out.push(problem('tags.e', 'mismatch', 'the result answers another request'));
  if (sha256Hex(o.patch) !== o.patch_sha256) out.push(problem('patch_sha256', 'mismatch', 'does not match the sha256 of the patch'));
  const diff = parseUnifiedDiff(o.patch);
  if (!diff.ok) out.push(...diff.errors.map((p) => problem(`patch.${p.path}`, p.code, p.message)));
  else {
    const d = diff.value;
    if (d.files.length !== o.files_changed) out.push(problem('files_changed', 'mismatch', `tag says ${o.files_changed}, the diff changes ${d.files.length}`));
    if (d.additions !== o.additions) out.push(problem('additions', 'mismatch', `tag says ${o.additions}, the diff adds ${d.additions}`));
    if (d.deletions !== o.deletions) out.push(problem('deletions', 'mismatch', `tag says ${o.deletions}, the diff deletes ${d.deletions}`));
    for (const path of diffPaths(d)) {
      const unsafe = unsafeDiffPath(path);
      if (unsafe) out.push(problem(`patch.${path}`, 'unexpected', unsafe));
      const allow = request.params.allow_path;
      if (allow?.length && !allow.some((g) => globMatch(g, path))) out.push(problem(`patch.${path}`, 'unexpected', 'outside the allowed paths'));
      if (request.params.deny_path?.some((g) => globMatch(g, path))) out.push(problem(`patch.${path}`, 'unexpected', 'touches a denied path'));
    }
  }
  if (request.params.test_cmd !== undefined) {
    if (o.test_exit_code === undefined) out.push(problem('test_exit_code', 'missing', 'the request has a test command'));
    else if (o.test_exit_code !== 0) out.push(problem('test_exit_code', 'mismatch', `tests exited ${o.test_exit_code}`));
  }
  const cost = res.envelope.amount?.msats;
  if (cost !== undefined && request.params.max_cost_msats !== undefined && cost > request.params.max_cost_msats) out.push(problem('tags.amount', 'unexpected', `asks ${cost} msats, max_cost_msats is ${request.params.max_cost_msats}`));
  return verification(out);
}

/** Applies the patch to a fresh checkout and runs the test command, in the caller's sandbox. */
export type PatchGenRunner = (job: { repoUrl: string; ref: string; patch: string; testCmd?: string; timeLimitSecs: number }, opts: { signal?: AbortSignal }) => Promise<{ applied: boolean; testExitCode?: number; detail?: string }>;

export async function verifyPatchGenWithRunner(request: PatchGenRequest, res: PatchGenResult, runner: PatchGenRunner, opts: { signal?: AbortSignal } = {}): Promise<Verification> {
  const pure = verifyPatchGen(request, res);
  if (!pure.ok) return pure;
  const r = await runner({ repoUrl: request.repo.url, ref: request.repo.ref, patch: res.output.patch, ...(request.params.test_cmd ? { testCmd: request.params.test_cmd } : {}), timeLimitSecs: request.params.time_limit_secs }, opts);
  const out: Problem[] = [];
  if (!r.applied) out.push(problem('patch', 'mismatch', `does not apply cleanly${r.detail ? `: ${r.detail}` : ''}`));
  else if (request.params.test_cmd !== undefined && r.testExitCode !== 0) out.push(problem('test_exit_code', 'mismatch', `tests exited ${r.testExitCode ?? 'without a status'} on replay`));
  return verification(out);
}
