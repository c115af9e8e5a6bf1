// NIP-77 on the relay's side: NEG-OPEN / NEG-MSG / NEG-CLOSE in, NEG-MSG / NEG-ERR out.
// A NEG-OPEN scans the store for the filter's (created_at, id) items in scheduler slices (the
// same fair queue as REQ and COUNT, so one big sync never holds the event loop), seals them into
// a negentropy storage in slices too, then answers; later NEG-MSGs are answered at once (with
// O(1) fingerprints a round costs O(ranges · log n)). Like strfry's RelayNegentropy (its
// "memory view"): one sorted vector per session, bounded by `maxSyncEvents`.
import type { Logger } from 'pino';
import type { Filter } from '@bazaar/dvm-kinds/nostr';
import type { EventStore } from '../store/event-store.ts';
import type { QueryScheduler } from '../query-scheduler.ts';
import { checkFilter } from '../filter.ts';
import { MIN_FRAME_SIZE_LIMIT, Negentropy, NegentropyProtocolError } from './negentropy.ts';
import { NegentropyStorageBuilder } from './negentropy-storage.ts';

export interface NegentropyOptions {
  /** Most events one NEG-OPEN may reconcile; a filter matching more gets `NEG-ERR blocked:`. Default 1 000 000 (strfry's). */
  readonly maxSyncEvents: number;
  /** Largest negentropy message the relay sends, in bytes before hex encoding (0 = no limit, else ≥ 4096). Default 500 000 (strfry's). */
  readonly frameSizeLimit: number;
  /** Negentropy sessions one connection may hold open; more get `NEG-ERR rate-limited:`. Default 8. */
  readonly maxSessions: number;
  /** A session with no NEG-MSG for this long is closed with `NEG-ERR closed:` (its memory freed). Default 300. */
  readonly idleTimeoutSecs: number;
}

export const DEFAULT_NEGENTROPY: Readonly<NegentropyOptions> = Object.freeze({
  maxSyncEvents: 1_000_000,
  frameSizeLimit: 500_000,
  maxSessions: 8,
  idleTimeoutSecs: 300,
});

/** What the sessions need of a connection. */
export interface NegentropyClient {
  readonly id: string;
  send(frame: string): void;
  isAuthed(): boolean;
}

interface Session {
  readonly subId: string;
  /** Set once the store scan is sealed and the first answer is out. */
  neg: Negentropy | undefined;
  lastActive: number;
  items: number;
}

const negErr = (subId: string, reason: string): string => `["NEG-ERR",${JSON.stringify(subId)},${JSON.stringify(reason)}]`;
const negMsg = (subId: string, msg: Buffer): string => `["NEG-MSG",${JSON.stringify(subId)},"${msg.toString('hex')}"]`;
const notice = (msg: string): string => `["NOTICE",${JSON.stringify(msg)}]`;
const HEX = /^(?:[0-9a-f]{2})*$/;

export interface NegentropySessionsDeps<C extends NegentropyClient> {
  readonly store: EventStore;
  readonly scheduler: QueryScheduler<C>;
  readonly logger: Logger;
  readonly options: NegentropyOptions;
  readonly maxSubIdLength: number;
  /** Most filters in one NEG-OPEN's filter array (the relay's max filters per REQ). */
  readonly maxFilters: number;
  /** Connections must authenticate first (NIP-42 --auth-required). */
  readonly authRequired: () => boolean;
  /** Unix seconds (NIP-40 expiration of scanned events). */
  readonly now: () => number;
}

export function checkNegentropyOptions(o: NegentropyOptions): void {
  const bad = (name: string, want: string, got: unknown): never => {
    throw new RangeError(`negentropy ${name} must be ${want} (got ${JSON.stringify(got)})`);
  };
  if (!Number.isSafeInteger(o.maxSyncEvents) || o.maxSyncEvents < 1) bad('maxSyncEvents', 'a positive integer', o.maxSyncEvents);
  if (!Number.isSafeInteger(o.frameSizeLimit) || o.frameSizeLimit < 0 || (o.frameSizeLimit > 0 && o.frameSizeLimit < MIN_FRAME_SIZE_LIMIT)) bad('frameSizeLimit', `0 or at least ${MIN_FRAME_SIZE_LIMIT}`, o.frameSizeLimit);
  if (!Number.isSafeInteger(o.maxSessions) || o.maxSessions < 1) bad('maxSessions', 'a positive integer', o.maxSessions);
  if (!Number.isSafeInteger(o.idleTimeoutSecs) || o.idleTimeoutSecs < 1) bad('idleTimeoutSecs', 'a positive integer', o.idleTimeoutSecs);
}

