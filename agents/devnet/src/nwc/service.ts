// The devnet's NIP-47 wallet service over a relay, on the agents' RelayPool (reconnect
// with backoff, NIP-42 AUTH for relays that require it) with NIP-04 / NIP-44 v2 from
// nostr-tools. The request loop answers unknown clients with UNAUTHORIZED, honours a
// request's `expiration`, deduplicates re-sent requests and sends notifications. One
// subscription covers every connection's wallet pubkey; settlements on the dev network
// become payment_received / payment_sent notifications (kind 23196 NIP-04 and 23197 NIP-44).
import type { Logger } from 'pino';
import { hexToBytes } from '@noble/hashes/utils.js';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { TokenBuckets } from '@bazaar/policies/rules/token-bucket';
import { systemClock } from '@bazaar/policies/clock';
import { NWC_KINDS, nwcDecrypt, nwcEncrypt, type NwcEncryption } from '@bazaar/agents-common/wallet/nip47';
import type { LightningNetwork, SettledEvent } from '../lightning/network.ts';
import { NWC_METHODS, NWC_NOTIFICATIONS, type ConnectionRecord, type ConnectionStore } from './connections.ts';
import { errorResponse, handleMultiPay, handleNwcRequest, invoiceToNwc, paymentToNwc, type NwcResponse } from './handler.ts';

type Encryption = NwcEncryption;

export { NWC_KINDS };

export interface NwcServiceOptions {
  readonly relayUrls: readonly string[];
  readonly network: LightningNetwork;
  readonly connections: ConnectionStore;
  readonly logger: Logger;
  /** Per-connection token bucket: burst size and refill per second. */
  readonly rateLimit?: { readonly burst: number; readonly perSecond: number };
  /** Requests older than this (by created_at) are ignored as stale replays. */
  readonly maxRequestAgeSecs?: number;
  /** How often to look for connections added by another process (ms). */
  readonly refreshIntervalMs?: number;
  /** Publish timeout (ms). */
  readonly publishTimeoutMs?: number;
  /** Relay reconnect backoff (tests shorten it). */
  readonly minBackoffMs?: number;
  /** Clock in unix seconds (tests). */
  readonly now?: () => number;
}

