// NIP-77 on the relay: NEG-OPEN / NEG-MSG / NEG-CLOSE over real sockets, driven by our own
// initiator (test/negentropy.test.ts checks it against the reference vectors; interop with
// the C++ reference is negentropy-strfry.test.ts).
import { createHash } from 'node:crypto';
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { Negentropy } from '../src/sync/negentropy.ts';
import { NegentropyStorageBuilder, type NegentropyStorage } from '../src/sync/negentropy-storage.ts';
import { TestClient, signer, startTestRelay, type Frame } from './helpers.ts';

/** Synthetic stored events: the store never checks signatures; negentropy needs only ids and times. */
function synthetic(n: number, base: number, tag = 'x'): NostrEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: createHash('sha256').update(`${tag}${i}`).digest('hex'),
    pubkey: 'aa'.repeat(32),
    created_at: base + Math.floor(i / 3),
    kind: i % 2 === 0 ? 1 : 7,
    tags: [],
    content: '',
    sig: 'bb'.repeat(64),
  }));
}

function storageOf(events: readonly NostrEvent[]): NegentropyStorage {
  const b = new NegentropyStorageBuilder();
  for (const e of events) b.add(e.created_at, e.id);
  return b.seal();
}

const isNeg = (subId: string) => (f: Frame): boolean => (f[0] === 'NEG-MSG' || f[0] === 'NEG-ERR') && f[1] === subId;

/** Runs a whole reconciliation as the initiator over `client`; returns have/need (de-duplicated) and the rounds. */
async function reconcile(client: TestClient, subId: string, filter: object, mine: NegentropyStorage, frameLimit = 0): Promise<{ have: Set<string>; need: Set<string>; rounds: number }> {
  const neg = new Negentropy(mine, frameLimit);
  const have = new Set<string>();
  const need = new Set<string>();
  let from = client.frames.length;
  client.send(['NEG-OPEN', subId, filter, neg.initiate().toString('hex')]);
  for (let rounds = 1; ; rounds++) {
    const f = await client.waitFor(isNeg(subId), 30_000, from);
    if (f[0] === 'NEG-ERR') throw new Error(`NEG-ERR ${String(f[2])}`);
    const r = neg.reconcile(Buffer.from(f[2] as string, 'hex'));
    for (const id of r.have) have.add(id);
    for (const id of r.need) need.add(id);
    if (r.output === null) {
      client.send(['NEG-CLOSE', subId]);
      return { have, need, rounds };
    }
    from = client.frames.length;
    client.send(['NEG-MSG', subId, r.output.toString('hex')]);
  }
}

