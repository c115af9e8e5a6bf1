// The production EventStore on LMDB (lmdb-js), designed like strfry's: each event's
// canonical JSON is stored once behind a compact packed header, keyed by an internal
// sequence number; every index key ends in created_at ‖ seq, so since/until/limit are
// reverse range scans that stop early. One batched writer: every put() that arrives
// in the same event-loop turn shares one write transaction, and promises resolve only
// once that transaction is committed and flushed to disk.
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import { isAddressableKind, isReplaceableKind, type Filter, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { EventStore, PutOutcome, QueryCursor, QueryOptions } from './event-store.ts';
import {
  canonicalJson, effectiveLimit, expirationTs, isHex64, isTagLetter, MAX_TIMESTAMP, nowSeconds, parseAddress,
  storeRejection, type LimitOptions,
} from './event-rules.ts';
import {
  addressKey, decodeTagValue, encodedTagValueLength, encodeTagValue, eventAddressKey, FLAG_EXPIRES, headerLength, indexedTags,
  indexKey, indexKeyEncoder, kindPrefix, lastKey, OFF_CREATED_AT, OFF_EXPIRATION, OFF_FLAGS, OFF_ID, OFF_PUBKEY, packEvent,
  packedCreatedAt, packedExpiration, packedJson, packedKind, pubkeyKindPrefix, readU32, readU64, tagKindPrefix, tagPrefix,
  tagsOffset, unpackTags, writeU32, writeU64,
} from './lmdb-codec.ts';

/**
 * On-disk format version. Bump on any incompatible change to tables, keys or the packed header.
 * 1: initial layout. 2: adds the tag+kind index. 3: compact packed header, hex tag values
 * (ids, pubkeys) stored and keyed as 32 bytes. Older stores are migrated on open.
 */
export const SCHEMA_VERSION = 3;

/**
 * Default LMDB map size: address space reserved up front, not disk (the file grows as data
 * is written). lmdb-js otherwise starts at 128 KiB and remaps at every doubling, and each
 * earlier mapping stays resident beside the new one: that cost 2.5× the database size in RSS.
 */
export const DEFAULT_MAP_SIZE = 256 * 2 ** 30;

/** Put flags for the events table: keys (seq) only grow, so records are appended (full pages). */
const APPEND = { append: true } as const;

export interface LmdbStoreOptions extends LimitOptions {
  /** Directory holding the LMDB environment (created if missing). */
  readonly path: string;
  readonly logger?: Logger;
  /**
   * LMDB map size in bytes: virtual address space reserved for the database (not disk, not RAM).
   * The map still grows when the data outgrows it, but every growth leaves the old mapping
   * resident beside the new one until restart. Default DEFAULT_MAP_SIZE (256 GiB).
   */
  readonly mapSize?: number;
  /** LMDB page size for a new database (existing ones keep theirs). Default: the OS page size (4096). */
  readonly pageSize?: number;
  /** Unix seconds "now" for NIP-40 (refusing already-expired events, purging). Default: the wall clock. */
  readonly clock?: () => number;
  /** How often expired events are purged from disk; 0 disables the timer. Default 60 000 ms. */
  readonly purgeIntervalMs?: number;
  /** Most expired events removed per purge transaction. Default 10 000. */
  readonly purgeBatch?: number;
  /**
   * Index entries a resumable query reads between looks at the clock (default 64: a few
   * tens of µs); an index of up to 1 024 times this many entries is counted in one native call
   * per range (65 536: ≈3 ms). Tests lower it to make queries pause and resume as often as possible.
   */
  readonly clockEvery?: number;
}

export interface LmdbStore extends EventStore {
  readonly path: string;
  /** Remove events whose expiration is <= now from disk; resolves with how many (durable). */
  purgeExpired(now?: number): Promise<number>;
  /** Number of events on disk (including expired ones not yet purged). */
  size(): number;
  /**
   * query(), but each result comes as the bytes `prefix ‖ stored JSON ‖ suffix` (e.g.
   * `["EVENT","sub",` and `]`), ready to send as a text frame: no string is built. The
   * id of a frame is at bytes [prefix.length + 7, prefix.length + 71).
   */
  queryFrames(filters: readonly Filter[], prefix: Buffer, suffix: Buffer, opts?: QueryOptions): Promise<Buffer[]>;
  openQueryFrames(filters: readonly Filter[], prefix: Buffer, suffix: Buffer, opts?: QueryOptions): QueryCursor<Buffer[]>;
  /** The index the planner picks for a filter and how many range scans it opens (for operators and tests). */
  explain(filter: Filter): { readonly index: string; readonly scans: number };
  /** Writer counters: committed write transactions and the jobs (put/purge calls) they carried. */
  writerStats(): { readonly transactions: number; readonly jobs: number };
}

type Db = Database<Buffer, Buffer | number>;

const EMPTY = Buffer.alloc(0);
const MAX_U32 = 0xffffffff;
/** Letters whose values are ids or pubkeys: an index scan on them is nearly always the most selective. */
const REFERENCE_LETTERS = new Set(['e', 'p', 'a', 'E', 'P', 'A', 'q']);
/**
 * Every range scan costs an lmdb-js cursor (≈5–15 µs of CPU). A composite index
 * (authors×kinds, tag values×kinds) is used while it opens at most this many scans,
 * or no more than the coarser index would; beyond that we scan the coarser index
 * and post-filter kinds.
 */
const MAX_COMPOSITE_SCANS = 32;
/** Above this many values per condition, membership uses a Set instead of byte compares. */
const SET_THRESHOLD = 8;
const D_LETTER = 'd'.charCodeAt(0);
/**
 * A write transaction takes queued put() calls until it holds this many events, so one
 * transaction's apply step (on the event loop, tens of µs per event) stays short and
 * queries interleave. A single larger put() call still commits as one transaction.
 */
const MAX_BATCH_EVENTS = 1000;

interface TagCondition {
  readonly letter: number;
  readonly name: string;
  readonly values: Buffer[];
  readonly set: Set<string> | undefined;
}

interface CompiledFilter {
  readonly never: boolean;
  readonly ids: Buffer[] | undefined;
  readonly authors: Buffer[] | undefined;
  readonly authorSet: Set<string> | undefined;
  readonly kinds: number[] | undefined;
  readonly tags: TagCondition[];
  readonly since: number;
  readonly until: number;
}

/** Conditions the chosen index already guarantees, so the post-filter can skip them. */
interface Implied {
  readonly authors: boolean;
  readonly kinds: boolean;
  readonly tag: number;
}

type Plan =
  | { readonly type: 'ids' }
  | {
    readonly type: 'scan'; readonly index: string; readonly db: Db; readonly prefixes: Buffer[]; readonly implied: Implied;
    /** Can one event appear in several scans? (only when several tag values are wanted) */
    readonly overlap?: boolean;
  };

interface Rec<T> {
  readonly ts: number;
  readonly seq: number;
  readonly v: T;
}

/** How query results are materialised: as JSON strings, or as ready-to-send frames. */
interface Output<T> {
  make(b: Buffer): T;
  /** Order of two results with equal created_at: by id. */
  tie(a: T, b: T): number;
}

/** One reverse range scan of a resumable walk: where it resumes (inclusive), or done. */
interface ScanRange {
  readonly prefix: Buffer;
  ts: number;
  seq: number;
  done: boolean;
}

interface Cursor {
  readonly it: Iterator<unknown>;
  readonly range: ScanRange;
  seq: number;
  ts: number;
}

const NEVER: CompiledFilter = { never: true, ids: undefined, authors: undefined, authorSet: undefined, kinds: undefined, tags: [], since: 0, until: 0 };

function hexList(value: unknown): Buffer[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (const v of value) if (isHex64(v) && !seen.has(v)) { seen.add(v); out.push(Buffer.from(v, 'hex')); }
  return out;
}

/** Turn a NIP-01 filter into byte-level conditions, or NEVER when it cannot match anything. */
export function compileFilter(f: Filter): CompiledFilter {
  let ids: Buffer[] | undefined;
  let authors: Buffer[] | undefined;
  let kinds: number[] | undefined;
  let since = 0;
  let until = MAX_TIMESTAMP;
  const tags: TagCondition[] = [];
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined) continue;
    if (key === 'ids' || key === 'authors') {
      const list = hexList(value);
      if (list === undefined || list.length === 0) return NEVER;
      if (key === 'ids') ids = list; else authors = list;
    } else if (key === 'kinds') {
      if (!Array.isArray(value)) return NEVER;
      kinds = [...new Set(value.filter((k): k is number => Number.isInteger(k) && k >= 0 && k <= 65535))];
      if (kinds.length === 0) return NEVER;
    } else if (key === 'since') {
      if (typeof value !== 'number' || Number.isNaN(value)) continue;
      if (value > MAX_TIMESTAMP) return NEVER;
      since = Math.max(since, Math.max(0, Math.ceil(value)));
    } else if (key === 'until') {
      if (typeof value !== 'number' || Number.isNaN(value)) continue;
      if (value < 0) return NEVER;
      until = Math.min(until, Math.floor(value));
    } else if (key === 'search') {
      return NEVER; // NIP-50 is not supported: match nothing rather than everything
    } else if (key.startsWith('#')) {
      const name = key.slice(1);
      if (!isTagLetter(name) || !Array.isArray(value)) return NEVER;
      const strings = [...new Set(value.filter((v): v is string => typeof v === 'string'))];
      if (strings.length === 0) return NEVER;
      // Encoded as the packed header and the index keys store them (hex ids/pubkeys as 32 bytes).
      const values = strings.map(encodeTagValue);
      const set = values.length > SET_THRESHOLD ? new Set(values.map((b) => b.toString('latin1'))) : undefined;
      tags.push({ letter: name.charCodeAt(0), name, values, set });
    }
  }
  if (since > until) return NEVER;
  const authorSet = authors !== undefined && authors.length > SET_THRESHOLD ? new Set(authors.map((b) => b.toString('latin1'))) : undefined;
  return { never: false, ids, authors, authorSet, kinds, tags, since, until };
}

