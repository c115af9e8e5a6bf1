// The store's write side: what one put or purge does inside a write transaction (the
// rules: duplicates, tombstones, replaceable slots, NIP-09, NIP-40), and the one batched
// writer that folds every put issued in an event-loop turn into one durable transaction.
// It runs on the writer thread (lmdb-writer-thread.ts) or, inline, on the store's thread.
import type { Logger } from 'pino';
import { isAddressableKind, isReplaceableKind, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { PutOutcome } from './event-store.ts';
import { canonicalJson, expirationTs, isExpired, isHex64, parseAddress, storeRejection } from './event-rules.ts';
import {
  addressKey, bytesEqual, decodeTagValue, encodeTagValue, eventAddressKey, headerLength, indexedTags, indexKey, kindPrefix,
  OFF_ID, OFF_PUBKEY, packedCreatedAt, packedExpiration, packedHasTag, packedKind, packEvent, pubkeyKindPrefix, readU32, readU64,
  tagPrefix, unpackTags, writeU32, writeU64,
} from './lmdb-codec.ts';
import { EMPTY, loadNextSeq, MAX_U32, seqOfId, type Tables } from './lmdb-tables.ts';

/** Put flags for the events table: keys (seq) only grow, so records are appended (full pages). */
const APPEND = { append: true } as const;
const D_LETTER = 'd'.charCodeAt(0);
const P_LETTER = 'p'.charCodeAt(0);

export interface WriteCore {
  /** Apply one put inside the current write transaction. */
  applyPut(e: NostrEvent, now: number): PutOutcome;
  /** Remove up to `limit` events expired at `now`; returns how many. */
  applyPurge(now: number, limit: number): number;
  /** Runs `fn` inside the current transaction (continuing after any seq another process used) and records the next seq with it when `fn` used any. */
  withSeq<T>(fn: () => T): T;
  /** The highest seq handed out so far (committed once its transaction is). */
  lastSeq(): number;
}

export function createWriteCore(t: Tables): WriteCore {
  const { meta, events, ids, slots, deletedIds, deletedAddrs, byPubkeyKind, byPubkey, byKind, byTag, byTime, byExpiry } = t;
  // Sequence numbers never repeat, even across restarts after the newest events were removed
  // (followers of eventsAfter keep their place by seq): the next one is also kept in `meta`.
  let nextSeq = loadNextSeq(t);

  function putU32(n: number): Buffer {
    const b = Buffer.allocUnsafe(4);
    writeU32(b, 0, n);
    return b;
  }

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
    ids.putSync(idBytes, putU32(seq));
    const ts = e.created_at;
    byPubkeyKind.putSync(indexKey(pubkeyKindPrefix(pubkey, e.kind), ts, seq), EMPTY);
    byPubkey.putSync(indexKey(pubkey, ts, seq), EMPTY);
    byKind.putSync(indexKey(kindPrefix(e.kind), ts, seq), EMPTY);
    byTime.putSync(indexKey(EMPTY, ts, seq), EMPTY);
    for (const tag of tags) byTag.putSync(indexKey(tagPrefix(tag.letter, tag.enc), ts, seq), EMPTY);
    if (expiration !== undefined) byExpiry.putSync(indexKey(EMPTY, expiration, seq), EMPTY);
    if (addr !== undefined) slots.putSync(addr, putU32(seq));
    return seq;
  }

  /** Remove a stored event and all its index entries (derived from its packed header); returns its id. */
  function removeSeq(seq: number): string | undefined {
    const packed = events.getBinary(seq); // a copy: we do more reads below
    if (packed === undefined) return undefined;
    const kind = packedKind(packed);
    const ts = packedCreatedAt(packed);
    const pubkey = packed.subarray(OFF_PUBKEY, OFF_PUBKEY + 32);
    const tags = unpackTags(packed);
    events.removeSync(seq);
    ids.removeSync(packed.subarray(OFF_ID, OFF_ID + 32));
    byPubkeyKind.removeSync(indexKey(pubkeyKindPrefix(pubkey, kind), ts, seq));
    byPubkey.removeSync(indexKey(pubkey, ts, seq));
    byKind.removeSync(indexKey(kindPrefix(kind), ts, seq));
    byTime.removeSync(indexKey(EMPTY, ts, seq));
    for (const tag of tags) byTag.removeSync(indexKey(tagPrefix(tag.letter, tag.enc), ts, seq));
    const expiration = packedExpiration(packed);
    if (expiration !== undefined) byExpiry.removeSync(indexKey(EMPTY, expiration, seq));
    const replaceable = isReplaceableKind(kind);
    if (replaceable || isAddressableKind(kind)) {
      const dTagged = replaceable ? undefined : tags.find((tag) => tag.letter === D_LETTER);
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
      for (const tag of e.tags) {
        if (tag[0] !== 'p' || !isHex64(tag[1])) continue;
        const v = deletedIds.getBinaryFast(Buffer.concat([idBytes, Buffer.from(tag[1], 'hex')]));
        if (v !== undefined && (v[0] & 1) !== 0) return true;
      }
    }
    if (addr !== undefined) {
      const v = deletedAddrs.getBinaryFast(addr);
      if (v !== undefined && e.created_at <= readU64(v, 0)) return true;
    }
    return false;
  }

  function applyDeletion(del: NostrEvent, pubkey: Buffer): string[] {
    const removed: string[] = [];
    const giftWrapOk = del.tags.some((tag) => tag[0] === 'k' && tag[1] === '1059');
    for (const tag of del.tags) {
      if (tag[0] === 'e' && isHex64(tag[1])) {
        const target = Buffer.from(tag[1], 'hex');
        const key = Buffer.concat([target, pubkey]);
        const prev = deletedIds.getBinaryFast(key);
        deletedIds.putSync(key, Buffer.from([(prev === undefined ? 0 : prev[0]) | (giftWrapOk ? 1 : 0)]));
        const seq = seqOfId(t, target);
        if (seq === undefined) continue;
        const b = events.getBinaryFast(seq);
        if (b === undefined) continue;
        const kind = packedKind(b);
        if (kind === 5) continue;
        const byAuthor = bytesEqual(b, OFF_PUBKEY, pubkey, 32);
        const byRecipient = kind === 1059 && giftWrapOk && packedHasTag(b, P_LETTER, [encodeTagValue(del.pubkey)]);
        if (!byAuthor && !byRecipient) continue;
        const id = removeSeq(seq);
        if (id !== undefined) removed.push(id);
      } else if (tag[0] === 'a') {
        const a = parseAddress(tag[1], isReplaceableKind, isAddressableKind);
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

  return {
    applyPut(e, now) {
      const rejection = storeRejection(e, now);
      if (rejection !== undefined) return { status: 'rejected', message: rejection };
      const idBytes = Buffer.from(e.id, 'hex');
      if (seqOfId(t, idBytes) !== undefined) return { status: 'duplicate' };
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
            // A holder already expired counts as gone, as it is once purged: the slot does not
            // depend on when the purge last ran.
            const wins = isExpired(packedExpiration(b), now) || e.created_at > ts || (e.created_at === ts && idBytes.compare(b, OFF_ID, OFF_ID + 32) < 0);
            if (!wins) return { status: 'replaced' };
            const id = removeSeq(seq);
            if (id !== undefined) removed.push(id);
          }
        }
      }
      const seq = insert(e, idBytes, pubkey, addr);
      if (e.kind === 5) removed.push(...applyDeletion(e, pubkey));
      return { status: 'stored', seq, removed };
    },
    applyPurge(now, limit) {
      const seqs: number[] = [];
      for (const seq of byExpiry.getKeys({ start: indexKey(EMPTY, 0, 0), end: indexKey(EMPTY, now + 1, 0) })) {
        seqs.push(seq as number);
        if (seqs.length >= limit) break;
      }
      for (const seq of seqs) removeSeq(seq);
      return seqs.length;
    },
    withSeq(fn) {
      // Other processes may write this directory between our transactions (LMDB serialises
      // writers across processes: `bazaar relay sync` or an import beside a running relay), so
      // the next seq is re-read inside each transaction rather than trusted from memory.
      const onDisk = loadNextSeq(t);
      if (onDisk > nextSeq) nextSeq = onDisk;
      const before = nextSeq;
      const result = fn();
      if (nextSeq !== before) meta.putSync('nextSeq', nextSeq);
      return result;
    },
    lastSeq: () => nextSeq - 1,
  };
}

