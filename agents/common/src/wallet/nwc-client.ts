// A NIP-47 (Nostr Wallet Connect) client over our RelayPool. One pool per connection,
// authenticating (NIP-42) with the connection's own client key — never the agent's
// identity, so the wallet's relay cannot link payments to the agent (NIP-47: "the user's
// identity key is not used"). Encryption follows the wallet's info event (13194):
// `nip44_v2` when it lists it, else NIP-04. Every request carries an `expiration` equal to
// our deadline, so a wallet that receives it late ignores it instead of paying after we
// gave up; every call has that deadline and an optional AbortSignal.
import type { Logger } from 'pino';
import { hexToBytes } from '@noble/hashes/utils.js';
import { finalizeEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { RelayPool } from '../relay-pool.ts';
import { NWC_KINDS, notificationKind, nwcDecrypt, nwcEncrypt, parseNwcUri, type NwcEncryption } from './nip47.ts';

export class NwcError extends Error {
  override name = 'NwcError';
  /** A NIP-47 error code from the wallet (INSUFFICIENT_BALANCE, NOT_FOUND, …), or TIMEOUT | ABORTED | NOT_PUBLISHED | BAD_RESPONSE. */
  readonly code: string;
  /** True when the wallet itself answered with this error (the request reached it). */
  readonly fromWallet: boolean;
  constructor(code: string, message: string, fromWallet = false) {
    super(message);
    this.code = code;
    this.fromWallet = fromWallet;
  }
}

export interface NwcClientOptions {
  /** `nostr+walletconnect://…` (a secret: never logged, never echoed in errors). */
  readonly uri: string;
  readonly logger: Logger;
  /** Default deadline per request (ms). */
  readonly timeoutMs?: number;
  /** Relay reconnect backoff (tests shorten it). */
  readonly minBackoffMs?: number;
}

export interface NwcInfo {
  readonly methods: readonly string[];
  readonly notifications: readonly string[];
  readonly encryptions: readonly NwcEncryption[];
}

export interface NwcNotification {
  readonly type: string;
  readonly notification: Record<string, unknown>;
}

export class NwcClient {
  readonly walletPubkey: string;
  readonly clientPubkey: string;
  readonly relays: readonly string[];
  readonly #secret: string;
  readonly #sk: Uint8Array;
  readonly #pool: RelayPool;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #encryption: NwcEncryption | undefined;
  readonly #listeners = new Set<(n: NwcNotification) => void>();
  #notifications: Promise<void> | undefined;
  #closed = false;

  constructor(opts: NwcClientOptions) {
    const c = parseNwcUri(opts.uri);
    this.walletPubkey = c.walletPubkey;
    this.clientPubkey = c.clientPubkey;
    this.relays = c.relays;
    this.#secret = c.secret;
    this.#sk = hexToBytes(c.secret);
    this.#log = opts.logger;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#pool = new RelayPool({
      relays: c.relays,
      logger: opts.logger.child({ part: 'nwc-pool' }),
      auth: (template) => finalizeEvent(template, this.#sk) as NostrEvent,
      ...(opts.minBackoffMs ? { minBackoffMs: opts.minBackoffMs } : {}),
    });
  }

  /** The wallet service's info event (13194), or undefined if no relay has one before the deadline. */
  async info(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<NwcInfo | undefined> {
    const events = await this.#pool.query([{ kinds: [NWC_KINDS.info], authors: [this.walletPubkey] }], { timeoutMs: opts.timeoutMs ?? Math.min(this.#timeoutMs, 10_000), ...(opts.signal ? { signal: opts.signal } : {}) });
    const e = events.sort((a, b) => b.created_at - a.created_at)[0];
    if (!e) return undefined;
    const tag = (name: string) => (e.tags.find((t) => t[0] === name)?.[1] ?? '').split(/\s+/).filter(Boolean);
    const listed = tag('encryption');
    // NIP-47: an info event without an encryption tag means NIP-04 only.
    const encryptions = (listed.length ? listed : ['nip04']).filter((x): x is NwcEncryption => x === 'nip44_v2' || x === 'nip04');
    return { methods: e.content.split(/\s+/).filter(Boolean), notifications: tag('notifications'), encryptions };
  }

  async #negotiate(signal?: AbortSignal, timeoutMs?: number): Promise<NwcEncryption> {
    if (this.#encryption) return this.#encryption;
    const info = await this.info({ ...(signal ? { signal } : {}), ...(timeoutMs ? { timeoutMs: Math.min(timeoutMs, 10_000) } : {}) });
    if (!info) return 'nip04'; // not cached: the info event may be published later
    this.#encryption = info.encryptions.includes('nip44_v2') ? 'nip44_v2' : 'nip04';
    return this.#encryption;
  }

  /**
   * One NIP-47 request; resolves with the `result`, rejects with NwcError: the wallet's
   * error code, TIMEOUT (no answer by the deadline — for a payment the outcome is unknown
   * until the request's expiration has passed), ABORTED, or NOT_PUBLISHED (no relay took it).
   */
  async request<T>(method: string, params: Record<string, unknown>, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) throw new NwcError('ABORTED', 'NWC client is closed');
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    if (opts.signal?.aborted) throw new NwcError('ABORTED', `${method} aborted`);
    const enc = await this.#negotiate(opts.signal, timeoutMs);
    const now = Math.floor(Date.now() / 1000);
    const request = finalizeEvent({
      kind: NWC_KINDS.request,
      created_at: now,
      tags: [['p', this.walletPubkey], ['encryption', enc], ['expiration', String(Math.ceil(deadline / 1000))]],
      content: nwcEncrypt(this.#secret, this.walletPubkey, JSON.stringify({ method, params }), enc),
    }, this.#sk) as NostrEvent;
    const ac = new AbortController();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        ac.abort();
        fn();
      };
      const onAbort = () => finish(() => reject(new NwcError('ABORTED', `${method} aborted`)));
      const timer = setTimeout(() => finish(() => reject(new NwcError('TIMEOUT', `${method}: no answer from the wallet within ${timeoutMs} ms`))), Math.max(1, deadline - Date.now()));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      // Subscribe before publishing: responses are ephemeral, a relay does not keep them.
      this.#pool.subscribe([{ kinds: [NWC_KINDS.response], authors: [this.walletPubkey], '#e': [request.id] }], (e) => {
        let body: { result_type?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } | null };
        try {
          body = JSON.parse(nwcDecrypt(this.#secret, this.walletPubkey, e.content, enc)) as typeof body;
        } catch {
          this.#log.warn({ method }, 'nwc response does not decrypt to JSON; ignored');
          return;
        }
        if (body?.error) {
          const code = typeof body.error.code === 'string' ? body.error.code : 'OTHER';
          const message = typeof body.error.message === 'string' ? body.error.message.slice(0, 500) : '';
          return finish(() => reject(new NwcError(code, `${method}: ${code}${message ? ` (${message})` : ''}`, true)));
        }
        if (body?.result_type !== undefined && body.result_type !== method) {
          this.#log.warn({ method, resultType: String(body.result_type).slice(0, 40) }, 'nwc response for another method; ignored');
          return;
        }
        if (typeof body?.result !== 'object' || body.result === null) return finish(() => reject(new NwcError('BAD_RESPONSE', `${method}: the wallet answered without a result`, true)));
        finish(() => resolve(body.result as T));
      }, { signal: ac.signal });
      void this.#pool.publish(request, { timeoutMs: Math.max(1, deadline - Date.now()), signal: ac.signal }).then((res) => {
        if (done || res.some((r) => r.ok)) return;
        const why = res.map((r) => `${r.url}: ${r.message}`).join('; ');
        finish(() => reject(new NwcError('NOT_PUBLISHED', `${method}: no relay accepted the request (${why})`)));
      });
    });
  }

  /**
   * Calls `listener` for every notification the wallet sends this connection (NIP-47
   * payment_received / payment_sent). Resolves once the subscription is open (or after the
   * deadline; it keeps trying). Returns the unsubscribe function.
   */
  async onNotification(listener: (n: NwcNotification) => void, opts: { timeoutMs?: number } = {}): Promise<() => void> {
    this.#listeners.add(listener);
    this.#notifications ??= this.#subscribeNotifications(opts.timeoutMs ?? Math.min(this.#timeoutMs, 10_000));
    await this.#notifications;
    return () => this.#listeners.delete(listener);
  }

  async #subscribeNotifications(timeoutMs: number): Promise<void> {
    const enc = await this.#negotiate(undefined, timeoutMs);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const since = () => Math.floor(Date.now() / 1000);
      const filters = () => [{ kinds: [notificationKind(enc)], authors: [this.walletPubkey], '#p': [this.clientPubkey], since: since() }];
      this.#pool.subscribe(filters(), (e) => {
        let n: { notification_type?: unknown; notification?: unknown };
        try {
          n = JSON.parse(nwcDecrypt(this.#secret, this.walletPubkey, e.content, enc)) as typeof n;
        } catch {
          return;
        }
        if (typeof n?.notification_type !== 'string' || typeof n.notification !== 'object' || n.notification === null) return;
        const note: NwcNotification = { type: n.notification_type, notification: n.notification as Record<string, unknown> };
        for (const l of [...this.#listeners]) {
          try {
            l(note);
          } catch (err) {
            this.#log.error({ err }, 'nwc notification listener threw');
          }
        }
      }, {
        refilter: filters,
        onEose: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#pool.close();
  }
}
