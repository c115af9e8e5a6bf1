// Publishes NIP-85 trusted assertions (kind 30382, d = provider pubkey) signed by the relay's
// reputation key. Debounced: after facts arrive it waits `debounceMs`, then re-publishes the
// providers whose figures may have changed — and only those whose tags really changed
// (NIP-85: "only when the content of each event actually changes"). The same code runs in
// the relay (publish = addEvent) and in the sidecar (publish = EVENT to the watched relay).
import type { Logger } from 'pino';
import { initNostrWasm, type Nostr } from 'nostr-wasm';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildReputationAssertion, REPUTATION_KIND } from '@bazaar/dvm-kinds/market/reputation';
import type { MarketState } from './state.ts';
import type { ReputationKey } from './reputation-key.ts';

export type Publish = (event: NostrEvent) => Promise<{ ok: boolean; message: string }>;

export interface PublisherOptions {
  readonly key: ReputationKey;
  readonly state: () => MarketState;
  readonly publish: Publish;
  readonly debounceMs?: number;
  /**
   * Rounds are at least this far apart (default 30 s): under sustained traffic every provider's
   * figures move all the time, and an assertion a few seconds fresher is not worth re-signing
   * and re-storing each one. After a quiet period the first change publishes after `debounceMs`.
   */
  readonly minIntervalMs?: number;
  /** Relay hint for the `p` tag (NIP-85 allows p/e/a tags with a relay hint). */
  readonly relayHint?: string;
  /** What the kind-0 profile of the reputation key says (NIP-85 appendix: who runs it, what it computes). */
  readonly profile?: { readonly name: string; readonly about: string; readonly website?: string };
  readonly logger?: Logger;
  readonly now?: () => number;
}

const comparable = (tags: readonly (readonly string[])[]): string => JSON.stringify(tags);

// libsecp256k1 (WASM) signs in a fraction of the pure-JS signer's time: assertions for every
// provider whose figures moved are signed on the relay's event loop.
let signer: Promise<Nostr> | undefined;
async function sign(t: { kind: number; created_at: number; tags: string[][]; content: string }, sk: Uint8Array): Promise<NostrEvent> {
  const nw = await (signer ??= initNostrWasm());
  const e = { ...t, id: '', pubkey: '', sig: '' };
  nw.finalizeEvent(e, sk);
  return e;
}

/** Publishing may use at most about this share of one core: the next round waits 1/share × the last round's time. */
const MAX_CPU_SHARE = 0.05;
/** The longest a change waits for publication under sustained traffic. */
const DEFAULT_MIN_INTERVAL_MS = 30_000;

export class ReputationPublisher {
  readonly #o: PublisherOptions;
  readonly #last = new Map<string, { tags: string; createdAt: number }>();
  #timer: NodeJS.Timeout | undefined;
  #lastRoundMs = 0;
  #lastRoundAt = -Infinity;
  #firstChangeAt: number | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** Providers whose last publication failed: retried on the next flush. */
  readonly #retry = new Set<string>();
  /** Assertions published (for /metrics and tests). */
  published = 0;

  constructor(o: PublisherOptions) {
    this.#o = o;
  }

  /** Seed "what is already out" from stored assertions, so a restart re-publishes nothing unchanged. */
  seed(existing: readonly NostrEvent[]): void {
    for (const e of existing) {
      if (e.kind !== REPUTATION_KIND || e.pubkey !== this.#o.key.pubkey) continue;
      const d = e.tags.find((t) => t[0] === 'd')?.[1];
      if (!d) continue;
      const cur = this.#last.get(d);
      if (!cur || cur.createdAt < e.created_at) this.#last.set(d, { tags: comparable(e.tags), createdAt: e.created_at });
    }
  }

  /** Something changed: publish after the debounce delay (repeated calls do not postpone it further). */
  /**
   * Something changed. A debounce: publish once changes have paused for `debounceMs`, but no
   * later than `minIntervalMs` after the first unpublished change (so sustained traffic still
   * gets a round every interval), and never so often that publishing takes more than ~5 % of a core.
   */
  schedule(): void {
    if (this.#closed) return;
    const now = performance.now();
    this.#firstChangeAt ??= now;
    const quiet = now + (this.#o.debounceMs ?? 2000);
    const latest = Math.max(this.#firstChangeAt + (this.#o.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS), now);
    const due = Math.max(Math.min(quiet, latest), this.#lastRoundAt + this.#lastRoundMs / MAX_CPU_SHARE);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#firstChangeAt = undefined;
      void this.flush();
    }, Math.max(0, due - now));
    this.#timer.unref();
  }

  /** Publish every changed assertion now. */
  flush(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          const started = performance.now();
          this.#lastRoundAt = started;
          await this.#publishDirty();
          this.#lastRoundMs = performance.now() - started;
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** The assertion tags we would publish for `provider` now. */
  tagsFor(provider: string): string[][] {
    const r = this.#o.state().reputation(provider);
    const t = buildReputationAssertion(provider, r, 0).tags;
    // NIP-85: a p tag equal to d may carry a relay hint (where the provider's events are).
    const p = t.find((x) => x[0] === 'p');
    if (p && this.#o.relayHint) p.push(this.#o.relayHint);
    return t;
  }

  async #publishDirty(): Promise<void> {
    const state = this.#o.state();
    const dirty = state.takeDirtyProviders();
    for (const p of this.#retry) dirty.add(p);
    this.#retry.clear();
    // Keys that only ever bought (a payment graph walk marks them too) get no assertion.
    const providers = new Set(state.providerKeys());
    const out: { provider: string; key: string; createdAt: number; event: NostrEvent }[] = [];
    for (const provider of [...dirty].filter((k) => providers.has(k)).sort()) {
      if (this.#closed) return;
      const tags = this.tagsFor(provider);
      const key = comparable(tags);
      const last = this.#last.get(provider);
      if (last?.tags === key) continue;
      // A replacement must be strictly newer, or NIP-01's tie-break could keep the old one.
      const now = (this.#o.now ?? (() => Math.floor(Date.now() / 1000)))();
      const createdAt = Math.max(now, (last?.createdAt ?? 0) + 1);
      out.push({ provider, key, createdAt, event: await sign({ kind: REPUTATION_KIND, created_at: createdAt, content: '', tags }, this.#o.key.secretKey) });
    }
    // All at once: the relay's writer commits them in one transaction instead of one fsync each.
    await Promise.all(out.map(async ({ provider, key, createdAt, event }) => {
      try {
        const r = await this.#o.publish(event);
        if (r.ok) {
          this.#last.set(provider, { tags: key, createdAt });
          this.published++;
        } else {
          this.#retry.add(provider);
          this.#o.logger?.warn({ provider, message: r.message }, 'reputation assertion refused');
        }
      } catch (err) {
        this.#retry.add(provider);
        this.#o.logger?.warn({ err, provider }, 'reputation assertion not published');
      }
    }));
  }

  /** The kind-0 profile of the reputation key (NIP-85 appendix), signed. */
  profileEvent(createdAt: number): Promise<NostrEvent> | undefined {
    const p = this.#o.profile;
    if (!p) return undefined;
    return sign({ kind: 0, created_at: createdAt, tags: [], content: JSON.stringify(p) }, this.#o.key.secretKey);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
