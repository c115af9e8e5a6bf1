// LMDB-specific behaviour: schema versioning, persistence across reopen and across a
// killed writer process, write batching, expired-event purge, close semantics.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { open } from 'lmdb';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { openLmdbStore, SCHEMA_VERSION } from '../src/store/lmdb-store.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';

const NOW = 1_700_000_000;
const clock = (): number => NOW;
const sk = generateSecretKey();
const sign = (kind: number, created_at: number, tags: string[][] = [], content = ''): NostrEvent =>
  finalizeEvent({ kind, created_at, tags, content }, sk) as NostrEvent;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-lmdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const idsOf = (js: string[]): string[] => js.map((j) => (JSON.parse(j) as NostrEvent).id);
/** Where the store applies writes: on the caller's thread, or on its own writer thread (the relay's choice). */
const WRITERS = ['inline', 'thread'] as const;

t.test('data, slots and tombstones survive close and reopen; sequence numbers continue', async (t) => {
  const dir = tempDir(t);
  const note = sign(1, NOW - 10, [['t', 'keep']]);
  const meta1 = sign(0, NOW - 20);
  const meta2 = sign(0, NOW - 10);
  const gone = sign(1, NOW - 30);
  const del = sign(5, NOW - 5, [['e', gone.id]]);
  let s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.equal(s.lastSeq(), 0, 'an empty store starts at seq 0');
  const first = await s.put([note, meta1, meta2, gone, del]);
  t.same(first.map((o) => (o.status === 'stored' ? o.seq : o.status)), [1, 2, 3, 4, 5]);
  t.equal(s.lastSeq(), 5, 'the watermark covers every committed event');
  await s.close();
  await t.rejects(s.put([sign(1, NOW)]), /closed/);
  await t.rejects(s.query([{}]), /closed/);

  s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  t.equal(s.size(), 3);
  t.same(idsOf(await s.query([{ '#t': ['keep'] }])), [note.id]);
  t.ok(s.has(meta2.id));
  t.same(await s.put([meta1]), [{ status: 'replaced' }]);
  t.same(await s.put([gone]), [{ status: 'deleted' }]);
  t.equal(s.lastSeq(), 5, 'the watermark is restored on open');
  const fresh = sign(1, NOW - 1);
  t.same(await s.put([fresh]), [{ status: 'stored', seq: 6, removed: [] }], 'sequence numbers continue after a reopen');
  t.same(idsOf(await s.query([{ kinds: [1] }])), [fresh.id, note.id], 'a new event does not overwrite an old one');
});

t.test('a store written by a newer schema is refused with a clear error', async (t) => {
  const dir = tempDir(t);
  const s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  await s.close();
  const raw = open({ path: dir, maxDbs: 16 });
  await raw.openDB('meta', {}).put('schemaVersion', SCHEMA_VERSION + 1);
  await raw.close();
  await t.rejects(openLmdbStore({ path: dir, purgeIntervalMs: 0 }), new RegExp(`schema version ${SCHEMA_VERSION + 1}.*newer`));
});

t.test('a schema 1 store is migrated on open: records repacked, the tag index rebuilt', async (t) => {
  const dir = tempDir(t);
  let s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  const tagged = Array.from({ length: 30 }, (_, i) => sign(i % 2 === 0 ? 1 : 7, NOW - i, [['t', 'x'], ['p', 'ab'.repeat(32)]]));
  await s.put(tagged);
  await s.close();
  // Claim schema 1 (whose header had the same length field at offset 0) with an empty tag index:
  // the migration must repack every record and rebuild the index from the events.
  const raw = open({ path: dir, maxDbs: 16 });
  raw.openDB('idx-tag', { keyEncoding: 'binary' }).clearSync();
  await raw.openDB('meta', {}).put('schemaVersion', 1);
  await raw.close();
  s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  const want = tagged.filter((e) => e.kind === 7).map((e) => e.id);
  t.same(idsOf(await s.query([{ kinds: [7], '#t': ['x'] }])), want);
  t.equal(await s.count([{ kinds: [1], '#p': ['ab'.repeat(32)] }]), 15);
});

