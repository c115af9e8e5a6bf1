// The storage contract. Two implementations: the LMDB store (production) and the
// in-memory reference store (a deliberately naive oracle for differential tests).
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';

/** Outcome of writing one (already verified) event. */
export type PutOutcome =
  /**
   * Stored and durable (the write transaction committed and was flushed). `seq` is the event's
   * sequence number: unique and increasing in commit order for the life of the store object, so a
   * live subscription can tell events its stored query already saw (seq ≤ its watermark) from new ones.
   */
  | { readonly status: 'stored'; readonly seq: number; /** ids removed because this event replaced/deleted them */ readonly removed: readonly string[] }
  /** Already have this exact id. */
  | { readonly status: 'duplicate' }
  /** A newer (or equal-timestamp, lower-id) replaceable/addressable version exists. */
  | { readonly status: 'replaced' }
  /** A NIP-09 deletion by the same author already covers this event. */
  | { readonly status: 'deleted' }
  /** Rejected for another reason; message carries a NIP-01 prefix. */
  | { readonly status: 'rejected'; readonly message: string };

export interface QueryOptions {
  /** Unix seconds used as "now" for NIP-40 expiration; defaults to the current time. */
  readonly now?: number;
  readonly signal?: AbortSignal;
  /**
   * Only events with a sequence number up to this one (a subscription's watermark, from
   * lastSeq() when it opened): newer events reach the subscription live instead.
   */
  readonly maxSeq?: number;
}

/**
 * A query in progress that works in bounded slices (strfry's QueryScheduler), so one heavy
 * filter never holds the event loop: the relay calls step() with a deadline, sends other
 * clients' work in between, and drops the cursor to abort (nothing else to release).
 */
export interface QueryCursor<T> {
  /**
   * Work until finished (true) or until `deadline`, a performance.now() time, has passed
   * (false: call again later). Always makes some progress. Throws if the store was closed.
   */
  step(deadline: number): boolean;
  /** The answer, once step() returned true — the same as the one-shot call would give. */
  result(): T;
}

/** Receives the (created_at, id) pairs of an id scan; `id` holds the 32 id bytes at `offset`, valid only during the call. */
export interface IdSink {
  add(createdAt: number, id: Uint8Array, offset: number): void;
}

export interface IdScanOptions extends QueryOptions {
  /** Stop, answering -1, once more than this many events match (a relay's NIP-77 "too big"). */
  readonly maxItems?: number;
}

/** One page of the store's feed (eventsAfter). */
export interface StoredFeed {
  /** Stored events with seq > afterSeq that passed `wantKind`, in seq order. */
  readonly events: readonly { readonly seq: number; readonly kind: number; readonly json: string }[];
  /**
   * The highest seq this page looked at (skipped kinds included): the next page starts after it.
   * Equal to afterSeq when nothing newer is stored.
   */
  readonly lastSeq: number;
}

export interface PutOptions {
  /** Unix seconds at which the events arrive (NIP-40 refusal of expired events); default the store's clock. */
  readonly now?: number;
}

export interface EventStore {
  /**
   * Write a batch of verified, non-ephemeral events. Resolves once every
   * stored event is durable; outcomes are in input order. Events within one
   * batch are applied in order (a later one may replace an earlier one).
   * `opts.now` (unix seconds) is the moment the events count as arriving, for the refusal of
   * events already expired (NIP-40); default the store's clock. A relay cluster passes the
   * time its stream accepted the event, so every node decides alike however late it reads it.
   */
  put(events: readonly NostrEvent[], opts?: PutOptions): Promise<PutOutcome[]>;
  /**
   * Events matching any filter (OR), each filter applying its own `limit`
   * (newest first, ties by lowest id), de-duplicated, expired events excluded.
   * Returns raw event JSON strings as stored, so callers can frame them without
   * re-serialising.
   */
  query(filters: readonly Filter[], opts?: QueryOptions): Promise<string[]>;
  /**
   * Optional: query(), with each result as the bytes `prefix ‖ stored JSON ‖ suffix`
   * (e.g. `["EVENT","sub",` and `]`), ready to send as a WebSocket text frame
   * without building strings. Same results, same order as query(); the event id
   * is at bytes [prefix.length + 7, prefix.length + 71).
   */
  queryFrames?(filters: readonly Filter[], prefix: Buffer, suffix: Buffer, opts?: QueryOptions): Promise<Buffer[]>;
  /** NIP-45: number of distinct events matching any filter (limits ignored). */
  count(filters: readonly Filter[], opts?: QueryOptions): Promise<number>;
  /** query() as a resumable cursor. Events written or removed while it runs may or may not be seen; `maxSeq` excludes new ones. */
  openQuery(filters: readonly Filter[], opts?: QueryOptions): QueryCursor<string[]>;
  /** Optional: queryFrames() as a resumable cursor. */
  openQueryFrames?(filters: readonly Filter[], prefix: Buffer, suffix: Buffer, opts?: QueryOptions): QueryCursor<Buffer[]>;
  /** count() as a resumable cursor (approximate while writes run). */
  openCount(filters: readonly Filter[], opts?: QueryOptions): QueryCursor<number>;
  /**
   * NIP-77 (negentropy): the created_at and id of every stored event matching `filter` — all of
   * them, the relay's query limits do not apply; only the newest `filter.limit` (ties by lowest
   * id) when the filter has one — handed to `sink` in no particular order, as a resumable cursor.
   * The result is how many were handed over, or -1 when more than `maxItems` match (the sink
   * then holds part of them). Expired events are excluded, as from queries.
   */
  openIdScan(filter: Filter, sink: IdSink, opts?: IdScanOptions): QueryCursor<number>;
  /**
   * The watermark: the highest sequence number whose write is committed. A query started after
   * this call sees every stored event with a seq up to it (and possibly some newer ones).
   */
  lastSeq(): number;
  /**
   * The feed for followers of the store (the market index, later sync): events still stored
   * whose sequence number is above `afterSeq`, in the order they were stored, looking at no
   * more than `limit` events per call. `wantKind` filters by kind without decoding the rest.
   * Sequence numbers only grow; an event removed since (replaced, deleted, expired) is absent.
   * Synchronous: a committed prefix, read in one read transaction.
   */
  eventsAfter(afterSeq: number, limit: number, wantKind?: (kind: number) => boolean): StoredFeed;
  /** Cheap existence check by id, used to skip signature work for duplicates. */
  has(id: string): boolean;
  close(): Promise<void>;
}
