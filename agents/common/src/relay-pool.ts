// A small relay pool for agents: one WebSocket per relay, reconnect with capped exponential
// backoff and jitter, subscriptions re-sent on every reconnect, events verified and
// de-duplicated across relays, and publish that waits for each relay's OK with a deadline.
// Nothing here waits forever on one relay: a dead relay is just "not connected".
import WebSocket from 'ws';
import type { Logger } from 'pino';
import { verifyEvent } from 'nostr-tools/pure';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';

export interface RelayPoolOptions {
  readonly urls: readonly string[];
  readonly logger: Logger;
  /** First reconnect delay; doubles up to maxBackoffMs, with ±25% jitter. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly connectTimeoutMs?: number;
  /** How many event ids to remember for cross-relay de-duplication. */
  readonly dedupeSize?: number;
  /** Verify signatures of received events (default true). */
  readonly verify?: boolean;
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
  /** Called once per relay when it sends EOSE for this subscription. */
  readonly onEose?: (url: string) => void;
  /** Filters to send on a reconnect (default: the same filters). Lets a caller move `since` forward. */
  readonly refilter?: () => Filter[];
}

interface SubState {
  readonly id: string;
  filters: Filter[];
  readonly onEvent: (e: NostrEvent, url: string) => void;
  readonly opts: SubscribeOptions;
}

interface Pending {
  resolve: (r: PublishResult) => void;
  timer: NodeJS.Timeout;
}

class RelayConn {
  ws: WebSocket | undefined;
  connected = false;
  attempts = 0;
  timer: NodeJS.Timeout | undefined;
  readonly pendingOk = new Map<string, Pending[]>();
  readonly openWaiters = new Set<() => void>();
  lastError: string | undefined;
  connectedAt: number | undefined;
  reconnects = 0;
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }
}

export class RelayPool {
  readonly #opts: Required<Omit<RelayPoolOptions, 'urls' | 'logger'>>;
  readonly #log: Logger;
  readonly #relays: Map<string, RelayConn>;
  readonly #subs = new Map<string, SubState>();
  readonly #seen = new Map<string, true>();
  #closed = false;
  #subCounter = 0;

  constructor(opts: RelayPoolOptions) {
    if (!opts.urls.length) throw new Error('a relay pool needs at least one relay URL');
    this.#log = opts.logger;
    this.#opts = {
      minBackoffMs: opts.minBackoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      dedupeSize: opts.dedupeSize ?? 50_000,
      verify: opts.verify ?? true,
    };
    this.#relays = new Map([...new Set(opts.urls)].map((u) => [u, new RelayConn(u)]));
    for (const r of this.#relays.values()) this.#connect(r);
  }