export interface NwcService {
  /** Resolves once every info event of the current connections is published and the request subscription is open. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const SEEN_MAX = 10_000;

export async function startNwcService(opts: NwcServiceOptions): Promise<NwcService> {
  if (!opts.relayUrls.length) throw new Error('NWC service needs at least one relay URL');
  const log = opts.logger;
  const relayUrls = [...opts.relayUrls];
  // NIP-42: relays that require AUTH get it from a key of the service's own, made per run
  // (wallet keys are per connection and stay unlinked from each other).
  const authKey = generateSecretKey();
  let announceAgain: () => void = () => {};
  const pool = new RelayPool({
    relays: relayUrls,
    logger: log.child({ part: 'nwc-pool' }),
    auth: (template) => finalizeEvent(template, authKey) as NostrEvent,
    ...(opts.minBackoffMs ? { minBackoffMs: opts.minBackoffMs } : {}),
    onConnect: (url, reconnect) => {
      log.debug({ url }, 'nwc relay connected');
      // After a reconnect the relay may have lost our replaceable info events (a wiped dev
      // relay): announce again; replacing an identical event is harmless.
      if (reconnect) announceAgain();
    },
  });
  const nowSecs = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const rate = opts.rateLimit ?? { burst: 30, perSecond: 10 };
  const maxAge = opts.maxRequestAgeSecs ?? 600;
  const publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
  // Request id -> our signed response (undefined while in progress or when ignored). A
  // client that re-sends the same request gets the same answer; nothing runs twice.
  const seen = new Map<string, NostrEvent | undefined>();
  const announced = new Set<string>();
  let subscribedTo = '';
  let sub: { close: () => void } | undefined;
  let closed = false;

  const sign = (template: EventTemplate, walletSecret: string) => finalizeEvent(template, hexToBytes(walletSecret)) as NostrEvent;

  // Success means some relay answered OK true.
  const inflight = new Set<Promise<unknown>>();
  async function publish(event: NostrEvent): Promise<void> {
    const p = pool.publishAny(event, { timeoutMs: publishTimeoutMs });
    inflight.add(p);
    try {
      await p;
    } finally {
      inflight.delete(p);
    }
  }

  async function respond(request: NostrEvent, walletSecret: string, enc: Encryption, response: NwcResponse, dTag?: string): Promise<void> {
    const content = nwcEncrypt(walletSecret, request.pubkey, JSON.stringify(response), enc);
    const tags = [['p', request.pubkey], ['e', request.id], ...(dTag !== undefined ? [['d', dTag]] : [])];
    const event = sign({ kind: NWC_KINDS.response, created_at: nowSecs(), tags, content }, walletSecret);
    // Single responses are cached for re-sent requests; multi responses are not (several events).
    if (seen.has(request.id) && dTag === undefined) seen.set(request.id, event);
    await publish(event);
  }

  const buckets = new TokenBuckets({ burst: rate.burst, perSecond: rate.perSecond, maxKeys: 10_000, clock: systemClock });
  const takeToken = (key: string): boolean => buckets.take(key);

  async function onRequest(event: NostrEvent): Promise<void> {
    if (seen.has(event.id)) {
      const previous = seen.get(event.id);
      if (previous) await publish(previous);
      return;
    }
    seen.set(event.id, undefined);
    if (seen.size > SEEN_MAX) seen.delete(seen.keys().next().value as string);
    const rlog = log.child({ requestId: event.id, client: event.pubkey });
    if (event.kind !== NWC_KINDS.request) return;
    const now = nowSecs();
    const expiration = event.tags.find((t) => t[0] === 'expiration')?.[1];
    if (expiration !== undefined && Number(expiration) < now) {
      rlog.info({ expiration: Number(expiration) }, 'nwc request expired, ignored');
      return;
    }
    if (event.created_at < now - maxAge) {
      rlog.info({ createdAt: event.created_at }, 'nwc request stale, ignored');
      return;
    }
    const walletPubkey = event.tags.find((t) => t[0] === 'p')?.[1];
    const conn = walletPubkey ? opts.connections.get(walletPubkey) : undefined;
    if (!conn) {
      rlog.warn({ walletPubkey }, 'nwc request for an unknown wallet pubkey, ignored');
      return;
    }
    const encTag = event.tags.find((t) => t[0] === 'encryption')?.[1];
    // No tag means NIP-04 (NIP-47); a tagless payload that is not NIP-04 shaped
    // (`base64?iv=base64`) is read as NIP-44 v2 rather than answered with garbage.
    const enc: Encryption | undefined =
      encTag === undefined ? (event.content.includes('?iv=') ? 'nip04' : 'nip44_v2') : encTag === 'nip04' || encTag === 'nip44_v2' ? encTag : undefined;
    if (enc === undefined) {
      rlog.warn({ encryption: encTag }, 'nwc request with unsupported encryption');
      await respond(event, conn.walletSecret, 'nip04', errorResponse('', 'UNSUPPORTED_ENCRYPTION', `encryption ${JSON.stringify(encTag)} is not supported; use nip44_v2 or nip04`));
      return;
    }
    let method: unknown;
    let params: unknown;
    try {
      const plain = nwcDecrypt(conn.walletSecret, event.pubkey, event.content, enc);
      const parsed = JSON.parse(plain) as { method?: unknown; params?: unknown };
      method = parsed?.method;
      params = parsed?.params;
    } catch {
      if (conn.clientPubkey !== event.pubkey || conn.revoked) {
        if (!takeToken(`unauthorized:${event.pubkey}`)) return;
        await respond(event, conn.walletSecret, enc, errorResponse('', 'UNAUTHORIZED', 'this public key has no wallet connected'));
        return;
      }
      rlog.warn({ encryption: enc }, 'nwc request does not decrypt or parse');
      await respond(event, conn.walletSecret, enc, errorResponse('', 'OTHER', 'request content does not decrypt to JSON'));
      return;
    }
    const methodName = typeof method === 'string' ? method : '';
    let response: NwcResponse;
    if (conn.clientPubkey !== event.pubkey || conn.revoked) {
      // Strangers get an answer too, but within a rate limit of their own: no amplification.
      if (!takeToken(`unauthorized:${event.pubkey}`)) return;
      rlog.warn({ walletPubkey, method: methodName }, 'nwc request from an unauthorized client');
      response = errorResponse(methodName, 'UNAUTHORIZED', conn.revoked ? 'this connection was revoked' : 'this public key has no wallet connected');
    } else if (!takeToken(conn.walletPubkey)) {
      rlog.warn({ account: conn.account, method: methodName }, 'nwc request rate limited');
      response = errorResponse(methodName, 'RATE_LIMITED', `more than ${rate.perSecond} requests per second; retry in a few seconds`);
    } else if (methodName === 'multi_pay_invoice' || methodName === 'multi_pay_keysend') {
      rlog.debug({ account: conn.account, method: methodName, encryption: enc }, 'nwc request');
      const parts = handleMultiPay({ network: opts.network, connection: conn, logger: rlog, now: nowSecs, requestId: event.id }, methodName, params);
      for (const part of parts) {
        if (part.response.error) rlog.info({ account: conn.account, method: methodName, d: part.d, code: part.response.error.code, reason: part.response.error.message }, 'nwc request failed');
        await respond(event, conn.walletSecret, enc, part.response, part.d);
      }
      return;
    } else {
      rlog.debug({ account: conn.account, method: methodName, encryption: enc }, 'nwc request');
      response = handleNwcRequest({ network: opts.network, connection: conn, logger: rlog, now: nowSecs, requestId: event.id }, method, params);
      if (response.error) rlog.info({ account: conn.account, method: methodName, code: response.error.code, reason: response.error.message }, 'nwc request failed');
    }
    await respond(event, conn.walletSecret, enc, response);
  }

  async function notify(conn: ConnectionRecord, type: (typeof NWC_NOTIFICATIONS)[number], notification: unknown): Promise<void> {
    const payload = JSON.stringify({ notification_type: type, notification });
    // Clients listen on one kind according to the encryption they negotiated; publish both.
    for (const [kind, enc] of [[NWC_KINDS.notificationNip44, 'nip44_v2'], [NWC_KINDS.notificationNip04, 'nip04']] as const) {
      const content = nwcEncrypt(conn.walletSecret, conn.clientPubkey, payload, enc);
      const event = sign({ kind, created_at: nowSecs(), tags: [['p', conn.clientPubkey]], content }, conn.walletSecret);
      await publish(event);
    }
  }

  function onSettled(e: SettledEvent): void {
    const jobs: Promise<void>[] = [];
    for (const conn of opts.connections.records({ account: e.invoice.account })) {
      jobs.push(notify(conn, 'payment_received', invoiceToNwc({ ...e.invoice, state: 'paid' })));
    }
    for (const conn of opts.connections.records({ account: e.payment.account })) {
      jobs.push(notify(conn, 'payment_sent', paymentToNwc(e.payment)));
    }
    void Promise.allSettled(jobs).then((rs) => {
      for (const r of rs) if (r.status === 'rejected') log.warn({ err: r.reason, paymentHash: e.invoice.paymentHash }, 'nwc notification not published');
    });
  }

  async function refresh(): Promise<void> {
    if (closed) return;
    const records = opts.connections.records({ includeRevoked: true });
    const fresh = records.filter((r) => !r.revoked && !announced.has(r.walletPubkey));
    for (const r of fresh) {
      await publish(sign({
        kind: NWC_KINDS.info,
        created_at: nowSecs(),
        tags: [['encryption', 'nip44_v2 nip04'], ['notifications', NWC_NOTIFICATIONS.join(' ')]],
        content: [...r.methods, 'notifications'].join(' '),
      }, r.walletSecret));
      announced.add(r.walletPubkey);
      log.info({ account: r.account, walletPubkey: r.walletPubkey, connection: r.name }, 'nwc connection announced');
    }
    // Revoked connections stay subscribed so their clients get UNAUTHORIZED rather than silence.
    const pubkeys = records.map((r) => r.walletPubkey).sort();
    const key = pubkeys.join(',');
    if (key === subscribedTo || closed) return;
    const old = sub;
    sub = pubkeys.length
      ? pool.subscribe([{ kinds: [NWC_KINDS.request], '#p': pubkeys }], (ev) => {
          onRequest(ev).catch((err: unknown) => log.error({ err, requestId: ev.id }, 'nwc request handling failed'));
        })
      : undefined;
    subscribedTo = key;
    // Open the new subscription before closing the old one; duplicates are dropped by id.
    old?.close();
    if (sub) await pool.waitConnected({ timeoutMs: 5000 });
  }

  const offSettled = opts.network.onSettled(onSettled);
  let refreshing: Promise<void> = Promise.resolve();
  const scheduleRefresh = () => {
    refreshing = refreshing.then(refresh).catch((err: unknown) => log.error({ err }, 'nwc refresh failed'));
    return refreshing;
  };
  announceAgain = () => {
    announced.clear();
    void scheduleRefresh();
  };
  const offChange = opts.connections.onChange(() => void scheduleRefresh());
  const timer = setInterval(() => void scheduleRefresh(), opts.refreshIntervalMs ?? 2000);
  timer.unref();

  // Connect first, so an unreachable relay is one clear error (not the SDK's console noise).
  try {
    await pool.waitConnected({ timeoutMs: 5000 });
    await refresh();
  } catch (err) {
    closed = true;
    clearInterval(timer);
    offSettled();
    offChange();
    sub?.close();
    const why = pool.status().map((r) => r.lastError).filter(Boolean).join('; ');
    await pool.close();
    throw new Error(`cannot connect to relay ${relayUrls.join(', ')}: ${(err as Error).message}${why ? ` (${why})` : ''}`);
  }
  log.info({ relays: relayUrls, connections: opts.connections.records().length, methods: NWC_METHODS }, 'nwc wallet service started');

  return {
    refresh: () => scheduleRefresh(),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      offSettled();
      offChange();
      await refreshing.catch(() => undefined);
      // Let responses and notifications already sent get their OK before the sockets close.
      if (inflight.size) await Promise.allSettled([...inflight]);
      sub?.close();
      await pool.close();
      log.info({}, 'nwc wallet service stopped');
    },
  };
}
