// The production EventStore on LMDB (lmdb-js), designed like strfry's: each event's
// canonical JSON is stored once behind a compact packed header, keyed by an internal
// sequence number; every index key ends in created_at ‖ seq, so since/until/limit are
// reverse range scans that stop early. This file holds the reads (planner, walks,
// counts) and the store's life cycle; the writes (lmdb-write.ts) go through one batched
// writer — on a thread of its own (lmdb-writer-thread.ts) or inline — and resolve only
// once their transaction is committed and flushed to disk.
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { EventStore, IdScanOptions, IdSink, PutOutcome, QueryCursor, QueryOptions } from './event-store.ts';
import { effectiveLimit, expirationTs, isHex64, isTagLetter, MAX_TIMESTAMP, nowSeconds, type LimitOptions } from './event-rules.ts';
import {
  bytesEqual, encodeTagValue, FLAG_EXPIRES, headerLength, indexedTags, indexKey, kindPrefix, lastKey, OFF_CREATED_AT,
  OFF_EXPIRATION, OFF_FLAGS, OFF_ID, OFF_PUBKEY, packEvent, packedCreatedAt, packedHasTag, packedJson, packedKind, pubkeyKindPrefix,
  readU64, tagPrefix,
} from './lmdb-codec.ts';
import { EMPTY, loadNextSeq, MAX_U32, openTables, seqOfId as seqOfTable, type Db } from './lmdb-tables.ts';
import { createBatchWriter, createWriteCore, type BatchWriter, type WriteJob, type WriteResult } from './lmdb-write.ts';
import { startWriterThread, writerModule, type ThreadWriter, type ThreadWriterOptions } from './lmdb-writer-thread.ts';

export { DEFAULT_MAP_SIZE } from './lmdb-tables.ts';

/**
 * On-disk format version. Bump on any incompatible change to tables, keys or the packed header.
 * 1: initial layout. 2: adds the tag+kind index. 3: compact packed header, hex tag values
 * (ids, pubkeys) stored and keyed as 32 bytes. 4: no tag+kind index (two random B-tree
 * inserts per tagged event less on ingest; `#x` + kinds filters post-filter kinds, as
 * strfry does). Older stores are migrated on open.
 */
export const SCHEMA_VERSION = 4;

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
  /**
   * Where writes are applied: 'thread' — a writer thread of its own, so the caller's event loop
   * only queues puts and reads (what the relay server uses); 'inline' — on the caller's thread.
   * Default 'inline'.
   */
  readonly writer?: 'thread' | 'inline';
  /** With `writer: 'thread'`: writer threads taking turns, 1 or 2 (applying one batch while the previous one syncs). Default 2. */
  readonly writerThreads?: number;
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

/** Letters whose values are ids or pubkeys: an index scan on them is nearly always the most selective. */
const REFERENCE_LETTERS = new Set(['e', 'p', 'a', 'E', 'P', 'A', 'q']);
/**
 * Every range scan costs an lmdb-js cursor (≈5–15 µs of CPU). The composite index
 * (authors×kinds) is used while it opens at most this many scans,
 * or no more than the coarser index would; beyond that we scan the coarser index
 * and post-filter kinds.
 */
const MAX_COMPOSITE_SCANS = 32;
/** Above this many values per condition, membership uses a Set instead of byte compares. */
const SET_THRESHOLD = 8;

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

function tagMatches(b: Buffer, cond: TagCondition): boolean {
  return packedHasTag(b, cond.letter, cond.values, cond.set);
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
  if (opts.writerThreads !== undefined && opts.writerThreads !== 1 && opts.writerThreads !== 2) bad('writerThreads', '1 or 2', opts.writerThreads);
  if (opts.writer !== undefined && opts.writer !== 'thread' && opts.writer !== 'inline') bad('writer', "'thread' or 'inline'", opts.writer);
  if (opts.pageSize !== undefined && ![4096, 8192, 16384, 32768, 65536].includes(opts.pageSize)) bad('pageSize', 'a power of two from 4096 to 65536', opts.pageSize);
}

