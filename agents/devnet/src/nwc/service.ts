// The devnet's NIP-47 wallet service over a relay. Built on @getalby/sdk's wallet-service
// side (NWCWalletService): its reconnecting relay pool, NIP-04 / NIP-44 v2 encryption,
// event signing and kind 13194 info event. The request loop is ours, because the SDK's
// `subscribe()` cannot answer unknown clients with UNAUTHORIZED, ignores a request's
// `expiration`, does not deduplicate, and has no notifications. One subscription covers
// every connection's wallet pubkey; settlements on the dev network become
// payment_received / payment_sent notifications (kind 23196 NIP-04 and 23197 NIP-44).
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { loadNwcSdk, sdkLogger } from '@bazaar/agents-common/wallet/alby-sdk';
import type { LightningNetwork, SettledEvent } from '../lightning/network.ts';
import { NWC_METHODS, NWC_NOTIFICATIONS, type ConnectionRecord, type ConnectionStore } from './connections.ts';
import { errorResponse, handleMultiPay, handleNwcRequest, invoiceToNwc, paymentToNwc, type NwcResponse } from './handler.ts';

type Sdk = Awaited<ReturnType<typeof loadNwcSdk>>;
type WalletService = InstanceType<Sdk['NWCWalletService']>;
type Encryption = 'nip04' | 'nip44_v2';

export const NWC_KINDS = { info: 13194, request: 23194, response: 23195, notificationNip04: 23196, notificationNip44: 23197 } as const;

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
  /** Clock in unix seconds (tests). */
  readonly now?: () => number;
}

