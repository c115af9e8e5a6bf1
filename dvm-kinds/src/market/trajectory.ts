// A job's trajectory over Nostr: how an arbiter asks a provider for the log its result's
// `trajectory_sha256` tag commits to, and how the provider answers, NIP-44 encrypted to the
// arbiter alone, in parts small enough for any relay.
//
//   request  kind 39304 (addressable, by the arbiter, d = job request id):
//            ["e", request id, "", "request"], ["p", provider, "", "provider"],
//            ["a", "39300:<buyer>:<request id>"] (the dispute it is for); content empty
//   answer   kind 39305 (addressable, by the provider, d = "<request id>:<arbiter>:<part>"), one event per part:
//            ["e", request id, "", "request"], ["p", arbiter], ["part", i, n],
//            ["trajectory_sha256", hex of the whole log], ["encrypted"];
//            content = NIP-44 v2 (provider → arbiter) of part i of the log's UTF-8 text
//   refusal  the same kind with d = "<request id>:<arbiter>:0", ["part", "0", "1"], ["status", "error", reason], content empty
//
// The arbiter is part of `d` so that answers to two arbiters of one job never replace each other.
//
// Parts split the text on character boundaries, each at most TRAJECTORY_PART_BYTES of UTF-8,
// so the concatenation of the decrypted parts is the log byte for byte and its sha256 must
// equal the result's `trajectory_sha256`. At most MAX_TRAJECTORY_PARTS parts.
import * as nip44 from 'nostr-tools/nip44';
import type { EventTemplate } from '../nostr.ts';
import { isHex64, sha256Hex } from '../hash.ts';
import { fail, ok, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { DISPUTE_KIND, readJobRef, readMarked } from './dispute.ts';

export const TRAJECTORY_REQUEST_KIND = 39304;
export const TRAJECTORY_KIND = 39305;
/** Plaintext bytes per part: ~44 KB of NIP-44 base64, under the 64 KiB event limit of common relays. */
export const TRAJECTORY_PART_BYTES = 32 * 1024;
export const MAX_TRAJECTORY_PARTS = 256;

export interface TrajectoryRequest {
  readonly id?: string;
  /** The arbiter. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly provider: string;
  /** `39300:<buyer>:<request id>`. */
  readonly dispute: string;
  readonly buyer: string;
}

export function buildTrajectoryRequest(r: { requestId: string; provider: string; buyer: string; createdAt?: number }): EventTemplate {
  return {
    kind: TRAJECTORY_REQUEST_KIND,
    created_at: r.createdAt ?? nowSecs(),
    content: '',
    tags: [['d', r.requestId], ['e', r.requestId, '', 'request'], ['p', r.provider, '', 'provider'], ['a', `${DISPUTE_KIND}:${r.buyer}:${r.requestId}`]],
  };
}

export function parseTrajectoryRequest(e: EventLike): Parsed<TrajectoryRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, TRAJECTORY_REQUEST_KIND, out, 'trajectory request');
  const requestId = readJobRef(e.tags, out);
  const provider = readMarked(e.tags, 'p', 'provider', out);
  const a = readSingleTag(e.tags, 'a', out, true)?.[1];
  const m = /^39300:([0-9a-f]{64}):([0-9a-f]{64})$/.exec(a ?? '');
  if (a !== undefined && (!m || m[2] !== requestId)) out.push(problem('tags.a', 'mismatch', `must be ${DISPUTE_KIND}:<buyer>:<request id>`));
  return result(out, () => ({ ...(e.id !== undefined ? { id: e.id } : {}), ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}), createdAt: e.created_at, requestId: requestId!, provider: provider!, dispute: a!, buyer: m![1] }));
}

/** The `d` of a trajectory part: one coordinate per job, arbiter and part. */
export const trajectoryPartD = (requestId: string, arbiter: string, part: number): string => `${requestId}:${arbiter}:${part}`;

/** Splits text on character boundaries into parts of at most `maxBytes` UTF-8 bytes. */
export function splitUtf8(text: string, maxBytes = TRAJECTORY_PART_BYTES): string[] {
  const enc = new TextEncoder();
  const parts: string[] = [];
  let cur = '';
  let curBytes = 0;
  for (const ch of text) {
    const n = enc.encode(ch).length;
    if (curBytes + n > maxBytes && cur) {
      parts.push(cur);
      cur = '';
      curBytes = 0;
    }
    cur += ch;
    curBytes += n;
  }
  if (cur || !parts.length) parts.push(cur);
  return parts;
}

/** The answer: one event per part, each encrypted from the provider to the arbiter. */
export function buildTrajectoryParts(t: { requestId: string; arbiter: string; text: string; createdAt?: number }, providerSecretKey: Uint8Array): Parsed<EventTemplate[]> {
  if (!isHex64(t.arbiter)) return fail([problem('arbiter', 'invalid', 'the arbiter is a 64-char hex pubkey')]);
  const parts = splitUtf8(t.text);
  if (parts.length > MAX_TRAJECTORY_PARTS) return fail([problem('text', 'invalid', `the trajectory needs ${parts.length} parts, at most ${MAX_TRAJECTORY_PARTS}`)]);
  const sha = sha256Hex(t.text);
  const key = nip44.v2.utils.getConversationKey(providerSecretKey, t.arbiter);
  const at = t.createdAt ?? nowSecs();
  return ok(parts.map((p, i) => ({
    kind: TRAJECTORY_KIND,
    created_at: at,
    // NIP-44 has no empty plaintext: an empty log travels as an empty content.
    content: p === '' ? '' : nip44.v2.encrypt(p, key),
    tags: [['d', trajectoryPartD(t.requestId, t.arbiter, i)], ['e', t.requestId, '', 'request'], ['p', t.arbiter], ['part', String(i), String(parts.length)], ['trajectory_sha256', sha], ['encrypted']],
  })));
}

