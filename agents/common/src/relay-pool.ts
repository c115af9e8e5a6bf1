// The agents' one relay pool (NIP-01 client side, NIP-42 AUTH), after nostr-tools'
// AbstractPool: relays are chosen per call and keyed by their normalised URL, the AUTH
// challenge is kept per relay, and a relay that asks for authentication gets it and the
// refused REQ or EVENT is sent again.
//
// - Default relays (the agent's configured set) are connected at once and kept connected:
//   reconnect with capped exponential backoff and jitter, subscriptions re-sent.
// - Any other relay named in a call (e.g. a NIP-90 `relays` tag) is connected on demand,
//   kept while a subscription or call uses it, and closed after `idleTimeoutMs` unused.
// - Events are checked (id hash, signature — each id verified once per pool — and the
//   subscription's filters) and de-duplicated per subscription across relays.
// - Every call has a deadline or a signal: a relay that is down or silent answers
//   ok=false / contributes nothing when the deadline passes; nothing waits forever.
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { getEventHash, verifyEvent } from 'nostr-tools/pure';
import { matchFilters } from 'nostr-tools/filter';
import type { EventTemplate, Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { normalizeRelayUrl } from './relay-url.ts';

/** Signs a NIP-42 kind 22242 event (the pool builds the template with the relay and challenge tags). */
export type AuthSigner = (template: EventTemplate) => NostrEvent | Promise<NostrEvent>;

export const AUTH_KIND = 22242;

export interface RelayPoolOptions {
  readonly logger: Logger;
  /** Default relays: connected now, kept connected, used by calls that name no relays. */
  readonly relays?: readonly string[];
  /** NIP-42: answers every relay's AUTH challenge. Without it, relays that require AUTH refuse us (and say so). */
  readonly auth?: AuthSigner;
  /** First reconnect delay; doubles up to maxBackoffMs, with ±25% jitter. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** WebSocket handshake deadline, and how long an AUTH may take. */
  readonly connectTimeoutMs?: number;
  /** A relay outside the default set is closed after this long without a subscription or call. */
  readonly idleTimeoutMs?: number;
  /** How many event ids each subscription remembers for de-duplication, and the pool for verification. */
  readonly dedupeSize?: number;
  /** Verify ids and signatures of received events (default true). */
  readonly verify?: boolean;
  /** Called on every (re)connection to a relay, after its subscriptions are re-sent. */
  readonly onConnect?: (url: string, reconnect: boolean) => void;
}

export interface PublishResult {
  readonly url: string;
  readonly ok: boolean;
  readonly message: string;
}

export interface Subscription {
  close(): void;
}

export interface SubscribeOptions {
  /** Relays for this subscription (default: the pool's default relays). */
  readonly relays?: readonly string[];
  /** Called once per relay when it sends EOSE for this subscription. */
  readonly onEose?: (url: string) => void;
  /** Called when a relay ends this subscription with CLOSED (after any AUTH retry). */
  readonly onClosed?: (url: string, reason: string) => void;
  /** Filters to send on a reconnect (default: the same filters). Lets a caller move `since` forward. */
  readonly refilter?: () => Filter[];
  /** Aborting closes the subscription. */
  readonly signal?: AbortSignal;
}

export interface CallOptions {
  /** Relays for this call (default: the pool's default relays). */
  readonly relays?: readonly string[];
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface RelayStatus {
  readonly url: string;
  readonly connected: boolean;
  /** The pubkey this connection authenticated as (NIP-42), if it did. */
  readonly authedAs?: string;
  /** The relay asked us to authenticate at least once. */
  readonly authRequired: boolean;
  readonly lastError?: string;
  readonly reconnects: number;
}

interface SubState {
  readonly id: string;
  filters: Filter[];
  readonly relays: readonly string[];
  readonly onEvent: (e: NostrEvent, url: string) => void;
  readonly opts: SubscribeOptions;
  readonly seen: Set<string>;
  closed: boolean;
}

interface PendingOk {
  resolve: (r: { ok: boolean; message: string }) => void;
}

class RelayConn {
  readonly url: string;
  readonly persistent: boolean;
  ws: WebSocket | undefined;
  connected = false;
  attempts = 0;
  reconnects = 0;
  /** Connections opened so far (a reconnect is any after the first). */
  opened = 0;
  timer: NodeJS.Timeout | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  lastError: string | undefined;
  /** Subscriptions and calls using this relay; a non-persistent relay idles out at 0. */
  users = 0;
  readonly pendingOk = new Map<string, PendingOk[]>();
  readonly openWaiters = new Set<() => void>();
  // NIP-42 state of the current connection.
  challenge: string | undefined;
  authedAs: string | undefined;
  authing: Promise<boolean> | undefined;
  /** Sticky: this relay asked for AUTH before, so after a reconnect frames wait for it. */
  authRequired = false;
  /** Frames held until the AUTH of this connection is answered. */
  held: string[] | undefined;
  /** Subscriptions already re-sent once after AUTH on this connection (no loops). */
  readonly authRetried = new Set<string>();
  constructor(url: string, persistent: boolean) {
    this.url = url;
    this.persistent = persistent;
  }
}

const AUTH_PREFIX = 'auth-required:';
/** A publish whose connection closed before the relay's OK (resent on the next connection while time allows). */
const CLOSED_BEFORE_OK = 'error: connection closed before OK';

export class RelayPool {
  readonly #opts: Required<Omit<RelayPoolOptions, 'relays' | 'logger' | 'auth' | 'onConnect'>>;
  readonly #onConnect: ((url: string, reconnect: boolean) => void) | undefined;
  readonly #log: Logger;
  readonly #auth: AuthSigner | undefined;
  readonly #defaults: readonly string[];
  readonly #relays = new Map<string, RelayConn>();
  readonly #subs = new Map<string, SubState>();
  readonly #verified = new Set<string>();
  #closed = false;
  #counter = 0;

  constructor(opts: RelayPoolOptions) {
    this.#log = opts.logger;
    this.#auth = opts.auth;
    this.#onConnect = opts.onConnect;
    this.#opts = {
      minBackoffMs: opts.minBackoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      dedupeSize: opts.dedupeSize ?? 50_000,
      verify: opts.verify ?? true,
    };
    this.#defaults = this.#normalize(opts.relays ?? []);
    for (const url of this.#defaults) this.#conn(url);
  }

  /** The default relays, normalised. */
  get urls(): string[] {
    return [...this.#defaults];
  }

  /** Per relay: connected or not, AUTH state, the last error. */
  status(): RelayStatus[] {
    return [...this.#relays.values()].map((r) => ({
      url: r.url,
      connected: r.connected,
      authRequired: r.authRequired,
      reconnects: r.reconnects,
      ...(r.authedAs ? { authedAs: r.authedAs } : {}),
      ...(r.lastError ? { lastError: r.lastError } : {}),
    }));
  }

  connectedCount(): number {
    return this.#defaults.filter((u) => this.#relays.get(u)?.connected).length;
  }

  /** Resolves when at least `n` of the relays (default: the default relays) are connected; rejects at the deadline or on abort. */
  waitConnected(opts: { n?: number; relays?: readonly string[]; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const urls = opts.relays ? this.#normalize(opts.relays) : this.#defaults;
    const n = Math.min(opts.n ?? 1, urls.length);
    const conns = urls.map((u) => this.#conn(u));
    const count = () => conns.filter((r) => r.connected).length;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    if (count() >= n) return Promise.resolve();
    for (const r of conns) r.users++;
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (count() >= n) finish();
      };
      const onAbort = () => finish(new Error('aborted'));
      const timer = setTimeout(() => finish(new Error(`no relay connected within ${timeoutMs} ms`)), timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        for (const r of conns) {
          r.openWaiters.delete(check);
          this.#release(r);
        }
        if (err) reject(err);
        else resolve();
      };
      if (opts.signal?.aborted) return finish(new Error('aborted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      for (const r of conns) r.openWaiters.add(check);
    });
  }

  subscribe(filters: Filter[], onEvent: (e: NostrEvent, url: string) => void, opts: SubscribeOptions = {}): Subscription {
    const id = `s${++this.#counter}`;
    const relays = opts.relays ? this.#normalize(opts.relays) : this.#defaults;
    const sub: SubState = { id, filters, relays, onEvent, opts, seen: new Set(), closed: false };
    const close = () => {
      if (sub.closed) return;
      sub.closed = true;
      this.#subs.delete(id);
      opts.signal?.removeEventListener('abort', close);
      for (const url of relays) {
        const r = this.#relays.get(url);
        if (!r) continue;
        if (r.connected) this.#send(r, ['CLOSE', id]);
        this.#release(r);
      }
    };
    if (opts.signal?.aborted || this.#closed) {
      sub.closed = true;
      return { close() {} };
    }
    this.#subs.set(id, sub);
    opts.signal?.addEventListener('abort', close, { once: true });
    for (const url of relays) {
      const r = this.#conn(url);
      r.users++;
      if (r.connected) this.#send(r, ['REQ', id, ...filters]);
    }
    return { close };
  }

  /**
   * Stored events matching `filters` until every relay sent EOSE (or CLOSED, or is down at
   * the deadline), de-duplicated. Never waits past `timeoutMs` (default 10 s).
   */
  query(filters: Filter[], opts: CallOptions = {}): Promise<NostrEvent[]> {
    const relays = opts.relays ? this.#normalize(opts.relays) : this.#defaults;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve) => {
      const events: NostrEvent[] = [];
      const pending = new Set(relays);
      const ac = new AbortController();
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', finish);
        ac.abort();
        resolve(events);
      };
      const settle = (url: string) => {
        pending.delete(url);
        if (!pending.size) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      if (opts.signal?.aborted || !relays.length) return finish();
      opts.signal?.addEventListener('abort', finish, { once: true });
      this.subscribe(filters, (e) => events.push(e), { relays, signal: ac.signal, onEose: settle, onClosed: settle });
    });
  }

  /** Publish to the relays (default: the default relays); resolves with each relay's answer (down or silent = ok false). */
  async publish(event: NostrEvent, opts: CallOptions = {}): Promise<PublishResult[]> {
    const relays = opts.relays ? this.#normalize(opts.relays) : this.#defaults;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return Promise.all(relays.map((url) => this.#publishOne(this.#conn(url), event, timeoutMs, opts.signal)));
  }

  /** Publish and require at least one relay to accept; throws with every relay's reason otherwise. */
  async publishAny(event: NostrEvent, opts: CallOptions = {}): Promise<PublishResult[]> {
    const results = await this.publish(event, opts);
    if (!results.some((r) => r.ok)) throw new Error(`no relay accepted event ${event.id}: ${results.map((r) => `${r.url}: ${r.message}`).join('; ') || 'no relays'}`);
    return results;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subs.values()) sub.closed = true;
    this.#subs.clear();
    await Promise.all([...this.#relays.values()].map((r) => this.#shut(r, 'error: pool closed')));
    this.#relays.clear();
  }

  // ---- connections ----

  #normalize(urls: readonly string[]): string[] {
    const out: string[] = [];
    for (const u of urls) {
      const n = normalizeRelayUrl(u);
      if (n === undefined) this.#log.warn({ url: u.slice(0, 200) }, 'not a relay URL; ignored');
      else if (!out.includes(n)) out.push(n);
    }
    return out;
  }

  /** The connection for a normalised URL, created (and connecting) on first use. */
  #conn(url: string): RelayConn {
    let r = this.#relays.get(url);
    if (!r) {
      r = new RelayConn(url, this.#defaults.includes(url));
      this.#relays.set(url, r);
      if (!this.#closed) this.#connect(r);
    }
    clearTimeout(r.idleTimer);
    r.idleTimer = undefined;
    return r;
  }

  /** One user of a relay is done; an on-demand relay nobody uses closes after the idle timeout. */
  #release(r: RelayConn): void {
    r.users = Math.max(0, r.users - 1);
    if (r.persistent || r.users > 0 || this.#closed) return;
    clearTimeout(r.idleTimer);
    r.idleTimer = setTimeout(() => {
      if (r.users > 0 || this.#relays.get(r.url) !== r) return;
      this.#relays.delete(r.url);
      void this.#shut(r, 'error: relay closed after being idle');
    }, this.#opts.idleTimeoutMs);
    r.idleTimer.unref();
  }

  #shut(r: RelayConn, reason: string): Promise<void> {
    clearTimeout(r.timer);
    clearTimeout(r.idleTimer);
    this.#failPending(r, reason);
    const ws = r.ws;
    r.ws = undefined;
    r.connected = false;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((done) => {
      const t = setTimeout(() => {
        ws.terminate();
        done();
      }, 2_000);
      t.unref();
      ws.once('close', () => {
        clearTimeout(t);
        done();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close();
    });
  }

  #failPending(r: RelayConn, message: string): void {
    for (const list of r.pendingOk.values()) for (const p of list) p.resolve({ ok: false, message });
    r.pendingOk.clear();
  }

  #connect(r: RelayConn): void {
    if (this.#closed) return;
    const log = this.#log.child({ relay: r.url });
    let ws: WebSocket;
    try {
      ws = new WebSocket(r.url, { handshakeTimeout: this.#opts.connectTimeoutMs, maxPayload: 16 * 1024 * 1024 });
    } catch (err) {
      r.lastError = (err as Error).message;
      this.#scheduleReconnect(r);
      return;
    }
    r.ws = ws;
    ws.on('open', () => {
      if (r.ws !== ws) return;
      r.connected = true;
      r.opened++;
      r.attempts = 0;
      r.lastError = undefined;
      r.challenge = undefined;
      r.authedAs = undefined;
      r.authing = undefined;
      r.authRetried.clear();
      // A relay known to require AUTH: hold frames until it is answered (or the relay sends
      // no challenge within the connect deadline), instead of collecting refusals.
      if (r.authRequired && this.#auth) {
        r.held = [];
        const t = setTimeout(() => this.#flushHeld(r), this.#opts.connectTimeoutMs);
        t.unref();
      }
      log.info({}, 'relay connected');
      for (const sub of this.#subs.values()) {
        if (!sub.relays.includes(r.url)) continue;
        if (sub.opts.refilter) sub.filters = sub.opts.refilter();
        this.#send(r, ['REQ', sub.id, ...sub.filters]);
      }
      for (const w of [...r.openWaiters]) w();
      try {
        this.#onConnect?.(r.url, r.opened > 1);
      } catch (err) {
        log.error({ err }, 'onConnect handler threw');
      }
    });
    ws.on('message', (data) => {
      if (r.ws === ws) this.#onMessage(r, data.toString(), log);
    });
    ws.on('error', (err) => {
      r.lastError = err.message;
      log.debug({ err: err.message }, 'relay socket error');
    });
    ws.on('close', () => {
      if (r.ws !== ws) return;
      const was = r.connected;
      r.connected = false;
      r.ws = undefined;
      r.held = undefined;
      this.#failPending(r, CLOSED_BEFORE_OK);
      if (this.#closed || this.#relays.get(r.url) !== r) return;
      if (was) log.warn({}, 'relay disconnected');
      // An on-demand relay nobody uses is not worth reconnecting to; the next call reconnects.
      if (!r.persistent && r.users === 0) {
        this.#relays.delete(r.url);
        clearTimeout(r.idleTimer);
        return;
      }
      this.#scheduleReconnect(r);
    });
  }

  #scheduleReconnect(r: RelayConn): void {
    if (this.#closed) return;
    const base = Math.min(this.#opts.maxBackoffMs, this.#opts.minBackoffMs * 2 ** r.attempts);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    r.attempts++;
    r.reconnects++;
    clearTimeout(r.timer);
    r.timer = setTimeout(() => this.#connect(r), delay);
  }

  #send(r: RelayConn, msg: unknown[]): void {
    const frame = JSON.stringify(msg);
    if (r.held && msg[0] !== 'AUTH') r.held.push(frame);
    else if (r.ws?.readyState === WebSocket.OPEN) r.ws.send(frame);
  }

  #flushHeld(r: RelayConn): void {
    const held = r.held;
    r.held = undefined;
    if (held && r.ws?.readyState === WebSocket.OPEN) for (const f of held) r.ws.send(f);
  }

  // ---- NIP-42 ----

  /**
   * Authenticate this connection with the relay's current challenge. Resolves true once
   * the relay accepted the AUTH event; false without a signer, a challenge or on refusal.
   * Concurrent callers share one attempt.
   */
  #authenticate(r: RelayConn, log: Logger): Promise<boolean> {
    if (!this.#auth || !r.challenge || !r.connected) return Promise.resolve(false);
    if (r.authing) return r.authing;
    const challenge = r.challenge;
    const p = (async () => {
      try {
        const event = await this.#auth!({ kind: AUTH_KIND, created_at: Math.floor(Date.now() / 1000), tags: [['relay', r.url], ['challenge', challenge]], content: '' });
        const answer = await this.#awaitOk(r, event.id, this.#opts.connectTimeoutMs, undefined, () => this.#send(r, ['AUTH', event]));
        if (answer.ok) {
          r.authedAs = event.pubkey;
          log.info({ pubkey: event.pubkey }, 'authenticated to relay (NIP-42)');
        } else log.warn({ reason: answer.message }, 'relay refused our AUTH');
        return answer.ok;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not sign an AUTH event');
        return false;
      } finally {
        this.#flushHeld(r);
      }
    })();
    r.authing = p;
    // A failed attempt may be retried on the next challenge.
    void p.then((ok) => {
      if (!ok && r.authing === p) r.authing = undefined;
    });
    return p;
  }

  /** Wait for a challenge (it may still be in flight) and authenticate; false if none comes before the deadline. */
  async #authenticateWhenChallenged(r: RelayConn, log: Logger): Promise<boolean> {
    if (r.challenge) return this.#authenticate(r, log);
    const got = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        r.openWaiters.delete(on);
        resolve(false);
      }, this.#opts.connectTimeoutMs);
      const on = () => {
        if (!r.challenge) return;
        clearTimeout(t);
        r.openWaiters.delete(on);
        resolve(true);
      };
      r.openWaiters.add(on);
    });
    return got ? this.#authenticate(r, log) : false;
  }

  // ---- publish ----

  #awaitOk(r: RelayConn, id: string, timeoutMs: number, signal: AbortSignal | undefined, send: () => void): Promise<{ ok: boolean; message: string }> {
    return new Promise((resolve) => {
      let done = false;
      const entry: PendingOk = { resolve: (a) => finish(a) };
      const finish = (a: { ok: boolean; message: string }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const list = r.pendingOk.get(id);
        const i = list?.indexOf(entry) ?? -1;
        if (list && i >= 0) {
          list.splice(i, 1);
          if (!list.length) r.pendingOk.delete(id);
        }
        resolve(a);
      };
      const onAbort = () => finish({ ok: false, message: 'error: aborted' });
      const timer = setTimeout(() => finish({ ok: false, message: `error: no OK within ${timeoutMs} ms` }), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = r.pendingOk.get(id) ?? [];
      list.push(entry);
      r.pendingOk.set(id, list);
      send();
    });
  }

  async #publishOne(r: RelayConn, event: NostrEvent, timeoutMs: number, signal?: AbortSignal): Promise<PublishResult> {
    if (this.#closed) return { url: r.url, ok: false, message: 'error: pool closed' };
    const deadline = Date.now() + timeoutMs;
    r.users++;
    try {
      if (!r.connected) {
        const connected = await this.#waitOpen(r, timeoutMs, signal);
        if (!connected) return { url: r.url, ok: false, message: signal?.aborted ? 'error: aborted' : `error: not connected${r.lastError ? ` (${r.lastError})` : ''}` };
      }
      const left = () => Math.max(1, deadline - Date.now());
      let answer = await this.#awaitOk(r, event.id, left(), signal, () => this.#send(r, ['EVENT', event]));
      // The connection went away before the relay answered (a relay restart; or a socket the
      // pool still counted as open while it closed, whose frame was never sent): send the event
      // again on the next connection while the deadline allows. EVENT is idempotent — a relay
      // that did store it answers `duplicate:` with OK true.
      while (!answer.ok && answer.message === CLOSED_BEFORE_OK && deadline > Date.now() && !signal?.aborted && !this.#closed) {
        if (!(await this.#waitOpen(r, left(), signal))) break;
        answer = await this.#awaitOk(r, event.id, left(), signal, () => this.#send(r, ['EVENT', event]));
      }
      if (!answer.ok && answer.message.startsWith(AUTH_PREFIX)) {
        r.authRequired = true;
        const log = this.#log.child({ relay: r.url });
        if (await this.#authenticateWhenChallenged(r, log)) {
          answer = await this.#awaitOk(r, event.id, left(), signal, () => this.#send(r, ['EVENT', event]));
        } else if (!this.#auth) {
          answer = { ok: false, message: `${answer.message} (this agent has no AUTH signer)` };
        }
      }
      return { url: r.url, ...answer };
    } finally {
      this.#release(r);
    }
  }

  #waitOpen(r: RelayConn, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (r.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (v: boolean) => {
        clearTimeout(t);
        r.openWaiters.delete(on);
        signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const on = () => {
        if (r.connected) finish(true);
      };
      const onAbort = () => finish(false);
      const t = setTimeout(() => finish(false), timeoutMs);
      if (signal?.aborted) return finish(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      r.openWaiters.add(on);
    });
  }

  // ---- incoming ----

  #accept(sub: SubState, event: NostrEvent, log: Logger): boolean {
    if (sub.seen.has(event.id)) return false;
    if (this.#opts.verify && !this.#verified.has(event.id)) {
      let valid = false;
      try {
        valid = getEventHash(event) === event.id && verifyEvent(event as Parameters<typeof verifyEvent>[0]);
      } catch {
        valid = false;
      }
      if (!valid) {
        log.warn({ eventId: String(event.id).slice(0, 64) }, 'dropped event with a bad id or signature');
        return false;
      }
      remember(this.#verified, event.id, this.#opts.dedupeSize);
    }
    if (!matchFilters(sub.filters as Parameters<typeof matchFilters>[0], event as Parameters<typeof matchFilters>[1])) {
      log.debug({ eventId: event.id, subId: sub.id }, 'dropped event outside the subscription filters');
      return false;
    }
    remember(sub.seen, event.id, this.#opts.dedupeSize);
    return true;
  }

  #onMessage(r: RelayConn, text: string, log: Logger): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      log.debug({}, 'unparsable relay frame');
      return;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') return;
    switch (msg[0]) {
      case 'EVENT': {
        const [, subId, event] = msg as [string, string, NostrEvent];
        const sub = this.#subs.get(subId);
        if (!sub || sub.closed || !sub.relays.includes(r.url) || !isEventShape(event)) return;
        if (!this.#accept(sub, event, log)) return;
        try {
          sub.onEvent(event, r.url);
        } catch (err) {
          log.error({ err, eventId: event.id }, 'subscription handler threw');
        }
        return;
      }
      case 'OK': {
        const [, id, ok, message] = msg as [string, string, boolean, string];
        const p = r.pendingOk.get(id)?.[0];
        p?.resolve({ ok: ok === true, message: typeof message === 'string' ? message : '' });
        return;
      }
      case 'EOSE': {
        const sub = this.#subs.get(String(msg[1]));
        if (sub && !sub.closed) sub.opts.onEose?.(r.url);
        return;
      }
      case 'CLOSED': {
        const subId = String(msg[1]);
        const reason = typeof msg[2] === 'string' ? msg[2] : '';
        const sub = this.#subs.get(subId);
        if (!sub || sub.closed) return;
        if (reason.startsWith(AUTH_PREFIX)) {
          r.authRequired = true;
          if (this.#auth && !r.authRetried.has(subId)) {
            r.authRetried.add(subId);
            void this.#authenticateWhenChallenged(r, log).then((ok) => {
              if (sub.closed) return;
              if (ok) this.#send(r, ['REQ', sub.id, ...sub.filters]);
              else sub.opts.onClosed?.(r.url, reason);
            });
            return;
          }
          log.warn({ subId, reason, signer: this.#auth !== undefined }, 'relay requires AUTH for this subscription');
        } else {
          log.warn({ subId, reason }, 'relay closed a subscription');
        }
        sub.opts.onClosed?.(r.url, reason);
        return;
      }
      case 'AUTH': {
        const challenge = msg[1];
        if (typeof challenge !== 'string' || !challenge || challenge.length > 1024) return;
        r.challenge = challenge;
        r.authing = undefined;
        for (const w of [...r.openWaiters]) w();
        if (this.#auth) void this.#authenticate(r, log);
        return;
      }
      case 'NOTICE':
        log.info({ notice: String(msg[1]).slice(0, 300) }, 'relay notice');
        return;
    }
  }
}

function isEventShape(e: unknown): e is NostrEvent {
  const x = e as NostrEvent;
  return typeof x === 'object' && x !== null && typeof x.id === 'string' && typeof x.pubkey === 'string' && typeof x.sig === 'string' && typeof x.kind === 'number' && typeof x.created_at === 'number' && typeof x.content === 'string' && Array.isArray(x.tags);
}

function remember(set: Set<string>, id: string, max: number): void {
  set.add(id);
  if (set.size > max) {
    const oldest = set.values().next().value;
    if (oldest !== undefined) set.delete(oldest);
  }
}
