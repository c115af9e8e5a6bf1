// The NIP-90 envelope shared by every job kind: request (5000-5999), result (request kind + 1000).
// Kind modules add their params/inputs/content on top; nothing here knows a particular kind.
import type { EventTemplate, NostrEvent } from './nostr.ts';
import { isHex64 } from './hash.ts';
import { fail, problem, type Parsed, type Problem, result } from './problem.ts';
import { validateSchema, type JsonSchema } from './schema.ts';
import { amountTag, checkKind, isRelayUrl, nowSecs, parseDecimal, readAmount, readUintTag, shapeProblems, tagsNamed, type Amount, type EventLike, type Tag } from './tags.ts';

export const isJobRequestKind = (k: number): boolean => k >= 5000 && k <= 5999;
export const isJobResultKind = (k: number): boolean => k >= 6000 && k <= 6999;
export const resultKindFor = (requestKind: number): number => requestKind + 1000;

/** NIP-40: true when the request has expired at `nowSecs` — a provider never starts such a job. */
export const isRequestExpired = (r: { readonly expiration?: number }, nowSecs: number): boolean => r.expiration !== undefined && r.expiration <= nowSecs;

export const INPUT_TYPES = ['url', 'event', 'job', 'text'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

/** `["i", data, type, relay?, marker?]` */
export interface JobInput {
  readonly data: string;
  readonly type: InputType;
  readonly relay?: string;
  readonly marker?: string;
}

/** Fields every job request may carry (all optional at the envelope level). */
export interface JobRequestCommon {
  /** Millisats the customer is willing to pay (`bid`). */
  readonly bidMsats?: number;
  /** Relays where the provider should publish feedback and results. */
  readonly relays?: readonly string[];
  /** Providers the customer wants to serve the job (`p`); empty = open to all. */
  readonly providers?: readonly string[];
  /** NIP-40 expiration (unix seconds): providers never start an expired job. */
  readonly expiration?: number;
  /** Requested output MIME type. */
  readonly output?: string;
  readonly createdAt?: number;
}

export interface JobRequestEnvelope extends Required<Pick<JobRequestCommon, 'relays' | 'providers'>> {
  readonly id?: string;
  readonly pubkey?: string;
  readonly kind: number;
  readonly createdAt: number;
  readonly content: string;
  readonly inputs: readonly JobInput[];
  /** `["param", name, value]` tags in order; names may repeat. */
  readonly params: readonly (readonly [string, string])[];
  readonly output?: string;
  readonly bidMsats?: number;
  readonly expiration?: number;
  /** True when inputs and params are NIP-44 encrypted in `content` (see private.ts). */
  readonly encrypted: boolean;
}

export function inputTag(i: JobInput): string[] {
  const t = ['i', i.data, i.type];
  if (i.relay !== undefined || i.marker !== undefined) t.push(i.relay ?? '');
  if (i.marker !== undefined) t.push(i.marker);
  return t;
}

export function commonRequestTags(c: JobRequestCommon): string[][] {
  const tags: string[][] = [];
  if (c.output !== undefined) tags.push(['output', c.output]);
  if (c.bidMsats !== undefined) tags.push(['bid', String(c.bidMsats)]);
  if (c.relays?.length) tags.push(['relays', ...c.relays]);
  for (const p of c.providers ?? []) tags.push(['p', p]);
  if (c.expiration !== undefined) tags.push(['expiration', String(c.expiration)]);
  return tags;
}

/** Build a NIP-90 job request template from already-encoded inputs and params. */
export function buildJobRequest(kind: number, inputs: readonly JobInput[], params: readonly (readonly [string, string])[], common: JobRequestCommon, content = ''): EventTemplate {
  return {
    kind,
    created_at: common.createdAt ?? nowSecs(),
    content,
    tags: [...inputs.map(inputTag), ...params.map(([k, v]) => ['param', k, v]), ...commonRequestTags(common)],
  };
}

/** Parse the NIP-90 request envelope. `expectedKind` narrows the accepted kind. */
export function parseJobRequest(e: EventLike, expectedKind?: number): Parsed<JobRequestEnvelope> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems } = readJobRequest(e, expectedKind);
  return result(problems, () => envelope);
}