// ---------- the batched writer ----------

/** One unit of work for the writer: a put() call's events, or a purge. */
export type WriteJob =
  | { readonly type: 'put'; readonly events: readonly NostrEvent[]; readonly now: number }
  | { readonly type: 'purge'; readonly now: number; readonly limit: number };

export type WriteResult = PutOutcome[] | number;

export interface BatchWriter {
  /** Queue a job; resolves with its result once its transaction is committed and flushed. */
  submit(job: WriteJob): Promise<WriteResult>;
  /** Resolves when nothing is queued, being written or waiting for its flush. */
  idle(): Promise<void>;
  stats(): { readonly transactions: number; readonly jobs: number };
}

export interface BatchWriterOptions {
  readonly logger?: Logger;
  /**
   * Called after each commit, before the flush, with the committed watermark (the highest
   * seq the transaction made visible), so readers can move their snapshot forward.
   */
  readonly onCommit?: (lastSeq: number) => void;
}

/**
 * A write transaction takes queued jobs until it holds this many events, so one
 * transaction's apply step stays short. A single larger put() call still commits as one.
 */
export const MAX_BATCH_EVENTS = 1000;
export const sizeOfJob = (j: WriteJob): number => (j.type === 'put' ? j.events.length : 1);

/** A job that threw: its batch was rolled back and replayed without it. */
export interface FailedJob {
  readonly failed: string;
  readonly stack?: string;
}
export const isFailedJob = (r: unknown): r is FailedJob => typeof r === 'object' && r !== null && !Array.isArray(r) && typeof (r as FailedJob).failed === 'string';