function bytesEqual(a: Uint8Array, aOff: number, b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[i]) return false;
  return true;
}

/** Does the packed record carry one of the wanted values under the condition's letter? (encoded bytes compared) */
function tagMatches(b: Buffer, cond: TagCondition): boolean {
  const at = tagsOffset(b);
  const n = readU32(b, at);
  let p = at + 4;
  for (let i = 0; i < n; i++) {
    const len = encodedTagValueLength(b, p + 1);
    if (b[p] === cond.letter) {
      const start = p + 1;
      if (cond.set !== undefined) {
        if (cond.set.has(b.toString('latin1', start, start + len))) return true;
      } else {
        for (const v of cond.values) if (v.length === len && bytesEqual(b, start, v, len)) return true;
      }
    }
    p += 1 + len;
  }
  return false;
}

/** Every condition of the filter the index did not already guarantee, plus NIP-40. */
function postMatch(b: Buffer, cf: CompiledFilter, implied: Implied, now: number): boolean {
  if ((b[OFF_FLAGS] & FLAG_EXPIRES) !== 0 && readU64(b, OFF_EXPIRATION) <= now) return false;
  return conditionsMatch(b, cf, implied);
}

function conditionsMatch(b: Buffer, cf: CompiledFilter, implied: Implied): boolean {
  const ts = readU64(b, OFF_CREATED_AT);
  if (ts < cf.since || ts > cf.until) return false;
  if (cf.kinds !== undefined && !implied.kinds && !cf.kinds.includes(packedKind(b))) return false;
  if (cf.authors !== undefined && !implied.authors) {
    if (cf.authorSet !== undefined) {
      if (!cf.authorSet.has(b.toString('latin1', OFF_PUBKEY, OFF_PUBKEY + 32))) return false;
    } else {
      let ok = false;
      for (const a of cf.authors) if (bytesEqual(b, OFF_PUBKEY, a, 32)) { ok = true; break; }
      if (!ok) return false;
    }
  }
  for (let i = 0; i < cf.tags.length; i++) if (i !== implied.tag && !tagMatches(b, cf.tags[i])) return false;
  return true;
}

const JSON_OUTPUT: Output<string> = {
  make: packedJson,
  // Stored JSON starts with {"id":"<hex>", so comparing it compares ids: ties go to the lowest id.
  tie: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
};

function frameOutput(prefix: Buffer, suffix: Buffer): Output<Buffer> {
  const idStart = prefix.length + 7;
  return {
    make(b) {
      const h = headerLength(b);
      const out = Buffer.allocUnsafe(prefix.length + (b.length - h) + suffix.length);
      prefix.copy(out, 0);
      b.copy(out, prefix.length, h, b.length);
      suffix.copy(out, out.length - suffix.length);
      return out;
    },
    tie: (a, b) => a.compare(b, idStart, idStart + 64, idStart, idStart + 64),
  };
}

