// Live subscriptions by watermark: REQs opened while events keep being stored receive every
// matching event exactly once — from the stored query (up to the watermark) or live (above
// it) — with the live ones after the stored ones and EOSE. Both stores; real signatures.
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { createMemoryStore } from '../src/store/memory-store.ts';
import { TestClient, signer, startTestRelay } from './helpers.ts';

for (const storeName of ['lmdb', 'memory'] as const) {
  t.test(`every event exactly once across the stored/live boundary (${storeName} store)`, async (t) => {
    const relay = await startTestRelay('ws', storeName === 'memory' ? { store: createMemoryStore() } : {});
    t.teardown(() => relay.close());
    const alice = signer();
    const other = signer();
    const events = Array.from({ length: 240 }, (_, i) => (i % 4 === 3 ? other : alice).sign({ kind: 1, content: `n${i}`, created_at: 1_700_000_000 + (i % 17) }));
    const mine = events.filter((e) => e.pubkey === alice.pubkey);
    const subs: { c: TestClient; subId: string }[] = [];
    // Publish in waves through the one ingest entry point; open a subscription between waves,
    // while the previous wave is still being stored and broadcast.
    const inFlight: Promise<unknown>[] = [];
    let previous: Promise<unknown> = Promise.resolve();
    for (let wave = 0; wave < 8; wave++) {
      const current = events.slice(wave * 30, wave * 30 + 30).map((e) => relay.core.addEvent(e, { source: 'import' }));
      inFlight.push(...current);
      // The previous wave is stored, this one is on its way: the REQ lands in between.
      await previous;
      previous = Promise.all(current);
      const c = await TestClient.connect(relay.url);
      const subId = `w${wave}`;
      c.send(['REQ', subId, { authors: [alice.pubkey], kinds: [1], limit: 1000 }]);
      subs.push({ c, subId });
    }
    const results = await Promise.all(inFlight);
    t.ok(results.every((r) => (r as { ok: boolean }).ok), 'every event accepted');
    for (const { c, subId } of subs) {
      await c.waitFor((f) => f[0] === 'EOSE' && f[1] === subId);
      // Everything is stored and broadcast by now; a round trip on this connection flushes what is in flight.
      await c.query('sync', { ids: [events[0].id] });
      const got = c.frames.filter((f) => f[0] === 'EVENT' && f[1] === subId).map((f) => (f[2] as NostrEvent).id);
      t.equal(got.length, new Set(got).size, `${subId}: no event twice`);
      t.same(new Set(got), new Set(mine.map((e) => e.id)), `${subId}: every matching event, nothing else`);
      // Before EOSE: the stored events, newest first, then those held while the query ran.
      const eose = c.frames.findIndex((f) => f[0] === 'EOSE' && f[1] === subId);
      const before = c.frames.slice(0, eose).filter((f) => f[0] === 'EVENT' && f[1] === subId).length;
      t.ok(before + c.frames.slice(eose).filter((f) => f[0] === 'EVENT' && f[1] === subId).length === mine.length, `${subId}: ${before} before EOSE, the rest live`);
      await c.close();
    }
  });
}

t.test('an event committed before a REQ but announced after it is sent once, by the stored query', async (t) => {
  // A store whose writes are visible at once but acknowledged only when the test says so: the
  // window between an LMDB commit and its flush, held open.
  const inner = createMemoryStore();
  let release!: () => void;
  let committed!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const wrote = new Promise<void>((r) => (committed = r));
  const store = {
    ...inner,
    put: async (events: readonly NostrEvent[]) => {
      const out = await inner.put(events);
      committed();
      await gate;
      return out;
    },
  };
  const relay = await startTestRelay('ws', { store });
  t.teardown(() => relay.close());
  const alice = signer();
  const early = alice.sign({ kind: 1, content: 'committed, not yet announced' });
  const adding = relay.core.addEvent(early, { source: 'import' });
  await wrote;
  const c = await TestClient.connect(relay.url);
  const stored = await c.req('s', { authors: [alice.pubkey] });
  t.same(stored.map((e) => e.id), [early.id], 'the stored query has it (its seq is within the watermark)');
  release();
  t.same(await adding, { ok: true, message: '' });
  const late = alice.sign({ kind: 1, content: 'after the REQ' });
  t.same(await relay.core.addEvent(late, { source: 'import' }), { ok: true, message: '' });
  await c.waitFor((f) => f[0] === 'EVENT' && (f[2] as NostrEvent).id === late.id);
  await c.query('sync', { ids: [late.id] });
  const ids = c.frames.filter((f) => f[0] === 'EVENT' && f[1] === 's').map((f) => (f[2] as NostrEvent).id);
  t.same(ids, [early.id, late.id], 'each once: the early one stored, the late one live');
  await c.close();
});
