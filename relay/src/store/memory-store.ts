// The reference EventStore: deliberately naive (a list, a linear scan, an obvious
// filter matcher, a sort) so it is easy to believe. It is the oracle the LMDB store
// is checked against in the differential test; never use it for real traffic.
import {
  dTag, isAddressableKind, isReplaceableKind, type Filter, type NostrEvent,
} from '@bazaar/dvm-kinds/nostr';
import type { EventStore, IdScanOptions, PutOutcome, QueryCursor, QueryOptions } from './event-store.ts';
import {
  canonicalJson, compareNewestFirst, effectiveLimit, expirationTs, isExpired, isTagLetter, nowSeconds,
  parseAddress, storeRejection, winsSlot, type LimitOptions,
} from './event-rules.ts';

export interface MemoryStoreOptions extends LimitOptions {
  /** Unix seconds; used to refuse events that arrive already expired. */
  readonly clock?: () => number;
}

interface Stored {
  readonly event: NostrEvent;
  readonly json: string;
  /** Insertion order, as the LMDB store's sequence numbers (the eventsAfter feed). */
  readonly seq: number;
}

/** Plain NIP-01 filter matching, written to be obviously right rather than fast. */
export function matchesFilter(e: NostrEvent, f: Filter): boolean {
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined) continue;
    if (key === 'ids') { if (!Array.isArray(value) || !value.includes(e.id)) return false; }
    else if (key === 'authors') { if (!Array.isArray(value) || !value.includes(e.pubkey)) return false; }
    else if (key === 'kinds') { if (!Array.isArray(value) || !value.includes(e.kind)) return false; }
    else if (key === 'since') { if (typeof value === 'number' && e.created_at < value) return false; }
    else if (key === 'until') { if (typeof value === 'number' && e.created_at > value) return false; }
    else if (key === 'search') return false; // NIP-50 is not supported: match nothing rather than everything
    else if (key.startsWith('#')) {
      const letter = key.slice(1);
      if (!isTagLetter(letter)) return false;
      if (!Array.isArray(value)) return false;
      const wanted: unknown[] = value;
      if (!e.tags.some((t) => t[0] === letter && t.length >= 2 && wanted.includes(t[1]))) return false;
    }
  }
  return true;
}