t.test('a schema 3 store is migrated on open: its tag+kind index is dropped', async (t) => {
  const dir = tempDir(t);
  let s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  const tagged = Array.from({ length: 10 }, (_, i) => sign(i % 2 === 0 ? 1 : 7, NOW - i, [['p', 'ab'.repeat(32)]]));
  await s.put(tagged);
  await s.close();
  // What schema 3 had on top: a tag+kind index.
  let raw = open({ path: dir, maxDbs: 16 });
  const tables = (): number => (raw.getStats() as { entryCount: number }).entryCount;
  const before = tables();
  await raw.openDB('idx-tag-kind', { keyEncoding: 'binary' }).put(Buffer.from('x'), Buffer.alloc(0));
  await raw.openDB('meta', {}).put('schemaVersion', 3);
  t.equal(tables(), before + 1);
  await raw.close();
  s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.equal(await s.count([{ kinds: [7], '#p': ['ab'.repeat(32)] }]), 5);
  await s.close();
  raw = open({ path: dir, maxDbs: 16 });
  t.equal(raw.openDB('meta', {}).get('schemaVersion'), SCHEMA_VERSION);
  t.equal(tables(), before, 'the tag+kind table is gone');
  await raw.close();
});

t.test('a schema 2 store written by the previous release is migrated on open and answers like the oracle', async (t) => {
  // relay/test/fixtures/store-v2: a store the schema 2 code wrote, and the events it was fed (see its README).
  const fixture = (name: string): URL => new URL(`./fixtures/store-v2/${name}`, import.meta.url);
  const FIXTURE_NOW = 1_700_000_000;
  const fixtureClock = (): number => FIXTURE_NOW;
  const dir = tempDir(t);
  writeFileSync(join(dir, 'data.mdb'), gunzipSync(readFileSync(fixture('data.mdb.gz'))));
  const events = JSON.parse(readFileSync(fixture('events.json'), 'utf8')) as NostrEvent[];
  const raw = open({ path: dir, maxDbs: 16 });
  t.equal(raw.openDB('meta', {}).get('schemaVersion'), 2, 'the fixture is a schema 2 store');
  await raw.close();
  let s = await openLmdbStore({ path: dir, clock: fixtureClock, purgeIntervalMs: 0 });
  const oracle = createMemoryStore({ clock: fixtureClock });
  for (const e of events) await oracle.put([e]);
  t.equal(s.size(), oracle.size(), 'every stored event survives the migration');
  const hexA = 'ab'.repeat(32);
  const pubkeys = [...new Set(events.map((e) => e.pubkey))];
  const filters: Filter[] = [
    {}, { kinds: [1] }, { kinds: [7, 1], limit: 5 }, { '#p': [hexA] }, { '#p': [hexA.toUpperCase()] }, { '#p': [hexA], kinds: [30000] },
    { '#e': ['cd'.repeat(32)] }, { '#e': [events[0].id, events[3].id] }, { '#t': ['odd'] }, { '#t': ['odd', 'even'], kinds: [1] },
    { '#r': ['x'.repeat(1500)] }, { '#d': ['list'] }, { '#d': [''] }, { '#k': ['1'], kinds: [7] }, { '#i': ['https://example.com/repo.git'] },
    { authors: [pubkeys[0]] }, { authors: pubkeys.slice(1), kinds: [1, 5930] }, { ids: events.slice(0, 6).map((e) => e.id) },
    { since: FIXTURE_NOW - 950, until: FIXTURE_NOW - 380 }, { kinds: [5930] },
  ];
  const check = async (label: string, now: number): Promise<void> => {
    for (const f of filters) {
      t.same(await s.query([f], { now }), await oracle.query([f], { now }), `${label}: query ${JSON.stringify(f).slice(0, 80)}`);
      t.equal(await s.count([f], { now }), await oracle.count([f], { now }), `${label}: count ${JSON.stringify(f).slice(0, 80)}`);
    }
  };
  await check('migrated', FIXTURE_NOW);
  await check('migrated, after an expiration', FIXTURE_NOW + 20);
  // Tombstones, slots and sequence numbers carry over.
  for (const e of events) t.same(await s.put([e]), await oracle.put([e]), `re-put ${e.kind} ${e.id.slice(0, 8)}: same outcome`);
  const fresh = sign(1, FIXTURE_NOW - 1, [['p', hexA]]);
  const [stored] = await s.put([fresh]);
  await oracle.put([fresh]);
  t.ok(stored.status === 'stored' && stored.seq > events.length, 'new events get sequence numbers after the migrated ones');
  await s.close();
  s = await openLmdbStore({ path: dir, clock: fixtureClock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  await check('reopened', FIXTURE_NOW);
});

t.test('sequence numbers never repeat, even when the newest events are gone before a restart', async (t) => {
  const dir = tempDir(t);
  let s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  const a = sign(1, NOW - 10);
  const b = sign(1, NOW - 9);
  const del = sign(5, NOW - 8, [['e', b.id]]);
  const outcomes = await s.put([a, b, del]);
  const seqDel = outcomes[2].status === 'stored' ? outcomes[2].seq : 0;
  t.equal(seqDel, 3);
  await s.close();
  // b was deleted (seq 2); now drop the newest record (seq 3) too, as a purge of an expired event would.
  const raw = open({ path: dir, maxDbs: 16 });
  await raw.openDB('events', { keyEncoding: 'uint32', encoding: 'binary' }).remove(seqDel);
  await raw.close();
  s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  const [oc] = await s.put([sign(1, NOW - 7)]);
  t.ok(oc.status === 'stored' && oc.seq > seqDel, `the next seq (${oc.status === 'stored' ? oc.seq : oc.status}) is above every seq ever used (${seqDel})`);
});

t.test('the path is always a directory, even with an extension', async (t) => {
  const path = join(tempDir(t), 'relay.lmdb');
  const s = await openLmdbStore({ path, clock, purgeIntervalMs: 0 });
  const e = sign(1, NOW - 1);
  await s.put([e]);
  await s.close();
  const again = await openLmdbStore({ path, clock, purgeIntervalMs: 0 });
  t.teardown(() => again.close());
  t.ok(again.has(e.id));
  t.ok(statSync(join(path, 'data.mdb')).isFile());
});

t.test('an unusable path fails with an error, not a crash', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  await t.rejects(openLmdbStore({ path: join(file, 'db'), purgeIntervalMs: 0 }));
  await t.rejects(openLmdbStore({ path: '' }), /path must be a non-empty directory path/);
  await t.rejects(openLmdbStore({ path: join(dir, 'x'), maxLimit: 0 }), /maxLimit must be an integer >= 1 \(got 0\)/);
  await t.rejects(openLmdbStore({ path: join(dir, 'x'), purgeIntervalMs: -1 }), /purgeIntervalMs/);
});

for (const writer of WRITERS) {
t.test(`puts from many callers in one tick share one durable write transaction (writer ${writer})`, async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0, writer });
  t.teardown(() => s.close());
  const events = Array.from({ length: 300 }, (_, i) => sign(1, NOW - 100 + (i % 7), [], `n${i}`));
  const before = s.writerStats().transactions;
  const results = await Promise.all(events.map((e) => s.put([e])));
  t.ok(results.every((r) => r[0].status === 'stored'));
  t.equal(s.writerStats().transactions - before, 1, '300 put() calls → 1 transaction');
  t.equal(await s.count([{ kinds: [1] }]), 300);
});