/**
 * Applies `jobs` inside the caller's open write transaction, in order, as one child
 * transaction; if anything throws, that child is rolled back and each job is replayed in a
 * child of its own, so only the bad one fails (its result is a FailedJob). Synchronous.
 */
export function applyJobs(t: Tables, core: WriteCore, jobs: readonly WriteJob[], log?: Logger): (WriteResult | FailedJob)[] {
  const run = (j: WriteJob): WriteResult => (j.type === 'put' ? j.events.map((e) => core.applyPut(e, j.now)) : core.applyPurge(j.now, j.limit));
  try {
    return t.root.childTransaction(() => core.withSeq(() => jobs.map(run))) as unknown as WriteResult[];
  } catch (err) {
    log?.error({ err, jobs: jobs.length }, 'write batch failed; retrying jobs one by one');
    return jobs.map((j) => {
      try {
        return t.root.childTransaction(() => core.withSeq(() => run(j))) as unknown as WriteResult;
      } catch (jobErr) {
        return jobErr instanceof Error ? { failed: jobErr.message, ...(jobErr.stack ? { stack: jobErr.stack } : {}) } : { failed: String(jobErr) };
      }
    });
  }
}

/**
 * One batched writer: every job submitted in the same event-loop turn is applied, in
 * submission order, inside one lmdb-js write transaction (a child transaction, so a throw
 * rolls the batch back; the batch is then replayed job by job so only the bad write fails).
 * A job resolves only after its transaction is committed **and** flushed. While one batch
 * flushes, the next one is already being built.
 */
export function createBatchWriter(t: Tables, core: WriteCore, opts: BatchWriterOptions = {}): BatchWriter {
  const log = opts.logger;
  interface Queued {
    readonly job: WriteJob;
    resolve(result: WriteResult): void;
    reject(err: Error): void;
  }
  const queue: Queued[] = [];
  let writing = false;
  let scheduled = false;
  let transactions = 0;
  let jobsWritten = 0;
  let flushing = 0; // committed batches whose callers still wait for the flush
  let idleWaiters: (() => void)[] = [];

  function notifyIdle(): void {
    if (writing || scheduled || flushing > 0 || queue.length > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  function schedule(): void {
    if (writing || scheduled) return;
    if (queue.length === 0) {
      notifyIdle();
      return;
    }
    scheduled = true;
    // setImmediate: every job submitted in this event-loop turn joins the batch.
    setImmediate(() => {
      void runBatch();
    });
  }

  async function runBatch(): Promise<void> {
    scheduled = false;
    writing = true;
    let take = 0;
    for (let n = 0; take < queue.length && (take === 0 || n < MAX_BATCH_EVENTS); take++) n += sizeOfJob(queue[take].job);
    const batch = queue.splice(0, take);
    const started = performance.now();
    let applyMs = 0;
    let results: (WriteResult | FailedJob)[];
    try {
      results = await t.root.childTransaction(() => {
        const a0 = performance.now();
        const r = applyJobs(t, core, batch.map((q) => q.job), log);
        applyMs = performance.now() - a0;
        return r;
      });
    } catch (err) {
      // The transaction itself failed to commit: nothing of the batch is stored.
      log?.error({ err, jobs: batch.length }, 'write transaction failed');
      for (const q of batch) q.reject(err instanceof Error ? err : new Error(String(err)));
      writing = false;
      schedule();
      return;
    }
    const committed = performance.now();
    transactions++;
    jobsWritten += batch.length;
    // lmdb-js resets its read snapshot before resolving a commit, so reads from here on see it.
    opts.onCommit?.(core.lastSeq());
    // Durability: the commit is visible now; `flushed` resolves once it is fsync'd.
    const flushed = t.root.flushed;
    writing = false;
    flushing++;
    schedule(); // the next batch may build while this one flushes
    try {
      await flushed;
    } catch (err) {
      for (const q of batch) q.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    } finally {
      flushing--;
      notifyIdle();
    }
    // commitMs: from the transaction's start to its commit (waiting for LMDB's writer, applying the jobs — applyMs —, writing and syncing pages).
    log?.debug({ jobs: batch.length, applyMs, commitMs: committed - started, flushMs: performance.now() - committed }, 'write batch durable');
    batch.forEach((q, i) => {
      const r = results[i];
      if (isFailedJob(r)) {
        const err = new Error(r.failed);
        if (r.stack) err.stack = r.stack;
        q.reject(err);
      } else q.resolve(r);
    });
  }

  return {
    submit(job) {
      return new Promise<WriteResult>((resolve, reject) => {
        queue.push({ job, resolve, reject });
        schedule();
      });
    },
    idle() {
      if (!writing && !scheduled && flushing === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    stats: () => ({ transactions, jobs: jobsWritten }),
  };
}
