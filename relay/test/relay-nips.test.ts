// NIP-09, 11, 40, 42, 45, 70 and the configurable limits, over real sockets on both transports.
import t from 'tap';
import { TRANSPORTS, TestClient, now, signer, startTestRelay } from './helpers.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';

const STORE = process.env.BAZAAR_TEST_MEMORY_STORE ? () => ({ store: createMemoryStore() }) : () => ({});

const httpBase = (wsUrl: string) => wsUrl.replace(/^ws/, 'http');

for (const transport of TRANSPORTS) {
  t.test(`NIPs on ${transport}`, async (t) => {
    const relay = await startTestRelay(transport, { ...STORE(), limits: { maxSubscriptions: 3, maxFilters: 4, maxTags: 10, maxContentLength: 100, maxLimit: 50, createdAtPastSecs: 86400 * 365 } });
    t.teardown(() => relay.close());
    const alice = signer();
    const mallory = signer();

    t.test('NIP-11 document with CORS headers, and /health', async (t) => {
      const res = await fetch(httpBase(relay.url), { headers: { Accept: 'application/nostr+json' } });
      t.equal(res.status, 200);
      t.equal(res.headers.get('access-control-allow-origin'), '*');
      t.ok(res.headers.get('access-control-allow-headers'));
      t.ok(res.headers.get('access-control-allow-methods'));
      t.match(res.headers.get('content-type'), /application\/nostr\+json/);
      const doc = (await res.json()) as Record<string, any>;
      t.same(doc.supported_nips, [1, 9, 11, 40, 42, 45, 70, 77]);
      t.equal(doc.limitation.max_subscriptions, 3);
      t.equal(doc.limitation.max_filters, 4);
      t.equal(doc.limitation.max_limit, 50);
      t.equal(doc.limitation.max_event_tags, 10);
      t.equal(doc.limitation.max_content_length, 100);
      t.equal(doc.limitation.max_message_length, 512 * 1024);
      t.equal(doc.limitation.created_at_lower_limit, 86400 * 365);
      t.equal(doc.limitation.auth_required, false);
      const pre = await fetch(httpBase(relay.url), { method: 'OPTIONS' });
      t.equal(pre.status, 204);
      t.equal(pre.headers.get('access-control-allow-origin'), '*');
      const health = await fetch(`${httpBase(relay.url)}/health`);
      t.equal(health.status, 200);
      t.match(await health.json(), { status: 'ok' });
      t.equal((await fetch(`${httpBase(relay.url)}/nope`)).status, 404);
    });

    t.test('NIP-09: only the author deletes, by e and a tags; the deletion is stored and served', async (t) => {
      const c = await TestClient.connect(relay.url);
      const note = alice.sign({ kind: 1, content: 'to delete' });
      const keep = alice.sign({ kind: 1, content: 'keep' });
      const art = alice.sign({ kind: 30023, tags: [['d', 'post']], content: 'article', created_at: now() - 10 });
      for (const e of [note, keep, art]) t.same((await c.publish(e))[0], true);
      const forged = mallory.sign({ kind: 5, tags: [['e', keep.id], ['a', `30023:${alice.pubkey}:post`]] });
      t.same((await c.publish(forged))[0], true, "someone else's deletion is stored");
      t.equal((await c.query('k', { ids: [keep.id, art.id] })).length, 2, "but deletes nothing");
      const del = alice.sign({ kind: 5, tags: [['e', note.id], ['a', `30023:${alice.pubkey}:post`]] });
      t.same((await c.publish(del))[0], true);
      t.same(await c.query('d', { ids: [note.id, art.id] }), [], 'e- and a-referenced events gone');
      t.same(await c.query('d2', { ids: [del.id] }), [del], 'deletion event served');
      t.same((await c.query('d3', { ids: [keep.id] })).length, 1);
      const again = await c.publish(note);
      t.same(again[0], false, 're-publishing a deleted event is refused');
      t.match(again[1], /^blocked: /);
      await c.close();
    });

    t.test('NIP-40: expired events are refused and never served', async (t) => {
      const c = await TestClient.connect(relay.url);
      const expired = alice.sign({ kind: 1, tags: [['expiration', String(now() - 1)]] });
      t.match(await c.publish(expired), [false, /^invalid: .*expired/]);
      const soon = alice.sign({ kind: 1, tags: [['expiration', String(now() + 2)]], content: 'short-lived' });
      const later = alice.sign({ kind: 1, tags: [['expiration', String(now() + 3600)]] });
      t.same((await c.publish(soon))[0], true);
      t.same((await c.publish(later))[0], true);
      t.equal((await c.query('e1', { ids: [soon.id, later.id] })).length, 2);
      await c.close();
    });

    t.test('NIP-42: AUTH with the challenge; kind 22242 never stored or broadcast', async (t) => {
      const c = await TestClient.connect(relay.url);
      const challenge = (await c.waitFor((f) => f[0] === 'AUTH'))[1] as string;
      const watcher = await TestClient.connect(relay.url);
      await watcher.req('w', { kinds: [22242] });
      const wrong = alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', 'nope']] });
      c.send(['AUTH', wrong]);
      t.match((await c.next((f) => f[0] === 'OK' && f[1] === wrong.id))[2], false);
      const ok = alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', challenge]] });
      c.send(['AUTH', ok]);
      const res = await c.next((f) => f[0] === 'OK' && f[1] === ok.id);
      t.equal(res[2], true, String(res[3]));
      t.match(await c.publish(alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', challenge]] })), [false, /^invalid: /], 'not accepted via EVENT');
      t.same(await c.query('a', { kinds: [22242] }), [], 'never stored');
      await watcher.req('sync', { limit: 0 });
      t.equal(watcher.frames.filter((f) => f[0] === 'EVENT').length, 0, 'never broadcast');
      await c.close();
      await watcher.close();
    });

    t.test('NIP-70: protected events only from their authenticated author', async (t) => {
      const c = await TestClient.connect(relay.url);
      const challenge = (await c.waitFor((f) => f[0] === 'AUTH'))[1] as string;
      const prot = alice.sign({ kind: 1, tags: [['-']], content: 'mine only' });
      t.match(await c.publish(prot), [false, /^auth-required: /]);
      const auth = mallory.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', challenge]] });
      c.send(['AUTH', auth]);
      await c.next((f) => f[0] === 'OK' && f[1] === auth.id);
      t.match(await c.publish(prot), [false, /^restricted: /], 'authenticated as someone else');
      const c2 = await TestClient.connect(relay.url);
      const ch2 = (await c2.waitFor((f) => f[0] === 'AUTH'))[1] as string;
      const auth2 = alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', ch2]] });
      c2.send(['AUTH', auth2]);
      await c2.next((f) => f[0] === 'OK' && f[1] === auth2.id);
      t.same(await c2.publish(prot), [true, '']);
      await c.close();
      await c2.close();
    });

    t.test('NIP-45: COUNT', async (t) => {
      const c = await TestClient.connect(relay.url);
      const k = signer();
      for (let i = 0; i < 5; i++) await c.publish(k.sign({ kind: 7400, content: String(i), tags: [['t', i % 2 ? 'odd' : 'even']] }));
      t.equal(await c.count('c1', { authors: [k.pubkey] }), 5);
      t.equal(await c.count('c2', { authors: [k.pubkey], '#t': ['odd'] }), 2);
      t.equal(await c.count('c3', { authors: [k.pubkey], '#t': ['odd'] }, { authors: [k.pubkey], '#t': ['even'] }), 5, 'ORed filters counted once');
      t.equal(await c.count('c4', { authors: [k.pubkey], limit: 1 }), 5, 'limit ignored');
      await t.rejects(c.count('c5', { ids: ['zz'] }), /CLOSED: invalid:/);
      await c.close();
    });

    t.test('limits: subscriptions, filters, tags, content, max limit', async (t) => {
      const c = await TestClient.connect(relay.url);
      for (let i = 0; i < 3; i++) await c.req(`s${i}`, { kinds: [1], limit: 1 });
      await t.rejects(c.req('s3', { kinds: [1] }), /CLOSED: rate-limited: too many/);
      await c.req('s0', { kinds: [2], limit: 1 }); // replacing an existing id is always allowed
      c.send(['CLOSE', 's0']);
      await c.req('s3', { kinds: [1], limit: 1 });
      await t.rejects(c.query('f', {}, {}, {}, {}, {}), /CLOSED: invalid: too many filters/);
      const tags = Array.from({ length: 11 }, (_, i) => ['t', String(i)]);
      t.match(await c.publish(alice.sign({ kind: 1, tags })), [false, /^invalid: too many tags/]);
      t.match(await c.publish(alice.sign({ kind: 1, content: 'é'.repeat(101) })), [false, /^invalid: content/]);
      t.same((await c.publish(alice.sign({ kind: 1, content: '😀'.repeat(100) })))[0], true, 'content counted in characters');
      t.match(await c.publish(alice.sign({ kind: 1, created_at: now() - 86400 * 400 })), [false, /^invalid: created_at/]);
      const k = signer();
      for (let i = 0; i < 60; i++) await c.publish(k.sign({ kind: 7500, content: String(i) }));
      const c2 = await TestClient.connect(relay.url);
      t.equal((await c2.query('big', { authors: [k.pubkey], limit: 1000 })).length, 50, 'limit clamped to max_limit');
      t.equal((await c2.query('dflt', { authors: [k.pubkey] })).length, 50, 'no limit: max_limit events');
      await c.close();
      await c2.close();
    });
  });
}
