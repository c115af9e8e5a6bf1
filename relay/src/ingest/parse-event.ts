// Shape checks on an event from the wire, before any cryptography. Returns a clean
// canonical object (exactly the seven NIP-01 fields) or the reason it is unusable.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export type EventParse = { ok: true; event: NostrEvent } | { ok: false; id?: string; message: string };

/**
 * Why `raw` does not have the NIP-01 event shape (lowercase hex id/pubkey and sig of the
 * right lengths, non-negative safe-integer created_at, integer kind 0–65535, string
 * content, tags an array of arrays of strings), with the `invalid:` prefix; null when it
 * does. Allocates nothing, never throws: the single shape check of ingest and verification.
 */
export function eventShapeProblem(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'invalid: event must be a JSON object';
  const e = raw as Record<string, unknown>;
  if (typeof e.id !== 'string' || !HEX64.test(e.id)) return 'invalid: id must be 64 lowercase hex characters';
  if (typeof e.pubkey !== 'string' || !HEX64.test(e.pubkey)) return 'invalid: pubkey must be 64 lowercase hex characters';
  if (typeof e.sig !== 'string' || !HEX128.test(e.sig)) return 'invalid: sig must be 128 lowercase hex characters';
  if (typeof e.created_at !== 'number' || !Number.isSafeInteger(e.created_at) || e.created_at < 0) return 'invalid: created_at must be a non-negative integer';
  if (typeof e.kind !== 'number' || !Number.isInteger(e.kind) || e.kind < 0 || e.kind > 65535) return 'invalid: kind must be an integer between 0 and 65535';
  if (typeof e.content !== 'string') return 'invalid: content must be a string';
  if (!Array.isArray(e.tags)) return 'invalid: tags must be an array';
  for (const t of e.tags) {
    if (!Array.isArray(t)) return 'invalid: each tag must be an array of strings';
    for (const v of t) if (typeof v !== 'string') return 'invalid: each tag must be an array of strings';
  }
  return null;
}

export function parseEvent(raw: unknown): EventParse {
  const message = eventShapeProblem(raw);
  if (message !== null) {
    const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    return typeof id === 'string' && HEX64.test(id) ? { ok: false, id, message } : { ok: false, message };
  }
  const e = raw as NostrEvent;
  return { ok: true, event: { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig } };
}

/** Pull a plausible event id out of a message too large to parse, so the reply can be an OK. */
export function sniffEventId(text: string): string | undefined {
  const m = /"id"\s*:\s*"([0-9a-f]{64})"/.exec(text.length > 4096 ? text.slice(0, 4096) : text);
  return m?.[1];
}
