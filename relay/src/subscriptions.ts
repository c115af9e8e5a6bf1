// Live subscriptions with an inverted index: each filter is filed under its most
// selective key (id > author > tag value > kind, or "match-all"), so delivering an
// event looks only at filters that could match it, and each candidate is then
// checked against its full filter before anything is sent.
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { matchFilter } from './filter.ts';

export interface Subscriber<C> {
  readonly conn: C;
  readonly subId: string;
  readonly filters: readonly Filter[];
}

interface Entry<C> {
  readonly sub: Subscriber<C>;
  readonly filter: Filter;
  /** Index keys this entry is filed under, for removal. */
  readonly keys: string[];
}

type Bucket<C> = Set<Entry<C>>;

function indexKeys(f: Filter): string[] | null {
  if (f.ids) return f.ids.map((x) => `i${x}`);
  if (f.authors) return f.authors.map((x) => `a${x}`);
  for (const key in f) {
    if (key.charCodeAt(0) === 35) {
      const vals = f[key as `#${string}`];
      if (vals) return vals.map((v) => `t${key[1]}:${v}`);
    }
  }
  if (f.kinds) return f.kinds.map((k) => `k${k}`);
  return null; // match-all bucket
}

export class SubscriptionIndex<C> {
  private readonly buckets = new Map<string, Bucket<C>>();
  private readonly all = new Set<Entry<C>>();
  private readonly bySub = new Map<Subscriber<C>, Entry<C>[]>();

  get size(): number {
    return this.bySub.size;
  }

  add(sub: Subscriber<C>): void {
    const entries: Entry<C>[] = [];
    for (const filter of sub.filters) {
      // A filter with an empty list can never match: don't file it at all.
      if ((filter.ids && !filter.ids.length) || (filter.authors && !filter.authors.length) || (filter.kinds && !filter.kinds.length)) continue;
      const keys = indexKeys(filter);
      const entry: Entry<C> = { sub, filter, keys: keys ?? [] };
      if (keys === null) this.all.add(entry);
      else {
        if (!keys.length) continue; // empty tag list: matches nothing
        for (const k of keys) {
          let b = this.buckets.get(k);
          if (!b) this.buckets.set(k, (b = new Set()));
          b.add(entry);
        }
      }
      entries.push(entry);
    }
    this.bySub.set(sub, entries);
  }

  remove(sub: Subscriber<C>): void {
    const entries = this.bySub.get(sub);
    if (!entries) return;
    this.bySub.delete(sub);
    for (const e of entries) {
      if (!e.keys.length) {
        this.all.delete(e);
        continue;
      }
      for (const k of e.keys) {
        const b = this.buckets.get(k);
        if (!b) continue;
        b.delete(e);
        if (!b.size) this.buckets.delete(k);
      }
    }
  }

  /** Every subscriber with at least one filter that really matches `event`, once each. */
  match(event: NostrEvent): Subscriber<C>[] {
    const out: Subscriber<C>[] = [];
    const seen = new Set<Subscriber<C>>();
    const consider = (b: Bucket<C> | undefined) => {
      if (!b) return;
      for (const e of b) {
        if (seen.has(e.sub)) continue;
        if (matchFilter(e.filter, event)) {
          seen.add(e.sub);
          out.push(e.sub);
        }
      }
    };
    consider(this.buckets.get(`i${event.id}`));
    consider(this.buckets.get(`a${event.pubkey}`));
    const tagKeysSeen = new Set<string>();
    for (const t of event.tags) {
      const name = t[0];
      if (name === undefined || name.length !== 1 || t.length < 2) continue;
      const k = `t${name}:${t[1]}`;
      if (tagKeysSeen.has(k)) continue;
      tagKeysSeen.add(k);
      consider(this.buckets.get(k));
    }
    consider(this.buckets.get(`k${event.kind}`));
    consider(this.all);
    return out;
  }
}
