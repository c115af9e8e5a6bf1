// Discovery: who sells a kind, are they up, what do trusted relays say about them.
//   NIP-89 31990 handlers with a `k` tag for the kind (or any handler of a pinned provider)
//   11998 heartbeats that have not expired (NIP-40)
//   NIP-85 30382 assertions (d = provider) signed by the reputation keys the buyer trusts —
//     configured keys, and optionally the `reputation_pubkey` each of its relays announces in NIP-11
//   NIP-61 10019 payment info (P2PK key and mints, for escrow)
// Every query has a deadline; a silent relay costs its timeout, never a hang.
import type { Logger } from 'pino';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { ANNOUNCEMENT_KIND, parseAnnouncement, type Announcement } from '@bazaar/dvm-kinds/market/announcement';
import { HEARTBEAT_KIND, parseHeartbeat, type Heartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import { REPUTATION_KIND, parseReputationAssertion, type ReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { PAYMENT_INFO_KIND, parsePaymentInfo, type PaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { PING_KIND, buildPing, isPong } from '@bazaar/dvm-kinds/market/ping';
import { FEEDBACK_KIND } from '@bazaar/dvm-kinds/feedback';
import { isJobRequestKind } from '@bazaar/dvm-kinds/job';
import type { RelayPool } from '@bazaar/agents-common/relay-pool';
import type { ProviderView } from './selection.ts';

export interface DirectoryOptions {
  readonly pool: RelayPool;
  readonly logger: Logger;
  /** Reputation keys (hex) whose 30382 assertions count. */
  readonly trustedReputationKeys?: readonly string[];
  /** Also trust the `reputation_pubkey` each of these relays announces (NIP-11). */
  readonly trustRelayReputation?: readonly string[];
  /** Deadline of each query (ms). */
  readonly queryTimeoutMs?: number;
  /** Unix seconds (tests). */
  readonly now?: () => number;
}

const newest = <T extends { createdAt: number }>(a: T | undefined, b: T): T => (a === undefined || b.createdAt > a.createdAt ? b : a);

export class Directory {
  readonly #o: DirectoryOptions;
  #relayKeys: Promise<string[]> | undefined;

  constructor(o: DirectoryOptions) {
    this.#o = o;
  }

  #now(): number {
    return this.#o.now?.() ?? Math.floor(Date.now() / 1000);
  }

  /** The reputation keys this buyer trusts: configured ones plus what its relays announce (fetched once). */
  async trustedKeys(signal?: AbortSignal): Promise<string[]> {
    const fromRelays = this.#o.trustRelayReputation?.length ? await (this.#relayKeys ??= fetchRelayReputationKeys(this.#o.trustRelayReputation, { timeoutMs: this.#o.queryTimeoutMs ?? 5000, signal, logger: this.#o.logger })) : [];
    return [...new Set([...(this.#o.trustedReputationKeys ?? []), ...fromRelays])];
  }

  async #query(filters: Filter[], signal?: AbortSignal): Promise<NostrEvent[]> {
    return this.#o.pool.query(filters, { timeoutMs: this.#o.queryTimeoutMs ?? 5000, ...(signal ? { signal } : {}) });
  }

  /** Providers for `kind` (all kinds when undefined), plus the `include`d pubkeys even without a handler. */
  async providers(opts: { kind?: number; include?: readonly string[]; signal?: AbortSignal } = {}): Promise<ProviderView[]> {
    const include = [...new Set(opts.include ?? [])];
    const handlerFilters: Filter[] = [opts.kind !== undefined ? { kinds: [ANNOUNCEMENT_KIND], '#k': [String(opts.kind)] } : { kinds: [ANNOUNCEMENT_KIND] }];
    if (include.length) handlerFilters.push({ kinds: [ANNOUNCEMENT_KIND], authors: include });
    const handlers = await this.#query(handlerFilters, opts.signal);
    const anns = new Map<string, { ann: Announcement; plain: boolean }>();
    for (const e of handlers) {
      const a = readHandler(e);
      if (!a || (opts.kind !== undefined && !a.ann.kinds.includes(opts.kind) && !include.includes(e.pubkey))) continue;
      const cur = anns.get(e.pubkey);
      if (!cur || a.ann.createdAt > cur.ann.createdAt) anns.set(e.pubkey, a);
    }
    const pubkeys = [...new Set([...anns.keys(), ...include])];
    if (!pubkeys.length) return [];
    const trusted = await this.trustedKeys(opts.signal);
    const filters: Filter[] = [{ kinds: [HEARTBEAT_KIND], authors: pubkeys }, { kinds: [PAYMENT_INFO_KIND], authors: pubkeys }];
    if (trusted.length) filters.push({ kinds: [REPUTATION_KIND], authors: trusted, '#d': pubkeys });
    const facts = await this.#query(filters, opts.signal);
    const now = this.#now();
    const beats = new Map<string, Heartbeat>();
    const pays = new Map<string, PaymentInfo>();
    const reps = new Map<string, ReputationAssertion>();
    for (const e of facts) {
      if (e.kind === HEARTBEAT_KIND) {
        const h = parseHeartbeat(e);
        if (h.ok && h.value.expiration > now) beats.set(e.pubkey, newest(beats.get(e.pubkey), h.value));
      } else if (e.kind === PAYMENT_INFO_KIND) {
        const p = parsePaymentInfo(e);
        if (p.ok) pays.set(e.pubkey, newest(pays.get(e.pubkey), p.value));
      } else if (e.kind === REPUTATION_KIND && trusted.includes(e.pubkey)) {
        const r = parseReputationAssertion(e);
        if (r.ok && pubkeys.includes(r.value.provider)) reps.set(r.value.provider, newest(reps.get(r.value.provider), r.value));
      }
    }
    return pubkeys.map((pk) => {
      const a = anns.get(pk);
      const hb = beats.get(pk);
      const liveness: ProviderView['liveness'] = hb ? (hb.status === 'online' ? 'live' : hb.status) : a?.ann.heartbeatSecs !== undefined ? 'stale' : 'unknown';
      return { pubkey: pk, ...(a ? { announcement: a.ann } : {}), plain: a?.plain ?? true, ...(hb ? { heartbeat: hb } : {}), ...(reps.has(pk) ? { reputation: reps.get(pk)! } : {}), ...(pays.has(pk) ? { paymentInfo: pays.get(pk)! } : {}), liveness };
    });
  }

  /** The latest NIP-61 payment info of `pubkey` (a provider's or an arbiter's P2PK key and mints). */
  async paymentInfo(pubkey: string, signal?: AbortSignal): Promise<PaymentInfo | undefined> {
    let best: PaymentInfo | undefined;
    for (const e of await this.#query([{ kinds: [PAYMENT_INFO_KIND], authors: [pubkey] }], signal)) {
      const p = parsePaymentInfo(e);
      if (p.ok && e.pubkey === pubkey) best = newest(best, p.value);
    }
    return best;
  }

  /**
   * Liveness check before posting (7007 ping, answered by a `pong` feedback): true when the
   * provider answers within `timeoutMs`. Only for providers that promise heartbeats; plain
   * NIP-90 providers do not answer pings.
   */
  async ping(provider: string, sign: (t: ReturnType<typeof buildPing>) => NostrEvent, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
    const ping = sign(buildPing({ provider, ttlSecs: Math.max(5, Math.ceil(opts.timeoutMs / 1000) + 5) }));
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (v: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sub.close();
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), opts.timeoutMs);
      const sub = this.#o.pool.subscribe([{ kinds: [FEEDBACK_KIND], authors: [provider], '#e': [ping.id] }], (e) => {
        if (isPong(e)) finish(true);
      });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      void this.#o.pool.publish(ping, { timeoutMs: opts.timeoutMs }).then((res) => {
        if (!res.some((r) => r.ok)) finish(false);
      });
    });
  }
}