t.test('NEG-OPEN reconciles a filter\'s events with the client\'s set', async (t) => {
  const relay = await startTestRelay('uws');
  t.teardown(() => relay.close());
  const store = relay.core.opts.store;
  const shared = synthetic(3000, 1_700_000_000, 's');
  const onlyRelay = synthetic(400, 1_700_000_000, 'r');
  const onlyClient = synthetic(300, 1_700_000_000, 'c');
  await store.put([...shared, ...onlyRelay]);
  const c = await TestClient.connect(relay.url);
  t.teardown(() => c.close());

  const info = relay.core.info() as { supported_nips: number[] };
  t.ok(info.supported_nips.includes(77), 'NIP-11 lists 77');

  const all = await reconcile(c, 'all', {}, storageOf([...shared, ...onlyClient]));
  t.same([...all.need].sort(), onlyRelay.map((e) => e.id).sort(), 'need: exactly what only the relay has');
  t.same([...all.have].sort(), onlyClient.map((e) => e.id).sort(), 'have: exactly what only the client has');
  t.ok(all.rounds >= 2, `several rounds (${all.rounds})`);

  // The client's 4096-byte frames make many more rounds; the relay answers each.
  const small = await reconcile(c, 'small', {}, storageOf([...shared, ...onlyClient]), 4096);
  t.same([...small.need].sort(), [...all.need].sort(), 'same outcome with small client frames');
  t.ok(small.rounds > all.rounds, `more rounds with small frames (${small.rounds})`);

  // The filter selects the relay's side of the set.
  const kind7 = (e: NostrEvent): boolean => e.kind === 7;
  const k = await reconcile(c, 'kinds', { kinds: [7] }, storageOf([...shared, ...onlyClient].filter(kind7)));
  t.same([...k.need].sort(), onlyRelay.filter(kind7).map((e) => e.id).sort(), 'kinds filter');
  t.same([...k.have].sort(), onlyClient.filter(kind7).map((e) => e.id).sort());
  const union = await reconcile(c, 'union', [{ kinds: [7] }, { kinds: [1] }, { kinds: [1, 7] }], storageOf([...shared, ...onlyClient]));
  t.same([...union.need].sort(), [...all.need].sort(), 'an array of filters (strfry sync sends one) reconciles their union');
  t.same([...union.have].sort(), [...all.have].sort());
  const newest = [...shared, ...onlyRelay].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1)).slice(0, 10);
  const lim = await reconcile(c, 'limit', { limit: 10 }, storageOf([]));
  t.same([...lim.need].sort(), newest.map((e) => e.id).sort(), 'limit: the newest that many');
  const none = await reconcile(c, 'same', { kinds: [1] }, storageOf([...shared, ...onlyRelay].filter((e) => e.kind === 1)));
  t.same([none.have.size, none.need.size, none.rounds], [0, 0, 1], 'equal sets: one round, nothing to transfer');

  // Version negotiation: a v2 message is answered with the highest version the relay speaks.
  c.send(['NEG-OPEN', 'v2', {}, '62']);
  t.same(await c.waitFor(isNeg('v2')), ['NEG-MSG', 'v2', '61']);
});

t.test('NEG-ERR and NOTICE: bad input, limits, unknown and idle sessions', async (t) => {
  const relay = await startTestRelay('ws', { negentropy: { maxSyncEvents: 100, maxSessions: 2, idleTimeoutSecs: 1 } });
  t.teardown(() => relay.close());
  await relay.core.opts.store.put(synthetic(150, 1_700_000_000));
  const c = await TestClient.connect(relay.url);
  t.teardown(() => c.close());
  const init = new Negentropy(storageOf([])).initiate().toString('hex');
  const err = async (msg: unknown[], subId: string): Promise<string> => {
    const from = c.frames.length;
    c.send(msg);
    const f = await c.waitFor(isNeg(subId), 10_000, from);
    t.equal(f[0], 'NEG-ERR', `${JSON.stringify(msg).slice(0, 60)} → NEG-ERR`);
    return f[2] as string;
  };
  t.match(await err(['NEG-OPEN', 'a', {}, init], 'a'), /^blocked: .*more than 100 events/, 'too many matching events');
  t.match(await err(['NEG-OPEN', 'a', { kinds: 'x' }, init], 'a'), /^invalid: /, 'bad filter');
  t.match(await err(['NEG-OPEN', 'a', { search: 'x' }, init], 'a'), /^unsupported: /);
  t.match(await err(['NEG-OPEN', 'a', {}, 'zz'], 'a'), /^invalid: .*hex/, 'initial message not hex');
  t.match(await err(['NEG-OPEN', 'a', {}], 'a'), /^invalid: NEG-OPEN must be/, 'missing element');
  t.match(await err(['NEG-OPEN', 'a', { kinds: [7] }, '61ff'], 'a'), /^invalid: negentropy message does not parse/, 'protocol error');
  t.match(await err(['NEG-MSG', 'nope', '61'], 'nope'), /^closed: /, 'NEG-MSG for no session');
  t.match(await err(['NEG-OPEN', 'x'.repeat(65), {}, init], 'x'.repeat(65)), /^invalid: subscription id longer/);
  const from = c.frames.length;
  c.send(['NEG-OPEN', 42, {}, init]);
  t.match(await c.waitFor((f) => f[0] === 'NOTICE', 10_000, from), ['NOTICE', /^invalid: /], 'no usable id: NOTICE');

  // Sessions per connection; NEG-CLOSE frees one; a CLOSE of the same id does not.
  const open = async (subId: string): Promise<void> => {
    const f0 = c.frames.length;
    c.send(['NEG-OPEN', subId, { kinds: [7] }, init]);
    t.equal((await c.waitFor(isNeg(subId), 10_000, f0))[0], 'NEG-MSG', `session ${subId} open`);
  };
  await open('s1');
  await open('s2');
  t.match(await err(['NEG-OPEN', 's3', { kinds: [7] }, init], 's3'), /^rate-limited: too many open negentropy sessions/);
  c.send(['CLOSE', 's1']);
  c.send(['NEG-CLOSE', 's2']);
  await open('s3');
  t.match(await err(['NEG-MSG', 's2', '61'], 's2'), /^closed: /, 'a closed session is gone');
  // NEG-OPEN with an open id replaces it (NIP-77), so no new slot is taken.
  await open('s1');
  // s1 and s3 now sit idle past the timeout: the relay closes them and says so.
  const idle = await c.waitFor((f) => f[0] === 'NEG-ERR' && f[1] === 's1', 10_000, c.frames.length);
  t.match(idle[2], /^closed: no NEG-MSG for 1 seconds/, 'idle sessions are closed');
  t.equal(relay.core.negentropy!.size <= 1, true);
});