const sortNewest = <T>(recs: Rec<T>[], out: Output<T>): Rec<T>[] => recs.sort((a, b) => b.ts - a.ts || out.tie(a.v, b.v));

// A max-heap of cursors on ts (newest first).
function heapPush(h: Cursor[], c: Cursor): void {
  let i = h.length;
  h.push(c);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p].ts >= c.ts) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = c;
}

function heapSiftDown(h: Cursor[]): void {
  const n = h.length;
  const c = h[0];
  let i = 0;
  for (;;) {
    let m = 2 * i + 1;
    if (m >= n) break;
    if (m + 1 < n && h[m + 1].ts > h[m].ts) m++;
    if (h[m].ts <= c.ts) break;
    h[i] = h[m];
    i = m;
  }
  h[i] = c;
}

function checkOptions(opts: LmdbStoreOptions): void {
  const bad = (name: string, want: string, got: unknown): never => {
    throw new RangeError(`openLmdbStore: ${name} must be ${want} (got ${JSON.stringify(got)})`);
  };
  if (typeof opts.path !== 'string' || opts.path === '') bad('path', 'a non-empty directory path', opts.path);
  const int = (name: keyof LmdbStoreOptions, min: number): void => {
    const v = opts[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < min)) bad(name, `an integer >= ${min}`, v);
  };
  int('maxLimit', 1);
  int('defaultLimit', 0);
  int('purgeIntervalMs', 0);
  int('purgeBatch', 1);
  int('mapSize', 1);
  int('clockEvery', 1);
  if (opts.pageSize !== undefined && ![4096, 8192, 16384, 32768, 65536].includes(opts.pageSize)) bad('pageSize', 'a power of two from 4096 to 65536', opts.pageSize);
}

