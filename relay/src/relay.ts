// The relay core: NIP-01 message handling over any Transport.
// Data flows one way: transport → ingest (parse, verify) → policy → store → live subscriptions.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isEphemeralKind, type Filter, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { seq } from '@bazaar/policies/combinators';
import { eventLimits } from '@bazaar/policies/limits';
import type { Policy, PolicyContext, ReadStore, Verdict } from '@bazaar/policies/policy';
import type { EventStore, PutOutcome, QueryCursor } from './store/event-store.ts';
import { expirationTs, isExpired } from './store/event-rules.ts';
import { QueryScheduler } from './query-scheduler.ts';
import { DEFAULT_NEGENTROPY, NegentropySessions, type NegentropyOptions } from './sync/negentropy-sessions.ts';
import type { ConnectionHandler, HttpRequest, HttpResponse, TransportHandlers, TransportSocket } from './transport/transport.ts';
import { checkFilter } from './filter.ts';
import { SubscriptionIndex, type Subscriber } from './subscriptions.ts';
import { parseEvent, sniffEventId } from './ingest/parse-event.ts';
import type { RelayLimits } from './limits.ts';
import { CORS_HEADERS, relayInfo, type RelayInfoConfig } from './nip11.ts';
import { addressOfRequest, addressOfUrl, namesRelay, type RelayAddress } from './relay-address.ts';

/** Resolves to null for a valid id and signature, otherwise the `invalid:` reason. */
export type Verify = (event: NostrEvent) => Promise<string | null>;

export interface RelayCoreOptions {
  readonly store: EventStore;
  readonly verify: Verify;
  readonly limits: RelayLimits;
  readonly info: RelayInfoConfig;
  readonly logger: Logger;
  /**
   * The operator's write policy. It runs after the relay's built-in event limits (tags, content
   * length, created_at window, NIP-40, NIP-70 — policies' eventLimits() with `limits`), which
   * always run, so that NIP-11 `limitation` stays true whatever the policy.
   */
  readonly policy?: Policy;
  /** A policy slower than this is rejected (`error:`) and aborted, so it never wedges a writer. */
  readonly policyTimeoutMs?: number;
  /**
   * Behind a reverse proxy: take the client address from the first `X-Forwarded-For`
   * entry (or `X-Real-IP`) instead of the socket's peer. Only enable it when every
   * connection comes through the proxy, or clients can claim any address.
   */
  readonly trustProxy?: boolean;
  /**
   * Public ws(s):// URL of this relay: a NIP-42 `relay` tag must name it. Without it the tag must
   * name the address the client connected to (Host header and path; with `trustProxy`,
   * X-Forwarded-Host and X-Forwarded-Proto).
   */
  readonly publicUrl?: string;
  /** Clock in unix seconds (tests). */
  readonly now?: () => number;
  readonly version?: string;
  /** Called after an event is stored, with its store sequence number (the market index follows it). */
  readonly onStored?: (event: NostrEvent, seq: number) => void;
  /**
   * Relay cluster: called for every event accepted here that did not come from the cluster —
   * after its signature and policies, before the store. The event is stored and acknowledged
   * (`OK true`) only once this resolves; a rejection answers `OK false "error: …"` and nothing is
   * stored. (The cluster publishes to its JetStream stream and resolves on the stream's ack.)
   */
  readonly replicate?: (event: NostrEvent, raw: string) => Promise<void>;
  /** Time budget of one query-scheduler turn before the event loop is yielded (ms). Default 5. */
  readonly querySliceMs?: number;
  /**
   * Extra HTTP routes (the market API, the marketplace page, /metrics), asked before the relay's
   * own: a response, or undefined to fall through to NIP-11, /health and 404.
   */
  readonly http?: (req: HttpRequest) => HttpResponse | Promise<HttpResponse> | undefined;
  /** Called with each REQ's time to EOSE in milliseconds (metrics). */
  readonly onQuery?: (ms: number) => void;
  /** NIP-77 negentropy sync (NEG-OPEN / NEG-MSG / NEG-CLOSE); `false` turns it off. Defaults: DEFAULT_NEGENTROPY. */
  readonly negentropy?: Partial<NegentropyOptions> | false;
}

/** Queries of one connection worked on in turn; its further queries wait behind them. */
const QUERY_INTERLEAVE = 4;

const AUTH_KIND = 22242;
const AUTH_WINDOW_SECS = 600;