  get urls(): string[] {
    return [...this.#relays.keys()];
  }

  /** Per relay: connected or not, and the last error. */
  status(): { url: string; connected: boolean; lastError?: string; reconnects: number }[] {
    return [...this.#relays.values()].map((r) => ({ url: r.url, connected: r.connected, reconnects: r.reconnects, ...(r.lastError ? { lastError: r.lastError } : {}) }));
  }

  connectedCount(): number {
    return [...this.#relays.values()].filter((r) => r.connected).length;
  }

  /** Resolves when at least `n` relays are connected (default 1), or rejects on timeout/abort. */
  waitConnected(opts: { n?: number; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const n = Math.min(opts.n ?? 1, this.#relays.size);
    if (this.connectedCount() >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no relay connected within ${opts.timeoutMs ?? 10_000} ms`)), opts.timeoutMs ?? 10_000);
      const check = () => {
        if (this.connectedCount() >= n) finish();
      };
      const onAbort = () => finish(new Error('aborted'));
      const finish = (err?: Error) => {
        clearTimeout(timer);
        for (const r of this.#relays.values()) r.openWaiters.delete(check);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      for (const r of this.#relays.values()) r.openWaiters.add(check);
    });
  }

  subscribe(filters: Filter[], onEvent: (e: NostrEvent, url: string) => void, opts: SubscribeOptions = {}): Subscription {
    const id = `s${++this.#subCounter}`;
    const sub: SubState = { id, filters, onEvent, opts };
    this.#subs.set(id, sub);
    for (const r of this.#relays.values()) if (r.connected) this.#send(r, ['REQ', id, ...filters]);
    return {
      close: () => {
        if (!this.#subs.delete(id)) return;
        for (const r of this.#relays.values()) if (r.connected) this.#send(r, ['CLOSE', id]);
      },
    };
  }

  /** Publish to every relay; resolves with each relay's answer (a relay that is down or silent answers ok=false). */
  async publish(event: NostrEvent, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PublishResult[]> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return Promise.all([...this.#relays.values()].map((r) => this.#publishOne(r, event, timeoutMs, opts.signal)));
  }

  /** Publish and require at least one relay to accept; throws with every relay's reason otherwise. */
  async publishAny(event: NostrEvent, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PublishResult[]> {
    const results = await this.publish(event, opts);
    if (!results.some((r) => r.ok)) throw new Error(`no relay accepted event ${event.id}: ${results.map((r) => `${r.url}: ${r.message}`).join('; ')}`);
    return results;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closing: Promise<void>[] = [];
    for (const r of this.#relays.values()) {
      clearTimeout(r.timer);
      for (const list of r.pendingOk.values()) for (const p of list) {
        clearTimeout(p.timer);
        p.resolve({ url: r.url, ok: false, message: 'error: pool closed' });
      }
      r.pendingOk.clear();
      const ws = r.ws;
      if (ws && ws.readyState !== WebSocket.CLOSED) {
        closing.push(new Promise((done) => {
          ws.once('close', () => done());
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close();
          setTimeout(() => { ws.terminate(); done(); }, 2_000).unref();
        }));
      }
    }
    await Promise.all(closing);
  }

  #publishOne(r: RelayConn, event: NostrEvent, timeoutMs: number, signal?: AbortSignal): Promise<PublishResult> {
    return new Promise((resolve) => {
      if (!r.connected) {
        // Wait for a (re)connection within the deadline rather than failing at once.
        const start = Date.now();
        const onOpen = () => {
          r.openWaiters.delete(onOpen);
          clearTimeout(t);
          this.#publishOne(r, event, Math.max(1, timeoutMs - (Date.now() - start)), signal).then(resolve);
        };
        const t = setTimeout(() => {
          r.openWaiters.delete(onOpen);
          resolve({ url: r.url, ok: false, message: `error: not connected${r.lastError ? ` (${r.lastError})` : ''}` });
        }, timeoutMs);
        r.openWaiters.add(onOpen);
        return;
      }
      const list = r.pendingOk.get(event.id) ?? [];
      const p: Pending = {
        resolve: (res) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(res);
        },
        timer: setTimeout(() => settle({ url: r.url, ok: false, message: `error: no OK within ${timeoutMs} ms` }), timeoutMs),
      };
      const settle = (res: PublishResult) => {
        clearTimeout(p.timer);
        const l = r.pendingOk.get(event.id);
        if (l) {
          l.splice(l.indexOf(p), 1);
          if (!l.length) r.pendingOk.delete(event.id);
        }
        p.resolve(res);
      };
      const onAbort = () => settle({ url: r.url, ok: false, message: 'error: aborted' });
      signal?.addEventListener('abort', onAbort, { once: true });
      list.push(p);
      r.pendingOk.set(event.id, list);
      this.#send(r, ['EVENT', event]);
    });
  }

  #send(r: RelayConn, msg: unknown[]): void {
    if (r.ws?.readyState === WebSocket.OPEN) r.ws.send(JSON.stringify(msg));
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
      r.connected = true;
      r.attempts = 0;
      r.lastError = undefined;
      r.connectedAt = Date.now();
      log.info({}, 'relay connected');
      for (const sub of this.#subs.values()) {
        if (sub.opts.refilter) sub.filters = sub.opts.refilter();
        this.#send(r, ['REQ', sub.id, ...sub.filters]);
      }
      for (const w of [...r.openWaiters]) w();
    });
    ws.on('message', (data) => this.#onMessage(r, data.toString(), log));
    ws.on('error', (err) => {
      r.lastError = err.message;
      log.debug({ err: err.message }, 'relay socket error');
    });
    ws.on('close', () => {
      const was = r.connected;
      r.connected = false;
      r.ws = undefined;
      for (const list of r.pendingOk.values()) for (const p of list) {
        clearTimeout(p.timer);
        p.resolve({ url: r.url, ok: false, message: 'error: connection closed before OK' });
      }
      r.pendingOk.clear();
      if (this.#closed) return;
      if (was) log.warn({}, 'relay disconnected');
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

  #onMessage(r: RelayConn, text: string, log: Logger): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      log.debug({}, 'unparsable relay frame');
      return;
    }
    if (!Array.isArray(msg)) return;
    const [type] = msg as [string];
    if (type === 'EVENT') {
      const [, subId, event] = msg as [string, string, NostrEvent];
      const sub = this.#subs.get(subId);
      if (!sub || typeof event !== 'object' || event === null || typeof event.id !== 'string') return;
      if (this.#seen.has(event.id)) return;
      if (this.#opts.verify && !verifyEvent(event as Parameters<typeof verifyEvent>[0])) {
        log.warn({ eventId: event.id }, 'dropped event with a bad signature');
        return;
      }
      this.#remember(event.id);
      try {
        sub.onEvent(event, r.url);
      } catch (err) {
        log.error({ err, eventId: event.id }, 'subscription handler threw');
      }
    } else if (type === 'OK') {
      const [, id, ok, message] = msg as [string, string, boolean, string];
      const list = r.pendingOk.get(id);
      const p = list?.[0];
      if (!p) return;
      list.shift();
      if (!list.length) r.pendingOk.delete(id);
      clearTimeout(p.timer);
      p.resolve({ url: r.url, ok: ok === true, message: typeof message === 'string' ? message : '' });
    } else if (type === 'EOSE') {
      const sub = this.#subs.get((msg as string[])[1]);
      sub?.opts.onEose?.(r.url);
    } else if (type === 'CLOSED') {
      const [, subId, reason] = msg as string[];
      log.warn({ subId, reason }, 'relay closed a subscription');
    } else if (type === 'NOTICE') {
      log.info({ notice: String((msg as string[])[1]).slice(0, 300) }, 'relay notice');
    }
  }

  #remember(id: string): void {
    this.#seen.set(id, true);
    if (this.#seen.size > this.#opts.dedupeSize) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
  }
}
