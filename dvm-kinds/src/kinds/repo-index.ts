// 5931 RepoIndex: index a repo at a ref: files (path, bytes, sha256, language) and symbols.
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { sha256Hex } from '../hash.ts';
import { globMatch } from '../diff.ts';
import { buildJobRequest, buildJobResult, decodeParams, encodeParams, readJobRequest, parseJobResult, parseJsonContent, type JobRequestCommon, type JobRequestEnvelope, type JobResultCommon, type JobResultEnvelope } from '../job.ts';
import { fail, problem, result, type Parsed, type Problem } from '../problem.ts';
import { JSON_SCHEMA_DIALECT, validateSchema, type JsonSchema } from '../schema.ts';
import { shapeProblems, type EventLike } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const REPO_INDEX_KIND = 5931;
export const REPO_INDEX_RESULT_KIND = 6931;

export const repoIndexParamsSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5931/params.json',
  title: 'RepoIndex params',
  type: 'object',
  additionalProperties: false,
  required: ['repo_ref'],
  properties: {
    repo_ref: { description: 'Git ref to index', type: 'string', minLength: 1, maxLength: 256 },
    path: { description: 'Globs of paths to include (all files when absent)', type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    max_files: { type: 'integer', minimum: 1, maximum: 1000000 },
    symbols: { description: 'Extract symbols (default true)', type: 'boolean' },
  },
} as const satisfies JsonSchema;

export const repoIndexResultSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5931/result.json',
  title: 'RepoIndex result',
  type: 'object',
  additionalProperties: false,
  required: ['repo', 'ref', 'files', 'symbols'],
  properties: {
    repo: { type: 'string' },
    ref: { type: 'string' },
    commit: { description: 'The commit the ref resolved to', type: 'string', pattern: '^[0-9a-f]{40}([0-9a-f]{24})?$' },
    files: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'bytes', 'sha256'],
        properties: {
          path: { type: 'string', minLength: 1 },
          bytes: { type: 'integer', minimum: 0 },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          language: { type: 'string' },
        },
      },
    },
    symbols: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'kind', 'path', 'line'],
        properties: {
          name: { type: 'string', minLength: 1 },
          kind: { description: 'function, class, method, type, variable, ...', type: 'string', minLength: 1 },
          path: { type: 'string', minLength: 1 },
          line: { type: 'integer', minimum: 1 },
        },
      },
    },
  },
} as const satisfies JsonSchema;

export interface RepoIndexParams {
  readonly repo_ref: string;
  readonly path?: readonly string[];
  readonly max_files?: number;
  readonly symbols?: boolean;
}

export interface RepoIndexOutput {
  readonly repo: string;
  readonly ref: string;
  readonly commit?: string;
  readonly files: readonly { readonly path: string; readonly bytes: number; readonly sha256: string; readonly language?: string }[];
  readonly symbols: readonly { readonly name: string; readonly kind: string; readonly path: string; readonly line: number }[];
}

export interface RepoIndexRequest {
  readonly envelope: JobRequestEnvelope;
  readonly repo: { readonly url: string; readonly ref: string };
  readonly params: RepoIndexParams;
}

export interface RepoIndexRequestInput extends JobRequestCommon {
  readonly repoUrl: string;
  readonly params: RepoIndexParams;
}

export function buildRepoIndexRequest(input: RepoIndexRequestInput): EventTemplate {
  return buildJobRequest(REPO_INDEX_KIND, [{ data: input.repoUrl, type: 'url' }], encodeParams(input.params as unknown as Record<string, unknown>, repoIndexParamsSchema), input);
}

export function parseRepoIndexRequest(e: EventLike): Parsed<RepoIndexRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems: out } = readJobRequest(e, REPO_INDEX_KIND);
  if (envelope.encrypted) return fail([...out, problem('content', 'encrypted', 'inputs and params are encrypted: open the request with the provider key first')]);
  const { value, problems: paramProblems } = decodeParams(envelope.params, repoIndexParamsSchema);
  out.push(...paramProblems);
  const inputs = envelope.inputs;
  if (inputs.length !== 1 || inputs[0].type !== 'url') out.push(problem('tags.i', inputs.length ? 'invalid' : 'missing', 'exactly one repo input: ["i", "<repo url>", "url"]'));
  const params = value as unknown as RepoIndexParams;
  return result(out, () => ({ envelope, repo: { url: inputs[0].data, ref: params.repo_ref }, params }));
}

export interface RepoIndexResult {
  readonly envelope: JobResultEnvelope;
  readonly index: RepoIndexOutput;
}