export interface NwcService {
  /** Resolves once every info event of the current connections is published and the request subscription is open. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

interface Bucket {
  tokens: number;
  at: number;
}

const SEEN_MAX = 10_000;

export async function startNwcService(opts: NwcServiceOptions): Promise<NwcService> {
  if (!opts.relayUrls.length) throw new Error('NWC service needs at least one relay URL');
  const sdk = await loadNwcSdk();
  const log = opts.logger;
  const relayUrls = [...opts.relayUrls];
  const ws: WalletService = new sdk.NWCWalletService({ relayUrls, logger: sdkLogger(log) });
  const nowSecs = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const rate = opts.rateLimit ?? { burst: 30, perSecond: 10 };
  const maxAge = opts.maxRequestAgeSecs ?? 600;
  const publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
  const buckets = new Map<string, Bucket>();
  // Request id -> our signed response (undefined while in progress or when ignored). A
  // client that re-sends the same request gets the same answer; nothing runs twice.
  const seen = new Map<string, NostrEvent | undefined>();
  const announced = new Set<string>();
  let subscribedTo = '';
  let sub: { close: (reason?: string) => void } | undefined;
  let closed = false;

  const keypair = (walletSecret: string, clientPubkey: string) => new sdk.NWCWalletServiceKeyPair(walletSecret, clientPubkey);

  // The pool's own publish() resolves with a string even when it cannot connect, so
  // publish through each relay directly: success means some relay answered OK true.
  const inflight = new Set<Promise<unknown>>();
  async function publish(event: NostrEvent): Promise<void> {
    const signal = AbortSignal.timeout(publishTimeoutMs);
    const p = Promise.any(relayUrls.map(async (url) => {
      const relay = await ws.pool.ensureRelay(url, { connectionTimeout: publishTimeoutMs, abort: signal });
      await relay.publish(event as never);
    }));
    inflight.add(p);
    try {
      await p;
    } finally {
      inflight.delete(p);
    }
  }

  async function respond(request: NostrEvent, walletSecret: string, enc: Encryption, response: NwcResponse, dTag?: string): Promise<void> {
    const kp = keypair(walletSecret, request.pubkey);
    const content = await ws.encrypt(kp, JSON.stringify(response), enc);
    const tags = [['p', request.pubkey], ['e', request.id], ...(dTag !== undefined ? [['d', dTag]] : [])];
    const event = (await ws.signEvent({ kind: NWC_KINDS.response, created_at: nowSecs(), tags, content }, walletSecret)) as NostrEvent;
    // Single responses are cached for re-sent requests; multi responses are not (several events).
    if (seen.has(request.id) && dTag === undefined) seen.set(request.id, event);
    await publish(event);
  }

  function takeToken(key: string): boolean {
    const now = Date.now() / 1000;
    const b = buckets.get(key) ?? { tokens: rate.burst, at: now };
    b.tokens = Math.min(rate.burst, b.tokens + (now - b.at) * rate.perSecond);
    b.at = now;
    buckets.set(key, b);
    // Full buckets carry no information: drop them so strangers cannot grow the map forever.
    if (buckets.size > 10_000) for (const [k, v] of buckets) if (v.tokens + (now - v.at) * rate.perSecond >= rate.burst) buckets.delete(k);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

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
      const plain = await ws.decrypt(keypair(conn.walletSecret, event.pubkey), event.content, enc);
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
    const kp = keypair(conn.walletSecret, conn.clientPubkey);
    // Clients listen on one kind according to the encryption they negotiated; publish both.
    for (const [kind, enc] of [[NWC_KINDS.notificationNip44, 'nip44_v2'], [NWC_KINDS.notificationNip04, 'nip04']] as const) {
      const content = await ws.encrypt(kp, payload, enc);
      const event = (await ws.signEvent({ kind, created_at: nowSecs(), tags: [['p', conn.clientPubkey]], content }, conn.walletSecret)) as NostrEvent;
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
      await ws.publishWalletServiceInfoEvent(r.walletSecret, [...r.methods, 'notifications'] as never, [...NWC_NOTIFICATIONS]);
      announced.add(r.walletPubkey);
      log.info({ account: r.account, walletPubkey: r.walletPubkey, connection: r.name }, 'nwc connection announced');
    }
    // Revoked connections stay subscribed so their clients get UNAUTHORIZED rather than silence.
    const pubkeys = records.map((r) => r.walletPubkey).sort();
    const key = pubkeys.join(',');
    if (key === subscribedTo || closed) return;
    const old = sub;
    const connectedOnce = new Set<string>();
    sub = pubkeys.length
      ? ws.pool.subscribe(relayUrls, { kinds: [NWC_KINDS.request], '#p': pubkeys }, {
          onevent: (ev) => {
            onRequest(ev as NostrEvent).catch((err: unknown) => log.error({ err, requestId: (ev as NostrEvent).id }, 'nwc request handling failed'));
          },
          onconnect: (url) => {
            log.debug({ url }, 'nwc relay connected');
            // After a reconnect the relay may have lost our replaceable info events (a wiped
            // dev relay): announce again; replacing an identical event is harmless.
            if (connectedOnce.has(url)) {
              announced.clear();
              void scheduleRefresh();
            }
            connectedOnce.add(url);
          },
          ondisconnect: (url, reason) => log.warn({ url, reason }, 'nwc relay disconnected'),
        })
      : undefined;
    subscribedTo = key;
    // Open the new subscription before closing the old one; duplicates are dropped by id.
    old?.close('resubscribing');
    if (sub) await Promise.any(relayUrls.map((u) => ws.pool.ensureRelay(u, { connectionTimeout: 5000 })));
  }

  const offSettled = opts.network.onSettled(onSettled);
  let refreshing: Promise<void> = Promise.resolve();
  const scheduleRefresh = () => {
    refreshing = refreshing.then(refresh).catch((err: unknown) => log.error({ err }, 'nwc refresh failed'));
    return refreshing;
  };
  const offChange = opts.connections.onChange(() => void scheduleRefresh());
  const timer = setInterval(() => void scheduleRefresh(), opts.refreshIntervalMs ?? 2000);
  timer.unref();

  // Connect first, so an unreachable relay is one clear error (not the SDK's console noise).
  try {
    await Promise.any(relayUrls.map((u) => ws.pool.ensureRelay(u, { connectionTimeout: 5000 })));
    await refresh();
  } catch (err) {
    closed = true;
    clearInterval(timer);
    offSettled();
    offChange();
    sub?.close('startup failed');
    ws.close();
    const reason = err instanceof AggregateError ? err.errors.map((e: unknown) => (e as Error)?.message ?? String(e)).join('; ') : (err as Error).message;
    throw new Error(`cannot connect to relay ${relayUrls.join(', ')}: ${reason}`);
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
      sub?.close('shutdown');
      ws.close();
      log.info({}, 'nwc wallet service stopped');
    },
  };
}
