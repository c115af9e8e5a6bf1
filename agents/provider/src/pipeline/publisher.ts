// How every stage speaks: signs with the provider's identity and publishes through the one
// pool — to our relays, and for a job's feedback and result also to the relays its request
// names (NIP-90 `relays`). Replaceable events never tie with their predecessor.
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { isAddressableKind, isReplaceableKind } from '@bazaar/dvm-kinds/nostr';
import { buildFeedback, FEEDBACK_KIND, type FeedbackInput } from '@bazaar/dvm-kinds/feedback';
import { sealJobResult } from '@bazaar/dvm-kinds/private';
import type { RelayPool, PublishResult } from '@bazaar/agents-common/relay-pool';
import { normalizeRelayUrl } from '@bazaar/agents-common/relay-url';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import type { JobRecord } from '../store.ts';

/** At most this many relays of a request's `relays` tag get its responses. */
const MAX_REQUESTED_RELAYS = 3;

export interface PublisherOptions {
  readonly pool: RelayPool;
  readonly identity: Identity;
  readonly log: Logger;
  readonly publishTimeoutMs: number;
  /** Whether to follow requests' `relays` tags (config `follow_request_relays`). */
  readonly followRequestRelays: () => boolean;
}

export class Publisher {
  readonly #o: PublisherOptions;
  readonly #lastReplaceable = new Map<number, number>();

  constructor(o: PublisherOptions) {
    this.#o = o;
  }

  /** Signs and publishes to our relays; a failure on every relay is logged, not thrown. */
  async publish(template: EventTemplate, what: string): Promise<NostrEvent> {
    let t = template;
    if (isReplaceableKind(t.kind) || isAddressableKind(t.kind)) {
      // A replacement in the same second as its predecessor may lose the tie (NIP-01: lowest
      // id wins), so each replaceable event gets a created_at after the previous one's.
      const last = this.#lastReplaceable.get(t.kind) ?? 0;
      if (t.created_at <= last) {
        const shift = last + 1 - t.created_at;
        t = { ...t, created_at: last + 1, tags: t.tags.map((x) => (x[0] === 'expiration' && /^\d+$/.test(x[1] ?? '') ? ['expiration', String(Number(x[1]) + shift)] : x)) };
      }
      this.#lastReplaceable.set(t.kind, t.created_at);
    }
    const event = finalizeEvent(t, this.#o.identity.secretKey) as NostrEvent;
    const res = await this.#o.pool.publish(event, { timeoutMs: this.#o.publishTimeoutMs });
    if (!res.some((r) => r.ok)) this.#o.log.warn({ what, eventId: event.id, relays: res.map((r) => `${r.url}: ${r.message}`) }, 'publish failed on every relay');
    return event;
  }

  /**
   * The next event of each of these replaceable kinds gets a created_at after this second: a
   * pool worker that just became the leader may follow another worker's event of this second,
   * which NIP-01's lowest-id tie-break could keep instead of ours.
   */
  afterThisSecond(kinds: readonly number[]): void {
    const now = Math.floor(Date.now() / 1000);
    for (const k of kinds) this.#lastReplaceable.set(k, Math.max(this.#lastReplaceable.get(k) ?? 0, now));
  }

  /** Job feedback (kind 7000), sealed for private jobs, to our relays and the requested ones. */
  async feedback(rec: JobRecord, f: Omit<FeedbackInput, 'request'>): Promise<void> {
    const template = buildFeedback({ ...f, request: { id: rec.id, pubkey: rec.customer } });
    const t = rec.encrypted ? sealJobResult(template, this.#o.identity.secretKey, rec.customer) : ({ ok: true, value: template } as const);
    if (!t.ok) return;
    const event = await this.publish({ ...t.value, kind: FEEDBACK_KIND }, `feedback ${f.status}`);
    await this.toRequested(rec, event);
  }

  /** A signed result: to our relays and the requested ones; our relays' answers. */
  async result(rec: JobRecord, result: NostrEvent): Promise<PublishResult[]> {
    const [res] = await Promise.all([this.#o.pool.publish(result, { timeoutMs: this.#o.publishTimeoutMs }), this.toRequested(rec, result)]);
    return res;
  }

  /**
   * NIP-90 `relays`: the customer asks for responses there too. At most MAX_REQUESTED_RELAYS
   * relays we are not configured with, through the same pool (connected on demand, closed
   * when idle); a relay that is down only costs its publish deadline.
   */
  async toRequested(rec: JobRecord, event: NostrEvent): Promise<void> {
    if (!this.#o.followRequestRelays()) return;
    const ours = new Set(this.#o.pool.urls);
    const wanted = [...new Set(rec.request.tags.filter((t) => t[0] === 'relays').flatMap((t) => t.slice(1)).map((u) => normalizeRelayUrl(u)))]
      .filter((u): u is string => u !== undefined && !ours.has(u))
      .slice(0, MAX_REQUESTED_RELAYS);
    if (!wanted.length) return;
    const res = await this.#o.pool.publish(event, { relays: wanted, timeoutMs: this.#o.publishTimeoutMs });
    for (const r of res) if (!r.ok) this.#o.log.info({ jobId: rec.id, relay: r.url, message: r.message }, 'requested relay did not accept the event');
  }
}