/** Where an event given to `addEvent` came from (strfry's sourceType): every source but a socket. */
export type EventSource = Exclude<PolicyContext['source']['type'], 'ws'>;

export interface AddEventOptions {
  readonly source: EventSource;
  /** Free text for logs and policies (e.g. the peer relay's URL); defaults to the source type. */
  readonly sourceInfo?: string;
  /**
   * The event came from this relay's own cluster, already accepted there: `stream` — a message of
   * the cluster's JetStream stream, whose accepting node checked its signature (trusted only for
   * messages from the cluster's own stream subjects); `peer` — fetched from a cluster node while
   * catching up (its signature is checked here). Either way it is stored and delivered here and
   * never re-published, and the rules that depend on when it arrives (created_at windows, size
   * limits, policies) are not applied again, so that every node keeps the same events.
   */
  readonly cluster?: 'stream' | 'peer';
  /**
   * With `cluster: 'stream'`: unix seconds at which the cluster's stream accepted the event. The
   * store judges NIP-40 expiry on arrival at this moment instead of its own clock, so a node
   * reading the stream late (it was down, or lags) keeps what the others kept — an expired
   * replaceable version still replaces the older ones — and expiry then removes it everywhere.
   */
  readonly acceptedAt?: number;
}

/** The relay's answer to one event, exactly the fields of a NIP-01 `OK`. */
export interface AddEventResult {
  readonly ok: boolean;
  /** Empty, or a reason starting with a NIP-01 prefix (`duplicate:`, `invalid:`, `blocked:`, …). */
  readonly message: string;
}

/** Who handed an event to the pipeline: a client connection, or a non-socket source. */
interface Origin {
  readonly source: PolicyContext['source'];
  readonly client?: Client;
  readonly cluster?: AddEventOptions['cluster'];
  readonly acceptedAt?: number;
  /** Bytes of the message that carried the event, when known. */
  readonly size?: number;
}

/** NIP-01 (and NIP-42's auth-required) machine-readable prefixes of OK / CLOSED messages. */
const REASON_PREFIX = /^(duplicate|pow|blocked|rate-limited|invalid|restricted|mute|error|auth-required): /;

/**
 * One place decides what a client reads in OK (as khatru does): a refusal whose reason lacks a
 * NIP-01 prefix (a policy or store that forgot one) becomes `blocked: <reason>`; an acceptance
 * carries no free text. Failures of the relay itself are `error:` (see `admit`).
 */
export function normaliseReason(ok: boolean, message: string): string {
  if (message === '' || REASON_PREFIX.test(message)) return message;
  return ok ? '' : `blocked: ${message}`;
}

interface Sub extends Subscriber<Client> {
  /** `["EVENT",<subId>,` — frames are prefix + event JSON + `]`. */
  readonly prefix: string;
  readonly prefixBytes: Buffer;
  /**
   * The store's lastSeq() when the REQ arrived (strfry's ActiveMonitors): its stored query sees
   * every event up to it and nothing newer, so live delivery sends only events above it.
   */
  readonly watermark: number;
  /** New events (above the watermark) that arrived while the stored query ran; null once EOSE is out. */
  pending: string[] | null;
}

/** New events held for one subscription while its stored query runs; beyond this it is closed. */
const MAX_HELD_EVENTS = 10_000;

let connectionSeq = 0;
const FRAME_SUFFIX = Buffer.from(']');

const okFrame = (id: string, ok: boolean, msg: string): string => `["OK","${id}",${ok},${JSON.stringify(msg)}]`;
const noticeFrame = (msg: string): string => `["NOTICE",${JSON.stringify(msg)}]`;
const closedFrame = (subId: string, msg: string): string => `["CLOSED",${JSON.stringify(subId)},${JSON.stringify(msg)}]`;

class Client implements ConnectionHandler {
  readonly id = `c${++connectionSeq}`;
  readonly challenge = randomBytes(16).toString('hex');
  subs: Map<string, Sub> | undefined;
  authed: string[] | undefined;
  readonly relay: RelayCore;
  readonly sock: TransportSocket;
  /** The client's address as policies see it (the peer, or the proxy's forwarded address). */
  readonly ip: string;
  /** The relay address this client reached, which its NIP-42 `relay` tag must name (undefined: unknown). */
  readonly address: RelayAddress | undefined;
  constructor(relay: RelayCore, sock: TransportSocket, ip: string, address: RelayAddress | undefined) {
    this.relay = relay;
    this.sock = sock;
    this.ip = ip;
    this.address = address;
  }

