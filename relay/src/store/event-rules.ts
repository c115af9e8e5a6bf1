// Pure storage rules shared by both EventStore implementations, so the LMDB store
// and the naive oracle cannot disagree on *what* is accepted, only on *how* it is
// found. Filter matching is deliberately NOT here: each store has its own.
import { expirationOf, isEphemeralKind, type NostrEvent } from '@bazaar/dvm-kinds/nostr';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export const isHex64 = (s: unknown): s is string => typeof s === 'string' && s.length === 64 && HEX64.test(s);

/** The largest created_at / expiration we accept (8-byte big-endian keys; JS-safe). */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/**
 * The exact JSON we store and serve: NIP-01 field order, nothing else. Unknown
 * fields on the input object are dropped, so what we serve is what was signed.
 */
export function canonicalJson(e: NostrEvent): string {
  return JSON.stringify({
    id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig,
  });
}

/** NIP-40 expiration, clamped into the range our keys can hold. */
export function expirationTs(e: Pick<NostrEvent, 'tags'>): number | undefined {
  const x = expirationOf(e);
  return x === undefined ? undefined : Math.min(x, MAX_TIMESTAMP);
}

/** NIP-40: an event is expired from its expiration second on (the time "at which it should be deleted"). */
export const isExpired = (expiration: number | undefined, now: number): boolean => expiration !== undefined && expiration <= now;

/**
 * Reasons the store refuses an event outright (NIP-01 prefixed), or undefined.
 * The relay validates first; this is the store protecting its own invariants.
 */
export function storeRejection(e: NostrEvent, now: number): string | undefined {
  if (e === null || typeof e !== 'object') return 'invalid: event is not an object';
  if (!isHex64(e.id)) return 'invalid: id must be 64 lowercase hex characters';
  if (!isHex64(e.pubkey)) return 'invalid: pubkey must be 64 lowercase hex characters';
  if (typeof e.sig !== 'string' || !HEX128.test(e.sig)) return 'invalid: sig must be 128 lowercase hex characters';
  if (!Number.isSafeInteger(e.created_at) || e.created_at < 0) return 'invalid: created_at must be a non-negative integer';
  if (!Number.isInteger(e.kind) || e.kind < 0 || e.kind > 65535) return 'invalid: kind must be an integer between 0 and 65535';
  if (typeof e.content !== 'string') return 'invalid: content must be a string';
  if (!Array.isArray(e.tags) || !e.tags.every((t) => Array.isArray(t) && t.every((v) => typeof v === 'string'))) {
    return 'invalid: tags must be an array of string arrays';
  }
  if (isEphemeralKind(e.kind)) return 'invalid: ephemeral events are not stored';
  if (isExpired(expirationTs(e), now)) return 'invalid: event has expired';
  return undefined;
}

/** A NIP-01 tag filter letter (`#e`, `#P`, …): exactly one ASCII letter. */
export const isTagLetter = (s: string): boolean => s.length === 1 && /^[a-zA-Z]$/.test(s);

export interface Address {
  readonly kind: number;
  readonly pubkey: string;
  readonly d: string;
}

/**
 * Parse a NIP-09 `a` tag value `kind:pubkey:d`. The d part is everything after the
 * second colon (it may itself contain colons). Only replaceable and addressable
 * kinds have addresses; for replaceable kinds the d part is ignored.
 */
export function parseAddress(value: string | undefined, isReplaceable: (k: number) => boolean, isAddressable: (k: number) => boolean): Address | undefined {
  if (typeof value !== 'string') return undefined;
  const i = value.indexOf(':');
  if (i <= 0) return undefined;
  const j = value.indexOf(':', i + 1);
  if (j < 0) return undefined;
  const kindStr = value.slice(0, i);
  if (!/^\d{1,5}$/.test(kindStr)) return undefined;
  const kind = Number(kindStr);
  const pubkey = value.slice(i + 1, j);
  if (!isHex64(pubkey)) return undefined;
  if (isReplaceable(kind)) return { kind, pubkey, d: '' };
  if (isAddressable(kind)) return { kind, pubkey, d: value.slice(j + 1) };
  return undefined;
}

/** NIP-01 ordering of results: newest first, ties broken by the lowest id. */
export function compareNewestFirst(a: Pick<NostrEvent, 'created_at' | 'id'>, b: Pick<NostrEvent, 'created_at' | 'id'>): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Does `candidate` beat `current` for one replaceable/addressable slot? (newer; equal time → lower id) */
export const winsSlot = (candidate: Pick<NostrEvent, 'created_at' | 'id'>, current: Pick<NostrEvent, 'created_at' | 'id'>): boolean =>
  compareNewestFirst(candidate, current) < 0;

export const DEFAULT_MAX_LIMIT = 500;

export interface LimitOptions {
  /** Upper bound on any filter's `limit` (default 500). */
  readonly maxLimit?: number;
  /** Limit applied when a filter has none (default: maxLimit). */
  readonly defaultLimit?: number;
}

/** The effective per-filter limit: the filter's own (floored, ≥0), else the default, never above the max. */
export function effectiveLimit(limit: unknown, opts: LimitOptions): number {
  const max = opts.maxLimit ?? DEFAULT_MAX_LIMIT;
  const dflt = Math.min(opts.defaultLimit ?? max, max);
  if (typeof limit !== 'number' || Number.isNaN(limit)) return dflt;
  return Math.max(0, Math.min(Math.floor(limit), max));
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