export function createMemoryStore(opts: MemoryStoreOptions = {}): EventStore & { size(): number } {
  const clock = opts.clock ?? nowSeconds;
  let events: Stored[] = [];
  // NIP-09 tombstones: "<id>:<deleter pubkey>" → whether the deletion carried ["k","1059"].
  const deletedIds = new Map<string, boolean>();
  // NIP-09 `a` deletions: "<kind>:<pubkey>:<d>" → newest deletion created_at.
  const deletedAddrs = new Map<string, number>();
  let closed = false;
  let lastSeq = 0;

  const addressOf = (e: NostrEvent): string | undefined =>
    isReplaceableKind(e.kind) ? `${e.kind}:${e.pubkey}:` : isAddressableKind(e.kind) ? `${e.kind}:${e.pubkey}:${dTag(e)}` : undefined;

  const remove = (ids: Set<string>): void => { events = events.filter((s) => !ids.has(s.event.id)); };

  function isTombstoned(e: NostrEvent): boolean {
    if (e.kind === 5) return false; // deleting a deletion does nothing
    if (deletedIds.has(`${e.id}:${e.pubkey}`)) return true;
    if (e.kind === 1059) {
      for (const t of e.tags) if (t[0] === 'p' && deletedIds.get(`${e.id}:${t[1]}`) === true) return true;
    }
    const addr = addressOf(e);
    if (addr !== undefined) {
      const at = deletedAddrs.get(addr);
      if (at !== undefined && e.created_at <= at) return true;
    }
    return false;
  }

  function applyDeletion(del: NostrEvent): string[] {
    const removed = new Set<string>();
    const giftWrapOk = del.tags.some((t) => t[0] === 'k' && t[1] === '1059');
    for (const t of del.tags) {
      if (t[0] === 'e' && typeof t[1] === 'string' && /^[0-9a-f]{64}$/.test(t[1])) {
        const key = `${t[1]}:${del.pubkey}`;
        deletedIds.set(key, deletedIds.get(key) === true || giftWrapOk);
        const target = events.find((s) => s.event.id === t[1])?.event;
        if (!target || target.kind === 5) continue;
        const byAuthor = target.pubkey === del.pubkey;
        const byRecipient = target.kind === 1059 && giftWrapOk && target.tags.some((p) => p[0] === 'p' && p[1] === del.pubkey);
        if (byAuthor || byRecipient) removed.add(target.id);
      } else if (t[0] === 'a') {
        const a = parseAddress(t[1], isReplaceableKind, isAddressableKind);
        if (!a || a.pubkey !== del.pubkey) continue;
        const key = `${a.kind}:${a.pubkey}:${a.d}`;
        deletedAddrs.set(key, Math.max(deletedAddrs.get(key) ?? -1, del.created_at));
        for (const s of events) {
          if (addressOf(s.event) === key && s.event.created_at <= del.created_at) removed.add(s.event.id);
        }
      }
    }
    remove(removed);
    return [...removed];
  }

  function putOne(e: NostrEvent, now: number): PutOutcome {
    const rejection = storeRejection(e, now);
    if (rejection !== undefined) return { status: 'rejected', message: rejection };
    if (events.some((s) => s.event.id === e.id)) return { status: 'duplicate' };
    if (isTombstoned(e)) return { status: 'deleted' };
    const removed: string[] = [];
    const addr = addressOf(e);
    if (addr !== undefined) {
      const current = events.filter((s) => addressOf(s.event) === addr);
      // An expired holder counts as gone (as once purged).
      if (current.some((s) => !isExpired(expirationTs(s.event), now) && !winsSlot(e, s.event))) return { status: 'replaced' };
      remove(new Set(current.map((s) => s.event.id)));
      removed.push(...current.map((s) => s.event.id));
    }
    const seq = ++lastSeq;
    events.push({ event: e, json: canonicalJson(e), seq });
    if (e.kind === 5) removed.push(...applyDeletion(e));
    return { status: 'stored', seq, removed };
  }

  function matching(filters: readonly Filter[], now: number, withLimit: boolean, maxSeq = Infinity): Stored[] {
    const out = new Map<string, Stored>();
    for (const f of filters) {
      const limit = effectiveLimit(f.limit, opts);
      const hits = events
        .filter((s) => s.seq <= maxSeq && !isExpired(expirationTs(s.event), now) && matchesFilter(s.event, f))
        .sort((a, b) => compareNewestFirst(a.event, b.event));
      for (const s of withLimit ? hits.slice(0, limit) : hits) out.set(s.event.id, s);
    }
    return [...out.values()].sort((a, b) => compareNewestFirst(a.event, b.event));
  }

  const ensureOpen = (): void => { if (closed) throw new Error('memory store is closed'); };

  /** The oracle does not slice: its cursor answers in its first step, as the store is at that moment. */
  function oneStep<T>(q: QueryOptions, answer: (now: number) => T): QueryCursor<T> {
    ensureOpen(); q.signal?.throwIfAborted();
    let result: { value: T } | undefined;
    return {
      step() { ensureOpen(); result ??= { value: answer(q.now ?? clock()) }; return true; },
      result() { if (!result) throw new Error('query not finished: step() until it returns true'); return result.value; },
    };
  }

  return {
    async put(batch, putOpts) {
      ensureOpen();
      const now = putOpts?.now ?? clock();
      return batch.map((e) => putOne(e, now));
    },
    async query(filters, q: QueryOptions = {}) {
      ensureOpen(); q.signal?.throwIfAborted();
      return matching(filters, q.now ?? clock(), true, q.maxSeq).map((s) => s.json);
    },
    async queryFrames(filters, prefix, suffix, q: QueryOptions = {}) {
      ensureOpen(); q.signal?.throwIfAborted();
      return matching(filters, q.now ?? clock(), true, q.maxSeq).map((s) => Buffer.concat([prefix, Buffer.from(s.json, 'utf8'), suffix]));
    },
    async count(filters, q: QueryOptions = {}) {
      ensureOpen(); q.signal?.throwIfAborted();
      return matching(filters, q.now ?? clock(), false, q.maxSeq).length;
    },
    openQuery: (filters, q = {}) => oneStep(q, (now) => matching(filters, now, true, q.maxSeq).map((s) => s.json)),
    openQueryFrames: (filters, prefix, suffix, q = {}) =>
      oneStep(q, (now) => matching(filters, now, true, q.maxSeq).map((s) => Buffer.concat([prefix, Buffer.from(s.json, 'utf8'), suffix]))),
    openCount: (filters, q = {}) => oneStep(q, (now) => matching(filters, now, false, q.maxSeq).length),
    openIdScan: (filter, sink, q: IdScanOptions = {}) =>
      oneStep(q, (now) => {
        const { limit, ...rest } = filter;
        let hits = matching([rest], now, false, q.maxSeq);
        if (typeof limit === 'number') hits = hits.slice(0, Math.max(0, Math.floor(limit)));
        if (hits.length > (q.maxItems ?? Infinity)) return -1;
        for (const s of hits) sink.add(s.event.created_at, Buffer.from(s.event.id, 'hex'), 0);
        return hits.length;
      }),
    lastSeq: () => lastSeq,
    eventsAfter(afterSeq, limit, wantKind) {
      ensureOpen();
      const page = events.filter((s) => s.seq > afterSeq).sort((a, b) => a.seq - b.seq).slice(0, Math.max(0, limit));
      return {
        events: page.filter((s) => wantKind === undefined || wantKind(s.event.kind)).map((s) => ({ seq: s.seq, kind: s.event.kind, json: s.json })),
        lastSeq: page.length ? page[page.length - 1].seq : afterSeq,
      };
    },
    has(id) { return events.some((s) => s.event.id === id); },
    size() { return events.length; },
    async close() { closed = true; },
  };
}
