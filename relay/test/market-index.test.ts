// The market index inside a running relay: fed by the store (exactly-once follower), resumed
// after a restart, rebuilt by `bazaar relay reindex` (equal to the incremental state), NIP-85
// assertions signed by the relay's reputation key, the HTTP API and /metrics on both transports.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyEvent } from 'nostr-tools/pure';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { parseReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { openLmdbStore, type LmdbStore } from '../src/store/lmdb-store.ts';
import { startRelay, type RunningRelay } from '../src/server.ts';
import { open as openLmdb } from 'lmdb';
import { extractFact, type Fact } from '../src/market/facts.ts';
import { MarketIndex } from '../src/market/market-index.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { MarketState } from '../src/market/state.ts';
import { TestClient, TRANSPORTS } from './helpers.ts';
import { MarketScript, newKey, sign, type Key } from './market-kit.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const now = (): number => Math.floor(Date.now() / 1000);

interface Market {
  script: MarketScript;
  providers: Key[];
  buyers: Key[];
  deletedRequest: NostrEvent;
  expiringRequest: NostrEvent;
}

/** A small market: two providers, four buyers, every flow, replacements, a deletion, an expiring request. */
async function scriptMarket(): Promise<Market> {
  const m = new MarketScript();
  const T = now() - 6 * 3600;
  const providers = [newKey(), newKey()];
  const buyers = Array.from({ length: 4 }, newKey);
  m.announce(providers[0], T - 100, { name: 'first version' });
  m.announce(providers[0], T - 50, { name: 'Alpha compute', kinds: [5050, 5930], capacity: 4 });
  m.announce(providers[1], T - 40, { name: 'Beta sandbox', kinds: [5930], isolation: 'container', base: 5000 });
  const flows = ['paid', 'paid', 'prepaid', 'delivered', 'failed', 'declined', 'bad-preimage', 'paid', 'processing', 'requested'] as const;
  for (let i = 0; i < 30; i++) {
    const p = providers[i % 2];
    await m.job({ buyer: buyers[i % 4], provider: p, flow: flows[i % flows.length], at: T + i * 300, latency: 5 + (i % 7), kind: p === providers[1] ? 5930 : i % 3 ? 5050 : 5930, rating: i % 5 === 0 ? 0.9 : undefined });
  }
  const arbiter = newKey();
  const disputed = await m.job({ buyer: buyers[0], provider: providers[0], flow: 'paid', at: T + 10_000, latency: 9 });
  m.dispute(buyers[0], disputed.request, disputed.result!, providers[0], arbiter, T + 10_100);
  m.verdict(arbiter, disputed.request, buyers[0], providers[0], 'buyer', T + 10_200);
  const deleted = await m.job({ buyer: buyers[1], provider: providers[1], flow: 'paid', at: T + 11_000, kind: 5930 });
  const expiring = m.request(buyers[2], now() - 10, { provider: providers[0], expiration: now() + 600 });
  m.heartbeat(providers[0], now() - 90, { active: 0 });
  m.heartbeat(providers[0], now() - 30, { active: 1 });
  m.heartbeat(providers[1], now() - 20);
  return { script: m, providers, buyers, deletedRequest: deleted.request, expiringRequest: expiring };
}

async function publishAll(c: TestClient, events: readonly NostrEvent[], t: { fail(m: string): void }): Promise<void> {
  for (const e of events) {
    const [ok, msg] = await c.publish(e);
    if (!ok) t.fail(`refused ${e.kind}: ${msg}`);
  }
}

