// NIP-01/09/40/45 storage semantics, run against BOTH EventStore implementations:
// the LMDB store (real LMDB files in a temp dir; writes inline and on its writer thread)
// and the in-memory oracle.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { EventStore } from '../src/store/event-store.ts';
import { openLmdbStore } from '../src/store/lmdb-store.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';

const NOW = 1_700_000_000;
const clock = (): number => NOW;

type Factory = (opts?: { maxLimit?: number }) => Promise<EventStore>;

/**
 * Every put() of every test goes through this check: stored events get sequence numbers that
 * increase in commit order and are covered by lastSeq() once the put resolves. The seq is then
 * dropped so the tests below compare outcomes exactly.
 */
function checkingSeqs(store: EventStore): EventStore {
  let highest = store.lastSeq();
  return {
    ...store,
    put: async (events, putOpts) => {
      const out = await store.put(events, putOpts);
      const watermark = store.lastSeq();
      return out.map((o) => {
        if (o.status !== 'stored') return o;
        if (!(o.seq > highest && o.seq <= watermark)) throw new Error(`seq ${o.seq} is not above ${highest} and within lastSeq ${watermark}`);
        highest = o.seq;
        return { status: o.status, removed: o.removed } as unknown as typeof o;
      });
    },
  };
}

const factories: Record<string, Factory> = {
  memory: async (opts) => checkingSeqs(createMemoryStore({ clock, ...opts })),
  lmdb: async (opts) => lmdbFactory('inline', opts),
  // The relay's configuration: writes applied on the store's own writer thread.
  'lmdb (writer thread)': async (opts) => lmdbFactory('thread', opts),
};

async function lmdbFactory(writer: 'inline' | 'thread', opts: Parameters<Factory>[0]): Promise<EventStore> {
  {
    const dir = mkdtempSync(join(tmpdir(), 'bazaar-store-'));
    const store = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0, writer, ...opts });
    return checkingSeqs({
      ...store,
      put: store.put, query: store.query, count: store.count, has: store.has, lastSeq: store.lastSeq,
      close: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); },
    });
  }
}

const alice = generateSecretKey();
const bob = generateSecretKey();
const alicePk = getPublicKey(alice);
const bobPk = getPublicKey(bob);

function sign(key: Uint8Array, kind: number, created_at: number, tags: string[][] = [], content = ''): NostrEvent {
  return finalizeEvent({ kind, created_at, tags, content }, key) as NostrEvent;
}

/** Sign variants until `n` events share one created_at (their ids are random). */
const many = (n: number, kind: number, ts: number, tags: string[][] = []): NostrEvent[] =>
  Array.from({ length: n }, (_, i) => sign(alice, kind, ts, tags, `n${i}`));

const ids = (jsons: string[]): string[] => jsons.map((j) => (JSON.parse(j) as NostrEvent).id);
const byNewest = (a: NostrEvent, b: NostrEvent): number => b.created_at - a.created_at || (a.id < b.id ? -1 : 1);