t.test(`a transaction takes at most ~1000 events of queued puts; a larger single put stays whole (writer ${writer})`, async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0, writer });
  t.teardown(() => s.close());
  // Synthetic events (the store does not verify signatures): 2 500 single-event puts at once.
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  const synth = (i: number): NostrEvent => ({ id: hex(i + 1, 64), pubkey: 'ab'.repeat(32), created_at: NOW - (i % 50), kind: 1, tags: [], content: `s${i}`, sig: '0'.repeat(128) });
  const before = s.writerStats().transactions;
  const out = await Promise.all(Array.from({ length: 2500 }, (_, i) => s.put([synth(i)])));
  t.ok(out.every((o) => o[0].status === 'stored'));
  t.equal(s.writerStats().transactions - before, 3, '2 500 queued events → 3 transactions');
  const big = await s.put(Array.from({ length: 1500 }, (_, i) => synth(10_000 + i)));
  t.equal(big.length, 1500);
  t.equal(s.writerStats().transactions - before, 4, 'one 1 500-event put → one transaction');
  t.equal(await s.count([{}]), 4000);
});

t.test(`an acknowledged put survives the writer process being killed (writer ${writer})`, async (t) => {
  const dir = tempDir(t);
  const e = sign(1, NOW - 1, [], 'durable');
  // The child stores the event, reports once put() resolved, then is SIGKILLed without closing.
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', `
    import { openLmdbStore } from ${JSON.stringify(new URL('../src/store/lmdb-store.ts', import.meta.url).href)};
    const s = await openLmdbStore({ path: ${JSON.stringify(dir)}, purgeIntervalMs: 0, clock: () => ${NOW}, writer: ${JSON.stringify(writer)} });
    const [out] = await s.put([${JSON.stringify(e)}]);
    process.stdout.write(out.status + '\\n');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('..', import.meta.url).pathname });
  const [line] = await once(child.stdout, 'data') as [Buffer];
  t.equal(line.toString().trim(), 'stored');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  t.ok(s.has(e.id));
  t.same(idsOf(await s.query([{ ids: [e.id] }])), [e.id]);
});
}