/** Best-effort read of the envelope plus its problems, so kind parsers can report everything at once. */
export function readJobRequest(e: EventLike, expectedKind?: number): { envelope: JobRequestEnvelope; problems: Problem[] } {
  const shape = shapeProblems(e);
  if (shape.length) return { envelope: { kind: -1, createdAt: 0, content: '', inputs: [], params: [], relays: [], providers: [], encrypted: false }, problems: shape };
  const out: Problem[] = [];
  checkKind(e, expectedKind ?? isJobRequestKind, out, 'job request');
  const encrypted = e.tags.some((t) => t[0] === 'encrypted');
  const inputs: JobInput[] = [];
  tagsNamed(e.tags, 'i').forEach((t, n) => {
    const path = `tags.i[${n}]`;
    const [, data, type, relay, marker] = t;
    if (data === undefined) return void out.push(problem(path, 'invalid', 'input tag has no data'));
    if (!(INPUT_TYPES as readonly string[]).includes(type ?? '')) return void out.push(problem(path, 'invalid', `input type must be one of ${INPUT_TYPES.join(', ')}, got ${JSON.stringify(type ?? null)}`));
    if ((type === 'event' || type === 'job') && !isHex64(data)) out.push(problem(path, 'invalid', `an ${type} input must be a 64-char lowercase hex event id`));
    if (relay && !isRelayUrl(relay)) out.push(problem(path, 'invalid', `relay hint must be a ws(s):// URL, got ${JSON.stringify(relay)}`));
    inputs.push({ data, type: type as InputType, ...(relay ? { relay } : {}), ...(marker ? { marker } : {}) });
  });
  const params: [string, string][] = [];
  tagsNamed(e.tags, 'param').forEach((t, n) => {
    if (typeof t[1] !== 'string' || t[1] === '' || typeof t[2] !== 'string') out.push(problem(`tags.param[${n}]`, 'invalid', 'a param tag is ["param", "<name>", "<value>"]'));
    else params.push([t[1], t[2]]);
  });
  const outputTags = tagsNamed(e.tags, 'output');
  if (outputTags.length > 1) out.push(problem('tags.output', 'unexpected', 'only one "output" tag is allowed'));
  const bidMsats = readUintTag(e.tags, 'bid', out, false);
  const expiration = readUintTag(e.tags, 'expiration', out, false);
  const relays: string[] = [];
  for (const t of tagsNamed(e.tags, 'relays')) {
    for (const r of t.slice(1)) {
      if (isRelayUrl(r)) relays.push(r);
      else out.push(problem('tags.relays', 'invalid', `relay must be a ws(s):// URL, got ${JSON.stringify(r)}`));
    }
  }
  const providers: string[] = [];
  for (const t of tagsNamed(e.tags, 'p')) {
    if (isHex64(t[1])) providers.push(t[1]);
    else out.push(problem('tags.p', 'invalid', `provider must be a 64-char lowercase hex pubkey, got ${JSON.stringify(t[1] ?? null)}`));
  }
  if (encrypted && providers.length !== 1) out.push(problem('tags.p', providers.length ? 'unexpected' : 'missing', 'an encrypted request names exactly one provider'));
  const envelope: JobRequestEnvelope = {
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    kind: e.kind,
    createdAt: e.created_at,
    content: e.content,
    inputs,
    params,
    ...(outputTags[0]?.[1] !== undefined ? { output: outputTags[0][1] } : {}),
    ...(bidMsats !== undefined ? { bidMsats } : {}),
    relays,
    providers,
    ...(expiration !== undefined ? { expiration } : {}),
    encrypted,
  };
  return { envelope, problems: out };
}