for (const [name, make] of Object.entries(factories)) {
  t.test(`${name} store`, async (t) => {
    const withStore = (title: string, fn: (s: EventStore, t: Test) => Promise<void>, opts?: { maxLimit?: number }): void => {
      t.test(title, async (t) => {
        const s = await make(opts);
        t.teardown(() => s.close());
        await fn(s, t);
      });
    };

    withStore('stores canonical JSON, answers has() and duplicate', async (s, t) => {
      const e = sign(alice, 1, NOW - 10, [['t', 'x']], 'hello "world" \u2028');
      const shuffled = { sig: e.sig, content: e.content, tags: e.tags, kind: e.kind, created_at: e.created_at, pubkey: e.pubkey, id: e.id, extra: 1 } as unknown as NostrEvent;
      t.equal(s.has(e.id), false);
      t.same(await s.put([shuffled]), [{ status: 'stored', removed: [] }]);
      t.equal(s.has(e.id), true);
      t.equal(s.has('00'.repeat(32)), false);
      const [json] = await s.query([{ ids: [e.id] }]);
      t.equal(json, JSON.stringify({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig }));
      const frames = await s.queryFrames!([{ ids: [e.id] }], Buffer.from('["EVENT","s",'), Buffer.from(']'));
      t.same(frames.map((f) => f.toString('utf8')), [`["EVENT","s",${json}]`]);
      t.same(await s.put([e]), [{ status: 'duplicate' }]);
      t.same(await s.put([e, e]), [{ status: 'duplicate' }, { status: 'duplicate' }]);
    });

    withStore('rejects ephemeral, already-expired and malformed events', async (s, t) => {
      const eph = sign(alice, 20001, NOW);
      const auth = sign(alice, 22242, NOW);
      const expired = sign(alice, 1, NOW - 5, [['expiration', String(NOW)]]);
      const out = await s.put([eph, auth, expired, { ...sign(alice, 1, NOW), id: 'zz' }]);
      t.same(out.map((o) => o.status), ['rejected', 'rejected', 'rejected', 'rejected']);
      for (const o of out) t.match(o, { message: /^invalid: / });
      t.equal(await s.count([{}]), 0);
    });

    withStore('replaceable: newest per (pubkey, kind), older arrival → replaced', async (s, t) => {
      const v1 = sign(alice, 0, NOW - 30, [], 'v1');
      const v2 = sign(alice, 0, NOW - 20, [], 'v2');
      const bobs = sign(bob, 0, NOW - 40, [], 'bob');
      t.same(await s.put([v1, bobs]), [{ status: 'stored', removed: [] }, { status: 'stored', removed: [] }]);
      t.same(await s.put([v2]), [{ status: 'stored', removed: [v1.id] }]);
      t.same(await s.put([v1]), [{ status: 'replaced' }]);
      t.same(ids(await s.query([{ kinds: [0] }])), [v2.id, bobs.id]);
      t.equal(s.has(v1.id), false);
      const list = sign(alice, 10002, NOW - 5);
      const older = sign(alice, 10002, NOW - 6);
      t.same(await s.put([list, older]), [{ status: 'stored', removed: [] }, { status: 'replaced' }]);
    });

    withStore('replaceable with equal created_at: the lowest id wins, in either arrival order', async (s, t) => {
      const [a, b] = many(2, 3, NOW - 1).sort((x, y) => (x.id < y.id ? -1 : 1));
      t.same(await s.put([b]), [{ status: 'stored', removed: [] }]);
      t.same(await s.put([a]), [{ status: 'stored', removed: [b.id] }]);
      t.same(await s.put([b]), [{ status: 'replaced' }]);
      t.same(ids(await s.query([{ authors: [alicePk], kinds: [3] }])), [a.id]);
    });

    withStore('addressable: one per (pubkey, kind, d); missing d is ""', async (s, t) => {
      const x1 = sign(alice, 30023, NOW - 20, [['d', 'x']], 'x1');
      const y1 = sign(alice, 30023, NOW - 20, [['d', 'y']], 'y1');
      const x2 = sign(alice, 30023, NOW - 10, [['d', 'x']], 'x2');
      const noD = sign(alice, 30023, NOW - 10, [], 'nod');
      const emptyD = sign(alice, 30023, NOW - 5, [['d', '']], 'emptyd');
      const bobX = sign(bob, 30023, NOW - 1, [['d', 'x']], 'bobx');
      t.same((await s.put([x1, y1, x2, noD, emptyD, bobX])).map((o) => o.status), ['stored', 'stored', 'stored', 'stored', 'stored', 'stored']);
      t.same(ids(await s.query([{ kinds: [30023] }])).sort(), [y1.id, x2.id, emptyD.id, bobX.id].sort());
      t.same(ids(await s.query([{ kinds: [30023], authors: [alicePk], '#d': ['x'] }])), [x2.id]);
      t.same(await s.put([x1]), [{ status: 'replaced' }]);
    });

    withStore('NIP-09 e deletion: only the author\'s own events; the deletion is stored and served', async (s, t) => {
      const mine = sign(alice, 1, NOW - 10, [], 'mine');
      const theirs = sign(bob, 1, NOW - 10, [], 'theirs');
      await s.put([mine, theirs]);
      const del = sign(alice, 5, NOW - 5, [['e', mine.id], ['e', theirs.id], ['k', '1']]);
      t.same(await s.put([del]), [{ status: 'stored', removed: [mine.id] }]);
      t.same(ids(await s.query([{ kinds: [1] }])), [theirs.id]);
      t.same(ids(await s.query([{ kinds: [5] }])), [del.id]);
      t.same(ids(await s.query([{ '#e': [mine.id] }])), [del.id]);
      t.same(await s.put([mine]), [{ status: 'deleted' }]);
      t.equal(s.has(mine.id), false);
      // A deletion that arrives before its target still refuses the target later.
      const later = sign(alice, 1, NOW - 3, [], 'later');
      await s.put([sign(alice, 5, NOW - 2, [['e', later.id]])]);
      t.same(await s.put([later]), [{ status: 'deleted' }]);
      // ...but only for the deletion's author: bob's tombstone does not touch alice's event.
      const third = sign(alice, 1, NOW - 3, [], 'third');
      await s.put([sign(bob, 5, NOW - 2, [['e', third.id]])]);
      t.same(await s.put([third]), [{ status: 'stored', removed: [] }]);
    });

    withStore('NIP-09: a deletion of a deletion does nothing', async (s, t) => {
      const note = sign(alice, 1, NOW - 10);
      const del = sign(alice, 5, NOW - 5, [['e', note.id]]);
      const undo = sign(alice, 5, NOW - 4, [['e', del.id], ['k', '5']]);
      await s.put([note, del]);
      t.same(await s.put([undo]), [{ status: 'stored', removed: [] }]);
      t.same(ids(await s.query([{ kinds: [5] }])), [undo.id, del.id]);
      t.same(await s.put([note]), [{ status: 'deleted' }]);
      // A kind-5 event named by an earlier deletion is still accepted.
      const del2 = sign(alice, 5, NOW - 3, [['e', note.id]]);
      await s.put([sign(alice, 5, NOW - 2, [['e', del2.id]])]);
      t.same(await s.put([del2]), [{ status: 'stored', removed: [] }]);
    });

    withStore('NIP-09 a deletion: versions up to its created_at; newer versions still accepted', async (s, t) => {
      const v1 = sign(alice, 30023, NOW - 20, [['d', 'post']]);
      const other = sign(alice, 30023, NOW - 20, [['d', 'other']]);
      await s.put([v1, other]);
      const del = sign(alice, 5, NOW - 10, [['a', `30023:${alicePk}:post`]]);
      t.same(await s.put([del]), [{ status: 'stored', removed: [v1.id] }]);
      t.same(ids(await s.query([{ kinds: [30023] }])), [other.id]);
      t.same(await s.put([sign(alice, 30023, NOW - 10, [['d', 'post']])]), [{ status: 'deleted' }]);
      t.same(await s.put([sign(alice, 30023, NOW - 15, [['d', 'post']])]), [{ status: 'deleted' }]);
      const v3 = sign(alice, 30023, NOW - 9, [['d', 'post']]);
      t.same(await s.put([v3]), [{ status: 'stored', removed: [] }]);
      // A version with exactly the deletion's created_at is deleted too.
      t.same(await s.put([sign(alice, 5, NOW - 9, [['a', `30023:${alicePk}:post`]])]), [{ status: 'stored', removed: [v3.id] }]);
      // An `a` deletion naming someone else's address is ignored.
      const bobPost = sign(bob, 30023, NOW - 20, [['d', 'post']]);
      await s.put([bobPost]);
      t.same(await s.put([sign(alice, 5, NOW - 1, [['a', `30023:${bobPk}:post`]])]), [{ status: 'stored', removed: [] }]);
      t.ok(s.has(bobPost.id));
      // Replaceable kinds: `kind:pubkey:` addresses the (pubkey, kind) slot.
      const meta = sign(alice, 0, NOW - 20);
      await s.put([meta]);
      t.same(await s.put([sign(alice, 5, NOW - 1, [['a', `0:${alicePk}:`]])]), [{ status: 'stored', removed: [meta.id] }]);
    });

    withStore('NIP-09: a gift-wrap recipient may delete it with k=1059', async (s, t) => {
      const wrapper = generateSecretKey();
      const wrap = sign(wrapper, 1059, NOW - 10, [['p', alicePk]]);
      const wrap2 = sign(wrapper, 1059, NOW - 10, [['p', alicePk]], 'two');
      await s.put([wrap, wrap2]);
      t.same(await s.put([sign(alice, 5, NOW - 5, [['e', wrap.id]])]), [{ status: 'stored', removed: [] }], 'no k tag: ignored');
      t.same(await s.put([sign(bob, 5, NOW - 5, [['e', wrap.id], ['k', '1059']])]), [{ status: 'stored', removed: [] }], 'not a recipient');
      t.same(await s.put([sign(alice, 5, NOW - 4, [['e', wrap.id], ['e', wrap2.id], ['k', '1059']])]), [{ status: 'stored', removed: [wrap.id, wrap2.id] }]);
      t.same(await s.put([wrap]), [{ status: 'deleted' }]);
    });

    withStore('NIP-40: expired events are never served nor counted; expiration == now is expired', async (s, t) => {
      const soon = sign(alice, 1, NOW - 10, [['expiration', String(NOW + 100)]]);
      const never = sign(alice, 1, NOW - 20);
      await s.put([soon, never]);
      t.same(ids(await s.query([{ kinds: [1] }], { now: NOW + 99 })), [soon.id, never.id]);
      t.same(ids(await s.query([{ kinds: [1] }], { now: NOW + 100 })), [never.id]);
      t.same(ids(await s.query([{ ids: [soon.id] }], { now: NOW + 100 })), []);
      t.equal(await s.count([{ kinds: [1] }], { now: NOW + 100 }), 1);
      t.equal(await s.count([{ kinds: [1] }], { now: NOW }), 2);
    });

    withStore('NIP-40 and replaceable slots: an expired holder counts as gone, purged or not', async (s, t) => {
      const older = sign(alice, 0, NOW - 100, [], 'older profile');
      const newer = sign(alice, 0, NOW - 50, [['expiration', String(NOW + 10)]], 'newer profile, expires');
      t.same(await s.put([older]), [{ status: 'stored', removed: [] }]);
      t.same(await s.put([newer]), [{ status: 'stored', removed: [older.id] }], 'the newer version replaces the older');
      t.same(await s.put([older], { now: NOW + 5 }), [{ status: 'replaced' }], 'while the newer one is live, the older is refused');
      // Once the newer version has expired (not purged: purgeIntervalMs is 0), the older one is
      // stored again, as it would be after a purge — and it removes the expired holder.
      t.same(await s.put([older], { now: NOW + 10 }), [{ status: 'stored', removed: [newer.id] }]);
      t.same(ids(await s.query([{ authors: [alicePk], kinds: [0] }], { now: NOW + 10 })), [older.id]);
      const addrOld = sign(alice, 30023, NOW - 100, [['d', 'z']], 'v1');
      const addrNew = sign(alice, 30023, NOW - 50, [['d', 'z'], ['expiration', String(NOW + 10)]], 'v2, expires');
      t.same((await s.put([addrNew, addrOld], { now: NOW + 1 })).map((o) => o.status), ['stored', 'replaced']);
      t.same((await s.put([addrOld], { now: NOW + 10 })).map((o) => o.status), ['stored'], 'addressable: the same rule');
    });

    withStore('limit: newest first, ties broken by the lowest id', async (s, t) => {
      const tied = many(12, 1, NOW - 50);
      const newer = sign(alice, 1, NOW - 40);
      const older = sign(alice, 1, NOW - 60);
      await s.put([...tied, newer, older]);
      const want = [newer, ...tied, older].sort(byNewest).map((e) => e.id);
      t.same(ids(await s.query([{ kinds: [1] }])), want);
      t.same(ids(await s.query([{ kinds: [1], limit: 5 }])), want.slice(0, 5));
      t.same(ids(await s.query([{ authors: [alicePk], limit: 3 }])), want.slice(0, 3));
      t.same(ids(await s.query([{ limit: 13 }])), want.slice(0, 13));
      t.same(await s.query([{ kinds: [1], limit: 0 }]), []);
    });

    withStore('maxLimit caps every filter', async (s, t) => {
      await s.put(many(6, 1, NOW - 1));
      t.equal((await s.query([{ kinds: [1] }])).length, 4);
      t.equal((await s.query([{ kinds: [1], limit: 100 }])).length, 4);
      t.equal((await s.query([{ kinds: [1], limit: 2 }])).length, 2);
      t.equal(await s.count([{ kinds: [1], limit: 2 }]), 6, 'count ignores limits');
    }, { maxLimit: 4 });

    withStore('tag filters: case-sensitive letters, any value matches, all conditions AND', async (s, t) => {
      const target = 'ab'.repeat(32);
      const lower = sign(alice, 1, NOW - 3, [['e', target], ['t', 'nostr']]);
      const upper = sign(alice, 1, NOW - 2, [['E', target]]);
      const both = sign(bob, 7, NOW - 1, [['e', target], ['E', target], ['t', 'other']]);
      await s.put([lower, upper, both]);
      t.same(ids(await s.query([{ '#e': [target] }])), [both.id, lower.id]);
      t.same(ids(await s.query([{ '#E': [target] }])), [both.id, upper.id]);
      t.same(ids(await s.query([{ '#e': [target], '#E': [target] }])), [both.id]);
      t.same(ids(await s.query([{ '#t': ['nostr', 'other'] }])), [both.id, lower.id]);
      t.same(ids(await s.query([{ '#t': ['nostr', 'other'], kinds: [1] }])), [lower.id]);
      t.same(ids(await s.query([{ '#e': [target], authors: [bobPk], kinds: [7] }])), [both.id]);
      const long = 'v'.repeat(3000);
      const longTag = sign(alice, 1, NOW - 1, [['r', long]]);
      await s.put([longTag]);
      t.same(ids(await s.query([{ '#r': [long] }])), [longTag.id]);
      t.same(ids(await s.query([{ '#r': [long.slice(1)] }])), []);
    });

    withStore('since/until are inclusive', async (s, t) => {
      const evs = [10, 20, 30, 40].map((d) => sign(alice, 1, NOW - d));
      await s.put(evs);
      t.same(ids(await s.query([{ since: NOW - 30, until: NOW - 20 }])), [evs[1].id, evs[2].id]);
      t.same(ids(await s.query([{ kinds: [1], since: NOW - 10 }])), [evs[0].id]);
      t.same(ids(await s.query([{ authors: [alicePk], until: NOW - 40 }])), [evs[3].id]);
      t.same(ids(await s.query([{ ids: evs.map((e) => e.id), since: NOW - 20, until: NOW - 20 }])), [evs[1].id]);
      t.same(await s.query([{ since: NOW, until: NOW - 1 }]), []);
    });

    withStore('multiple filters are OR\'ed, each with its own limit, de-duplicated', async (s, t) => {
      const a = sign(alice, 1, NOW - 1);
      const b = sign(bob, 1, NOW - 2);
      const c = sign(alice, 7, NOW - 3);
      await s.put([a, b, c]);
      t.same(ids(await s.query([{ authors: [alicePk] }, { kinds: [1] }])), [a.id, b.id, c.id]);
      t.same(ids(await s.query([{ kinds: [1], limit: 1 }, { authors: [alicePk], limit: 1 }])), [a.id]);
      t.same(ids(await s.query([{ kinds: [7], limit: 1 }, { authors: [bobPk], limit: 1 }])), [b.id, c.id]);
      t.equal(await s.count([{ authors: [alicePk] }, { kinds: [1] }]), 3);
      t.equal(await s.count([{ ids: [a.id, a.id] }]), 1);
    });

    withStore('filters that cannot match: empty arrays, search, long tag names', async (s, t) => {
      const e = sign(alice, 1, NOW - 1, [['t', 'x']]);
      await s.put([e]);
      const none: Filter[] = [{ ids: [] }, { authors: [] }, { kinds: [] }, { '#t': [] }, { search: 'x' }, { ['#tt' as `#${string}`]: ['x'] }];
      for (const f of none) {
        t.same(await s.query([f]), [], JSON.stringify(f));
        t.equal(await s.count([f]), 0, JSON.stringify(f));
      }
      t.same(ids(await s.query([{ ids: [] }, { '#t': ['x'] }])), [e.id]);
      t.same(await s.query([]), []);
      t.equal(await s.count([]), 0);
    });

    withStore('malformed filter values match nothing instead of throwing', async (s, t) => {
      const e = sign(alice, 1, NOW - 1, [['e', 'ab'.repeat(32)]]);
      await s.put([e]);
      const bad = [{ ids: e.id }, { authors: alicePk }, { kinds: ['1'] }, { '#e': 'ab'.repeat(32) }, { '#e': [1] }, { ids: [e.id.toUpperCase()] }] as unknown as Filter[];
      for (const f of bad) t.same(await s.query([f]), [], JSON.stringify(f));
      // Non-numeric since/until are ignored, fractional ones compare numerically.
      t.same(ids(await s.query([{ since: 'x', until: NOW - 0.5 } as unknown as Filter])), [e.id]);
      t.same(await s.query([{ since: NOW - 0.5 }]), []);
    });

    withStore('a batch applies in order; concurrent puts all land', async (s, t) => {
      const v1 = sign(alice, 10000, NOW - 2);
      const v2 = sign(alice, 10000, NOW - 1);
      const notes = many(50, 1, NOW - 100);
      const results = await Promise.all([s.put([v1, v2]), ...notes.map((n) => s.put([n]))]);
      t.same(results[0], [{ status: 'stored', removed: [] }, { status: 'stored', removed: [v1.id] }]);
      t.ok(results.slice(1).every((r) => r[0].status === 'stored'));
      t.equal(await s.count([{ kinds: [1] }]), 50);
      t.same(ids(await s.query([{ kinds: [10000] }])), [v2.id]);
    });

    withStore('eventsAfter: the stored feed in insertion order, paged, filtered by kind, without removed events', async (s, t) => {
      t.same(s.eventsAfter(0, 10), { events: [], lastSeq: 0 }, 'empty store');
      const a = sign(alice, 1, NOW - 50, [], 'a');
      const b = sign(alice, 5050, NOW - 90, [['i', 'x', 'text']]); // older created_at, stored later
      const r1 = sign(alice, 10000, NOW - 40);
      const c = sign(bob, 7000, NOW - 30, [['status', 'processing'], ['e', b.id], ['p', alicePk]]);
      const r2 = sign(alice, 10000, NOW - 20); // replaces r1
      for (const e of [a, b, r1, c, r2]) await s.put([e]);
      const all = s.eventsAfter(0, 100);
      const seqs = all.events.map((e) => e.seq);
      t.same(all.events.map((e) => (JSON.parse(e.json) as NostrEvent).id), [a.id, b.id, c.id, r2.id], 'insertion order; the replaced version is gone');
      t.same(all.events.map((e) => e.kind), [1, 5050, 7000, 10000]);
      t.same(seqs, [...seqs].sort((x, y) => x - y), 'seqs grow');
      t.equal(all.lastSeq, seqs[seqs.length - 1]);
      t.equal(all.events[1].json, JSON.stringify({ id: b.id, pubkey: b.pubkey, created_at: b.created_at, kind: b.kind, tags: b.tags, content: b.content, sig: b.sig }), 'the stored JSON');
      // Paging: two at a time reaches the same events, each page starting after the last.
      const paged: number[] = [];
      for (let after = 0; ;) {
        const page = s.eventsAfter(after, 2);
        if (page.lastSeq === after) break;
        paged.push(...page.events.map((e) => e.seq));
        after = page.lastSeq;
      }
      t.same(paged, seqs);
      // A kind filter skips events but still reports how far it looked.
      const jobs = s.eventsAfter(0, 100, (k) => k >= 5000 && k < 8000);
      t.same(jobs.events.map((e) => e.kind), [5050, 7000]);
      t.equal(jobs.lastSeq, all.lastSeq, 'skipped events still advance the position');
      t.same(s.eventsAfter(all.lastSeq, 100), { events: [], lastSeq: all.lastSeq }, 'caught up');
      t.same(s.eventsAfter(seqs[1], 1).events.map((e) => e.seq), [seqs[2]]);
      t.same(s.eventsAfter(0, 0), { events: [], lastSeq: 0 }, 'limit 0 looks at nothing');
      const d = sign(alice, 1, NOW - 5, [], 'd');
      await s.put([d]);
      const next = s.eventsAfter(all.lastSeq, 10);
      t.same(next.events.map((e) => (JSON.parse(e.json) as NostrEvent).id), [d.id], 'a later event comes after everything earlier');
      t.ok(next.lastSeq > all.lastSeq);
    });
  });
}
