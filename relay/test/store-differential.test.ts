// Differential test in the spirit of strfry's: random events and random filters, and
// the LMDB store must agree with the naive in-memory oracle on every put outcome,
// every query (same ids, same order) and every count.
//
// The store does not verify signatures, so events here are synthetic: random 32-byte
// ids and a dummy signature. That keeps thousands of events cheap while every storage
// path (replaceable, addressable, deletions, expiration, ties) is exercised.
// A third of the queries and counts also run as a resumable cursor that pauses after every index entry
// (clockEvery 1, a deadline in the past), and with a random watermark (maxSeq): the sliced
// answers must equal the one-shot ones and the oracle's.
// Reproduce a failure with STORE_DIFF_SEED=<seed printed below>.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { QueryCursor } from '../src/store/event-store.ts';
import { seeded } from './random.ts';
import { openLmdbStore } from '../src/store/lmdb-store.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';

const seed = Number(process.env.STORE_DIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));
const EVENTS = Number(process.env.STORE_DIFF_EVENTS ?? 3000);
const FILTERS = Number(process.env.STORE_DIFF_FILTERS ?? 3000);
const NOW = 1_700_000_000;

const { int, pick, chance, hex, some } = seeded(seed);

const pubkeys = Array.from({ length: 6 }, () => hex(32));
const words = ['nostr', 'bazaar', 'dvm', 'zap', '', 'ü-ñ', 'a:b'];
const dValues = ['', 'x', 'y', 'job-1', 'long-' + 'd'.repeat(1100)];
const kindPool = [1, 1, 1, 7, 7000, 6050, 5050, 0, 3, 10002, 30023, 31990, 1059, 5, 5];
const minted: NostrEvent[] = [];
const idPool = (): string => (minted.length > 0 && chance(0.85) ? pick(minted).id : hex(32));
const addr = (): string => `${pick([0, 3, 10002, 30023, 31990, 1])}:${pick(pubkeys)}:${pick(dValues)}`;

function randomEvent(): NostrEvent {
  const kind = pick(kindPool);
  const pubkey = pick(pubkeys);
  const tags: string[][] = [];
  const nTags = int(5);
  for (let i = 0; i < nTags; i++) {
    switch (int(8)) {
      case 0: tags.push(['e', idPool()]); break;
      case 1: tags.push(['p', pick(pubkeys)]); break;
      case 2: tags.push(['t', pick(words)]); break;
      case 3: tags.push(['E', idPool()]); break;
      case 4: tags.push(['P', pick(pubkeys), 'relay']); break;
      case 5: tags.push(['k', String(pick(kindPool))]); break;
      case 6: tags.push(['d', pick(dValues)]); break;
      default: tags.push(['e']); // a tag without a value is never indexed or matched
    }
  }
  if (kind === 5) {
    // Deletions mostly name the author's own recent events (held-back ones included).
    const own = minted.filter((m) => m.pubkey === pubkey).slice(-40);
    const target = (): string => (own.length > 0 && chance(0.6) ? pick(own).id : idPool());
    for (let i = int(3); i >= 0; i--) tags.push(chance(0.7) ? ['e', target()] : ['a', chance(0.5) ? `${pick([0, 3, 10002, 30023, 31990])}:${pubkey}:${pick(dValues)}` : addr()]);
    if (chance(0.3)) tags.push(['k', '1059']);
  }
  if (kind === 1059) tags.push(['p', pick(pubkeys)]);
  if (kind >= 30000 && chance(0.8)) tags.unshift(['d', pick(dValues)]);
  if (kind >= 30000 && chance(0.1)) tags.unshift(['d']); // a valueless first d tag: the address is ""

  if (chance(0.15)) tags.push(['expiration', String(NOW + int(40) - 3)]);
  const e: NostrEvent = { id: hex(32), pubkey, created_at: chance(0.7) ? NOW - 30 + int(6) : NOW - 60 + int(60), kind, tags, content: `c${int(1000)}`, sig: '0'.repeat(128) };
  minted.push(e);
  return e;
}

function randomFilter(): Filter {
  const f: Filter = {};
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    switch (int(9)) {
      case 0: f.ids = some([...(minted.length ? minted.map((e) => e.id) : []), hex(32)], 6); break;
      case 1: f.authors = some(pubkeys, 3); break;
      case 2: f.kinds = some(kindPool, 3); break;
      case 3: f['#e'] = some(minted.map((e) => e.id), 4); break;
      case 4: f['#p'] = some(pubkeys, 2); break;
      case 5: f['#t'] = some(words, 3); break;
      case 6: f.since = NOW - 60 + int(60); break;
      case 7: f.until = NOW - 60 + int(60); break;
      default: f[pick(['#d', '#k', '#P', '#E'] as const)] = pick([some(dValues, 2), some(kindPool.map(String), 2), some(pubkeys, 2), some(minted.map((e) => e.id), 2)]);
    }
  }
  // Occasionally long lists, so the planner's coarse plans (post-filtering kinds) run too.
  if (chance(0.05)) f.kinds = [...some(kindPool, 3), ...Array.from({ length: 40 }, () => 1000 + int(9000))];
  if (chance(0.05)) f.authors = [...some(pubkeys, 2), ...Array.from({ length: 40 }, () => hex(32))];
  if (chance(0.7)) f.limit = pick([1, 2, 3, 5, 10, 50, 0]);
  if (chance(0.02)) f.kinds = [];
  return f;
}