// ---- params codec: a kind's params schema drives how `param` tags become an object ----

/**
 * Turn `param` tags into an object following `schema`: array properties collect repeated
 * params in order, integer/number/boolean properties are decoded from their string form.
 * Params the schema does not know are not problems (NIP-90 clients send application params
 * such as `model`; a provider ignores what it does not know): a schema that allows extra
 * properties keeps them as strings, a closed one leaves them out of `value` and lists their
 * names in `ignored`. Repeats of single-valued params are problems. Then the schema is checked.
 */
export function decodeParams(params: readonly (readonly [string, string])[], schema: JsonSchema): { value: Record<string, unknown>; problems: Problem[]; ignored: string[] } {
  const out: Problem[] = [];
  const value: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [name, raw] of params) {
    const path = `tags.param[${name}]`;
    const prop = schema.properties?.[name];
    if (!prop) {
      if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) {
        if (!Object.hasOwn(value, name)) value[name] = raw;
      } else if (!ignored.includes(name)) ignored.push(name);
      continue;
    }
    const isArray = prop.type === 'array';
    const itemType = isArray ? prop.items?.type : prop.type;
    let decoded: unknown = raw;
    if (itemType === 'integer') decoded = /^-?\d{1,16}$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : undefined;
    else if (itemType === 'number') decoded = parseDecimal(raw);
    else if (itemType === 'boolean') decoded = raw === 'true' ? true : raw === 'false' ? false : undefined;
    if (decoded === undefined) {
      out.push(problem(path, 'invalid', `must be ${itemType === 'boolean' ? 'true or false' : `a decimal ${itemType}`}, got ${JSON.stringify(raw)}`));
      continue;
    }
    if (isArray) ((value[name] ??= []) as unknown[]).push(decoded);
    else if (Object.hasOwn(value, name)) out.push(problem(path, 'unexpected', 'may appear only once'));
    else value[name] = decoded;
  }
  const flagged = new Set(out.map((p) => p.path));
  for (const p of validateSchema(schema, value)) {
    const path = `tags.param[${p.path.split(/[.[]/)[0]}]`;
    if (!flagged.has(path)) out.push(problem(path, p.code, `${p.path} ${p.message}`));
  }
  return { value, problems: out, ignored };
}

/** The inverse of decodeParams: an object into ordered `param` pairs (arrays repeat the name). */
export function encodeParams(value: Readonly<Record<string, unknown>>, schema: JsonSchema): [string, string][] {
  const out: [string, string][] = [];
  for (const name of Object.keys(schema.properties ?? {})) {
    const v = value[name];
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) out.push([name, String(item)]);
  }
  return out;
}

// ---- result envelope ----

export interface JobResultEnvelope {
  readonly id?: string;
  readonly pubkey?: string;
  readonly kind: number;
  readonly requestKind: number;
  readonly createdAt: number;
  readonly content: string;
  /** The job request event id (`e`). */
  readonly requestId: string;
  readonly requestRelay?: string;
  /** The customer (`p`). */
  readonly customer: string;
  /** The original request, when included as a `request` tag. */
  readonly request?: NostrEvent;
  readonly inputs: readonly JobInput[];
  /** Pay-after-verify: what the provider asks for, with an optional bolt11. */
  readonly amount?: Amount;
  readonly encrypted: boolean;
}

export interface JobResultCommon {
  readonly amount?: Amount;
  /** Relay hint for the request, put on the `e` tag. */
  readonly relay?: string;
  readonly createdAt?: number;
  /** Leave out the `request` tag (NIP-90 makes it optional; always left out for private jobs). */
  readonly omitRequest?: boolean;
}