  send(frame: string): void {
    this.sock.send(frame);
  }

  isAuthed(pubkey?: string): boolean {
    if (!this.authed) return false;
    return pubkey === undefined ? this.authed.length > 0 : this.authed.includes(pubkey);
  }

  onMessage(text: string, byteLength: number): void {
    this.relay.handleMessage(this, text, byteLength);
  }
  onBinary(byteLength: number): void {
    this.send(noticeFrame(`invalid: binary frames are not supported (got ${byteLength} bytes); send JSON text frames`));
  }
  onClose(): void {
    this.relay.dropClient(this);
  }
}

/** Emits `connect` and `disconnect` (with the connection id) for metrics and tests. */
export class RelayCore extends EventEmitter implements TransportHandlers {
  readonly subscriptions = new SubscriptionIndex<Client>();
  readonly queries: QueryScheduler<Client>;
  /** NIP-77 sessions; undefined when negentropy is off. */
  readonly negentropy: NegentropySessions<Client> | undefined;
  readonly clients = new Set<Client>();
  private readonly now: () => number;
  private readonly inflight = new Map<string, Promise<AddEventResult>>();
  private readonly readStore: ReadStore;
  /** The built-in event limits (advertised in NIP-11), then the operator's policy. */
  private readonly policy: Policy;
  private readonly startedAt = Date.now();
  private readonly publicAddress: RelayAddress | undefined;
  /** Connections mostly share a Host header: one parsed address each, not one per connection. */
  private readonly addresses = new Map<string, RelayAddress | undefined>();
  private readonly log: Logger;
  stats = { eventsReceived: 0, eventsStored: 0, eventsRejected: 0, eventsSent: 0, reqs: 0 };
  /** Refused events by the NIP-01 prefix of the reason (`invalid`, `blocked`, `rate-limited`, …). */
  readonly rejections: Record<string, number> = Object.create(null) as Record<string, number>;
  readonly opts: RelayCoreOptions;

  constructor(opts: RelayCoreOptions) {
    super();
    this.opts = opts;
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.log = opts.logger;
    if (opts.publicUrl !== undefined) {
      this.publicAddress = addressOfUrl(opts.publicUrl);
      if (!this.publicAddress) throw new Error(`publicUrl must be a ws:// or wss:// URL (got ${JSON.stringify(opts.publicUrl)})`);
    }
    // One owner per rule: the limits are the policies package's rules, run with this relay's numbers.
    const builtIn = eventLimits({ ...opts.limits, maxEventBytes: opts.limits.maxMessageBytes });
    this.policy = opts.policy ? seq(builtIn, opts.policy) : builtIn;
    this.queries = new QueryScheduler<Client>({ sliceMs: opts.querySliceMs ?? 5, interleave: QUERY_INTERLEAVE });
    this.negentropy = opts.negentropy === false ? undefined : new NegentropySessions<Client>({
      store: opts.store,
      scheduler: this.queries,
      logger: opts.logger,
      options: { ...DEFAULT_NEGENTROPY, ...opts.negentropy },
      maxSubIdLength: opts.limits.maxSubIdLength,
      maxFilters: opts.limits.maxFilters,
      authRequired: () => opts.info.authRequired,
      now: this.now,
    });
    const store = opts.store;
    this.readStore = {
      query: async (filters, o) => (await store.query(filters, { signal: o?.signal, now: this.now() })).map((s) => JSON.parse(s) as NostrEvent),
    };
  }

  // ── transport callbacks ──────────────────────────────────────────────

  onOpen(sock: TransportSocket, req: HttpRequest): ConnectionHandler {
    const client = new Client(this, sock, (this.opts.trustProxy && forwardedFor(req)) || sock.ip, this.publicAddress ?? this.requestAddress(req));
    this.clients.add(client);
    client.send(`["AUTH","${client.challenge}"]`);
    this.emit('connect', client.id);
    return client;
  }