t.test('incremental index, restart, NIP-85 assertions, reindex equals incremental', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-market-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const market = await scriptMarket();
  const events = market.script.events;
  const half = Math.floor(events.length / 2);

  const open = async (): Promise<{ store: LmdbStore; relay: RunningRelay; client: TestClient }> => {
    const store = await openLmdbStore({ path: dataDir, purgeIntervalMs: 0 });
    const relay = await startRelay({ port: 0, dataDir, store, transport: 'ws', verifyWorkers: 0, market: { debounceMs: 0, minIntervalMs: 0 } });
    return { store, relay, client: await TestClient.connect(relay.url) };
  };
  const shut = async (r: { store: LmdbStore; relay: RunningRelay; client: TestClient }) => {
    await r.client.close();
    await r.relay.close();
    await r.store.close();
  };

  // First run: half of the market, then a clean stop.
  let r = await open();
  await publishAll(r.client, events.slice(0, half), t);
  await r.relay.market!.index.catchUp();
  t.ok(r.relay.market!.index.cursor > 0, 'the index follows the store');
  const firstIndex = r.relay.market!.index;
  await shut(r);
  // Reopened: the committed position and facts, nothing applied twice.
  const reopened = await MarketIndex.open({ path: join(dataDir, 'market', 'index') });
  t.equal(reopened.cursor, firstIndex.cursor, 'resumes from the committed position');
  t.equal(JSON.stringify(reopened.state.snapshot(1)), JSON.stringify(firstIndex.state.snapshot(1)), 'same state after reopening');
  await reopened.close();

  // Second run: resumes from the committed position, then the rest, a deletion and a purge.
  r = await open();
  const index = r.relay.market!.index;
  await publishAll(r.client, events.slice(half), t);
  const [okDel] = await r.client.publish(sign({ kind: 5, created_at: now(), content: '', tags: [['e', market.deletedRequest.id]] }, market.buyers[1]));
  t.ok(okDel, 'the buyer deletes one of its requests');
  t.ok(await r.store.purgeExpired(now() + 700) >= 1);
  t.notOk(r.store.has(market.expiringRequest.id), 'the expiring request is purged from the store');
  await index.catchUp();
  const state = index.state;
  t.equal(state.job(market.deletedRequest.id)?.requestSource, 'request', 'the deleted request\'s job stays in the index (a record of what happened)');
  t.ok(state.job(market.expiringRequest.id), 'so does the purged one');

  // Figures
  const [alpha, beta] = market.providers;
  const ra = state.reputation(alpha.pk);
  t.match(ra, { accepted: Number, paidJobs: Number, disputesOpened: 1, disputesLost: 1 });
  t.ok(ra.paidJobs > 0 && ra.paidJobs < (ra.accepted ?? 0));
  t.equal(state.directory(alpha.pk).announcement?.name, 'Alpha compute', 'the latest announcement');
  t.equal(state.directory(alpha.pk).heartbeat?.active, 1, 'the latest heartbeat');
  t.equal(state.directory(alpha.pk).live, true);

  // NIP-85: published, signed by the key NIP-11 announces, figures equal the index's.
  await r.relay.market!.publisher!.flush();
  const info = await (await fetch(r.relay.url.replace('ws', 'http'), { headers: { accept: 'application/nostr+json' } })).json() as { reputation_pubkey?: string };
  t.equal(info.reputation_pubkey, r.relay.market!.key.pubkey, 'NIP-11 reputation_pubkey');
  const assertions = await r.client.query('rep', { kinds: [30382], authors: [info.reputation_pubkey!] });
  t.same(assertions.map((e) => e.tags.find((x) => x[0] === 'd')![1]).sort(), state.providerKeys(), 'one assertion per provider (d = pubkey)');
  for (const e of assertions) {
    t.ok(verifyEvent(e as never), 'signature verifies under the reputation key');
    const p = parseReputationAssertion(e);
    t.ok(p.ok, 'parses');
    if (!p.ok) continue;
    const want = state.reputation(p.value.provider);
    t.match(p.value, { tier: want.tier, rank: want.rank, jobsSeen: want.jobsSeen, paidJobs: want.paidJobs, satsEarned: want.satsEarned, successRate: want.successRate, disputesLost: want.disputesLost, medianLatencySecs: want.medianLatencySecs, p90LatencySecs: want.p90LatencySecs, accepted: want.accepted, requests: want.requests });
    t.same(e.tags.find((x) => x[0] === 'p')?.[1], p.value.provider, 'p = d');
  }
  const profile = await r.client.query('profile', { kinds: [0], authors: [info.reputation_pubkey!] });
  t.match(JSON.parse(profile[0]?.content ?? '{}'), { name: /reputation/, about: /NIP-85/ }, 'kind 0 of the service key (NIP-85 appendix)');
  const published = r.relay.market!.publisher!.published;
  await r.relay.market!.publisher!.flush();
  t.equal(r.relay.market!.publisher!.published, published, 'nothing changed: nothing re-published');
  // One more paid job for beta: only beta's assertion is re-published, strictly newer.
  const m2 = new MarketScript();
  await m2.job({ buyer: market.buyers[3], provider: beta, flow: 'paid', at: now() - 60, kind: 5930 });
  const before = assertions.find((e) => e.tags[0][1] === beta.pk)!;
  await publishAll(r.client, m2.events, t);
  await index.catchUp();
  await r.relay.market!.publisher!.flush();
  t.ok(r.relay.market!.publisher!.published > published);
  const [alphaAfter] = await r.client.query('rep3', { kinds: [30382], authors: [info.reputation_pubkey!], '#d': [alpha.pk] });
  t.equal(alphaAfter.id, assertions.find((e) => e.tags[0][1] === alpha.pk)!.id, 'an unchanged provider is not re-published');
  const [after] = await r.client.query('rep2', { kinds: [30382], authors: [info.reputation_pubkey!], '#d': [beta.pk] });
  t.ok(after.created_at > before.created_at, 'the replacement is newer');
  t.equal(Number(after.tags.find((x) => x[0] === 'paid')![1]), Number(before.tags.find((x) => x[0] === 'paid')![1]) + 1);
  const keyMode = statSync(join(dataDir, 'market', 'reputation.key')).mode & 0o777;
  t.equal(keyMode, 0o600, 'the reputation key file is 0600');

  const at = now();
  const incremental = JSON.stringify(state.snapshot(at));
  await shut(r);

  // `bazaar relay reindex` (the real command) from sequence 0 rebuilds the same state.
  const run = spawnSync(process.execPath, ['scripts/bazaar.mjs', 'relay', 'reindex', '--data', dataDir, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { events: number; facts: number; jobs: number };
  t.ok(out.events > 0 && out.jobs > 30, `reindex output: ${run.stdout.trim()}`);
  const rebuilt = await MarketIndex.open({ path: join(dataDir, 'market', 'index') });
  t.equal(JSON.stringify(rebuilt.state.snapshot(at)), incremental, 'reindex equals incremental');
  await rebuilt.close();
  // A second rebuild fills the other fact log and switches back: the same state again.
  const again = spawnSync(process.execPath, ['scripts/bazaar.mjs', 'relay', 'reindex', '--data', dataDir, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  t.equal(again.status, 0, again.stderr);
  const rebuilt2 = await MarketIndex.open({ path: join(dataDir, 'market', 'index') });
  t.equal(JSON.stringify(rebuilt2.state.snapshot(at)), incremental, 'a second reindex equals incremental');
  await rebuilt2.close();
  const env = openLmdb({ path: join(dataDir, 'market', 'index'), maxDbs: 8, readOnly: true });
  const logs = ['fact-log-a', 'fact-log-b'].map((n) => [...env.openDB<unknown, number>(n, {}).getKeys({})]);
  t.same(logs.map((k) => k.length === 0), [false, true], 'after two rebuilds the first log is in use, the other emptied');
  t.same(logs[0], logs[0].map((_, i) => i + 1), 'facts are keyed 1, 2, 3 … in the order they were applied');
  await env.close();
  // --from-scratch describes only what is stored: the deleted and the purged requests are gone.
  const scratch = spawnSync(process.execPath, ['scripts/bazaar.mjs', 'relay', 'reindex', '--data', dataDir, '--from-scratch', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  t.equal(scratch.status, 0, scratch.stderr);
  const fresh = await MarketIndex.open({ path: join(dataDir, 'market', 'index') });
  t.equal(fresh.state.job(market.expiringRequest.id), undefined, 'from scratch: the purged request is gone');
  t.equal(fresh.state.job(market.deletedRequest.id)?.requestSource, 'embedded', 'from scratch: the deleted request is known only from the result embedding it');
  await fresh.close();
  const bad = spawnSync(process.execPath, ['scripts/bazaar.mjs', 'relay', 'reindex', '--data', join(dataDir, 'nope')], { cwd: ROOT, encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /no relay store/);
});

for (const transport of TRANSPORTS) {
  t.test(`HTTP API and /metrics over ${transport}`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-market-api-'));
    const relay = await startRelay({ port: 0, dataDir, transport, verifyWorkers: 0, market: { debounceMs: 0, minIntervalMs: 0 } });
    t.teardown(async () => {
      await relay.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const market = await scriptMarket();
    const client = await TestClient.connect(relay.url);
    t.teardown(() => client.close());
    await publishAll(client, market.script.events, t);
    const [bogus] = await client.publish({ ...market.script.events.find((e) => e.kind === 5050)!, sig: '00'.repeat(64) });
    t.equal(bogus, true, 'a duplicate id is acknowledged (it is already stored)');
    await client.publish({ ...sign({ kind: 1, created_at: now(), content: 'x', tags: [] }, newKey()), sig: '11'.repeat(64) });
    await relay.market!.index.catchUp();
    const base = relay.url.replace('ws', 'http');
    const get = async (path: string) => {
      const res = await fetch(base + path);
      return { status: res.status, type: res.headers.get('content-type'), body: res.headers.get('content-type')?.includes('json') ? await res.json() as Record<string, unknown> : await res.text() };
    };
    const [alpha, beta] = market.providers;
    const all = (await get('/api/providers')).body as { providers: { pubkey: string; reputation: { tier: number; rank: number } }[] };
    t.same(all.providers.map((p) => p.pubkey).sort(), [alpha.pk, beta.pk].sort());
    t.same(((await get('/api/providers?kind=5050')).body as typeof all).providers.map((p) => p.pubkey), [alpha.pk], 'filter by capability');
    t.same(((await get('/api/providers?max_price=10000')).body as typeof all).providers.map((p) => p.pubkey), [beta.pk], 'filter by price (msats)');
    t.same(((await get('/api/providers?min_tier=1')).body as typeof all).providers, [], 'filter by tier');
    t.same(((await get('/api/providers?live=1')).body as typeof all).providers.length, 2);
    t.equal((await get('/api/providers?kind=abc')).status, 400);
    const one = await get(`/api/providers/${alpha.pk}`);
    t.equal(one.status, 200);
    t.match(one.body, { pubkey: alpha.pk, name: 'Alpha compute', kinds: [5050, 5930], live: true, reputation: { disputesLost: 1 }, charts: { hourly: Array, latencies: Array }, jobs: Array });
    t.equal((await get(`/api/providers/${'ab'.repeat(32)}`)).status, 404);
    t.equal((await get('/api/providers/xyz')).status, 400);
    const jobId = market.script.events.find((e) => e.kind === 39300)!.tags[0][1];
    const job = await get(`/api/jobs/${jobId}`);
    t.match(job.body, { id: jobId, state: 'resolved', verdict: { ruling: 'buyer' }, timeline: Array });
    t.same(((job.body as { timeline: { what: string }[] }).timeline).map((x) => x.what), ['requested', 'processing', 'result', 'receipt', 'dispute', 'verdict: buyer']);
    t.equal((await get(`/api/jobs/${'cd'.repeat(32)}`)).status, 404);
    t.match((await get('/api/jobs?state=paid&limit=3')).body, { jobs: Array });
    t.equal((await get('/api/jobs?state=bogus')).status, 400);
    const stats = await get('/api/stats');
    t.match(stats.body, { providers: 2, live: 2, jobs: Number, paidJobs: Number, reputationPubkey: relay.market!.key.pubkey, jobsByState: { paid: Number, resolved: 1 } });
    const page = await get('/');
    t.match(page.type, /text\/html/);
    t.match(page.body, /<title>Bazaar market<\/title>/);
    t.match((await get('/app.js')).type, /javascript/);
    const nip11 = await fetch(base, { headers: { accept: 'application/nostr+json' } });
    t.match(await nip11.json(), { reputation_pubkey: relay.market!.key.pubkey }, 'NIP-11 still at / for nostr clients');
    await client.query('q1', { kinds: [5050], limit: 5 });
    // Settle the publisher so no assertion is stored between the scrape and the comparison.
    await relay.market!.index.catchUp();
    await relay.market!.publisher!.flush();
    // /metrics, parsed by a Prometheus text-format parser
    const metrics = await get('/metrics');
    t.match(metrics.type, /text\/plain/);
    const families = parsePrometheusTextFormat(metrics.body as string);
    const fam = (name: string) => families.find((f) => f.name === name);
    const value = (name: string, labels: Record<string, string> = {}) => Number(fam(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);
    t.equal(fam('bazaar_relay_connections')?.type, 'GAUGE');
    t.equal(value('bazaar_relay_connections'), 1);
    t.equal(fam('bazaar_relay_events_stored_total')?.type, 'COUNTER');
    t.equal(value('bazaar_relay_events_stored_total'), relay.core.stats.eventsStored);
    t.ok(value('bazaar_relay_events_stored_total') >= market.script.events.length);
    t.equal(value('bazaar_relay_events_rejected_total', { reason: 'invalid' }), 1, 'rejections by reason');
    t.ok(value('bazaar_relay_events_sent_total') >= 1);
    const q = fam('bazaar_relay_query_seconds');
    t.equal(q?.type, 'HISTOGRAM');
    t.ok(Number((q!.metrics[0] as unknown as { count: string }).count) >= 1, 'query latency observed');
    t.equal(value('bazaar_market_jobs', { state: 'resolved' }), 1, 'jobs by state');
    t.equal(value('bazaar_market_providers', { live: 'true' }), 2);
    t.ok(value('bazaar_market_index_events_total') >= market.script.events.length - 1);
  });
}

t.test('an index of schema 1 (facts keyed by event id) is upgraded in place to the fact log', async (t) => {
  const market = await scriptMarket();
  const facts = market.script.events.map((e) => extractFact(e)).filter((f): f is Fact => f !== undefined);
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-market-v1-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const v1 = openLmdb({ path: dir, maxDbs: 8 });
  await v1.transaction(() => {
    const old = v1.openDB<Fact, string>('facts', {});
    for (const f of facts) old.putSync(f.id, f);
    const meta = v1.openDB<unknown, string>('meta', {});
    meta.putSync('schemaVersion', 1);
    meta.putSync('factsVersion', 2);
    meta.putSync('cursor', 1234);
  });
  await v1.close();
  const at = now();
  const want = new MarketState();
  for (const f of market.script.events.map((e) => extractFact(e))) if (f) want.add(f);
  for (let round = 0; round < 2; round++) {
    const idx = await MarketIndex.open({ path: dir });
    t.equal(JSON.stringify(idx.state.snapshot(at)), JSON.stringify(want.snapshot(at)), `every fact is there (open ${round + 1})`);
    t.equal(idx.cursor, 1234, 'the position is kept');
    await idx.close();
  }
  const env = openLmdb({ path: dir, maxDbs: 8, readOnly: true });
  t.equal(env.openDB<unknown, string>('meta', {}).get('schemaVersion'), 2);
  t.equal([...env.openDB<unknown, string>('facts', {}).getKeys({})].length, 0, 'the old table is emptied');
  t.equal([...env.openDB<unknown, number>('fact-log-a', {}).getKeys({})].length, facts.length, 'each fact once in the log');
  await env.close();
});

t.test('a reindex that fails half-way leaves the index as it was, still appending', async (t) => {
  const market = await scriptMarket();
  const facts = market.script.events.map((e) => extractFact(e)).filter((f): f is Fact => f !== undefined);
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-market-fail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = now();
  const idx = await MarketIndex.open({ path: dir });
  await idx.addFacts(facts.slice(0, -1));
  const before = JSON.stringify(idx.state.snapshot(at));
  const broken = { eventsAfter() { throw new Error('the store went away'); } } as unknown as EventStore;
  await t.rejects(idx.reindex(broken), /the store went away/);
  t.equal(JSON.stringify(idx.state.snapshot(at)), before, 'the state is the one before the rebuild');
  t.same(await idx.addFacts(facts.slice(-1)), facts.slice(-1), 'the next fact is appended to the log in use');
  await idx.close();
  const reopened = await MarketIndex.open({ path: dir });
  t.equal(reopened.state.size, facts.length, 'every fact is there after a reopen');
  await reopened.close();
});