t.test('purgeExpired removes expired events from disk and frees their slots', async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0, purgeBatch: 2 });
  t.teardown(() => s.close());
  const heartbeat = sign(11998, NOW - 10, [['expiration', String(NOW + 30)]]);
  const notes = [1, 2, 3].map((i) => sign(1, NOW - i, [['expiration', String(NOW + 10 * i)]]));
  const keep = sign(1, NOW - 50);
  await s.put([heartbeat, ...notes, keep]);
  t.equal(s.size(), 5);
  t.equal(await s.purgeExpired(NOW), 0, 'nothing expired yet');
  t.equal(await s.purgeExpired(NOW + 20), 2, 'expiration <= now is purged');
  t.equal(s.size(), 3);
  t.equal(await s.purgeExpired(NOW + 100), 2, 'at most purgeBatch per run');
  t.equal(await s.purgeExpired(NOW + 100), 0);
  t.same(idsOf(await s.query([{}], { now: NOW })), [keep.id]);
  // The heartbeat's replaceable slot is free again: an older version is accepted.
  const older = sign(11998, NOW - 20);
  t.match(await s.put([older]), [{ status: 'stored', removed: [] }]);
});

t.test('the planner picks the most selective index for the market\'s filter shapes', async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  const id = 'ab'.repeat(32);
  const pk = 'cd'.repeat(32);
  const many = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, '0'));
  const cases: [Filter, string, number][] = [
    [{ ids: [id, pk], kinds: [1] }, 'ids', 2],
    [{ kinds: [7000, 6050], '#e': [id] }, 'tag', 1],
    [{ kinds: [7000], '#p': [pk], authors: [pk, id] }, 'tag', 1],
    [{ kinds: [31990], '#k': ['5050'] }, 'tag', 1],
    [{ '#e': [id, pk] }, 'tag', 2],
    [{ '#t': ['nostr'], '#e': [id] }, 'tag', 1],
    [{ kinds: [1, 7, 5], '#p': many }, 'tag', 100],
    [{ authors: [pk], kinds: [0, 3] }, 'pubkey-kind', 2],
    [{ authors: [pk], kinds: [1], '#t': ['nostr'] }, 'pubkey-kind', 1],
    [{ authors: [pk], '#d': ['x'] }, 'pubkey', 1],
    [{ authors: many, kinds: [1, 7, 6] }, 'pubkey', 100],
    [{ authors: Array.from({ length: 300 }, (_, i) => (i + 1000).toString(16).padStart(64, '0')), kinds: [1] }, 'pubkey-kind', 300],
    [{ authors: [pk] }, 'pubkey', 1],
    [{ kinds: [5050, 5930], since: 1, until: 2 }, 'kind', 2],
    [{ since: 5 }, 'created-at', 1],
    [{ kinds: [] }, 'none', 0],
    [{ kinds: Array.from({ length: 40 }, (_, i) => 1000 + i), '#e': [id] }, 'tag', 1],
    [{ kinds: Array.from({ length: 40 }, (_, i) => 1000 + i), authors: [pk] }, 'pubkey', 1],
    [{ kinds: Array.from({ length: 8 }, (_, i) => 1000 + i), authors: [pk, id] }, 'pubkey-kind', 16],
  ];
  for (const [f, index, scans] of cases) t.same(s.explain(f), { index, scans }, JSON.stringify(f).slice(0, 80));
  // The coarse plans still answer exactly: post-filters check what the index does not.
  const mine = sign(1, NOW - 2, [['p', many[7]]]);
  const otherKind = sign(6, NOW - 1, [['p', many[7]]]);
  await s.put([mine, otherKind]);
  t.same(idsOf(await s.query([{ kinds: [1, 7, 5], '#p': many }])), [mine.id]);
  const author = (JSON.parse((await s.query([{ ids: [mine.id] }]))[0]) as NostrEvent).pubkey;
  t.same(idsOf(await s.query([{ authors: [...many, author], kinds: [1, 7, 5] }])), [mine.id]);
  t.equal(await s.count([{ authors: [...many, author], kinds: [1, 7, 5] }]), 1);
});