t.test(`LMDB store agrees with the naive oracle (seed ${seed})`, async (t) => {
  t.comment(`seed ${seed} (reproduce with STORE_DIFF_SEED=${seed})`);
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-store-diff-'));
  const clock = (): number => NOW;
  // The relay's configuration: writes on the store's writer thread, reads here.
  const lmdb = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0, maxLimit: 40, clockEvery: 1, writer: 'thread' });
  const oracle = createMemoryStore({ clock, maxLimit: 40 });
  t.teardown(async () => { await lmdb.close(); rmSync(dir, { recursive: true, force: true }); });

  let mismatches = 0;
  let slices = 0;
  /** Step a cursor with a deadline already past: it pauses at every chance it gets. */
  const sliced = <T>(c: QueryCursor<T>): T => {
    while (!c.step(-Infinity)) slices++;
    return c.result();
  };
  const check = async (filters: Filter[]): Promise<void> => {
    const now = NOW + pick([0, 0, 5, 20, 50]);
    const maxSeq = chance(0.3) ? int(lmdb.lastSeq() + 1) : undefined;
    const q = maxSeq === undefined ? { now } : { now, maxSeq };
    const [got, want] = [await lmdb.query(filters, q), await oracle.query(filters, q)];
    const [gotN, wantN] = [await lmdb.count(filters, { now }), await oracle.count(filters, { now })];
    // Pausing after every entry reopens every range each time: a third of the checks suffices.
    const slice = chance(1 / 3);
    const gotSliced = slice ? sliced(lmdb.openQuery(filters, q)) : got;
    const gotSlicedN = slice ? sliced(lmdb.openCount(filters, { now })) : gotN;
    const idsOf = (js: string[]): string[] => js.map((j) => (JSON.parse(j) as NostrEvent).id);
    if (JSON.stringify(got) !== JSON.stringify(want) || gotN !== wantN || JSON.stringify(gotSliced) !== JSON.stringify(want) || gotSlicedN !== wantN) {
      mismatches++;
      if (mismatches <= 5) {
        t.same(
          { ids: idsOf(got), count: gotN, sliced: idsOf(gotSliced), slicedCount: gotSlicedN },
          { ids: idsOf(want), count: wantN, sliced: idsOf(want), slicedCount: wantN },
          `seed ${seed}: filters ${JSON.stringify(filters)} now ${now} maxSeq ${maxSeq}`,
        );
      }
    }
  };

  let written = 0;
  const held: NostrEvent[] = [];
  const outcomes = new Map<string, number>();
  let putMs = 0;
  while (written < EVENTS) {
    // Several concurrent put() calls, as from several connections: LMDB batches them
    // into one transaction; the oracle applies them in call order, as LMDB must.
    // Some events are held back and published later, so deletions can precede their targets.
    const next = (): NostrEvent => {
      if (held.length > 0 && chance(0.1)) return held.splice(int(held.length), 1)[0];
      if (minted.length > 20 && chance(0.05)) return pick(minted);
      const e = randomEvent();
      if (chance(0.1)) { held.push(e); return randomEvent(); }
      return e;
    };
    const calls = Array.from({ length: 1 + int(4) }, () => Array.from({ length: 1 + int(12) }, next));
    written += calls.reduce((n, c) => n + c.length, 0);
    const t0 = performance.now();
    const got = await Promise.all(calls.map((c) => lmdb.put(c)));
    putMs += performance.now() - t0;
    const want = await Promise.all(calls.map((c) => oracle.put(c)));
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      t.same(got, want, `seed ${seed}: put outcomes after ${written} events`);
      return;
    }
    for (const o of got.flat()) {
      const k = o.status === 'stored' && o.removed.length > 0 ? 'stored+removed' : o.status;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
    await check([randomFilter()]); // state-dependent bugs show up between batches too
  }
  for (const e of minted) {
    if (lmdb.has(e.id) !== oracle.has(e.id)) { t.fail(`seed ${seed}: has(${e.id}) differs`); return; }
  }
  for (let i = 0; i < FILTERS; i++) await check(Array.from({ length: chance(0.8) ? 1 : 2 + int(2) }, randomFilter));
  t.equal(mismatches, 0, `seed ${seed}: every query and count agrees, one-shot and sliced`);
  t.ok(slices > FILTERS / 3, `the sliced queries really paused and resumed (${slices} times)`);
  t.comment(`outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; lmdb put time ${putMs.toFixed(0)} ms (${lmdb.writerStats().transactions} transactions)`);
  // The random workload must actually reach every storage path, or agreement proves little.
  for (const k of ['stored', 'stored+removed', 'duplicate', 'replaced', 'deleted', 'rejected']) t.ok((outcomes.get(k) ?? 0) > 0, `workload produced ${k} outcomes`);
});