/** Build a NIP-90 result template answering `request` (a signed event). */
export function buildJobResult(request: NostrEvent, content: string, extraTags: readonly string[][], common: JobResultCommon = {}): EventTemplate {
  const tags: string[][] = [];
  if (!common.omitRequest) tags.push(['request', JSON.stringify(request)]);
  tags.push(common.relay ? ['e', request.id, common.relay] : ['e', request.id]);
  if (!common.omitRequest) for (const t of request.tags) if (t[0] === 'i') tags.push([...t]);
  tags.push(['p', request.pubkey]);
  if (common.amount) tags.push(amountTag(common.amount));
  tags.push(...extraTags);
  return { kind: resultKindFor(request.kind), created_at: common.createdAt ?? nowSecs(), content, tags };
}

function looksLikeEvent(v: unknown): v is NostrEvent {
  const e = v as NostrEvent;
  return typeof e === 'object' && e !== null && typeof e.id === 'string' && typeof e.pubkey === 'string' && typeof e.kind === 'number' && Array.isArray(e.tags) && typeof e.content === 'string' && typeof e.created_at === 'number';
}

export function parseJobResult(e: EventLike, expectedKind?: number): Parsed<JobResultEnvelope> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, expectedKind ?? isJobResultKind, out, 'job result');
  const eTag = tagsNamed(e.tags, 'e')[0];
  if (!eTag) out.push(problem('tags.e', 'missing', 'a result references its request with an "e" tag'));
  else if (!isHex64(eTag[1])) out.push(problem('tags.e', 'invalid', 'request id must be a 64-char lowercase hex event id'));
  const pTags = tagsNamed(e.tags, 'p');
  let pTag = pTags[0];
  if (!pTag) out.push(problem('tags.p', 'missing', 'a result names its customer with a "p" tag'));
  else if (!isHex64(pTag[1])) out.push(problem('tags.p', 'invalid', 'customer must be a 64-char lowercase hex pubkey'));
  let request: NostrEvent | undefined;
  const reqTag = tagsNamed(e.tags, 'request')[0];
  if (reqTag) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(reqTag[1] ?? '');
    } catch {
      parsed = undefined;
    }
    if (!looksLikeEvent(parsed)) out.push(problem('tags.request', 'invalid', 'must be the stringified job request event'));
    else {
      request = parsed;
      if (eTag && parsed.id !== eTag[1]) out.push(problem('tags.request', 'mismatch', 'the included request id differs from the "e" tag'));
      if (parsed.kind + 1000 !== e.kind) out.push(problem('tags.request', 'mismatch', `a kind ${e.kind} result answers kind ${e.kind - 1000}, the included request is kind ${parsed.kind}`));
      // Some clients (NDK's tag()) also copy the request's own p tags, before the customer's:
      // with an included request, the customer is the p tag naming its author.
      const customer = pTags.find((t) => t[1] === parsed.pubkey);
      if (customer) pTag = customer;
      else if (pTag) out.push(problem('tags.request', 'mismatch', 'the included request author is not named in a "p" tag'));
    }
  }
  const amount = readAmount(e.tags, out);
  const inputs: JobInput[] = [];
  for (const t of tagsNamed(e.tags, 'i')) {
    if (t[1] !== undefined && (INPUT_TYPES as readonly string[]).includes(t[2] ?? '')) inputs.push({ data: t[1], type: t[2] as InputType, ...(t[3] ? { relay: t[3] } : {}), ...(t[4] ? { marker: t[4] } : {}) });
  }
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    kind: e.kind,
    requestKind: e.kind - 1000,
    createdAt: e.created_at,
    content: e.content,
    requestId: eTag![1],
    ...(eTag![2] ? { requestRelay: eTag![2] } : {}),
    customer: pTag![1],
    ...(request ? { request } : {}),
    inputs,
    ...(amount ? { amount } : {}),
    encrypted: e.tags.some((t: Tag) => t[0] === 'encrypted'),
  }));
}

/** Parse JSON content, recording a problem instead of throwing. */
export function parseJsonContent(content: string, out: Problem[], path = 'content'): unknown {
  try {
    return JSON.parse(content);
  } catch (err) {
    out.push(problem(path, 'invalid', `must be JSON: ${(err as Error).message}`));
    return undefined;
  }
}