t.test('the purge timer removes events once they expire', async (t) => {
  let now = NOW;
  const s = await openLmdbStore({ path: tempDir(t), clock: () => now, purgeIntervalMs: 10 });
  t.teardown(() => s.close());
  await s.put([sign(1, NOW - 1, [['expiration', String(NOW + 5)]]), sign(1, NOW - 2)]);
  t.equal(s.size(), 2);
  now = NOW + 5;
  // Wait for the condition (bounded), not for a fixed time.
  const deadline = Date.now() + 5000;
  while (s.size() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.equal(s.size(), 1, 'the expired event was purged by the timer');
});

t.test('queryFrames returns exactly prefix + stored JSON + suffix, in query order', async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  const tied = Array.from({ length: 6 }, (_, i) => sign(1, NOW - 5, [['t', 'x']], `tie ${i} café 🎉`));
  await s.put([...tied, sign(7, NOW - 1, [['t', 'x']], 'plain'), sign(1, NOW - 9, [], '"quoted"\n')]);
  const prefix = Buffer.from('["EVENT","süb",');
  const suffix = Buffer.from(']');
  const cases: Filter[][] = [[{ kinds: [1] }], [{ '#t': ['x'], limit: 3 }], [{ kinds: [7] }, { kinds: [1], limit: 2 }], [{ ids: tied.map((e) => e.id), limit: 4 }]];
  for (const filters of cases) {
    const jsons = await s.query(filters);
    const frames = await s.queryFrames(filters, prefix, suffix);
    t.same(frames.map((f) => f.toString('utf8')), jsons.map((j) => `${prefix.toString()}${j}]`), JSON.stringify(filters));
    t.same(frames.map((f) => f.toString('latin1', prefix.length + 7, prefix.length + 71)), idsOf(jsons));
  }
});

t.test('close waits for queued writes', async (t) => {
  const s = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0 });
  const pending = s.put([sign(1, NOW - 1)]);
  await s.close();
  t.same((await pending).map((o) => o.status), ['stored']);
  t.equal(s.has('00'.repeat(32)), false);
});

