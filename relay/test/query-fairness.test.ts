// Fair query execution over real sockets and a real LMDB store large enough that one COUNT
// needs many time slices: a client flooding heavy COUNTs slows itself, not others; a
// connection's queries are capped; CLOSE and disconnect stop work in progress.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RunningRelay } from '../src/server.ts';
import { openLmdbStore } from '../src/store/lmdb-store.ts';
import { TestClient, type Frame } from './helpers.ts';

/** Events in the store; every one carries ["t","common"], half carry ["k","x"]. */
const EVENTS = Number(process.env.FAIRNESS_EVENTS ?? 60_000);
const NOW = Math.floor(Date.now() / 1000);
/** Two tag conditions: no index implies both, so counting walks every ["t","common"] entry. */
const HEAVY = { '#t': ['common'], '#k': ['x'] };
/** Walks every entry too, and finds nothing. */
const HEAVY_REQ = { '#t': ['common'], '#k': ['nothing'], limit: 10 };

const dir = mkdtempSync(join(tmpdir(), 'bazaar-fairness-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// The store does not verify signatures: synthetic events keep a large store cheap to build.
const sample: NostrEvent[] = [];
{
  const store = await openLmdbStore({ path: dir, purgeIntervalMs: 0 });
  const authors = Array.from({ length: 20 }, () => randomBytes(32).toString('hex'));
  for (let i = 0; i < EVENTS; i += 2000) {
    const batch: NostrEvent[] = [];
    for (let j = i; j < Math.min(EVENTS, i + 2000); j++) {
      batch.push({ id: randomBytes(32).toString('hex'), pubkey: authors[j % 20], created_at: NOW - 100_000 + j, kind: 1, tags: [['t', 'common'], ['k', j % 2 ? 'x' : 'y']], content: '', sig: 'ab'.repeat(64) });
    }
    await store.put(batch);
    sample.push(batch[7]);
  }
  await store.close();
}

async function relayOn(t: Test, maxQueries?: number): Promise<RunningRelay> {
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dir, transport: 'uws', verifyWorkers: 0, ...(maxQueries ? { limits: { maxQueries } } : {}) });
  t.teardown(() => relay.close());
  return relay;
}

/** Waits on the relay's state (same process): resolves once `cond` holds, checked every loop turn. */
async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

t.test('an innocent REQ is answered while 20 heavy COUNTs run on another connection', async (t) => {
  const relay = await relayOn(t);
  const log: [string, Frame][] = [];
  const flooder = await TestClient.connect(relay.url);
  const innocent = await TestClient.connect(relay.url);
  flooder.ws.on('message', (d) => log.push(['flooder', JSON.parse(String(d)) as Frame]));
  innocent.ws.on('message', (d) => log.push(['innocent', JSON.parse(String(d)) as Frame]));
  for (let i = 0; i < 20; i++) flooder.send(['COUNT', `heavy-${i}`, HEAVY]);
  await until(() => relay.core.queries.size === 20, 'all 20 COUNTs are in progress');
  const want = sample[3];
  const got = await innocent.query('innocent', { ids: [want.id] });
  t.same(got.map((e) => e.id), [want.id], 'the innocent REQ gets its event');
  const eose = log.findIndex(([who, f]) => who === 'innocent' && f[0] === 'EOSE');
  const firstCount = log.findIndex(([who, f]) => who === 'flooder' && f[0] === 'COUNT');
  t.ok(eose >= 0 && (firstCount === -1 || eose < firstCount), `answered before any heavy COUNT finished (EOSE at ${eose}, first COUNT at ${firstCount})`);
  t.ok(relay.core.queries.size > 0, 'the COUNTs were still running');
  const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => flooder.waitFor((f) => f[0] === 'COUNT' && f[1] === `heavy-${i}`, 120_000)));
  t.same(new Set(counts.map((f) => (f[2] as { count: number }).count)), new Set([EVENTS / 2]), 'every COUNT is answered, exactly');
  t.ok(relay.core.queries.stats.slices > 40, `the COUNTs ran in many slices (${relay.core.queries.stats.slices})`);
  await flooder.close();
  await innocent.close();
});

t.test('heavy REQs from one connection do not hold back another connection either', async (t) => {
  const relay = await relayOn(t);
  const flooder = await TestClient.connect(relay.url);
  const innocent = await TestClient.connect(relay.url);
  let floodDone = 0;
  flooder.ws.on('message', (d) => { if (String(d).startsWith('["EOSE"')) floodDone++; });
  for (let i = 0; i < 10; i++) flooder.send(['REQ', `heavy-${i}`, HEAVY_REQ]);
  await until(() => relay.core.queries.size === 10, 'all 10 REQs are in progress');
  t.same((await innocent.query('innocent', { ids: [sample[1].id] })).map((e) => e.id), [sample[1].id]);
  t.equal(floodDone, 0, 'no heavy REQ had finished when the innocent one was answered');
  for (let i = 0; i < 10; i++) await flooder.waitFor((f) => f[0] === 'EOSE' && f[1] === `heavy-${i}`, 120_000);
  await flooder.close();
  await innocent.close();
});

t.test('a connection has at most maxQueries in progress; more get CLOSED rate-limited:', async (t) => {
  const relay = await relayOn(t, 3);
  const c = await TestClient.connect(relay.url);
  for (let i = 0; i < 4; i++) c.send(['COUNT', `q${i}`, HEAVY]);
  const refused = await c.waitFor((f) => f[0] === 'CLOSED' && f[1] === 'q3');
  t.match(refused[2], /^rate-limited: too many queries in progress/);
  for (let i = 0; i < 3; i++) t.equal(((await c.waitFor((f) => f[0] === 'COUNT' && f[1] === `q${i}`, 60_000))[2] as { count: number }).count, EVENTS / 2);
  t.equal((await c.count('after', { ids: [sample[0].id] })), 1, 'room again once they are answered');
  await c.close();
});

t.test('CLOSE stops a COUNT or a REQ in progress', async (t) => {
  const relay = await relayOn(t);
  const c = await TestClient.connect(relay.url);
  c.send(['COUNT', 'doomed-count', HEAVY]);
  c.send(['REQ', 'doomed-req', HEAVY_REQ]);
  c.send(['CLOSE', 'doomed-count']);
  c.send(['CLOSE', 'doomed-req']);
  // Messages are handled in order: once this answer is in, both CLOSEs were handled.
  await c.query('marker', { ids: [sample[2].id] });
  t.equal(relay.core.queries.size, 0, 'no query left in progress');
  // The same heavy work again, to completion: the closed ones would have been answered by now.
  t.equal(await c.count('again', HEAVY), EVENTS / 2);
  t.same(c.frames.filter((f) => f[1] === 'doomed-count' || f[1] === 'doomed-req'), [], 'nothing was ever sent for the closed queries');
  await c.close();
});

t.test('a disconnect stops the connection\'s queries', async (t) => {
  const relay = await relayOn(t);
  const c = await TestClient.connect(relay.url);
  for (let i = 0; i < 20; i++) c.send(['COUNT', `gone-${i}`, HEAVY]);
  await until(() => relay.core.queries.size === 20, 'all 20 COUNTs are in progress');
  const gone = new Promise<void>((r) => relay.core.once('disconnect', () => r()));
  await c.close();
  await gone;
  t.equal(relay.core.queries.size, 0, 'nothing left to run for a closed connection');
});
