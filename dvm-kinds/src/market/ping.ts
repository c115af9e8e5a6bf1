// Liveness: a ping (kind 7007) to one provider, answered by a `pong` job feedback (kind 7000).
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { isHex64 } from '../hash.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, readUintTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { FEEDBACK_KIND } from '../feedback.ts';

export const PING_KIND = 7007;
export const DEFAULT_PING_TTL_SECS = 60;

export interface Ping {
  readonly id?: string;
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly provider: string;
  readonly expiration?: number;
}

export function buildPing(p: { provider: string; createdAt?: number; ttlSecs?: number }): EventTemplate {
  const created = p.createdAt ?? nowSecs();
  return { kind: PING_KIND, created_at: created, content: '', tags: [['p', p.provider], ['expiration', String(created + (p.ttlSecs ?? DEFAULT_PING_TTL_SECS))]] };
}

export function parsePing(e: EventLike): Parsed<Ping> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, PING_KIND, out, 'ping');
  const p = tagsNamed(e.tags, 'p');
  if (p.length !== 1 || !isHex64(p[0][1])) out.push(problem('tags.p', p.length ? 'invalid' : 'missing', 'a ping names exactly one provider with a hex pubkey "p" tag'));
  const expiration = readUintTag(e.tags, 'expiration', out, false);
  return result(out, () => ({ ...(e.id !== undefined ? { id: e.id } : {}), ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}), createdAt: e.created_at, provider: p[0][1], ...(expiration !== undefined ? { expiration } : {}) }));
}

export interface Pong {
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly pingId: string;
  readonly pinger: string;
  readonly active?: number;
  readonly capacity?: number;
}

/** A pong is kind 7000 `["status", "success", "pong"]` with `["k", "7007"]`, so plain NIP-90 clients read it as feedback. */
export function buildPong(ping: Pick<NostrEvent, 'id' | 'pubkey'>, load?: { active: number; capacity: number }, createdAt?: number): EventTemplate {
  const tags = [['status', 'success', 'pong'], ['k', String(PING_KIND)], ['e', ping.id], ['p', ping.pubkey]];
  if (load) tags.push(['load', String(load.active), String(load.capacity)]);
  return { kind: FEEDBACK_KIND, created_at: createdAt ?? nowSecs(), content: '', tags };
}

export function isPong(e: EventLike): boolean {
  return e.kind === FEEDBACK_KIND && e.tags.some((t) => t[0] === 'k' && t[1] === String(PING_KIND));
}

export function parsePong(e: EventLike): Parsed<Pong> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, FEEDBACK_KIND, out, 'pong');
  if (!isPong(e)) out.push(problem('tags.k', 'missing', 'a pong carries ["k", "7007"]'));
  const st = readSingleTag(e.tags, 'status', out, true);
  if (st && (st[1] !== 'success' || st[2] !== 'pong')) out.push(problem('tags.status', 'invalid', 'a pong has ["status", "success", "pong"]'));
  const eTag = readSingleTag(e.tags, 'e', out, true);
  if (eTag && !isHex64(eTag[1])) out.push(problem('tags.e', 'invalid', 'ping id must be hex'));
  const pTag = readSingleTag(e.tags, 'p', out, true);
  if (pTag && !isHex64(pTag[1])) out.push(problem('tags.p', 'invalid', 'pinger must be a hex pubkey'));
  const load = readSingleTag(e.tags, 'load', out, false);
  const active = parseUint(load?.[1]);
  const capacity = parseUint(load?.[2]);
  if (load && (active === undefined || capacity === undefined)) out.push(problem('tags.load', 'invalid', 'load is ["load", "<active>", "<capacity>"]'));
  return result(out, () => ({ ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}), createdAt: e.created_at, pingId: eTag![1], pinger: pTag![1], ...(load ? { active: active!, capacity: capacity! } : {}) }));
}
