// NIP-01 over real sockets, run against both transports.
import t from 'tap';
import { TRANSPORTS, TestClient, now, signer, startTestRelay } from './helpers.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';

const STORE = process.env.BAZAAR_TEST_MEMORY_STORE ? () => ({ store: createMemoryStore() }) : () => ({});

for (const transport of TRANSPORTS) {
  t.test(`NIP-01 on ${transport}`, async (t) => {
    const relay = await startTestRelay(transport, STORE());
    t.teardown(() => relay.close());
    const alice = signer();
    const bob = signer();

    t.test('AUTH challenge on connect, EVENT → OK true, REQ → EVENT + EOSE', async (t) => {
      const c = await TestClient.connect(relay.url);
      const auth = await c.waitFor((f) => f[0] === 'AUTH');
      t.match(auth[1], /^[0-9a-f]{32}$/);
      const e = alice.sign({ kind: 1, content: 'hello' });
      t.same(await c.publish(e), [true, '']);
      t.same(await c.publish(e), [true, 'duplicate: already have this event'], 'duplicate gets OK true with duplicate: prefix');
      const got = await c.req('s1', { ids: [e.id] });
      t.same(got, [e], 'stored event served exactly as published');
      await c.close();
    });

    t.test('filters: authors, kinds, tags (upper and lower case), since/until inclusive, OR', async (t) => {
      const c = await TestClient.connect(relay.url);
      const base = now() - 1000;
      const tagged = alice.sign({ kind: 7001, created_at: base, tags: [['e', 'a'.repeat(64)], ['T', 'Topic'], ['t', 'topic']] });
      const other = bob.sign({ kind: 7001, created_at: base + 1, tags: [['e', 'b'.repeat(64)], ['t', 'other']] });
      const third = bob.sign({ kind: 7002, created_at: base + 2, tags: [['p', alice.pubkey]] });
      for (const e of [tagged, other, third]) t.same((await c.publish(e))[0], true);
      const ids = (evs: { id: string }[]) => evs.map((e) => e.id).sort();
      t.same(ids(await c.req('a', { authors: [bob.pubkey], kinds: [7001, 7002] })), ids([other, third]));
      t.same(ids(await c.req('b', { '#e': ['a'.repeat(64)] })), ids([tagged]));
      t.same(ids(await c.req('c', { '#T': ['Topic'] })), ids([tagged]), 'upper-case tag filter');
      t.same(ids(await c.req('d', { '#t': ['Topic'] })), [], 'tag values are case-sensitive');
      t.same(ids(await c.req('e', { kinds: [7001, 7002], since: base + 1, until: base + 2 })), ids([other, third]), 'since/until inclusive');
      t.same(ids(await c.req('f', { kinds: [7001], until: base })), ids([tagged]));
      t.same(ids(await c.req('g', { '#p': [alice.pubkey] }, { '#t': ['topic'] })), ids([tagged, third]), 'filters are ORed');
      t.same(ids(await c.req('h', { kinds: [7001], '#t': ['topic', 'other'], authors: [alice.pubkey] })), ids([tagged]), 'every condition applies');
      t.same(await c.req('i', { ids: [] }), [], 'empty ids list matches nothing');
      await c.close();
    });

    t.test('limit: newest first, ties broken by lowest id', async (t) => {
      const c = await TestClient.connect(relay.url);
      const ts = now() - 500;
      const evs = [] as ReturnType<typeof alice.sign>[];
      for (let i = 0; i < 6; i++) evs.push(alice.sign({ kind: 7100, created_at: ts + (i < 4 ? 0 : i), content: String(i) }));
      for (const e of evs) t.same((await c.publish(e))[0], true);
      const expected = [...evs].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
      t.same((await c.req('l', { kinds: [7100], limit: 3 })).map((e) => e.id), expected.slice(0, 3).map((e) => e.id));
      t.same((await c.req('l2', { kinds: [7100] })).map((e) => e.id), expected.map((e) => e.id), 'no limit: all, same order');
      t.same(await c.req('l3', { kinds: [7100], limit: 0 }), [], 'limit 0: no stored events');
      await c.close();
    });

    t.test('replaceable and addressable: newest wins, equal timestamps lowest id wins', async (t) => {
      const c = await TestClient.connect(relay.url);
      const k = signer();
      const ts = now() - 100;
      const v1 = k.sign({ kind: 0, created_at: ts, content: 'v1' });
      const v2 = k.sign({ kind: 0, created_at: ts + 10, content: 'v2' });
      t.same((await c.publish(v1))[0], true);
      t.same((await c.publish(v2))[0], true);
      t.same(await c.req('r1', { authors: [k.pubkey], kinds: [0] }), [v2]);
      const older = k.sign({ kind: 0, created_at: ts + 5, content: 'older' });
      t.same((await c.publish(older))[0], true, 'older replaceable acknowledged');
      t.same(await c.req('r2', { authors: [k.pubkey], kinds: [0] }), [v2], 'but not stored');
      // Equal timestamps: lowest id wins regardless of arrival order.
      const a = k.sign({ kind: 10002, created_at: ts, content: 'a' });
      const b = k.sign({ kind: 10002, created_at: ts, content: 'b' });
      const [low, high] = a.id < b.id ? [a, b] : [b, a];
      await c.publish(high);
      await c.publish(low);
      t.same(await c.req('r3', { authors: [k.pubkey], kinds: [10002] }), [low]);
      await c.publish(high);
      t.same(await c.req('r4', { authors: [k.pubkey], kinds: [10002] }), [low], 'higher id with equal timestamp does not replace');
      // Addressable: per d tag.
      const d1 = k.sign({ kind: 30023, created_at: ts, tags: [['d', 'one']], content: '1' });
      const d2 = k.sign({ kind: 30023, created_at: ts, tags: [['d', 'two']], content: '2' });
      const d1b = k.sign({ kind: 30023, created_at: ts + 1, tags: [['d', 'one']], content: '1b' });
      for (const e of [d1, d2, d1b]) await c.publish(e);
      const ids = (await c.req('r5', { authors: [k.pubkey], kinds: [30023] })).map((e) => e.id).sort();
      t.same(ids, [d1b.id, d2.id].sort());
      await c.close();
    });

    t.test('ephemeral events are delivered live and never stored', async (t) => {
      const sub = await TestClient.connect(relay.url);
      const pub = await TestClient.connect(relay.url);
      await sub.req('live', { kinds: [20001] });
      const e = alice.sign({ kind: 20001, content: 'now' });
      const delivered = sub.next((f) => f[0] === 'EVENT' && f[1] === 'live');
      t.same(await pub.publish(e), [true, '']);
      t.same((await delivered)[2], e);
      t.same(await pub.req('q', { kinds: [20001] }), [], 'not stored');
      await sub.close();
      await pub.close();
    });

    t.test('live delivery honours every filter condition (no tag-mismatched events)', async (t) => {
      const sub = await TestClient.connect(relay.url);
      const pub = await TestClient.connect(relay.url);
      await sub.req('m', { kinds: [7200], '#p': [alice.pubkey] });
      await sub.req('all', { kinds: [7201] });
      const wrongTag = bob.sign({ kind: 7200, tags: [['p', bob.pubkey]] });
      const wrongKind = bob.sign({ kind: 7202, tags: [['p', alice.pubkey]] });
      const right = bob.sign({ kind: 7200, tags: [['p', alice.pubkey]] });
      const marker = bob.sign({ kind: 7201 });
      for (const e of [wrongTag, wrongKind, right, marker]) await pub.publish(e);
      // Frames on one socket arrive in order: once the marker is in, anything earlier has arrived.
      await sub.waitFor((f) => f[0] === 'EVENT' && f[1] === 'all');
      const mIds = sub.frames.filter((f) => f[0] === 'EVENT' && f[1] === 'm').map((f) => (f[2] as { id: string }).id);
      t.same(mIds, [right.id]);
      await sub.close();
      await pub.close();
    });

    t.test('REQ with an existing id replaces it; CLOSE stops delivery', async (t) => {
      const sub = await TestClient.connect(relay.url);
      const pub = await TestClient.connect(relay.url);
      await sub.req('x', { kinds: [7300] });
      await sub.req('x', { kinds: [7301] });
      await sub.req('marker', { kinds: [7399] });
      await pub.publish(alice.sign({ kind: 7300 }));
      const e2 = alice.sign({ kind: 7301 });
      await pub.publish(e2);
      sub.send(['CLOSE', 'marker']);
      await sub.req('marker2', { kinds: [7398] });
      await pub.publish(alice.sign({ kind: 7399 }));
      await pub.publish(alice.sign({ kind: 7398 }));
      await sub.waitFor((f) => f[0] === 'EVENT' && f[1] === 'marker2');
      const xKinds = sub.frames.filter((f) => f[0] === 'EVENT' && f[1] === 'x').map((f) => (f[2] as { kind: number }).kind);
      t.same(xKinds, [7301], 'replaced subscription only sees its new filter');
      t.equal(sub.frames.filter((f) => f[0] === 'EVENT' && f[1] === 'marker').length, 0, 'closed subscription gets nothing');
      t.same((sub.frames.find((f) => f[0] === 'EVENT' && f[1] === 'x') ?? [])[2], e2);
      await sub.close();
      await pub.close();
    });

    t.test('refused REQs get CLOSED with a prefixed reason', async (t) => {
      const c = await TestClient.connect(relay.url);
      for (const [filter, re] of [
        [{ ids: ['xyz'] }, /^invalid: /],
        [{ kinds: ['1'] }, /^invalid: /],
        [{ since: -1 }, /^invalid: /],
        ['nope', /^invalid: /],
        [{ '#tag': ['a'] }, /^unsupported: /],
        [{ search: 'x' }, /^unsupported: /],
      ] as const) {
        c.send(['REQ', 'bad', filter]);
        const f = await c.next((f) => f[0] === 'CLOSED' && f[1] === 'bad');
        t.match(f[2], re, JSON.stringify(filter));
      }
      c.send(['REQ', 'nofilter']);
      t.match((await c.next((f) => f[0] === 'CLOSED' && f[1] === 'nofilter'))[2], /^invalid: /);
      c.send(['REQ', 'x'.repeat(65), {}]);
      t.match((await c.next((f) => f[0] === 'CLOSED'))[2], /^invalid: .*subscription id/);
      c.send(['REQ', 5, {}]);
      t.match((await c.next((f) => f[0] === 'NOTICE'))[1], /^invalid: /);
      t.same(await c.req('ok', { limit: 1 }).then((r) => r.length <= 1), true, 'connection still usable');
      await c.close();
    });

    t.test('invalid events: OK false with invalid: prefix', async (t) => {
      const c = await TestClient.connect(relay.url);
      const e = alice.sign({ kind: 1, content: 'signed' });
      t.match(await c.publish({ ...e, content: 'tampered' }), [false, /^invalid: /], 'tampered content → bad id');
      const e2 = alice.sign({ kind: 1, content: 'x' });
      const badSig = { ...e2, sig: e2.sig.slice(0, -2) + (e2.sig.endsWith('00') ? '11' : '00') };
      t.match(await c.publish(badSig), [false, /^invalid: /], 'bad signature');
      t.match(await c.publish({ ...e2, kind: -1 } as typeof e2), [false, /^invalid: kind/]);
      t.match(await c.publish({ ...e2, tags: [['a', 1]] } as unknown as typeof e2), [false, /^invalid: .*tag/]);
      t.match(await c.publish(alice.sign({ kind: 1, created_at: now() + 3600 })), [false, /^invalid: created_at/]);
      t.same(await c.req('none', { ids: [e2.id] }), [], 'nothing invalid stored');
      await c.close();
    });
  });
}