export function buildRepoIndexResult(request: NostrEvent, index: RepoIndexOutput, common?: JobResultCommon): EventTemplate {
  const content = JSON.stringify(index);
  return buildJobResult(request, content, [['index_sha256', sha256Hex(content)]], common);
}

export function parseRepoIndexResult(e: EventLike): Parsed<RepoIndexResult> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const env = parseJobResult(e, REPO_INDEX_RESULT_KIND);
  if (!env.ok) return env;
  if (env.value.encrypted) return fail([problem('content', 'encrypted', 'the result is encrypted: open it with the customer key first')]);
  const out: Problem[] = [];
  const json = parseJsonContent(e.content, out);
  if (json !== undefined) out.push(...validateSchema(repoIndexResultSchema, json, 'content'));
  const h = e.tags.find((t) => t[0] === 'index_sha256')?.[1];
  if (h !== undefined && h !== sha256Hex(e.content)) out.push(problem('tags.index_sha256', 'mismatch', 'does not match the sha256 of the content'));
  return result(out, () => ({ envelope: env.value, index: json as RepoIndexOutput }));
}

/** Pure checks: answers this request, same repo/ref, unique paths within the requested globs, symbols point at indexed files. */
export function verifyRepoIndex(request: RepoIndexRequest, res: RepoIndexResult): Verification {
  const out: Problem[] = [];
  const idx = res.index;
  if (request.envelope.id !== undefined && res.envelope.requestId !== request.envelope.id) out.push(problem('tags.e', 'mismatch', 'the result answers another request'));
  if (idx.repo !== request.repo.url) out.push(problem('content.repo', 'mismatch', `indexed ${idx.repo}, asked for ${request.repo.url}`));
  if (idx.ref !== request.repo.ref) out.push(problem('content.ref', 'mismatch', `indexed ${idx.ref}, asked for ${request.repo.ref}`));
  const paths = new Set<string>();
  idx.files.forEach((f, i) => {
    if (paths.has(f.path)) out.push(problem(`content.files[${i}].path`, 'unexpected', `${f.path} is listed twice`));
    paths.add(f.path);
    if (request.params.path?.length && !request.params.path.some((g) => globMatch(g, f.path))) out.push(problem(`content.files[${i}].path`, 'unexpected', `${f.path} is outside the requested paths`));
  });
  if (request.params.max_files !== undefined && idx.files.length > request.params.max_files) out.push(problem('content.files', 'unexpected', `${idx.files.length} files, max_files is ${request.params.max_files}`));
  idx.symbols.forEach((s, i) => {
    if (!paths.has(s.path)) out.push(problem(`content.symbols[${i}].path`, 'mismatch', `${s.path} is not an indexed file`));
  });
  if (request.params.symbols === false && idx.symbols.length) out.push(problem('content.symbols', 'unexpected', 'symbols were not requested'));
  return verification(out);
}

/** Deterministic sample of `n` indexed files: the same seed picks the same files. */
export function sampleFiles(index: RepoIndexOutput, n: number, seed: string): string[] {
  return [...index.files]
    .map((f) => ({ path: f.path, key: sha256Hex(`${seed}\n${f.path}`) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, n)
    .map((f) => f.path);
}

/** Reads a file from the buyer's own checkout (undefined when it does not exist). */
export type RepoFileReader = (path: string, opts: { signal?: AbortSignal }) => Promise<Uint8Array | undefined>;

/** Spot-check: sampled files must exist in the buyer's checkout with the advertised size and sha256. */
export async function verifyRepoIndexSample(request: RepoIndexRequest, res: RepoIndexResult, readFile: RepoFileReader, opts: { sample?: number; seed: string; signal?: AbortSignal }): Promise<Verification> {
  const pure = verifyRepoIndex(request, res);
  if (!pure.ok) return pure;
  const out: Problem[] = [];
  const byPath = new Map(res.index.files.map((f) => [f.path, f]));
  for (const path of sampleFiles(res.index, opts.sample ?? 5, opts.seed)) {
    const bytes = await readFile(path, { signal: opts.signal });
    const f = byPath.get(path)!;
    if (bytes === undefined) out.push(problem(`content.files[${path}]`, 'mismatch', 'not in the checkout'));
    else if (bytes.length !== f.bytes || sha256Hex(bytes) !== f.sha256) out.push(problem(`content.files[${path}]`, 'mismatch', 'size or sha256 differs from the checkout'));
  }
  return verification(out);
}
