// relay.addEvent(event, { source }): the one ingest entry point for events that do not come
// from a client socket. Same pipeline as EVENT (checks, signature, policy, store, live
// subscriptions); reasons normalised to NIP-01 prefixes at that one boundary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Policy, PolicyContext } from '@bazaar/policies/policy';
import { normaliseReason } from '../src/relay.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { openLmdbStore } from '../src/store/lmdb-store.ts';
import { TestClient, now, signer, startTestRelay } from './helpers.ts';

t.test('normaliseReason', async (t) => {
  t.equal(normaliseReason(false, 'invalid: bad'), 'invalid: bad');
  t.equal(normaliseReason(false, 'auth-required: who are you'), 'auth-required: who are you');
  t.equal(normaliseReason(false, 'no thanks'), 'blocked: no thanks', 'an unprefixed refusal is blocked:');
  t.equal(normaliseReason(false, 'invalid:no space'), 'blocked: invalid:no space', 'a prefix needs its ": "');
  t.equal(normaliseReason(true, ''), '');
  t.equal(normaliseReason(true, 'duplicate: seen'), 'duplicate: seen');
  t.equal(normaliseReason(true, 'stored it'), '', 'an acceptance carries no free text');
});

t.test('addEvent runs the socket pipeline for import, sync and stream sources', async (t) => {
  const seen: PolicyContext['source'][] = [];
  const policy: Policy = (e, ctx) => {
    seen.push(ctx.source);
    if (e.content === 'unprefixed') return { action: 'reject', message: 'not on this relay' };
    if (e.content === 'throw') throw new Error('boom');
    if (e.content === 'shadow') return { action: 'shadowReject' };
    return { action: 'accept' };
  };
  const relay = await startTestRelay('ws', { policy });
  t.teardown(() => relay.close());
  const alice = signer();
  const live = await TestClient.connect(relay.url);
  await live.req('live', { authors: [alice.pubkey] });

  const e1 = alice.sign({ kind: 1, content: 'imported' });
  t.same(await relay.core.addEvent(e1, { source: 'import', sourceInfo: 'backup.jsonl' }), { ok: true, message: '' });
  t.same(seen.at(-1), { type: 'import', ip: 'backup.jsonl', connectionId: 'backup.jsonl' }, 'policies see the source');
  t.same((await live.waitFor((f) => f[0] === 'EVENT' && f[1] === 'live'))[2], e1, 'delivered to live subscriptions');
  const reader = await TestClient.connect(relay.url);
  t.same(await reader.query('q', { ids: [e1.id] }), [e1], 'stored');

  t.same(await relay.core.addEvent(e1, { source: 'sync' }), { ok: true, message: 'duplicate: already have this event' });
  t.same(await relay.core.addEvent({ ...e1, sig: 'ab'.repeat(64) }, { source: 'sync' }), { ok: true, message: 'duplicate: already have this event' }, 'duplicates are found before signature work');
  const forged = alice.sign({ kind: 1, content: 'forged' });
  t.match(await relay.core.addEvent({ ...forged, content: 'changed' }, { source: 'sync' }), { ok: false, message: /^invalid: / });
  t.match(await relay.core.addEvent({ id: 'nope' }, { source: 'stream' }), { ok: false, message: /^invalid: / }, 'malformed input is refused, not thrown');
  t.match(await relay.core.addEvent(null, { source: 'stream' }), { ok: false, message: /^invalid: / });
  t.same(await relay.core.addEvent(alice.sign({ kind: 1, content: 'unprefixed' }), { source: 'stream' }), { ok: false, message: 'blocked: not on this relay' }, 'reasons are normalised');
  t.match(await relay.core.addEvent(alice.sign({ kind: 1, content: 'throw' }), { source: 'stream' }), { ok: false, message: /^error: / });
  const shadowed = alice.sign({ kind: 1, content: 'shadow' });
  t.same(await relay.core.addEvent(shadowed, { source: 'internal' }), { ok: true, message: '' });
  t.same(await reader.query('s', { ids: [shadowed.id] }), [], 'shadow-rejected: not stored');
  t.match(await relay.core.addEvent(alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', 'x']] }), { source: 'import' }), { ok: false, message: /^invalid: / }, 'AUTH events never enter the store');
  t.match(await relay.core.addEvent(alice.sign({ kind: 1, tags: [['expiration', String(now() - 5)]] }), { source: 'import' }), { ok: false, message: /^invalid: .*expired/ });
  // NIP-70 is about who publishes over a connection: a protected event arriving by sync was accepted under it elsewhere.
  const prot = alice.sign({ kind: 1, tags: [['-']], content: 'protected' });
  t.same(await relay.core.addEvent(prot, { source: 'sync' }), { ok: true, message: '' });
  const eph = alice.sign({ kind: 20001, content: 'ephemeral' });
  t.same(await relay.core.addEvent(eph, { source: 'stream' }), { ok: true, message: '' });
  t.same((await live.waitFor((f) => f[0] === 'EVENT' && (f[2] as { id: string }).id === eph.id))[2], eph, 'ephemeral events are delivered live');
  t.same(await reader.query('e', { ids: [eph.id] }), [], 'and never stored');

  // The same event from a socket and from addEvent at once: stored once, the other answer is duplicate:.
  const raced = alice.sign({ kind: 1, content: 'raced' });
  const [viaSocket, viaAdd] = await Promise.all([reader.publish(raced), relay.core.addEvent(raced, { source: 'sync' })]);
  t.same([viaSocket[0], viaAdd.ok], [true, true]);
  t.equal([viaSocket[1], viaAdd.message].filter((m) => m.startsWith('duplicate:')).length, 1, 'one of them is the duplicate');
  t.equal((await reader.query('r', { ids: [raced.id] })).length, 1);
  await live.close();
  await reader.close();
});

t.test('a duplicate is answered only once the original is durable', async (t) => {
  // The store's commit is visible to has() before its fsync completes; here the "fsync" of the
  // first write is held open by a gate over a real LMDB store, so the order can be observed.
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-dup-durable-'));
  const real = await openLmdbStore({ path: dir, purgeIntervalMs: 0 });
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const store: EventStore = { ...real, put: async (events, o) => { const out = await real.put(events, o); await gate; return out; } };
  const relay = await startTestRelay('ws', { store });
  t.teardown(async () => { await relay.close(); await real.close(); rmSync(dir, { recursive: true, force: true }); });
  const alice = signer();
  const e = alice.sign({ kind: 1, content: 'written once' });
  const first = await TestClient.connect(relay.url);
  const second = await TestClient.connect(relay.url);
  t.teardown(() => Promise.all([first.close(), second.close()]));
  first.send(['EVENT', e]);
  // Committed (has() sees it) while its write is still in progress.
  await until(() => real.has(e.id));
  second.send(['EVENT', e]);
  t.equal(await second.count('after', { ids: [e.id] }), 1, 'the second connection was served a later message meanwhile');
  t.notOk(second.frames.some((f) => f[0] === 'OK'), 'no OK for the duplicate while the original is not durable');
  t.notOk(first.frames.some((f) => f[0] === 'OK'));
  const cluster = relay.core.addEvent(e, { source: 'stream', cluster: 'stream' });
  open();
  t.same((await first.waitFor((f) => f[0] === 'OK')).slice(2), [true, '']);
  t.same((await second.waitFor((f) => f[0] === 'OK')).slice(2), [true, 'duplicate: already have this event']);
  t.same(await cluster, { ok: true, message: 'duplicate: already have this event' }, 'a cluster stream copy waits for it too');
});

t.test('cluster stream events: expiry on arrival is judged at the stream\'s time', async (t) => {
  const relay = await startTestRelay('ws');
  t.teardown(() => relay.close());
  const alice = signer();
  const live = await TestClient.connect(relay.url);
  t.teardown(() => live.close());
  await live.req('live', { authors: [alice.pubkey] });
  const T = now();
  const older = alice.sign({ kind: 30023, created_at: T - 100, tags: [['d', 'a']], content: 'older version' });
  const newer = alice.sign({ kind: 30023, created_at: T - 50, tags: [['d', 'a'], ['expiration', String(T - 10)]], content: 'newer version, expired by now' });
  t.same(await relay.core.addEvent(older, { source: 'stream', cluster: 'stream', acceptedAt: T - 60 }), { ok: true, message: '' });
  t.match(await relay.core.addEvent(newer, { source: 'stream', cluster: 'stream' }), { ok: false, message: /^invalid: event has expired/ }, 'without the stream\'s time: refused as expired');
  // The stream took it 30 s before its expiration: every node keeps it (it replaces the older
  // version, as on the nodes that stored it in time), serves it to nobody, and expiry removes it.
  t.same(await relay.core.addEvent(newer, { source: 'stream', cluster: 'stream', acceptedAt: T - 40 }), { ok: true, message: '' });
  const reader = await TestClient.connect(relay.url);
  t.teardown(() => reader.close());
  t.same(await reader.query('q', { authors: [alice.pubkey] }), [], 'neither version is served');
  t.same(await reader.query('q2', { ids: [older.id] }), [], 'the older version was replaced');
  const marker = alice.sign({ kind: 1, content: 'marker' });
  t.same(await relay.core.addEvent(marker, { source: 'stream', cluster: 'stream', acceptedAt: T }), { ok: true, message: '' });
  await live.waitFor((f) => f[0] === 'EVENT' && (f[2] as { id: string }).id === marker.id);
  t.same(live.frames.filter((f) => f[0] === 'EVENT').map((f) => (f[2] as { id: string }).id), [older.id, marker.id], 'the expired version was never delivered live');
  t.match(await relay.core.addEvent(alice.sign({ kind: 1, tags: [['expiration', String(T - 5)]] }), { source: 'sync', acceptedAt: T - 60 }), { ok: false, message: /expired/ }, 'acceptedAt counts only for the cluster\'s stream');
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}