/**
 * A NIP-89 handler: our announcement when it parses; otherwise (a plain NIP-90 handler whose
 * content is kind-0 metadata, NDK's NDKAppHandlerEvent…) the kinds from its `k` tags.
 */
function readHandler(e: NostrEvent): { ann: Announcement; plain: boolean } | undefined {
  const a = parseAnnouncement(e);
  if (a.ok) return { ann: a.value, plain: Object.keys(a.value.prices).length === 0 && Object.keys(a.value.terms).length === 0 };
  const kinds = e.tags.filter((t) => t[0] === 'k' && /^\d{4}$/.test(t[1] ?? '')).map((t) => Number(t[1])).filter(isJobRequestKind);
  if (!kinds.length) return undefined;
  let name: string | undefined;
  try {
    const m = JSON.parse(e.content) as { name?: unknown; display_name?: unknown };
    name = typeof m.name === 'string' ? m.name : typeof m.display_name === 'string' ? m.display_name : undefined;
  } catch {
    name = undefined;
  }
  const d = e.tags.find((t) => t[0] === 'd')?.[1] ?? '';
  return { ann: { pubkey: e.pubkey, createdAt: e.created_at, d, kinds, prices: {}, models: [], ...(name ? { name } : {}), paramSchemas: {}, terms: {}, arbiters: [] }, plain: true };
}

/** The `reputation_pubkey` each relay announces in its NIP-11 document (relays that say nothing are skipped). */
export async function fetchRelayReputationKeys(relays: readonly string[], o: { timeoutMs: number; signal?: AbortSignal; logger: Logger }): Promise<string[]> {
  const keys = await Promise.all(
    relays.map(async (url) => {
      const http = url.replace(/^ws(s?):\/\//, 'http$1://');
      try {
        const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
        const res = await fetch(http, { headers: { Accept: 'application/nostr+json' }, signal });
        if (!res.ok) return undefined;
        const doc = (await res.json()) as { reputation_pubkey?: unknown };
        return typeof doc.reputation_pubkey === 'string' && /^[0-9a-f]{64}$/.test(doc.reputation_pubkey) ? doc.reputation_pubkey : undefined;
      } catch (err) {
        o.logger.debug({ relay: url, err: (err as Error).message }, 'NIP-11 document not readable');
        return undefined;
      }
    }),
  );
  return [...new Set(keys.filter((k): k is string => k !== undefined))];
}