/** A refusal (no such job, not an arbiter of it, no log kept). */
export function buildTrajectoryRefusal(t: { requestId: string; arbiter: string; reason: string; createdAt?: number }): EventTemplate {
  return {
    kind: TRAJECTORY_KIND,
    created_at: t.createdAt ?? nowSecs(),
    content: '',
    tags: [['d', trajectoryPartD(t.requestId, t.arbiter, 0)], ['e', t.requestId, '', 'request'], ['p', t.arbiter], ['part', '0', '1'], ['status', 'error', t.reason.slice(0, 500)]],
  };
}

export interface TrajectoryPart {
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly arbiter: string;
  readonly part: number;
  readonly parts: number;
  readonly sha256?: string;
  /** A refusal's reason. */
  readonly error?: string;
  readonly content: string;
}

export function parseTrajectoryPart(e: EventLike): Parsed<TrajectoryPart> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, TRAJECTORY_KIND, out, 'trajectory');
  const requestId = readMarked(e.tags, 'e', 'request', out);
  const arbiter = readSingleTag(e.tags, 'p', out, true)?.[1];
  if (arbiter !== undefined && !isHex64(arbiter)) out.push(problem('tags.p', 'invalid', 'the arbiter is a 64-char hex pubkey'));
  const pt = readSingleTag(e.tags, 'part', out, true);
  const part = parseUint(pt?.[1]);
  const parts = parseUint(pt?.[2]);
  if (pt && (part === undefined || parts === undefined || parts < 1 || parts > MAX_TRAJECTORY_PARTS || part >= parts)) out.push(problem('tags.part', 'invalid', `["part", i, n] with 0 ≤ i < n ≤ ${MAX_TRAJECTORY_PARTS}`));
  const d = readSingleTag(e.tags, 'd', out, true)?.[1];
  if (d !== undefined && requestId !== undefined && arbiter !== undefined && part !== undefined && d !== trajectoryPartD(requestId, arbiter, part)) out.push(problem('tags.d', 'mismatch', 'd must be "<request id>:<arbiter>:<part>"'));
  const status = readSingleTag(e.tags, 'status', out, false);
  const error = status?.[1] === 'error' ? status[2] ?? 'refused' : undefined;
  const sha = readSingleTag(e.tags, 'trajectory_sha256', out, error === undefined)?.[1];
  if (sha !== undefined && !isHex64(sha)) out.push(problem('tags.trajectory_sha256', 'invalid', 'must be 64-char lowercase hex'));
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: requestId!,
    arbiter: arbiter!,
    part: part!,
    parts: parts!,
    ...(sha !== undefined ? { sha256: sha } : {}),
    ...(error !== undefined ? { error } : {}),
    content: e.content,
  }));
}

export type Assembled = { readonly complete: false; readonly have: number; readonly parts: number } | { readonly complete: true; readonly text: string; readonly sha256: string; readonly claimedSha256: string } | { readonly complete: true; readonly refused: string };

/**
 * Puts the parts of one answer back together (the newest answer wins: parts of an older one with
 * another hash or count are ignored), decrypting each with the arbiter's key. Returns
 * `complete: false` while parts are missing; a refusal is complete. `sha256` is computed from the
 * text (what the parts claim is `claimedSha256`); the caller compares it with the result's `trajectory_sha256`.
 */
export function assembleTrajectory(events: readonly (EventLike & { pubkey: string })[], arbiterSecretKey: Uint8Array): Parsed<Assembled> {
  const parsed = events.map((e) => ({ e, p: parseTrajectoryPart(e) })).filter((x): x is { e: EventLike & { pubkey: string }; p: { ok: true; value: TrajectoryPart } } => x.p.ok);
  if (!parsed.length) return ok({ complete: false, have: 0, parts: 0 });
  const newest = parsed.reduce((a, b) => (b.p.value.createdAt > a.p.value.createdAt ? b : a));
  if (newest.p.value.error !== undefined) return ok({ complete: true, refused: newest.p.value.error });
  const { sha256, parts } = newest.p.value;
  const byPart = new Map<number, { e: EventLike & { pubkey: string }; v: TrajectoryPart }>();
  for (const x of parsed) if (x.p.value.sha256 === sha256 && x.p.value.parts === parts && x.e.pubkey === newest.e.pubkey) byPart.set(x.p.value.part, { e: x.e, v: x.p.value });
  if (byPart.size < parts) return ok({ complete: false, have: byPart.size, parts });
  const key = nip44.v2.utils.getConversationKey(arbiterSecretKey, newest.e.pubkey);
  let text = '';
  for (let i = 0; i < parts; i++) {
    const c = byPart.get(i)!.v.content;
    try {
      text += c === '' ? '' : nip44.v2.decrypt(c, key);
    } catch (err) {
      return fail([problem(`part[${i}]`, 'invalid', `cannot decrypt: ${(err as Error).message}`)]);
    }
  }
  return ok({ complete: true, text, sha256: sha256Hex(text), claimedSha256: sha256! });
}

/** The `trajectory_sha256` a result commits to, if any. */
export const resultTrajectorySha256 = (result: EventLike): string | undefined => {
  const v = tagsNamed(result.tags, 'trajectory_sha256')[0]?.[1];
  return isHex64(v) ? v : undefined;
};
