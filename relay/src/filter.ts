// NIP-01 filters: validation of what clients send, and the exact matcher used for
// live delivery (every delivered event is checked against the full filter).
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';

const HEX64 = /^[0-9a-f]{64}$/;
const TAG_KEY = /^#[a-zA-Z]$/;

export type FilterCheck = { ok: true; filter: Filter } | { ok: false; message: string };

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * Validate one filter from the wire. Returns a clean copy (unknown-but-harmless
 * keys dropped) or a reason with the `invalid:` prefix. `limit` is clamped by the caller.
 */
export function checkFilter(raw: unknown, maxValues = 1000): FilterCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, message: 'invalid: a filter must be a JSON object' };
  const out: Filter = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case 'ids':
      case 'authors': {
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && HEX64.test(x))) return { ok: false, message: `invalid: "${key}" must be an array of 64-character lowercase hex strings` };
        if (v.length > maxValues) return { ok: false, message: `invalid: "${key}" has more than ${maxValues} values` };
        out[key] = v as string[];
        break;
      }
      case 'kinds': {
        if (!Array.isArray(v) || !v.every((x) => isUint(x) && x <= 65535)) return { ok: false, message: 'invalid: "kinds" must be an array of integers 0-65535' };
        if (v.length > maxValues) return { ok: false, message: `invalid: "kinds" has more than ${maxValues} values` };
        out.kinds = v as number[];
        break;
      }
      case 'since':
      case 'until':
      case 'limit': {
        if (!isUint(v)) return { ok: false, message: `invalid: "${key}" must be a non-negative integer` };
        out[key] = v;
        break;
      }
      case 'search':
        return { ok: false, message: 'unsupported: search (NIP-50) is not supported by this relay' };
      default: {
        if (key.startsWith('#')) {
          if (!TAG_KEY.test(key)) return { ok: false, message: `unsupported: tag filter "${key}" (only single-letter tags are indexed)` };
          if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return { ok: false, message: `invalid: "${key}" must be an array of strings` };
          if (v.length > maxValues) return { ok: false, message: `invalid: "${key}" has more than ${maxValues} values` };
          out[key as `#${string}`] = v as string[];
        }
        // Other unknown keys are ignored, as most relays do.
      }
    }
  }
  return { ok: true, filter: out };
}

/** Does `event` match `filter`? (NIP-01; `limit` is irrelevant here.) */
export function matchFilter(filter: Filter, event: NostrEvent): boolean {
  if (filter.ids && !filter.ids.includes(event.id)) return false;
  if (filter.authors && !filter.authors.includes(event.pubkey)) return false;
  if (filter.kinds && !filter.kinds.includes(event.kind)) return false;
  if (filter.since !== undefined && event.created_at < filter.since) return false;
  if (filter.until !== undefined && event.created_at > filter.until) return false;
  for (const key in filter) {
    if (key.charCodeAt(0) !== 35 /* # */) continue;
    const values = filter[key as `#${string}`];
    if (!values) continue;
    const name = key.slice(1);
    let hit = false;
    for (const t of event.tags) {
      if (t[0] === name && t.length > 1 && values.includes(t[1])) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  return true;
}

export const matchFilters = (filters: readonly Filter[], event: NostrEvent): boolean => filters.some((f) => matchFilter(f, event));