t.test('two processes write to one store directory: sequence numbers stay unique and every write is seen', async (t) => {
  const dir = tempDir(t);
  const s = await openLmdbStore({ path: dir, clock, purgeIntervalMs: 0 });
  t.teardown(() => s.close());
  const [a] = await s.put([sign(1, NOW - 3, [], 'parent 1')]);
  t.match(a, { status: 'stored', seq: 1 });
  const childEvents = [sign(1, NOW - 2, [], 'child 1'), sign(1, NOW - 1, [], 'child 2')];
  // Another process (as `bazaar relay sync` beside a running relay) opens the same directory and writes.
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', `
    import { openLmdbStore } from ${JSON.stringify(new URL('../src/store/lmdb-store.ts', import.meta.url).href)};
    const s = await openLmdbStore({ path: ${JSON.stringify(dir)}, purgeIntervalMs: 0, clock: () => ${NOW} });
    const out = await s.put(${JSON.stringify(childEvents)});
    process.stdout.write(JSON.stringify(out.map((o) => o.seq)) + '\\n');
    await s.close();
  `], { stdio: ['ignore', 'pipe', 'inherit'], cwd: new URL('..', import.meta.url).pathname });
  const [line] = await once(child.stdout, 'data') as [Buffer];
  await once(child, 'exit');
  t.same(JSON.parse(line.toString()), [2, 3], 'the other process continues after our seq');
  // lmdb-js renews its read snapshot on the next turn of the event loop.
  await new Promise((r) => setImmediate(r));
  t.equal(s.lastSeq(), 3, 'the watermark covers the other process\'s commits');
  t.same(s.eventsAfter(0, 10).events.map((e) => e.seq), [1, 2, 3], 'followers of the store see them');
  const seen = idsOf(await s.query([{ kinds: [1] }], { maxSeq: s.lastSeq() }));
  t.ok(childEvents.every((e) => seen.includes(e.id)) && seen.length === 3, 'queries under the watermark see them');
  const [b] = await s.put([sign(1, NOW, [], 'parent 2')]);
  t.match(b, { status: 'stored', seq: 4 }, 'our next write continues after theirs instead of colliding');
  t.equal(await s.count([{ kinds: [1] }]), 4);
});

t.test('openIdScan: (created_at, id) of every match, the newest `limit` with one; agrees with the oracle', async (t) => {
  const lm = await openLmdbStore({ path: tempDir(t), clock, purgeIntervalMs: 0, maxLimit: 5 });
  t.teardown(() => lm.close());
  const mem = createMemoryStore({ clock, maxLimit: 5 });
  const evs: NostrEvent[] = [];
  for (let i = 0; i < 60; i++) evs.push(sign(i % 3 === 0 ? 7 : 1, NOW - 100 + Math.floor(i / 4), i % 5 === 0 ? [['t', 'x']] : [], String(i)));
  evs.push(sign(1, NOW - 200, [['expiration', String(NOW - 1)]])); // expired: refused by both stores
  await lm.put(evs);
  await mem.put(evs);
  const scan = (store: typeof mem, f: Filter, maxItems?: number): { n: number; items: string[] } => {
    const items: string[] = [];
    const c = store.openIdScan(f, { add: (ts, id, off) => items.push(`${ts}:${Buffer.from(id.subarray(off, off + 32)).toString('hex')}`) }, maxItems !== undefined ? { maxItems } : {});
    while (!c.step(performance.now() + 0.01));
    return { n: c.result(), items: items.sort() };
  };
  const filters: Filter[] = [{}, { kinds: [7] }, { '#t': ['x'] }, { limit: 7 }, { kinds: [1], limit: 3 }, { limit: 0 }, { since: NOW - 90, until: NOW - 88 }, { ids: [evs[3].id, evs[4].id], limit: 1 }, { kinds: [] }];
  for (const f of filters) {
    const a = scan(lm, f);
    t.same(a, scan(mem, f), `${JSON.stringify(f)}: same items as the oracle`);
  }
  t.equal(scan(lm, {}).n, 60, 'the relay\'s maxLimit does not cap an id scan');
  t.equal(scan(lm, {}, 59).n, -1, 'more matches than maxItems: -1');
  t.equal(scan(lm, {}, 60).n, 60);
  t.equal(scan(lm, { limit: 10 }, 9).n, -1);
});