export async function openLmdbStore(opts: LmdbStoreOptions): Promise<LmdbStore> {
  checkOptions(opts);
  const log = opts.logger?.child({ component: 'lmdb-store' });
  const clock = opts.clock ?? nowSeconds;
  const purgeBatch = opts.purgeBatch ?? 10_000;
  const clockEvery = opts.clockEvery ?? 64;
  mkdirSync(opts.path, { recursive: true });
  const root: RootDatabase = open({
    path: opts.path,
    noSubdir: false, // always a directory (lmdb-js would treat a path with an extension as a file)
    maxDbs: 16,
    mapSize: opts.mapSize ?? DEFAULT_MAP_SIZE,
    ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
  });
  const meta = root.openDB<unknown, string>('meta', {});
  const events = root.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' });
  const binary = (name: string): Db => root.openDB<Buffer, Buffer>(name, { keyEncoding: 'binary', encoding: 'binary' }) as unknown as Db;
  const index = (name: string): Db =>
    root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoder: indexKeyEncoder } as never) as unknown as Db;
  const ids = binary('ids'); // id → seq
  const slots = binary('slots'); // replaceable/addressable address → seq of the current version
  const deletedIds = binary('deleted-ids'); // id ‖ deleter pubkey → flags (bit 0: deletion had ["k","1059"])
  const deletedAddrs = binary('deleted-addrs'); // address → u64 created_at of the newest `a` deletion
  const byPubkeyKind = index('idx-pubkey-kind');
  const byPubkey = index('idx-pubkey');
  const byKind = index('idx-kind');
  const byTag = index('idx-tag');
  const byTagKind = index('idx-tag-kind');
  const byTime = index('idx-created-at');
  const byExpiry = index('idx-expiration'); // key: u64 expiration ‖ seq

  /**
   * Schema 1 or 2 → 3: every record is repacked (the JSON is found through the header length
   * at offset 0, which every schema keeps) and both tag indexes are rebuilt, in bounded
   * transactions. The version is written last, so a migration cut short simply runs again.
   */
  async function migrate(path: string, from: number): Promise<void> {
    log?.info({ path, from, to: SCHEMA_VERSION }, 'migrating lmdb store: repacking events, rebuilding the tag indexes');
    await byTag.clearAsync();
    await byTagKind.clearAsync();
    let after = 0;
    let done = 0;
    for (;;) {
      const chunk: { seq: number; e: NostrEvent; json: string }[] = [];
      for (const { key, value } of events.getRange({ start: after + 1, limit: 2000 })) {
        const json = packedJson(value);
        chunk.push({ seq: key, e: JSON.parse(json) as NostrEvent, json });
      }
      if (chunk.length === 0) break;
      await root.childTransaction(() => {
        for (const { seq, e, json } of chunk) {
          const tags = indexedTags(e);
          events.putSync(seq, packEvent(e, json, expirationTs(e), tags));
          for (const t of tags) {
            byTag.putSync(indexKey(tagPrefix(t.letter, t.enc), e.created_at, seq), EMPTY);
            byTagKind.putSync(indexKey(tagKindPrefix(t.letter, t.enc, e.kind), e.created_at, seq), EMPTY);
          }
        }
      });
      after = chunk[chunk.length - 1].seq;
      done += chunk.length;
    }
    await meta.put('schemaVersion', SCHEMA_VERSION);
    await root.flushed;
    log?.info({ path, events: done }, `lmdb store migrated to schema ${SCHEMA_VERSION}`);
  }

  try {
    const version = meta.get('schemaVersion');
    if (version === undefined) {
      if (events.getKeysCount({ limit: 1 }) > 0) throw new Error(`lmdb store at ${opts.path} has events but no schema version: not a Bazaar store, refusing to open`);
      await meta.put('schemaVersion', SCHEMA_VERSION);
      await root.flushed;
    } else if (version === 1 || version === 2) {
      await migrate(opts.path, version);
    } else if (version !== SCHEMA_VERSION) {
      throw new Error(
        `lmdb store at ${opts.path} has schema version ${JSON.stringify(version)}; this build reads version ${SCHEMA_VERSION}` +
        (typeof version === 'number' && version > SCHEMA_VERSION ? ' (written by a newer Bazaar: upgrade)' : ' (no migration available)'),
      );
    }
  } catch (err) {
    await root.close();
    throw err;
  }

  // Sequence numbers never repeat, even across restarts after the newest events were removed
  // (followers of eventsAfter keep their place by seq): the next one is also kept in `meta`.
  let nextSeq = 1;
  for (const k of events.getKeys({ reverse: true, limit: 1 })) nextSeq = (k as number) + 1;
  const savedSeq = meta.get('nextSeq');
  if (typeof savedSeq === 'number' && savedSeq > nextSeq) nextSeq = savedSeq;
  /** Runs `fn` in the writer's transaction and records the next seq with it when `fn` used any. */
  function withSeq<T>(fn: () => T): T {
    const before = nextSeq;
    const result = fn();
    if (nextSeq !== before) meta.putSync('nextSeq', nextSeq);
    return result;
  }
  /** The watermark: every seq up to this one is committed (visible to readers). Set after each commit. */
  let committedSeq = nextSeq - 1;
  log?.info({ path: opts.path, schemaVersion: SCHEMA_VERSION, events: size(), nextSeq }, 'lmdb store opened');

  /**
   * Events on disk, kept by the writer without a stat call (re-read after a failed batch): it
   * bounds any one index range, so it tells when a native count needs no windows.
   */
  let storedEvents = size();

  function size(): number {
    return (events.getStats() as { entryCount: number }).entryCount;
  }

  // ---------- reads ----------

  function seqOfId(idBytes: Uint8Array): number | undefined {
    const v = ids.getBinaryFast(idBytes as Buffer);
    return v === undefined ? undefined : readU32(v, 0);
  }

  function choosePlan(cf: CompiledFilter): Plan {
    if (cf.ids !== undefined) return { type: 'ids' };
    let best = -1;
    for (let i = 0; i < cf.tags.length; i++) {
      const t = cf.tags[i];
      if (best < 0) { best = i; continue; }
      const b = cf.tags[best];
      const ref = REFERENCE_LETTERS.has(t.name);
      const bref = REFERENCE_LETTERS.has(b.name);
      if ((ref && !bref) || (ref === bref && t.values.length < b.values.length)) best = i;
    }
    const kinds = cf.kinds;
    const pkKindScans = cf.authors !== undefined && kinds !== undefined ? cf.authors.length * kinds.length : undefined;
    const tagScan = (): Plan => {
      const tag = cf.tags[best];
      if (kinds !== undefined && tag.values.length * kinds.length <= Math.max(MAX_COMPOSITE_SCANS, tag.values.length)) {
        const prefixes: Buffer[] = [];
        for (const v of tag.values) for (const k of kinds) prefixes.push(tagKindPrefix(tag.letter, v, k));
        return { type: 'scan', index: 'tag-kind', db: byTagKind, prefixes, implied: { authors: false, kinds: true, tag: best }, overlap: tag.values.length > 1 };
      }
      return {
        type: 'scan', index: 'tag', db: byTag, prefixes: tag.values.map((v) => tagPrefix(tag.letter, v)),
        implied: { authors: false, kinds: false, tag: best }, overlap: tag.values.length > 1,
      };
    };
    // A reference tag (an id or pubkey) beats authors unless there are fewer authors than values.
    const refTag = best >= 0 && REFERENCE_LETTERS.has(cf.tags[best].name);
    if (refTag && (cf.authors === undefined || cf.tags[best].values.length <= cf.authors.length)) return tagScan();
    if (pkKindScans !== undefined && pkKindScans <= Math.max(MAX_COMPOSITE_SCANS, cf.authors!.length)) {
      const prefixes: Buffer[] = [];
      for (const a of cf.authors!) for (const k of kinds!) prefixes.push(pubkeyKindPrefix(a, k));
      return { type: 'scan', index: 'pubkey-kind', db: byPubkeyKind, prefixes, implied: { authors: true, kinds: true, tag: -1 } };
    }
    // Other tags (t, d, k, …) are often shared widely: one author's events are the smaller set.
    if (cf.authors !== undefined && !refTag) return { type: 'scan', index: 'pubkey', db: byPubkey, prefixes: cf.authors, implied: { authors: true, kinds: false, tag: -1 } };
    if (best >= 0) return tagScan();
    if (cf.authors !== undefined) return { type: 'scan', index: 'pubkey', db: byPubkey, prefixes: cf.authors, implied: { authors: true, kinds: false, tag: -1 } };
    if (kinds !== undefined) {
      return { type: 'scan', index: 'kind', db: byKind, prefixes: kinds.map(kindPrefix), implied: { authors: false, kinds: true, tag: -1 } };
    }
    return { type: 'scan', index: 'created-at', db: byTime, prefixes: [EMPTY], implied: { authors: false, kinds: false, tag: -1 } };
  }

  const NOTHING_IMPLIED: Implied = { authors: false, kinds: false, tag: -1 };

  /**
   * A resumable newest-first walk of one filter's plan (strfry's DBScan). Each run() does
   * bounded work: it opens one reverse range scan per index prefix from where the last run
   * stopped, merges them newest-first, and when the deadline passes remembers each range's
   * first unconsumed entry and closes its cursors — no LMDB snapshot is held between runs.
   * Entries newer than `maxSeq` (the subscription's watermark) are skipped: live delivery
   * sends those. An event removed between runs is simply not found.
   */
  class FilterWalk {
    private readonly plan: Plan;
    /** Per range scan: the next entry to read (inclusive), or done. */
    private readonly ranges: ScanRange[] = [];
    private nextId = 0;
    /** One event can carry several wanted tag values (or ids repeat): seqs already handled. */
    private readonly seen: Set<number> | undefined;
    private finished = false;
    private readonly cf: CompiledFilter;
    private readonly now: number;
    private readonly maxSeq: number;

    constructor(cf: CompiledFilter, now: number, maxSeq: number) {
      this.cf = cf;
      this.now = now;
      this.maxSeq = maxSeq;
      this.plan = choosePlan(cf);
      if (this.plan.type === 'ids') this.seen = new Set();
      else {
        this.seen = this.plan.overlap === true ? new Set() : undefined;
        for (const prefix of this.plan.prefixes) this.ranges.push({ prefix, ts: cf.until, seq: MAX_U32, done: false });
      }
    }

    /**
     * Call onMatch for every event passing the post-filter, newest first, until onMatch returns
     * false or the scan falls below `floor.ts` (true: finished) or `deadline` (a performance.now()
     * time) passes (false: call again). Always makes progress. The packed buffer handed to
     * onMatch is only valid during the call (lmdb-js reuses it).
     */
    run(deadline: number, onMatch: (seq: number, ts: number, b: Buffer) => boolean, floor?: { ts: number }): boolean {
      if (this.finished) return true;
      const { cf, now, maxSeq, seen } = this;
      let n = 0;
      if (this.plan.type === 'ids') {
        const ids = cf.ids!;
        while (this.nextId < ids.length) {
          if (n > 0 && n % clockEvery === 0 && performance.now() > deadline) return false;
          n++;
          const seq = seqOfId(ids[this.nextId++]);
          if (seq === undefined || seq > maxSeq || seen!.has(seq)) continue;
          seen!.add(seq);
          const b = events.getBinaryFast(seq);
          if (b === undefined || !postMatch(b, cf, NOTHING_IMPLIED, now)) continue;
          if (!onMatch(seq, packedCreatedAt(b), b)) break;
        }
        this.finished = true;
        return true;
      }
      const plan = this.plan;
      const heap: Cursor[] = [];
      const open: Iterator<unknown>[] = [];
      try {
        for (const range of this.ranges) {
          if (range.done) continue;
          const it = plan.db.getKeys({ start: indexKey(range.prefix, range.ts, range.seq), end: indexKey(range.prefix, cf.since, 0), reverse: true })[Symbol.iterator]();
          open.push(it);
          const r = it.next();
          if (r.done === true) range.done = true;
          else heapPush(heap, { it, seq: r.value as number, ts: lastKey.ts, range });
        }
        while (heap.length > 0) {
          const top = heap[0];
          const seq = top.seq;
          const ts = top.ts;
          // Scans are newest-first: once below the caller's floor nothing further can be wanted.
          if (floor !== undefined && ts < floor.ts) break;
          if (n > 0 && n % clockEvery === 0 && performance.now() > deadline) return false;
          n++;
          const r = top.it.next();
          if (r.done === true) {
            top.range.done = true;
            const last = heap.pop()!;
            if (heap.length > 0) { heap[0] = last; heapSiftDown(heap); }
          } else {
            top.seq = r.value as number;
            top.ts = lastKey.ts;
            heapSiftDown(heap);
          }
          if (seq > maxSeq) continue;
          if (seen !== undefined) {
            if (seen.has(seq)) continue;
            seen.add(seq);
          }
          const b = events.getBinaryFast(seq);
          if (b === undefined || !postMatch(b, cf, plan.implied, now)) continue;
          if (!onMatch(seq, ts, b)) break;
        }
        this.finished = true;
        return true;
      } finally {
        // Each range resumes at its head entry: read, not consumed.
        for (const c of heap) { c.range.ts = c.ts; c.range.seq = c.seq; }
        for (const it of open) it.return?.();
      }
    }
  }

  /** One filter's results, resumable: newest first, ties by lowest id, cut at `limit`. */
  class FilterQuery<T> {
    readonly recs: Rec<T>[] = [];
    private readonly walk: FilterWalk | undefined;
    private readonly limit: number;
    private readonly ordered: boolean;
    /** Once `limit` events are collected, only events tied with the last one are still wanted. */
    private readonly floor = { ts: -1 };
    private readonly out: Output<T>;

    constructor(f: Filter, now: number, maxSeq: number, out: Output<T>) {
      this.out = out;
      this.limit = effectiveLimit(f.limit, opts);
      const cf = compileFilter(f);
      this.ordered = cf.ids === undefined;
      this.walk = this.limit === 0 || cf.never ? undefined : new FilterWalk(cf, now, maxSeq);
    }

    step(deadline: number): boolean {
      if (this.walk === undefined) return true;
      // Past the limit the scan continues only through events tied with the last one's
      // created_at, so ties are ordered by id exactly. (Id lookups come in request order
      // and are all collected, then sorted.)
      const done = this.walk.run(deadline, (seq, ts, b) => {
        this.recs.push({ ts, seq, v: this.out.make(b) });
        if (this.ordered && this.recs.length === this.limit) this.floor.ts = ts;
        return true;
      }, this.floor);
      if (!done) return false;
      sortNewest(this.recs, this.out);
      if (this.recs.length > this.limit) this.recs.length = this.limit;
      return true;
    }
  }

  /** The union of several filters' results, each with its own limit, de-duplicated, newest first. */
  function openQueryWith<T>(filters: readonly Filter[], q: QueryOptions, out: Output<T>): QueryCursor<T[]> {
    ensureOpen();
    q.signal?.throwIfAborted();
    const now = q.now ?? clock();
    const maxSeq = q.maxSeq ?? MAX_U32;
    let i = 0;
    let current: FilterQuery<T> | undefined;
    const merged = new Map<number, Rec<T>>();
    let result: T[] | undefined;
    return {
      step(deadline) {
        if (result !== undefined) return true;
        ensureOpen();
        while (i < filters.length) {
          current ??= new FilterQuery(filters[i], now, maxSeq, out);
          if (!current.step(deadline)) return false;
          if (filters.length === 1) result = current.recs.map((r) => r.v);
          else for (const r of current.recs) merged.set(r.seq, r);
          current = undefined;
          i++;
          if (i < filters.length && performance.now() > deadline) return false;
        }
        result ??= sortNewest([...merged.values()], out).map((r) => r.v);
        return true;
      },
      result() {
        if (result === undefined) throw new Error('query not finished: step() until it returns true');
        return result;
      },
    };
  }

  /**
   * NIP-45 without touching events, when the chosen index implies every condition of the
   * filter and its ranges cannot overlap: count index entries natively, then subtract the
   * expired-but-not-yet-purged events that match. Undefined when not applicable. A native
   * count is one uninterruptible call (≈25 M entries/s), so on a large index each range is
   * counted in created_at windows, from its newest entry down, each aimed at about 1 024 ×
   * clockEvery entries (a few ms), so that one call stays well inside a slice.
   */
  function openIndexCount(cf: CompiledFilter, now: number): QueryCursor<number> | undefined {
    const plan = choosePlan(cf);
    if (plan.type !== 'scan') return undefined;
    if (plan.overlap === true) return undefined;
    if (cf.authors !== undefined && !plan.implied.authors) return undefined;
    if (cf.kinds !== undefined && !plan.implied.kinds) return undefined;
    if (cf.tags.length > (plan.implied.tag >= 0 ? 1 : 0)) return undefined;
    // Small store: every range in one call each, as cheap as it gets. (A range of a tag index
    // holds one entry per event carrying that value, so no range outgrows the event count.)
    const chunk = clockEvery * 1024;
    const whole = storedEvents <= chunk;
    let n = 0;
    let i = 0;
    let started = false;
    let hi = 0;
    let span = 1;
    let expTs = 0;
    let expSeq = 0;
    let counted = false;
    let done = false;
    return {
      step(deadline) {
        if (done) return true;
        ensureOpen();
        while (!counted) {
          if (i === plan.prefixes.length) { counted = true; break; }
          const prefix = plan.prefixes[i];
          if (whole) {
            n += plan.db.getCount({ start: indexKey(prefix, cf.since, 0), end: indexKey(prefix, cf.until, MAX_U32) });
            i++;
            if (i < plan.prefixes.length && performance.now() > deadline) return false;
            continue;
          }
          if (!started) {
            // Start at the newest entry in range: the time above it is empty.
            started = true;
            hi = cf.since - 1;
            for (const _ of plan.db.getKeys({ start: indexKey(prefix, cf.until, MAX_U32), end: indexKey(prefix, cf.since, 0), reverse: true, limit: 1 })) hi = lastKey.ts;
          }
          if (hi < cf.since) { i++; started = false; continue; }
          const lo = Math.max(cf.since, hi - span + 1);
          // seq never reaches MAX_U32 (insert refuses it), so the exclusive end includes every entry at `hi`.
          const got = plan.db.getCount({ start: indexKey(prefix, lo, 0), end: indexKey(prefix, hi, MAX_U32) });
          n += got;
          hi = lo - 1;
          // Aim each window at about `chunk` entries: grow fast through sparse time, shrink in dense.
          if (got < chunk / 4) span = Math.min(span * 4, MAX_TIMESTAMP);
          else if (got > chunk) span = Math.max(1, Math.floor(span / 2));
          if (performance.now() > deadline) return false;
        }
        let k = 0;
        let paused = false;
        for (const seq of byExpiry.getKeys({ start: indexKey(EMPTY, expTs, expSeq), end: indexKey(EMPTY, now + 1, 0) })) {
          if (k > 0 && k % clockEvery === 0 && performance.now() > deadline) {
            expTs = lastKey.ts;
            expSeq = seq as number;
            paused = true;
            break;
          }
          k++;
          const b = events.getBinaryFast(seq as number);
          if (b !== undefined && conditionsMatch(b, cf, NOTHING_IMPLIED)) n--;
        }
        if (paused) return false;
        done = true;
        return true;
      },
      result() {
        if (!done) throw new Error('count not finished: step() until it returns true');
        return n;
      },
    };
  }

  function openCountWith(filters: readonly Filter[], q: QueryOptions): QueryCursor<number> {
    ensureOpen();
    q.signal?.throwIfAborted();
    const now = q.now ?? clock();
    const compiled = filters.map(compileFilter).filter((cf) => !cf.never);
    if (compiled.length === 1) {
      const fast = openIndexCount(compiled[0], now);
      if (fast !== undefined) return fast;
    }
    // Several filters: distinct events across all of them.
    const seen = compiled.length > 1 ? new Set<number>() : undefined;
    let n = 0;
    let i = 0;
    let walk: FilterWalk | undefined;
    return {
      step(deadline) {
        ensureOpen();
        while (i < compiled.length) {
          walk ??= new FilterWalk(compiled[i], now, MAX_U32);
          const done = walk.run(deadline, (seq) => {
            if (seen === undefined) n++;
            else seen.add(seq);
            return true;
          });
          if (!done) return false;
          walk = undefined;
          i++;
        }
        return true;
      },
      result() {
        if (i < compiled.length) throw new Error('count not finished: step() until it returns true');
        return seen === undefined ? n : seen.size;
      },
    };
  }

  const runToEnd = <T>(c: QueryCursor<T>): T => {
    while (!c.step(Infinity));
    return c.result();
  };

  // ---------- writes (only ever called inside the writer's transaction) ----------

  function putU32(n: number): Buffer { const b = Buffer.allocUnsafe(4); writeU32(b, 0, n); return b; }

  function insert(e: NostrEvent, idBytes: Buffer, pubkey: Buffer, addr: Buffer | undefined): number {
    if (nextSeq >= MAX_U32) throw new Error('lmdb store: event sequence numbers exhausted (4 billion events written)');
    const seq = nextSeq++;
    const json = canonicalJson(e);
    const expiration = expirationTs(e);
    const tags = indexedTags(e);
    // seq only grows, so the record is appended: LMDB then fills each page instead of
    // splitting it in half (≈25 % less space for the events table).
    // (lmdb-js returns false when an append is refused; its typings say void.)
    const appended = events.putSync(seq, packEvent(e, json, expiration, tags), APPEND) as unknown as boolean;
    if (!appended) throw new Error(`lmdb store: event sequence number ${seq} is not above the last stored one`);
    storedEvents++;
    ids.putSync(idBytes, putU32(seq));
    const ts = e.created_at;
    byPubkeyKind.putSync(indexKey(pubkeyKindPrefix(pubkey, e.kind), ts, seq), EMPTY);
    byPubkey.putSync(indexKey(pubkey, ts, seq), EMPTY);
    byKind.putSync(indexKey(kindPrefix(e.kind), ts, seq), EMPTY);
    byTime.putSync(indexKey(EMPTY, ts, seq), EMPTY);
    for (const t of tags) {
      byTag.putSync(indexKey(tagPrefix(t.letter, t.enc), ts, seq), EMPTY);
      byTagKind.putSync(indexKey(tagKindPrefix(t.letter, t.enc, e.kind), ts, seq), EMPTY);
    }
    if (expiration !== undefined) byExpiry.putSync(indexKey(EMPTY, expiration, seq), EMPTY);
    if (addr !== undefined) slots.putSync(addr, putU32(seq));
    return seq;
  }

  /** Remove a stored event and all its index entries; returns its id. */
  /** Remove a stored event and all its index entries (derived from its packed header); returns its id. */
  function removeSeq(seq: number): string | undefined {
    const packed = events.getBinary(seq); // a copy: we do more reads below
    if (packed === undefined) return undefined;
    const kind = packedKind(packed);
    const ts = packedCreatedAt(packed);
    const pubkey = packed.subarray(OFF_PUBKEY, OFF_PUBKEY + 32);
    const tags = unpackTags(packed);
    events.removeSync(seq);
    storedEvents--;
    ids.removeSync(packed.subarray(OFF_ID, OFF_ID + 32));
    byPubkeyKind.removeSync(indexKey(pubkeyKindPrefix(pubkey, kind), ts, seq));
    byPubkey.removeSync(indexKey(pubkey, ts, seq));
    byKind.removeSync(indexKey(kindPrefix(kind), ts, seq));
    byTime.removeSync(indexKey(EMPTY, ts, seq));
    for (const t of tags) {
      byTag.removeSync(indexKey(tagPrefix(t.letter, t.enc), ts, seq));
      byTagKind.removeSync(indexKey(tagKindPrefix(t.letter, t.enc, kind), ts, seq));
    }
    const expiration = packedExpiration(packed);
    if (expiration !== undefined) byExpiry.removeSync(indexKey(EMPTY, expiration, seq));
    const replaceable = isReplaceableKind(kind);
    if (replaceable || isAddressableKind(kind)) {
      const dTagged = replaceable ? undefined : tags.find((t) => t.letter === D_LETTER);
      const d = replaceable ? undefined : dTagged === undefined ? '' : decodeTagValue(dTagged.enc);
      let addr = addressKey(kind, pubkey, d);
      let cur = slots.getBinaryFast(addr);
      if (cur === undefined || readU32(cur, 0) !== seq) {
        // The header keeps d tags that have a value; when the event's first d tag has none
        // (["d"]), its address is "" — re-derive it from the JSON in that rare case.
        addr = eventAddressKey(JSON.parse(packed.toString('utf8', headerLength(packed))) as NostrEvent, pubkey, replaceable)!;
        cur = slots.getBinaryFast(addr);
      }
      if (cur !== undefined && readU32(cur, 0) === seq) slots.removeSync(addr);
    }
    return packed.toString('hex', OFF_ID, OFF_ID + 32);
  }

  function isTombstoned(e: NostrEvent, idBytes: Buffer, pubkey: Buffer, addr: Buffer | undefined): boolean {
    if (e.kind === 5) return false; // deleting a deletion does nothing
    if (deletedIds.getBinaryFast(Buffer.concat([idBytes, pubkey])) !== undefined) return true;
    if (e.kind === 1059) {
      for (const t of e.tags) {
        if (t[0] !== 'p' || !isHex64(t[1])) continue;
        const v = deletedIds.getBinaryFast(Buffer.concat([idBytes, Buffer.from(t[1], 'hex')]));
        if (v !== undefined && (v[0] & 1) !== 0) return true;
      }
    }
    if (addr !== undefined) {
      const v = deletedAddrs.getBinaryFast(addr);
      if (v !== undefined && e.created_at <= readU64(v, 0)) return true;
    }
    return false;
  }

  function hasPTag(packed: Buffer, pubkeyHex: string): boolean {
    return tagMatches(packed, { letter: 'p'.charCodeAt(0), name: 'p', values: [encodeTagValue(pubkeyHex)], set: undefined });
  }

  function applyDeletion(del: NostrEvent, pubkey: Buffer): string[] {
    const removed: string[] = [];
    const giftWrapOk = del.tags.some((t) => t[0] === 'k' && t[1] === '1059');
    for (const t of del.tags) {
      if (t[0] === 'e' && isHex64(t[1])) {
        const target = Buffer.from(t[1], 'hex');
        const key = Buffer.concat([target, pubkey]);
        const prev = deletedIds.getBinaryFast(key);
        deletedIds.putSync(key, Buffer.from([(prev === undefined ? 0 : prev[0]) | (giftWrapOk ? 1 : 0)]));
        const seq = seqOfId(target);
        if (seq === undefined) continue;
        const b = events.getBinaryFast(seq);
        if (b === undefined) continue;
        const kind = packedKind(b);
        if (kind === 5) continue;
        const byAuthor = bytesEqual(b, OFF_PUBKEY, pubkey, 32);
        const byRecipient = kind === 1059 && giftWrapOk && hasPTag(b, del.pubkey);
        if (!byAuthor && !byRecipient) continue;
        const id = removeSeq(seq);
        if (id !== undefined) removed.push(id);
      } else if (t[0] === 'a') {
        const a = parseAddress(t[1], isReplaceableKind, isAddressableKind);
        if (a === undefined || a.pubkey !== del.pubkey) continue;
        const addr = addressKey(a.kind, pubkey, a.d);
        const prev = deletedAddrs.getBinaryFast(addr);
        if (prev === undefined || readU64(prev, 0) < del.created_at) {
          const v = Buffer.allocUnsafe(8);
          writeU64(v, 0, del.created_at);
          deletedAddrs.putSync(addr, v);
        }
        const cur = slots.getBinaryFast(addr);
        if (cur === undefined) continue;
        const seq = readU32(cur, 0);
        const b = events.getBinaryFast(seq);
        if (b === undefined || packedCreatedAt(b) > del.created_at) continue;
        const id = removeSeq(seq);
        if (id !== undefined) removed.push(id);
      }
    }
    return removed;
  }

  function applyPut(e: NostrEvent, now: number): PutOutcome {
    const rejection = storeRejection(e, now);
    if (rejection !== undefined) return { status: 'rejected', message: rejection };
    const idBytes = Buffer.from(e.id, 'hex');
    if (seqOfId(idBytes) !== undefined) return { status: 'duplicate' };
    const pubkey = Buffer.from(e.pubkey, 'hex');
    const addr = eventAddressKey(e, pubkey, isReplaceableKind(e.kind));
    if (isTombstoned(e, idBytes, pubkey, addr)) return { status: 'deleted' };
    const removed: string[] = [];
    if (addr !== undefined) {
      const cur = slots.getBinaryFast(addr);
      if (cur !== undefined) {
        const seq = readU32(cur, 0);
        const b = events.getBinaryFast(seq);
        if (b !== undefined) {
          const ts = packedCreatedAt(b);
          const wins = e.created_at > ts || (e.created_at === ts && idBytes.compare(b, OFF_ID, OFF_ID + 32) < 0);
          if (!wins) return { status: 'replaced' };
          const id = removeSeq(seq);
          if (id !== undefined) removed.push(id);
        }
      }
    }
    const seq = insert(e, idBytes, pubkey, addr);
    if (e.kind === 5) removed.push(...applyDeletion(e, pubkey));
    return { status: 'stored', seq, removed };
  }

  function applyPurge(now: number): number {
    const seqs: number[] = [];
    for (const seq of byExpiry.getKeys({ start: indexKey(EMPTY, 0, 0), end: indexKey(EMPTY, now + 1, 0) })) {
      seqs.push(seq as number);
      if (seqs.length >= purgeBatch) break;
    }
    for (const seq of seqs) removeSeq(seq);
    return seqs.length;
  }

  // ---------- the batched writer ----------

  interface Job {
    /** Events carried (1 for a purge). */
    readonly size: number;
    run(now: number): unknown;
    resolve(result: unknown): void;
    reject(err: Error): void;
  }
  const FAILED = Symbol('failed');
  const queue: Job[] = [];
  let writing = false;
  let scheduled = false;
  let transactions = 0;
  let jobsWritten = 0;
  let flushing = 0; // committed batches whose callers still wait for the flush
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  function notifyIdle(): void {
    if (writing || scheduled || flushing > 0 || queue.length > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  function schedule(): void {
    if (writing || scheduled) return;
    if (queue.length === 0) { notifyIdle(); return; }
    scheduled = true;
    // setImmediate: every put() issued in this event-loop turn joins the batch.
    setImmediate(() => { void runBatch(); });
  }

  function enqueue<T>(size: number, run: (now: number) => T): Promise<T> {
    if (closed) return Promise.reject(new Error('lmdb store is closed'));
    return new Promise<T>((resolve, reject) => {
      queue.push({ size, run, resolve: resolve as (r: unknown) => void, reject });
      schedule();
    });
  }

  async function runBatch(): Promise<void> {
    scheduled = false;
    writing = true;
    let take = 0;
    for (let n = 0; take < queue.length && (take === 0 || n < MAX_BATCH_EVENTS); take++) n += queue[take].size;
    const jobs = queue.splice(0, take);
    const now = clock();
    const started = performance.now();
    let results: unknown[];
    try {
      results = await root.childTransaction(() => withSeq(() => jobs.map((j) => j.run(now))));
    } catch (err) {
      // Something in the batch threw and the whole transaction was rolled back:
      // replay each job in its own transaction so one bad write fails alone.
      log?.error({ err, jobs: jobs.length }, 'write batch failed; retrying jobs one by one');
      storedEvents = size();
      results = [];
      for (const j of jobs) {
        try {
          results.push(await root.childTransaction(() => withSeq(() => j.run(now))));
        } catch (jobErr) {
          results.push({ [FAILED]: jobErr });
        }
      }
    }
    const committed = performance.now();
    // lmdb-js resets its read snapshot before resolving a commit, so reads from here on see it.
    committedSeq = nextSeq - 1;
    transactions++;
    jobsWritten += jobs.length;
    // Durability: the commit is visible now; `flushed` resolves once it is fsync'd.
    const flushed = root.flushed;
    writing = false;
    flushing++;
    schedule(); // the next batch may build while this one flushes
    try {
      await flushed;
    } catch (err) {
      for (const j of jobs) j.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    } finally {
      flushing--;
      notifyIdle();
    }
    log?.debug({ jobs: jobs.length, commitMs: committed - started, flushMs: performance.now() - committed }, 'write batch durable');
    jobs.forEach((j, i) => {
      const r = results[i];
      if (typeof r === 'object' && r !== null && FAILED in r) {
        const err = (r as Record<symbol, unknown>)[FAILED];
        j.reject(err instanceof Error ? err : new Error(String(err)));
      } else j.resolve(r);
    });
  }

  const purgeIntervalMs = opts.purgeIntervalMs ?? 60_000;
  async function purgeExpired(now: number = clock()): Promise<number> {
    const n = await enqueue(1, () => applyPurge(now));
    if (n > 0) log?.info({ purged: n }, 'expired events purged');
    return n;
  }
  const purgeTimer = purgeIntervalMs > 0
    ? setInterval(() => {
      purgeExpired().catch((err: unknown) => log?.error({ err }, 'expired event purge failed'));
    }, purgeIntervalMs)
    : undefined;
  purgeTimer?.unref();

  function ensureOpen(): void {
    if (closed) throw new Error('lmdb store is closed');
  }

  return {
    path: opts.path,
    put(batch) {
      if (batch.length === 0) return Promise.resolve([]);
      return enqueue(batch.length, (now) => batch.map((e) => applyPut(e, now)));
    },
    async query(filters, q: QueryOptions = {}) {
      return runToEnd(openQueryWith(filters, q, JSON_OUTPUT));
    },
    async queryFrames(filters, prefix, suffix, q: QueryOptions = {}) {
      return runToEnd(openQueryWith(filters, q, frameOutput(prefix, suffix)));
    },
    async count(filters, q: QueryOptions = {}) {
      return runToEnd(openCountWith(filters, q));
    },
    openQuery: (filters, q = {}) => openQueryWith(filters, q, JSON_OUTPUT),
    openQueryFrames: (filters, prefix, suffix, q = {}) => openQueryWith(filters, q, frameOutput(prefix, suffix)),
    openCount: (filters, q = {}) => openCountWith(filters, q),
    lastSeq: () => committedSeq,
    eventsAfter(afterSeq, limit, wantKind) {
      ensureOpen();
      const out: { seq: number; kind: number; json: string }[] = [];
      let last = afterSeq;
      if (!(limit > 0) || afterSeq >= MAX_U32 - 1) return { events: out, lastSeq: last };
      // Only committed events: never past the watermark a concurrent write has not reached yet.
      // Keys first, then each record read in place (getBinaryFast, no copy): skipped kinds cost
      // a header read, not a buffer.
      for (const key of events.getKeys({ start: Math.max(0, Math.floor(afterSeq)) + 1, end: committedSeq + 1, limit })) {
        last = key;
        const value = events.getBinaryFast(key);
        if (value === undefined) continue;
        const kind = packedKind(value);
        if (wantKind === undefined || wantKind(kind)) out.push({ seq: key, kind, json: packedJson(value) });
      }
      return { events: out, lastSeq: last };
    },
    has(id) {
      if (closed || !isHex64(id)) return false;
      return seqOfId(Buffer.from(id, 'hex')) !== undefined;
    },
    size,
    purgeExpired,
    writerStats: () => ({ transactions, jobs: jobsWritten }),
    explain(filter) {
      const cf = compileFilter(filter);
      if (cf.never) return { index: 'none', scans: 0 };
      const plan = choosePlan(cf);
      return plan.type === 'ids' ? { index: 'ids', scans: cf.ids!.length } : { index: plan.index, scans: plan.prefixes.length };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (purgeTimer !== undefined) clearInterval(purgeTimer);
      if (writing || scheduled || flushing > 0 || queue.length > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
      await root.close();
      log?.info({ path: opts.path }, 'lmdb store closed');
    },
  };
}
