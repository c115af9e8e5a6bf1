// The durable market index: an exactly-once follower of the event store. It reads the
// stored events after its last applied sequence number (store.eventsAfter), extracts their
// facts, and commits facts and the new position in one LMDB transaction of its own
// environment — so after a crash it resumes where it committed, and never applies an event
// twice. `reindex` is the same loop from sequence 0. Facts of events the store later drops
// (replaced, deleted, expired) stay: reputation is a record of what happened.
//
// The facts are a log: keyed by the order they were applied (1, 2, 3 …), appended with
// MDB_APPEND. The state in memory knows every fact's id, so nothing is ever looked up by id
// on disk; appending keeps the pages full and leaves the relay's map of the file untouched
// (keyed by event id, every insert descended to a random leaf: at 200 000 stored events the
// whole 65 MiB file was resident, half-full pages included).
import { mkdirSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { EventStore } from '../store/event-store.ts';
import { DEFAULT_MAP_SIZE } from '../store/lmdb-tables.ts';
import { extractFact, FACTS_VERSION, isMarketKind, type Fact } from './facts.ts';
import type { CashuCheck } from './job.ts';
import { MarketState, type MarketStateOptions } from './state.ts';

/** On-disk format of the index environment. 1: facts keyed by event id; 2: fact logs (upgraded in place). */
export const INDEX_SCHEMA_VERSION = 2;
/** The two fact logs: `reindex` fills the one not in use and switches in one transaction. */
const LOGS = ['fact-log-a', 'fact-log-b'] as const;
type LogName = (typeof LOGS)[number];
/** Events looked at per read of the store (one index transaction at most). */
const PAGE = 2000;
/** Without market events, the position is persisted at most every this many store events. */
const CURSOR_LAG = 50_000;

export interface MarketIndexOptions extends MarketStateOptions {
  /** Directory of the index's own LMDB environment. */
  readonly path: string;
  /**
   * After a catch-up, the next one waits at least this long (default 1000 ms): under heavy
   * ingest the index then commits one transaction (one fsync) per second instead of one per
   * batch of stored events. The index lags the store by at most this much.
   */
  readonly catchUpIntervalMs?: number;
  readonly logger?: Logger;
}

/** Emits `applied` (facts: Fact[]) after each committed batch, and `error`. */
export class MarketIndex extends EventEmitter {
  readonly path: string;
  state: MarketState;
  readonly #root: RootDatabase;
  /** The fact log in use, and the key its next fact gets. */
  #factLog!: Database<Fact, number>;
  #logName: LogName = LOGS[0];
  #logNext = 1;
  readonly #checks: Database<CashuCheck, string>;
  readonly #meta: Database<unknown, string>;
  readonly #log: Logger | undefined;
  readonly #stateOpts: MarketIndexOptions;
  #store: EventStore | undefined;
  #cursor = 0;
  #persistedCursor = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #scheduled = false;
  #closed = false;
  #lastCatchUp = -Infinity;
  /**
   * Facts of the events handed over by the relay as it stores them (push), in seq order. They
   * are extracted on arrival, so the index never holds an event past the turn it came in
   * (held until the next catch-up, up to `catchUpIntervalMs`, they outlived V8's young
   * generation and grew the old one by the ingest's whole market traffic).
   */
  #pushed: { seq: number; fact: Fact }[] = [];
  /** Ids of `#pushed`. */
  readonly #pushedIds = new Set<string>();
  /** The highest seq pushed (any kind), and the first one this process saw pushed. */
  #pushedSeq = 0;
  #firstPushedSeq = 0;
  /** Counters for /metrics. */
  readonly counters = { eventsApplied: 0, factsApplied: 0, batches: 0 };

  private constructor(o: MarketIndexOptions, root: RootDatabase) {
    super();
    this.path = o.path;
    this.#root = root;
    this.#checks = root.openDB<CashuCheck, string>('cashu-checks', {});
    this.#meta = root.openDB<unknown, string>('meta', {});
    this.#log = o.logger?.child({ component: 'market-index' });
    this.#stateOpts = o;
    this.state = new MarketState(o);
  }

  static async open(o: MarketIndexOptions): Promise<MarketIndex> {
    mkdirSync(o.path, { recursive: true });
    // The store's map size: address space only. Without it lmdb-js maps the file in growing
    // chunks and every earlier chunk stays resident beside the next (2-3× the file in RSS).
    const root = open({ path: o.path, noSubdir: false, maxDbs: 8, mapSize: DEFAULT_MAP_SIZE });
    const idx = new MarketIndex(o, root);
    try {
      const v = idx.#meta.get('schemaVersion');
      if (v === undefined) {
        await idx.#root.transaction(() => {
          idx.#meta.putSync('schemaVersion', INDEX_SCHEMA_VERSION);
          idx.#meta.putSync('factsVersion', FACTS_VERSION);
          idx.#meta.putSync('factLog', LOGS[0]);
        });
      } else if (v === 1) {
        await idx.#upgradeFrom1();
      } else if (v !== INDEX_SCHEMA_VERSION) {
        throw new Error(`market index at ${o.path} has schema version ${JSON.stringify(v)}; this build reads ${INDEX_SCHEMA_VERSION} (run \`bazaar relay reindex --from-scratch\`)`);
      }
      idx.#useLog((idx.#meta.get('factLog') as LogName | undefined) ?? LOGS[0]);
    } catch (err) {
      await root.close();
      throw err;
    }
    idx.#cursor = idx.#persistedCursor = (idx.#meta.get('cursor') as number | undefined) ?? 0;
    idx.#load();
    const fv = idx.#meta.get('factsVersion');
    if (fv !== FACTS_VERSION) idx.#log?.warn({ have: fv, want: FACTS_VERSION }, 'market facts were extracted by another version: run `bazaar relay reindex` to re-extract them');
    idx.#log?.info({ path: o.path, cursor: idx.#cursor, facts: idx.state.size }, 'market index opened');
    return idx;
  }

  /** The last store sequence number applied. */
  get cursor(): number {
    return this.#cursor;
  }

  #openLog(name: LogName): Database<Fact, number> {
    return this.#root.openDB<Fact, number>(name, {});
  }

  /** Append to `name` from now on (its next key follows its last). */
  #useLog(name: LogName): void {
    if (!LOGS.includes(name)) throw new Error(`market index at ${this.path}: unknown fact log ${JSON.stringify(name)}`);
    this.#logName = name;
    this.#factLog = this.#openLog(name);
    let last = 0;
    for (const k of this.#factLog.getKeys({ reverse: true, limit: 1 })) last = k;
    this.#logNext = last + 1;
  }

  #append(facts: Iterable<Fact>): void {
    for (const f of facts) {
      // MDB_APPEND refuses a key not above the last by returning false (lmdb-js types it void),
      // not by throwing: that would be a fact lost without a word, so it aborts the transaction.
      if ((this.#factLog.putSync(this.#logNext, f, { append: true }) as unknown) === false) throw new Error(`market index at ${this.path}: fact log ${this.#logName} refused key ${this.#logNext} (not after its last)`);
      this.#logNext++;
    }
  }

  /** Schema 1 kept facts keyed by event id: move them into the first log, in one transaction. */
  async #upgradeFrom1(): Promise<void> {
    const old = this.#root.openDB<Fact, string>('facts', {});
    const log = this.#openLog(LOGS[0]);
    let n = 0;
    await this.#root.transaction(() => {
      log.clearSync();
      for (const { value } of old.getRange({})) log.putSync(++n, value, { append: true });
      old.clearSync();
      this.#meta.putSync('factLog', LOGS[0]);
      this.#meta.putSync('schemaVersion', INDEX_SCHEMA_VERSION);
    });
    this.#log?.info({ facts: n }, 'market index upgraded to schema 2 (fact log)');
  }

  #load(): void {
    this.state = new MarketState(this.#stateOpts);
    for (const { value } of this.#factLog.getRange({})) this.state.add(value);
    for (const { key, value } of this.#checks.getRange({})) this.state.setCashuCheck(key, value);
  }

  /** Follow `store`: catch up now, then after every `notify()`. */
  follow(store: EventStore): Promise<void> {
    this.#store = store;
    return this.catchUp();
  }

  /**
   * The relay stored `event` as `seq` (RelayCoreOptions.onStored). The index takes the parsed
   * event instead of reading it back from the store; once every event since its position has
   * come this way, catching up needs no store scan at all. Events replaced before the next
   * catch-up are indexed too, since they were stored.
   */
  push(event: NostrEvent, seq: number): void {
    if (this.#firstPushedSeq === 0) this.#firstPushedSeq = seq;
    if (seq > this.#pushedSeq) this.#pushedSeq = seq;
    else this.#log?.warn({ seq, pushedSeq: this.#pushedSeq }, 'stored events handed over out of order');
    if (isMarketKind(event.kind) && !this.state.has(event.id) && !this.#pushedIds.has(event.id)) {
      let f: Fact | undefined;
      try {
        f = extractFact(event, { knownRequest: (id) => this.#pushedIds.has(id) || this.state.has(id) });
      } catch (err) {
        // Extraction is pure and total over stored events; this is a bug, not the relay's problem.
        this.#log?.error({ err, id: event.id, kind: event.kind }, 'market fact extraction failed; event skipped');
      }
      if (f) { this.#pushed.push({ seq, fact: f }); this.#pushedIds.add(f.id); }
    }
    this.notify();
  }

  /** New events were stored: catch up soon (calls in one event-loop turn coalesce). */
  notify(): void {
    if (this.#scheduled || this.#closed || !this.#store) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      this.catchUp().catch((err: unknown) => {
        this.#log?.error({ err }, 'market index catch-up failed');
        this.emit('error', err);
      });
    };
    const wait = this.#lastCatchUp + (this.#stateOpts.catchUpIntervalMs ?? 1000) - performance.now();
    if (wait > 0) setTimeout(run, wait).unref();
    else setImmediate(run);
  }

  /** Apply every stored event after the cursor; resolves once caught up with what was stored before the call. */
  catchUp(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          this.#lastCatchUp = performance.now();
          await this.#drain();
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #drain(): Promise<void> {
    const store = this.#store;
    if (!store) return;
    // Pushed mode: the store has nothing before the first pushed event that the index lacks.
    if (this.#firstPushedSeq > 0 && this.#cursor >= this.#firstPushedSeq - 1) {
      const batch = this.#pushed;
      this.#pushed = [];
      this.#pushedIds.clear();
      const upTo = this.#pushedSeq;
      if (upTo <= this.#cursor && !batch.length) return;
      await this.#apply(batch.map((b) => b.fact), upTo, batch.length);
      return;
    }
    for (;;) {
      if (this.#closed) return;
      const page = store.eventsAfter(this.#cursor, PAGE, isMarketKind);
      if (page.lastSeq <= this.#cursor) return;
      await this.#apply(this.#extract(page.events.map((e) => JSON.parse(e.json) as NostrEvent)), page.lastSeq, page.events.length);
      // Pushed events the scan already covered are done.
      if (this.#pushed.length) {
        this.#pushed = this.#pushed.filter((p) => p.seq > this.#cursor);
        this.#pushedIds.clear();
        for (const p of this.#pushed) this.#pushedIds.add(p.fact.id);
      }
    }
  }

  /** The facts of `events` the index does not hold yet. */
  #extract(events: readonly NostrEvent[]): Fact[] {
    const facts: Fact[] = [];
    const batchIds = new Set<string>();
    const knownRequest = (id: string) => batchIds.has(id) || this.state.has(id);
    for (const e of events) {
      if (this.state.has(e.id) || batchIds.has(e.id)) continue;
      const f = extractFact(e, { knownRequest });
      if (f) { facts.push(f); batchIds.add(f.id); }
    }
    return facts;
  }

  /** Commit `extracted` (facts of stored events) with the new position `next`, fold them in. */
  async #apply(extracted: readonly Fact[], next: number, looked: number): Promise<void> {
    const facts = extracted.filter((f) => !this.state.has(f.id));
    const persistCursor = facts.length > 0 || next - this.#persistedCursor >= CURSOR_LAG;
    if (persistCursor) {
      await this.#root.transaction(() => {
        this.#append(facts);
        this.#meta.putSync('cursor', next);
      });
      this.#persistedCursor = next;
    }
    if (next > this.#cursor) this.#cursor = next;
    this.counters.eventsApplied += looked;
    this.counters.factsApplied += facts.length;
    this.counters.batches++;
    const added = facts.filter((f) => this.state.add(f));
    if (added.length) this.emit('applied', added);
  }

  /** Add facts from outside the store (the sidecar's subscription). Idempotent by event id. */
  async addFacts(facts: readonly Fact[]): Promise<Fact[]> {
    const fresh = facts.filter((f) => !this.state.has(f.id));
    if (!fresh.length) return [];
    await this.#root.transaction(() => {
      this.#append(fresh);
    });
    const added = fresh.filter((f) => this.state.add(f));
    if (added.length) this.emit('applied', added);
    return added;
  }

  /** Record a mint's answer about a Cashu receipt. */
  async setCashuCheck(receiptId: string, check: CashuCheck): Promise<void> {
    await this.#checks.put(receiptId, check);
    this.state.setCashuCheck(receiptId, check);
    this.emit('applied', []);
  }

  /**
   * Rebuild from the store: re-extract every stored event from sequence 0 (replacing the
   * facts it had), keep the facts of events the store no longer holds (unless `fromScratch`),
   * then rebuild the state from the facts. Equals the incremental state by construction
   * (same extraction, same fold) — `test/market-index.test.ts` checks it. The new facts go
   * to the other log, which replaces the old one in the transaction that ends the rebuild:
   * a rebuild stopped half-way leaves the index as it was.
   */
  async reindex(store: EventStore, o: { fromScratch?: boolean } = {}): Promise<{ events: number; facts: number }> {
    await this.#running;
    this.#store = store;
    const oldLog = this.#factLog;
    const oldName = this.#logName;
    const newName = oldName === LOGS[0] ? LOGS[1] : LOGS[0];
    const fresh = this.#openLog(newName);
    await this.#root.transaction(() => { fresh.clearSync(); });
    this.#factLog = fresh;
    this.#logName = newName;
    this.#logNext = 1;
    this.#cursor = 0;
    this.#persistedCursor = 0;
    this.state = new MarketState(this.#stateOpts);
    this.counters.eventsApplied = 0;
    this.counters.factsApplied = 0;
    try {
      await this.catchUp();
    } catch (err) {
      // The old log is still the one in use (meta names it): back to it, its next key, its
      // state and the position persisted (a catch-up re-applies from there; facts are by id).
      this.#useLog(oldName);
      this.#load();
      this.#cursor = this.#persistedCursor = (this.#meta.get('cursor') as number | undefined) ?? 0;
      throw err;
    }
    await this.#root.transaction(() => {
      // Facts of events the store no longer holds: kept, unless rebuilding from scratch.
      if (!o.fromScratch) this.#append((function* (state) { for (const { value } of oldLog.getRange({})) if (!state.has(value.id)) yield value; })(this.state));
      this.#meta.putSync('factLog', newName);
      this.#meta.putSync('cursor', this.#cursor);
      this.#meta.putSync('factsVersion', FACTS_VERSION);
      oldLog.clearSync();
    });
    this.#persistedCursor = this.#cursor;
    this.#load();
    this.emit('applied', []);
    this.#log?.info({ cursor: this.#cursor, facts: this.state.size }, 'market index rebuilt');
    return { events: this.counters.eventsApplied, facts: this.state.size };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#running?.catch(() => {});
    if (this.#cursor !== this.#persistedCursor) await this.#meta.put('cursor', this.#cursor);
    await this.#root.close();
  }
}
