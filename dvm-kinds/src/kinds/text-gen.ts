// 5050 TextGen: a text prompt in, generated text out (the NIP-90 text-generation kind).
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { buildJobRequest, buildJobResult, decodeParams, encodeParams, readJobRequest, parseJobResult, type JobInput, type JobRequestCommon, type JobRequestEnvelope, type JobResultCommon, type JobResultEnvelope } from '../job.ts';
import { fail, problem, result, type Parsed, type Problem } from '../problem.ts';
import { JSON_SCHEMA_DIALECT, type JsonSchema } from '../schema.ts';
import { shapeProblems, type EventLike } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const TEXT_GEN_KIND = 5050;
export const TEXT_GEN_RESULT_KIND = 6050;

export const textGenParamsSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5050/params.json',
  title: 'TextGen params',
  type: 'object',
  // NIP-90 lets clients add application-specific params to 5050: kept as strings, never rejected.
  additionalProperties: { type: 'string' },
  properties: {
    model: { description: 'Model name; the provider picks when absent', type: 'string', minLength: 1, maxLength: 256 },
    max_tokens: { type: 'integer', minimum: 1, maximum: 1000000 },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    top_p: { type: 'number', minimum: 0, maximum: 1 },
    top_k: { type: 'integer', minimum: 1 },
    frequency_penalty: { type: 'number', minimum: -2, maximum: 2 },
    system: { description: 'System prompt', type: 'string', maxLength: 100000 },
  },
} as const satisfies JsonSchema;

export const textGenResultSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5050/result.json',
  title: 'TextGen result (the event content)',
  type: 'string',
} as const satisfies JsonSchema;

export interface TextGenParams {
  readonly model?: string;
  readonly max_tokens?: number;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly top_k?: number;
  readonly frequency_penalty?: number;
  readonly system?: string;
  /** Application-specific params, as strings. */
  readonly [extra: string]: string | number | undefined;
}

export interface TextGenRequest {
  readonly envelope: JobRequestEnvelope;
  /** The prompt: a text input's data, or a reference (url / event / job) to fetch it from. */
  readonly prompt: JobInput;
  readonly params: TextGenParams;
}

export interface TextGenRequestInput extends JobRequestCommon {
  readonly prompt: string | JobInput;
  readonly params?: TextGenParams;
}

export function buildTextGenRequest(input: TextGenRequestInput): EventTemplate {
  const prompt: JobInput = typeof input.prompt === 'string' ? { data: input.prompt, type: 'text' } : input.prompt;
  return buildJobRequest(TEXT_GEN_KIND, [prompt], encodeParams((input.params ?? {}) as Record<string, unknown>, textGenParamsSchema), input);
}

export function parseTextGenRequest(e: EventLike): Parsed<TextGenRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems: out } = readJobRequest(e, TEXT_GEN_KIND);
  if (envelope.encrypted) return fail([...out, problem('content', 'encrypted', 'inputs and params are encrypted: open the request with the provider key first')]);
  const { value, problems: paramProblems } = decodeParams(envelope.params, textGenParamsSchema);
  out.push(...paramProblems);
  const inputs = envelope.inputs;
  if (inputs.length === 0) out.push(problem('tags.i', 'missing', 'a prompt input is required (["i", "<prompt>", "text"])'));
  if (inputs.length > 1) out.push(problem('tags.i', 'unexpected', 'exactly one prompt input'));
  return result(out, () => ({ envelope, prompt: inputs[0], params: value as TextGenParams }));
}

export interface TextGenResult {
  readonly envelope: JobResultEnvelope;
  readonly text: string;
}

export function buildTextGenResult(request: NostrEvent, text: string, common?: JobResultCommon): EventTemplate {
  return buildJobResult(request, text, [], common);
}

export function parseTextGenResult(e: EventLike): Parsed<TextGenResult> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const env = parseJobResult(e, TEXT_GEN_RESULT_KIND);
  if (!env.ok) return env;
  return result([], () => ({ envelope: env.value, text: e.content }));
}

/** TextGen cannot be checked mechanically: only that it answers the request and is not empty. */
export function verifyTextGen(request: TextGenRequest, res: TextGenResult): Verification {
  const out: Problem[] = [];
  if (request.envelope.id !== undefined && res.envelope.requestId !== request.envelope.id) out.push(problem('tags.e', 'mismatch', 'the result answers another request'));
  if (!res.envelope.encrypted && res.text.trim() === '') out.push(problem('content', 'missing', 'the generated text is empty'));
  return verification(out);
}