  onHttp(req: HttpRequest): HttpResponse | Promise<HttpResponse> {
    const path = req.path.split('?')[0];
    const extra = this.opts.http?.(req);
    if (extra) return extra;
    if (req.method === 'OPTIONS') return { status: 204, headers: { ...CORS_HEADERS, 'Access-Control-Max-Age': '86400' }, body: '' };
    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, headers: { ...CORS_HEADERS, Allow: 'GET, HEAD, OPTIONS' }, body: 'method not allowed\n' };
    if (path === '/health') {
      return {
        status: 200,
        headers: { ...CORS_HEADERS, 'Content-Type': 'application/json' },
        body: JSON.stringify({ status: 'ok', uptimeSecs: Math.round((Date.now() - this.startedAt) / 1000), connections: this.clients.size, subscriptions: this.subscriptions.size, queries: this.queries.size }),
      };
    }
    if (path === '/' && (req.headers.accept ?? '').includes('application/nostr+json')) {
      return { status: 200, headers: { ...CORS_HEADERS, 'Content-Type': 'application/nostr+json' }, body: JSON.stringify(this.info()) };
    }
    if (path === '/') {
      const i = this.info();
      return { status: 200, headers: { ...CORS_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }, body: `${String(i.name)}\n\n${String(i.description)}\n\nThis is a Nostr relay: connect with a WebSocket client, or fetch NIP-11 with 'Accept: application/nostr+json'.\n` };
    }
    return { status: 404, headers: { ...CORS_HEADERS, 'Content-Type': 'text/plain' }, body: 'not found\n' };
  }

  private requestAddress(req: HttpRequest): RelayAddress | undefined {
    const trust = this.opts.trustProxy === true;
    const h = req.headers;
    const key = trust ? `${h['x-forwarded-host'] ?? ''} ${h['x-forwarded-proto'] ?? ''} ${h.host ?? ''}` : `${h.host ?? ''} ${req.path.split('?')[0]}`;
    if (this.addresses.has(key)) return this.addresses.get(key);
    const address = addressOfRequest(req, trust);
    if (this.addresses.size >= 1024) this.addresses.clear(); // bounded: Host headers are client-chosen
    this.addresses.set(key, address);
    return address;
  }

  info(): Record<string, unknown> {
    return relayInfo(this.opts.info, this.opts.limits, this.opts.version ?? '0.1.0', this.negentropy ? [77] : []);
  }

  dropClient(client: Client): void {
    this.clients.delete(client);
    this.queries.drop(client); // work in progress for a gone client stops here
    this.negentropy?.drop(client);
    if (client.subs) for (const sub of client.subs.values()) this.subscriptions.remove(sub);
    client.subs = undefined;
    this.emit('disconnect', client.id);
  }

  // ── messages ─────────────────────────────────────────────────────────

  handleMessage(client: Client, text: string, byteLength: number): void {
    const limits = this.opts.limits;
    if (byteLength > limits.maxMessageBytes) {
      const id = text.startsWith('["EVENT"') ? sniffEventId(text) : undefined;
      const msg = `invalid: message is ${byteLength} bytes, larger than this relay's limit of ${limits.maxMessageBytes}`;
      client.send(id ? okFrame(id, false, msg) : noticeFrame(msg));
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      client.send(noticeFrame('invalid: message is not valid JSON'));
      return;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') {
      client.send(noticeFrame('invalid: message must be a JSON array whose first element is a string'));
      return;
    }
    switch (msg[0]) {
      case 'EVENT':
        this.onEvent(client, msg, byteLength);
        return;
      case 'REQ':
        this.onReq(client, msg);
        return;
      case 'COUNT':
        this.onCount(client, msg);
        return;
      case 'CLOSE':
        this.onClose(client, msg);
        return;
      case 'NEG-OPEN':
      case 'NEG-MSG':
      case 'NEG-CLOSE':
        if (this.negentropy) this.negentropy.onMessage(client, msg);
        else client.send(noticeFrame(`invalid: NIP-77 negentropy sync is turned off on this relay (${msg[0]})`));
        return;
      case 'AUTH':
        this.onAuth(client, msg);
        return;
      default:
        client.send(noticeFrame(`invalid: unknown message type ${JSON.stringify(msg[0].slice(0, 32))}`));
    }
  }

  // ── EVENT ────────────────────────────────────────────────────────────

  private onEvent(client: Client, msg: unknown[], size: number): void {
    this.stats.eventsReceived++;
    if (msg.length !== 2) {
      const id = typeof msg[1] === 'object' && msg[1] !== null ? (msg[1] as { id?: unknown }).id : undefined;
      const m = 'invalid: EVENT message must be ["EVENT", <event>]';
      client.send(typeof id === 'string' && /^[0-9a-f]{64}$/.test(id) ? okFrame(id, false, m) : noticeFrame(m));
      return;
    }
    const parsed = parseEvent(msg[1]);
    if (!parsed.ok) {
      this.countRejected(parsed.message);
      client.send(parsed.id ? okFrame(parsed.id, false, parsed.message) : noticeFrame(parsed.message));
      return;
    }
    const event = parsed.event;
    this.admit(event, { source: { type: 'ws', ip: client.ip, connectionId: client.id }, client, size }).then((r) => {
      if (!r.ok) this.countRejected(r.message);
      client.send(okFrame(event.id, r.ok, r.message));
    });
  }

  /**
   * The one ingest entry point for events that do not come from a client socket (import,
   * relay-to-relay sync, a cluster stream, the relay's own services): the normal pipeline —
   * shape, duplicate check, signature, policies, store, live subscriptions, `onStored` — as
   * if the event had arrived in an `EVENT` message. Resolves with the `OK` the relay would
   * send; never rejects.
   */
  addEvent(event: unknown, opts: AddEventOptions): Promise<AddEventResult> {
    this.stats.eventsReceived++;
    const parsed = parseEvent(event);
    if (!parsed.ok) {
      this.countRejected(parsed.message);
      return Promise.resolve({ ok: false, message: parsed.message });
    }
    const info = opts.sourceInfo ?? opts.source;
    const origin: Origin = {
      source: { type: opts.source, ip: info, connectionId: info },
      ...(opts.cluster ? { cluster: opts.cluster } : {}),
      ...(opts.cluster === 'stream' && opts.acceptedAt !== undefined ? { acceptedAt: opts.acceptedAt } : {}),
    };
    return this.admit(parsed.event, origin).then((r) => {
      if (!r.ok) this.countRejected(r.message);
      return r;
    });
  }

  private countRejected(message: string): void {
    this.stats.eventsRejected++;
    const i = message.indexOf(':');
    const prefix = i > 0 && i < 16 ? message.slice(0, i) : 'other';
    this.rejections[prefix] = (this.rejections[prefix] ?? 0) + 1;
  }

  /** Every event, whatever its source, goes through here; the answer's reason is normalised once. */
  private admit(event: NostrEvent, origin: Origin): Promise<AddEventResult> {
    return this.pipeline(event, origin).then(
      (r) => (r.message === '' || REASON_PREFIX.test(r.message) ? r : { ok: r.ok, message: normaliseReason(r.ok, r.message) }),
      (err: unknown) => {
        this.log.error({ err, eventId: event.id, source: origin.source.type, conn: origin.source.connectionId }, 'ingest failed');
        return { ok: false, message: 'error: internal error while storing the event' };
      },
    );
  }

  /** Relay-protocol checks, then (once per id across all sources) verify, policy, store, broadcast. */
  private pipeline(event: NostrEvent, origin: Origin): Promise<AddEventResult> {
    const now = this.now();
    const client = origin.client;
    if (event.kind === AUTH_KIND) return Promise.resolve({ ok: false, message: 'invalid: kind 22242 events are only accepted in AUTH messages' });
    if (client && this.opts.info.authRequired && !client.isAuthed()) return Promise.resolve({ ok: false, message: 'auth-required: this relay requires NIP-42 authentication' });
    // Duplicates cost no signature check. (Size, tags, content, created_at, NIP-40 and NIP-70 are
    // policy rules: see runPolicy.) The same event still being written is joined first: its
    // commit is visible to `has` before it is durable, and a duplicate's OK true — or a cluster
    // stream ack — must not come before the original is on disk.
    const running = this.inflight.get(event.id);
    if (running) return running.then((r) => (r.ok && !r.message.startsWith('duplicate') ? { ok: true, message: 'duplicate: already have this event' } : r));
    if (!isEphemeralKind(event.kind) && this.opts.store.has(event.id)) return Promise.resolve({ ok: true, message: 'duplicate: already have this event' });
    const p = this.verifyAndStore(event, origin, now).finally(() => this.inflight.delete(event.id));
    this.inflight.set(event.id, p);
    return p;
  }

  private async verifyAndStore(event: NostrEvent, origin: Origin, now: number): Promise<AddEventResult> {
    if (origin.cluster !== 'stream') {
      const bad = await this.opts.verify(event);
      if (bad !== null) return { ok: false, message: bad };
    }
    if (origin.cluster === undefined) {
      const verdict = await this.runPolicy(event, origin, now);
      if (verdict.action === 'reject') return { ok: false, message: verdict.message };
      if (verdict.action === 'shadowReject') return { ok: true, message: '' };
    }
    const raw = JSON.stringify(event);
    if (this.opts.replicate && origin.cluster === undefined) {
      try {
        await this.opts.replicate(event, raw);
      } catch (err) {
        this.log.warn({ err, eventId: event.id }, 'cluster did not take the event; refused');
        return { ok: false, message: `error: the relay cluster did not take the event (${(err as Error).message ?? String(err)}); try again` };
      }
    }
    if (isEphemeralKind(event.kind)) {
      this.broadcast(event, raw, undefined);
      return { ok: true, message: '' };
    }
    const [outcome] = await this.opts.store.put([event], origin.acceptedAt !== undefined ? { now: origin.acceptedAt } : undefined);
    // Stored as of the stream's time but expired by now: kept for its effects, never delivered.
    const live = origin.acceptedAt === undefined || !isExpired(expirationTs(event), this.now());
    return this.afterPut(event, raw, outcome, live);
  }

  private afterPut(event: NostrEvent, raw: string, outcome: PutOutcome, live = true): AddEventResult {
    switch (outcome.status) {
      case 'stored':
        this.stats.eventsStored++;
        if (live) this.broadcast(event, raw, outcome.seq);
        this.opts.onStored?.(event, outcome.seq);
        return { ok: true, message: '' };
      case 'duplicate':
        return { ok: true, message: 'duplicate: already have this event' };
      case 'replaced':
        return { ok: true, message: 'duplicate: a newer version of this replaceable event is already stored' };
      case 'deleted':
        return { ok: false, message: 'blocked: this event was deleted by its author' };
      case 'rejected':
        return { ok: false, message: outcome.message };
    }
  }

  /**
   * The write pipeline: the built-in event limits, then the operator's policy. A synchronous
   * verdict is used at once; a pending one is bounded by policyTimeoutMs, after which the
   * policy's AbortSignal aborts (it stops its work) and the event gets `error:`.
   */
  private runPolicy(event: NostrEvent, origin: Origin, now: number): Verdict | Promise<Verdict> {
    const authed = origin.client?.authed;
    const ctx: PolicyContext = {
      source: origin.source,
      ...(authed?.length ? { authedPubkey: authed[0], authedPubkeys: authed } : {}),
      receivedAt: now,
      store: this.readStore,
      ...(origin.size !== undefined ? { size: origin.size } : {}),
    };
    const ac = new AbortController();
    let pending: Verdict | Promise<Verdict>;
    try {
      pending = this.policy(event, ctx, ac.signal);
    } catch (err) {
      this.log.warn({ err, eventId: event.id }, 'policy threw; event rejected');
      return { action: 'reject', message: 'error: policy check failed' };
    }
    if (typeof (pending as Promise<Verdict>).then !== 'function') return pending;
    const timeoutMs = this.opts.policyTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      (pending as Promise<Verdict>).catch((err: unknown): Verdict => {
        this.log.warn({ err, eventId: event.id }, 'policy threw; event rejected');
        return { action: 'reject', message: 'error: policy check failed' };
      }),
      new Promise<Verdict>((resolve) => {
        timer = setTimeout(() => {
          ac.abort(new Error(`policy check timed out after ${timeoutMs} ms`));
          this.log.warn({ eventId: event.id, timeoutMs }, 'policy timed out; event rejected and the policy aborted');
          resolve({ action: 'reject', message: 'error: policy check timed out' });
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /**
   * Deliver a new event to every live subscription whose filters it really matches. `seq` is
   * its store sequence number (undefined for ephemeral events, which are never stored): a
   * subscription whose watermark covers it gets it from its stored query instead.
   */
  broadcast(event: NostrEvent, raw: string, seq: number | undefined): void {
    const subs = this.subscriptions.match(event) as Sub[];
    for (const sub of subs) {
      if (seq !== undefined && seq <= sub.watermark) continue;
      if (sub.pending) {
        if (sub.pending.length < MAX_HELD_EVENTS) sub.pending.push(raw);
        else this.endSub(sub, 'error: too many new events arrived while the stored ones were read; subscribe again');
        continue;
      }
      const sock = sub.conn.sock;
      const frame = sub.prefix + raw + ']';
      sock.cork(() => sock.send(frame));
      this.stats.eventsSent++;
    }
  }

  /** Close a subscription from the relay's side: no more events, its query stops, CLOSED says why. */
  private endSub(sub: Sub, reason: string): void {
    const client = sub.conn;
    if (client.subs?.get(sub.subId) !== sub) return;
    this.subscriptions.remove(sub);
    client.subs.delete(sub.subId);
    this.queries.cancel(client, sub.subId, 'REQ');
    client.send(closedFrame(sub.subId, reason));
  }

  // ── REQ / COUNT / CLOSE ─────────────────────────────────────────────

  /** Validates sub id and filters; on failure sends the right error frame and returns undefined. */
  private readSubRequest(client: Client, msg: unknown[], verb: 'REQ' | 'COUNT'): { subId: string; filters: Filter[] } | undefined {
    const limits = this.opts.limits;
    const subId = msg[1];
    if (typeof subId !== 'string' || subId.length === 0) {
      client.send(noticeFrame(`invalid: ${verb} needs a non-empty string subscription id`));
      return;
    }
    if (subId.length > limits.maxSubIdLength) {
      client.send(closedFrame(subId, `invalid: subscription id longer than ${limits.maxSubIdLength} characters`));
      return;
    }
    if (this.opts.info.authRequired && !client.isAuthed()) {
      client.send(closedFrame(subId, 'auth-required: this relay requires NIP-42 authentication'));
      return;
    }
    const raw = msg.slice(2);
    if (raw.length === 0) {
      client.send(closedFrame(subId, `invalid: ${verb} needs at least one filter`));
      return;
    }
    if (raw.length > limits.maxFilters) {
      client.send(closedFrame(subId, `invalid: too many filters (${raw.length} > ${limits.maxFilters})`));
      return;
    }
    const filters: Filter[] = [];
    for (const r of raw) {
      const c = checkFilter(r);
      if (!c.ok) {
        client.send(closedFrame(subId, c.message));
        return;
      }
      filters.push(c.filter);
    }
    return { subId, filters };
  }

  private clampLimits(filters: Filter[]): Filter[] {
    const max = this.opts.limits.maxLimit;
    return filters.map((f) => (f.limit === undefined || f.limit > max ? { ...f, limit: max } : f));
  }

  /** Refuses a query (CLOSED rate-limited:) when the connection already has its share in progress. */
  private overQueryLimit(client: Client, subId: string): boolean {
    const max = this.opts.limits.maxQueries;
    if (this.queries.pending(client) < max) return false;
    client.send(closedFrame(subId, `rate-limited: too many queries in progress on this connection (max ${max}); wait for EOSE or COUNT answers`));
    return true;
  }

  private onReq(client: Client, msg: unknown[]): void {
    this.stats.reqs++;
    const req = this.readSubRequest(client, msg, 'REQ');
    if (!req) return;
    const { subId, filters } = req;
    const subs = (client.subs ??= new Map());
    const old = subs.get(subId);
    if (old) {
      // A REQ with an open subscription's id replaces it: its query stops, its live delivery ends.
      this.subscriptions.remove(old);
      subs.delete(subId);
      this.queries.cancel(client, subId, 'REQ');
    } else if (subs.size >= this.opts.limits.maxSubscriptions) {
      client.send(closedFrame(subId, `rate-limited: too many open subscriptions (max ${this.opts.limits.maxSubscriptions})`));
      return;
    }
    if (this.overQueryLimit(client, subId)) return;
    const store = this.opts.store;
    const prefix = `["EVENT",${JSON.stringify(subId)},`;
    const watermark = store.lastSeq();
    const sub: Sub = { conn: client, subId, filters, prefix, prefixBytes: Buffer.from(prefix), watermark, pending: [] };
    subs.set(subId, sub);
    this.subscriptions.add(sub);
    const q = { now: this.now(), maxSeq: watermark };
    const clamped = this.clampLimits(filters);
    // Stores that can frame results as bytes save building a string per event.
    const started = this.opts.onQuery ? performance.now() : 0;
    const cursor: QueryCursor<(string | Buffer)[]> = store.openQueryFrames ? store.openQueryFrames(clamped, sub.prefixBytes, FRAME_SUFFIX, q) : store.openQuery(clamped, q);
    this.queries.submit(client, {
      subId,
      kind: 'REQ',
      step: (deadline) => cursor.step(deadline),
      finish: () => {
        this.sendStored(sub, cursor.result());
        if (this.opts.onQuery) this.opts.onQuery(performance.now() - started);
      },
      fail: (err) => {
        this.log.error({ err, conn: client.id, subId }, 'query failed');
        this.endSub(sub, 'error: query failed');
      },
    });
  }

  /** The stored events, then the live ones held meanwhile, then EOSE — in one corked write. */
  private sendStored(sub: Sub, rows: readonly (string | Buffer)[]): void {
    const client = sub.conn;
    if (client.subs?.get(sub.subId) !== sub) return; // closed or replaced meanwhile
    const sock = client.sock;
    sock.cork(() => {
      for (const row of rows) sock.send(typeof row === 'string' ? sub.prefix + row + ']' : row);
      const held = sub.pending!;
      sub.pending = null;
      for (const raw of held) sock.send(sub.prefix + raw + ']');
      sock.send(`["EOSE",${JSON.stringify(sub.subId)}]`);
      this.stats.eventsSent += rows.length + held.length;
    });
  }

  private onCount(client: Client, msg: unknown[]): void {
    const req = this.readSubRequest(client, msg, 'COUNT');
    if (!req) return;
    if (this.overQueryLimit(client, req.subId)) return;
    const cursor = this.opts.store.openCount(req.filters, { now: this.now() });
    this.queries.submit(client, {
      subId: req.subId,
      kind: 'COUNT',
      step: (deadline) => cursor.step(deadline),
      finish: () => client.send(`["COUNT",${JSON.stringify(req.subId)},{"count":${cursor.result()}}]`),
      fail: (err) => {
        this.log.error({ err, conn: client.id, subId: req.subId }, 'count failed');
        client.send(closedFrame(req.subId, 'error: count failed'));
      },
    });
  }

  private onClose(client: Client, msg: unknown[]): void {
    const subId = msg[1];
    if (typeof subId !== 'string' || msg.length !== 2) {
      client.send(noticeFrame('invalid: CLOSE message must be ["CLOSE", <subscription id>]'));
      return;
    }
    // Work in progress under this id stops: a REQ's stored query, a COUNT not yet answered.
    this.queries.cancel(client, subId);
    const sub = client.subs?.get(subId);
    if (!sub) return;
    this.subscriptions.remove(sub);
    client.subs!.delete(subId);
  }

  // ── AUTH (NIP-42) ────────────────────────────────────────────────────

  private onAuth(client: Client, msg: unknown[]): void {
    const parsed = parseEvent(msg[1]);
    if (msg.length !== 2 || !parsed.ok) {
      const m = parsed.ok ? 'invalid: AUTH message must be ["AUTH", <event>]' : parsed.message;
      const id = parsed.ok ? parsed.event.id : parsed.id;
      client.send(id ? okFrame(id, false, m) : noticeFrame(m));
      return;
    }
    const e = parsed.event;
    const reply = (ok: boolean, m: string) => client.send(okFrame(e.id, ok, m));
    if (e.kind !== AUTH_KIND) return reply(false, `invalid: AUTH event must be kind ${AUTH_KIND}`);
    if (Math.abs(e.created_at - this.now()) > AUTH_WINDOW_SECS) return reply(false, 'invalid: AUTH event created_at is not within 10 minutes of now');
    const tag = (n: string) => e.tags.find((t) => t[0] === n)?.[1];
    if (tag('challenge') !== client.challenge) return reply(false, 'invalid: AUTH challenge does not match');
    const relayTag = tag('relay');
    if (relayTag === undefined) return reply(false, 'invalid: AUTH event has no relay tag');
    if (client.address && !namesRelay(relayTag, client.address)) return reply(false, `invalid: AUTH relay tag ${JSON.stringify(relayTag.slice(0, 200))} does not name this relay`);
    this.opts.verify(e).then(
      (bad) => {
        if (bad !== null) return reply(false, bad);
        const authed = (client.authed ??= []);
        if (!authed.includes(e.pubkey)) authed.push(e.pubkey);
        reply(true, '');
      },
      () => reply(false, 'error: could not verify AUTH event'),
    );
  }
}

/** The original client address a reverse proxy reports, if any. */
function forwardedFor(req: HttpRequest): string | undefined {
  const first = req.headers['x-forwarded-for']?.split(',')[0]?.trim();
  return first || req.headers['x-real-ip']?.trim() || undefined;
}