t.test('auth-required relays ask for AUTH first; NIP-77 can be turned off', async (t) => {
  const relay = await startTestRelay('ws', { info: { authRequired: true } });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  t.teardown(() => c.close());
  const init = new Negentropy(storageOf([])).initiate().toString('hex');
  c.send(['NEG-OPEN', 'a', {}, init]);
  t.match(await c.waitFor(isNeg('a')), ['NEG-ERR', 'a', /^auth-required: /]);
  const challenge = (c.frames.find((f) => f[0] === 'AUTH') as Frame)[1] as string;
  const alice = signer();
  const auth = alice.sign({ kind: 22242, tags: [['relay', relay.url], ['challenge', challenge]] });
  const f0 = c.frames.length;
  c.send(['AUTH', auth]);
  t.match(await c.waitFor((f) => f[0] === 'OK' && f[1] === auth.id, 10_000, f0), ['OK', auth.id, true]);
  const from = c.frames.length;
  c.send(['NEG-OPEN', 'b', {}, init]);
  t.equal((await c.waitFor(isNeg('b'), 10_000, from))[0], 'NEG-MSG', 'after AUTH');

  const off = await startTestRelay('ws', { negentropy: false });
  t.teardown(() => off.close());
  t.notOk((off.core.info() as { supported_nips: number[] }).supported_nips.includes(77), 'not advertised when off');
  const d = await TestClient.connect(off.url);
  t.teardown(() => d.close());
  d.send(['NEG-OPEN', 'a', {}, init]);
  t.match(await d.waitFor((f) => f[0] === 'NOTICE'), ['NOTICE', /^invalid: NIP-77 .* turned off/]);
});

t.test('a large NEG-OPEN is worked in slices: another client\'s REQ is answered first', async (t) => {
  const relay = await startTestRelay('uws');
  t.teardown(() => relay.close());
  const events = synthetic(40_000, 1_690_000_000, 'big');
  for (let i = 0; i < events.length; i += 5000) await relay.core.opts.store.put(events.slice(i, i + 5000));
  const syncer = await TestClient.connect(relay.url);
  const reader = await TestClient.connect(relay.url);
  t.teardown(() => syncer.close());
  t.teardown(() => reader.close());
  const slicesBefore = relay.core.queries.stats.slices;
  syncer.send(['NEG-OPEN', 'big', {}, new Negentropy(storageOf([])).initiate().toString('hex')]);
  const stored = await reader.query('one', { ids: [events[123].id] });
  t.equal(stored.length, 1);
  t.notOk(syncer.frames.some((f) => f[0] === 'NEG-MSG'), 'the REQ was answered before the 40 000-event scan finished');
  const f = await syncer.waitFor(isNeg('big'), 60_000);
  t.equal(f[0], 'NEG-MSG');
  t.ok(relay.core.queries.stats.slices - slicesBefore > 3, `the scan ran in ${relay.core.queries.stats.slices - slicesBefore} slices`);
});