/** The writer threads, or undefined (with a warning) when their module cannot be built here. */
async function startThreadOrInline(o: Omit<ThreadWriterOptions, 'module'>): Promise<ThreadWriter | undefined> {
  let module: URL;
  try {
    module = await writerModule();
  } catch (err) {
    o.logger?.warn({ err }, 'lmdb writer threads unavailable; writing on the event loop');
    return undefined;
  }
  return startWriterThread({ ...o, module });
}

export async function openLmdbStore(opts: LmdbStoreOptions): Promise<LmdbStore> {
  checkOptions(opts);
  const log = opts.logger?.child({ component: 'lmdb-store' });
  const clock = opts.clock ?? nowSeconds;
  const purgeBatch = opts.purgeBatch ?? 10_000;
  const clockEvery = opts.clockEvery ?? 64;
  mkdirSync(opts.path, { recursive: true });
  const tables = openTables({ path: opts.path, ...(opts.mapSize !== undefined ? { mapSize: opts.mapSize } : {}), ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}) });
  const { root, meta, events, byPubkeyKind, byPubkey, byKind, byTag, byTime, byExpiry } = tables;

  /**
   * Schema 1 or 2 → 4: every record is repacked (the JSON is found through the header length
   * at offset 0, which every schema keeps) and the tag index is rebuilt, in bounded
   * transactions. Schema 3 → 4 only drops the tag+kind index. The version is written last,
   * so a migration cut short simply runs again.
   */
  async function migrate(path: string, from: number): Promise<void> {
    log?.info({ path, from, to: SCHEMA_VERSION }, from < 3 ? 'migrating lmdb store: repacking events, rebuilding the tag index' : 'migrating lmdb store: dropping the tag+kind index');
    // Schemas 2 and 3 had a tag+kind index (key: tag ‖ kind ‖ created_at ‖ seq); schema 4 has none.
    await root.openDB('idx-tag-kind', { keyEncoding: 'binary' }).drop();
    if (from >= 3) {
      await meta.put('schemaVersion', SCHEMA_VERSION);
      await root.flushed;
      log?.info({ path }, `lmdb store migrated to schema ${SCHEMA_VERSION}`);
      return;
    }
    await byTag.clearAsync();
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
          for (const t of tags) byTag.putSync(indexKey(tagPrefix(t.letter, t.enc), e.created_at, seq), EMPTY);
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
    } else if (version === 1 || version === 2 || version === 3) {
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

  /**
   * Events on disk, re-read after each commit (one stat): it bounds any one index range, so it
   * tells when a native count needs no windows.
   */
  let storedEvents = size();
  /** The watermark of this process's own writes: every seq up to it is committed. Set after each commit. */
  let committedSeq = loadNextSeq(tables) - 1;
  /**
   * The watermark across processes: our commits, or another process's when it wrote later
   * (LMDB lets `bazaar relay sync` or an import write the directory of a running relay).
   */
  function lastCommittedSeq(): number {
    const onDisk = loadNextSeq(tables) - 1;
    return onDisk > committedSeq ? onDisk : committedSeq;
  }
  const onCommit = (lastSeq: number): void => {
    // The writer committed on another thread: move this thread's read snapshot forward
    // before anyone reads the new watermark, so a query started after lastSeq() sees it.
    if (writerThread !== undefined) root.resetReadTxn();
    // Two writer threads may report out of order; a later transaction's seqs are the higher ones.
    if (lastSeq > committedSeq) committedSeq = lastSeq;
    storedEvents = size();
  };
  const writerThread = opts.writer === 'thread'
    ? await startThreadOrInline({
      env: { path: opts.path, ...(opts.mapSize !== undefined ? { mapSize: opts.mapSize } : {}), ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}) },
      ...(log ? { logger: log } : {}),
      ...(opts.writerThreads !== undefined ? { threads: opts.writerThreads } : {}),
      onCommit,
      // Never leave the relay without a writer: carry on inline (its pending writes were refused).
      onDeath: () => {
        writer = createBatchWriter(tables, createWriteCore(tables), { ...(log ? { logger: log } : {}), onCommit });
      },
    })
    : undefined;
  let writer: BatchWriter = writerThread ?? createBatchWriter(tables, createWriteCore(tables), { ...(log ? { logger: log } : {}), onCommit });
  if (writerThread !== undefined) {
    try {
      await writerThread.ready;
    } catch (err) {
      await writerThread.close();
      await root.close();
      throw err;
    }
  }
  log?.info({ path: opts.path, schemaVersion: SCHEMA_VERSION, events: size(), lastSeq: committedSeq, writer: opts.writer ?? 'inline' }, 'lmdb store opened');

  function size(): number {
    return (events.getStats() as { entryCount: number }).entryCount;
  }

  // ---------- reads ----------

  const seqOfId = (idBytes: Uint8Array): number | undefined => seqOfTable(tables, idBytes);

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

  /**
   * NIP-77: (created_at, id) of every match of one filter, straight from the packed headers (no
   * JSON touched), in slices. Without a limit each match goes to the sink as it is found; with
   * one, matches are held until the walk ends (it continues only through ties once `limit` are
   * held, as queries do) and the newest `limit` are handed over.
   */
  function openIdScanWith(filter: Filter, sink: IdSink, q: IdScanOptions): QueryCursor<number> {
    ensureOpen();
    q.signal?.throwIfAborted();
    const now = q.now ?? clock();
    const maxItems = q.maxItems ?? Infinity;
    const cf = compileFilter(filter);
    const limit = typeof filter.limit === 'number' && !Number.isNaN(filter.limit) ? Math.max(0, Math.floor(filter.limit)) : undefined;
    const walk = cf.never || limit === 0 ? undefined : new FilterWalk(cf, now, q.maxSeq ?? MAX_U32);
    const held: { ts: number; id: Buffer }[] | undefined = limit !== undefined ? [] : undefined;
    const floor = { ts: -1 };
    const ordered = cf.ids === undefined;
    let n = 0;
    let over = false;
    let done = false;
    return {
      step(deadline) {
        if (done) return true;
        ensureOpen();
        if (walk !== undefined) {
          const finished = walk.run(deadline, (_seq, ts, b) => {
            if (held !== undefined) {
              held.push({ ts, id: Buffer.from(b.subarray(OFF_ID, OFF_ID + 32)) });
              if (ordered && held.length === limit) floor.ts = ts;
              return true;
            }
            if (++n > maxItems) { over = true; return false; }
            sink.add(ts, b, OFF_ID);
            return true;
          }, held !== undefined ? floor : undefined);
          if (!finished) return false;
        }
        if (held !== undefined) {
          held.sort((a, b) => b.ts - a.ts || a.id.compare(b.id));
          if (held.length > limit!) held.length = limit!;
          if (held.length > maxItems) over = true;
          else for (const h of held) sink.add(h.ts, h.id, 0);
          n = held.length;
        }
        done = true;
        return true;
      },
      result() {
        if (!done) throw new Error('id scan not finished: step() until it returns true');
        return over ? -1 : n;
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

  let closed = false;

  const purgeIntervalMs = opts.purgeIntervalMs ?? 60_000;
  function submit(job: WriteJob): Promise<WriteResult> {
    if (closed) return Promise.reject(new Error('lmdb store is closed'));
    return writer.submit(job);
  }
  async function purgeExpired(now: number = clock()): Promise<number> {
    const n = (await submit({ type: 'purge', now, limit: purgeBatch })) as number;
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
    put(batch, putOpts) {
      if (batch.length === 0) return Promise.resolve([]);
      return submit({ type: 'put', events: batch, now: putOpts?.now ?? clock() }) as Promise<PutOutcome[]>;
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
    openIdScan: (filter, sink, q = {}) => openIdScanWith(filter, sink, q),
    lastSeq: () => (closed ? committedSeq : lastCommittedSeq()),
    eventsAfter(afterSeq, limit, wantKind) {
      ensureOpen();
      const out: { seq: number; kind: number; json: string }[] = [];
      let last = afterSeq;
      if (!(limit > 0) || afterSeq >= MAX_U32 - 1) return { events: out, lastSeq: last };
      // Only committed events: never past the watermark a concurrent write has not reached yet.
      // Keys first, then each record read in place (getBinaryFast, no copy): skipped kinds cost
      // a header read, not a buffer.
      for (const key of events.getKeys({ start: Math.max(0, Math.floor(afterSeq)) + 1, end: lastCommittedSeq() + 1, limit })) {
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
    writerStats: () => writer.stats(),
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
      await writer.idle();
      await writerThread?.close();
      await root.close();
      log?.info({ path: opts.path }, 'lmdb store closed');
    },
  };
}