export class NegentropySessions<C extends NegentropyClient> {
  private readonly conns = new Map<C, Map<string, Session>>();
  private readonly deps: NegentropySessionsDeps<C>;
  private readonly log: Logger;
  private readonly sweeper: NodeJS.Timeout;
  readonly stats = { opened: 0, rounds: 0, errors: 0 };

  constructor(deps: NegentropySessionsDeps<C>) {
    checkNegentropyOptions(deps.options);
    this.deps = deps;
    this.log = deps.logger.child({ component: 'negentropy' });
    // Idle sessions hold their sorted sets (72 bytes per event): sweep them out.
    const every = Math.max(250, Math.min(60_000, (deps.options.idleTimeoutSecs * 1000) / 4));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Open sessions across all connections. */
  get size(): number {
    let n = 0;
    for (const m of this.conns.values()) n += m.size;
    return n;
  }

  /** Handles one NEG-OPEN, NEG-MSG or NEG-CLOSE message (already parsed as a JSON array). */
  onMessage(client: C, msg: unknown[]): void {
    const subId = msg[1];
    if (typeof subId !== 'string' || subId.length === 0) {
      client.send(notice(`invalid: ${String(msg[0])} needs a non-empty string subscription id`));
      return;
    }
    if (subId.length > this.deps.maxSubIdLength) {
      client.send(negErr(subId, `invalid: subscription id longer than ${this.deps.maxSubIdLength} characters`));
      return;
    }
    switch (msg[0]) {
      case 'NEG-OPEN':
        this.open(client, subId, msg);
        return;
      case 'NEG-MSG':
        this.message(client, subId, msg);
        return;
      case 'NEG-CLOSE':
        this.close(client, subId);
        return;
    }
  }

  /** The connection is gone: forget its sessions and stop their scans. */
  drop(client: C): void {
    const sessions = this.conns.get(client);
    if (!sessions) return;
    for (const subId of sessions.keys()) this.deps.scheduler.cancel(client, subId, 'NEG');
    this.conns.delete(client);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private open(client: C, subId: string, msg: unknown[]): void {
    // A NEG-OPEN for an open id first closes that session (NIP-77).
    this.close(client, subId);
    if (msg.length !== 4) {
      client.send(negErr(subId, 'invalid: NEG-OPEN must be ["NEG-OPEN", <subscription id>, <filter>, <initial message, hex>]'));
      return;
    }
    if (this.deps.authRequired() && !client.isAuthed()) {
      client.send(negErr(subId, 'auth-required: this relay requires NIP-42 authentication'));
      return;
    }
    // NIP-77 sends one filter; strfry sync sends an array of them (their union) when given several.
    const raw = Array.isArray(msg[2]) ? msg[2] : [msg[2]];
    if (raw.length === 0 || raw.length > this.deps.maxFilters) {
      client.send(negErr(subId, `invalid: NEG-OPEN takes a filter, or an array of 1 to ${this.deps.maxFilters} filters`));
      return;
    }
    const filters: Filter[] = [];
    for (const r of raw) {
      const checked = checkFilter(r);
      if (!checked.ok) {
        client.send(negErr(subId, checked.message));
        return;
      }
      filters.push(checked.filter);
    }
    const initial = msg[3];
    if (typeof initial !== 'string' || !HEX.test(initial) || initial.length === 0) {
      client.send(negErr(subId, 'invalid: the initial message must be non-empty lowercase hex'));
      return;
    }
    let sessions = this.conns.get(client);
    const max = this.deps.options.maxSessions;
    if (sessions && sessions.size >= max) {
      client.send(negErr(subId, `rate-limited: too many open negentropy sessions on this connection (max ${max}); NEG-CLOSE one first`));
      return;
    }
    if (!sessions) this.conns.set(client, (sessions = new Map()));
    const session: Session = { subId, neg: undefined, lastActive: Date.now(), items: 0 };
    sessions.set(subId, session);
    this.stats.opened++;
    this.scan(client, session, filters, Buffer.from(initial, 'hex'));
  }

  /** Scan the store for the filter's items, seal them, answer the initial message — all in scheduler slices. */
  private scan(client: C, session: Session, filters: readonly Filter[], initial: Buffer): void {
    const { store, options } = this.deps;
    const started = performance.now();
    const now = this.deps.now();
    const builder = new NegentropyStorageBuilder();
    let f = 0;
    let cursor = store.openIdScan(filters[0], builder, { now, maxItems: options.maxSyncEvents });
    let sealer: ReturnType<NegentropyStorageBuilder['sealer']> | undefined;
    let tooMany = false;
    this.deps.scheduler.submit(client, {
      subId: session.subId,
      kind: 'NEG',
      step: (deadline) => {
        while (sealer === undefined) {
          if (!cursor.step(deadline)) return false;
          if (cursor.result() < 0 || builder.size > options.maxSyncEvents) {
            tooMany = true;
            return true;
          }
          if (++f < filters.length) {
            // The union of several filters: an event in two of them is one item (dropped at sealing).
            cursor = store.openIdScan(filters[f], builder, { now, maxItems: options.maxSyncEvents - builder.size });
            if (performance.now() > deadline) return false;
          } else sealer = builder.sealer();
        }
        return sealer.step(deadline);
      },
      finish: () => {
        if (this.conns.get(client)?.get(session.subId) !== session) return; // closed meanwhile
        if (tooMany) {
          this.end(client, session, `blocked: this filter matches more than ${options.maxSyncEvents} events, the most this relay reconciles at once; split it with since/until`);
          return;
        }
        const storage = sealer!.result();
        session.items = storage.size;
        session.neg = new Negentropy(storage, options.frameSizeLimit);
        this.log.debug({ conn: client.id, subId: session.subId, filters, items: storage.size, ms: Math.round(performance.now() - started) }, 'negentropy session opened');
        this.answer(client, session, initial);
      },
      fail: (err) => {
        this.log.error({ err, conn: client.id, subId: session.subId }, 'negentropy scan failed');
        if (this.conns.get(client)?.get(session.subId) === session) this.end(client, session, 'error: the relay could not read its events for this filter');
      },
    });
  }

  private message(client: C, subId: string, msg: unknown[]): void {
    const session = this.conns.get(client)?.get(subId);
    if (!session) {
      client.send(negErr(subId, 'closed: no open negentropy session with this id; send NEG-OPEN first'));
      return;
    }
    const payload = msg[2];
    if (msg.length !== 3 || typeof payload !== 'string' || !HEX.test(payload) || payload.length === 0) {
      this.end(client, session, 'invalid: NEG-MSG must be ["NEG-MSG", <subscription id>, <message, non-empty lowercase hex>]');
      return;
    }
    if (session.neg === undefined) {
      // The initiator speaks again only after our answer: a NEG-MSG before it breaks the protocol.
      this.end(client, session, 'invalid: NEG-MSG before the relay answered NEG-OPEN');
      return;
    }
    this.answer(client, session, Buffer.from(payload, 'hex'));
  }

  private answer(client: C, session: Session, message: Buffer): void {
    session.lastActive = Date.now();
    let reply: Buffer;
    try {
      reply = session.neg!.respond(message);
    } catch (err) {
      if (err instanceof NegentropyProtocolError) this.end(client, session, `invalid: negentropy message does not parse (${err.message})`);
      else {
        this.log.error({ err, conn: client.id, subId: session.subId }, 'negentropy reconcile failed');
        this.end(client, session, 'error: the relay failed to process this negentropy message');
      }
      return;
    }
    this.stats.rounds++;
    client.send(negMsg(session.subId, reply));
  }

  private close(client: C, subId: string): void {
    const sessions = this.conns.get(client);
    if (!sessions?.delete(subId)) return;
    this.deps.scheduler.cancel(client, subId, 'NEG');
    if (sessions.size === 0) this.conns.delete(client);
  }

  /** Server-side end of a session: NEG-ERR, after which the id is closed (NIP-77). */
  private end(client: C, session: Session, reason: string): void {
    this.stats.errors++;
    this.close(client, session.subId);
    client.send(negErr(session.subId, reason));
  }

  private sweep(): void {
    const cutoff = Date.now() - this.deps.options.idleTimeoutSecs * 1000;
    for (const [client, sessions] of [...this.conns]) {
      for (const session of [...sessions.values()]) {
        // A session still scanning is busy on our side, not idle on the client's.
        if (session.neg !== undefined && session.lastActive < cutoff) {
          this.end(client, session, `closed: no NEG-MSG for ${this.deps.options.idleTimeoutSecs} seconds; open a new session to continue`);
        }
      }
    }
  }
}
