// `bazaar indexer` against the real strfry (/work/shared/bin/strfry): it subscribes to the market
// kinds, builds the same index as the relay's reducers (in arrival order) and publishes the same
// NIP-85 assertions back to strfry, signed by its own key. Skipped, with the reason, without strfry.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyEvent } from 'nostr-tools/pure';
import { findStrfry, startStrfryChild } from '@bazaar/testkit/strfry';
import { parseReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { extractFact } from '../src/market/facts.ts';
import { MarketState } from '../src/market/state.ts';
import { startSidecar } from '../src/market/sidecar.ts';
import { TestClient } from './helpers.ts';
import { MarketScript, newKey } from './market-kit.ts';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const STRFRY = findStrfry(ROOT, process.env.BAZAAR_STRFRY);

t.test('the sidecar indexes strfry and publishes the same assertions', { skip: STRFRY.path ? false : STRFRY.reason! }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-sidecar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const strfry = await startStrfryChild({ binary: STRFRY.path!, workDir: join(dir, 'strfry') });
  t.teardown(() => strfry.stop());
  const client = await TestClient.connect(strfry.url);
  t.teardown(() => client.close());

  // A market: 2 providers, 3 buyers, every flow, a dispute; half before the sidecar starts.
  const m = new MarketScript();
  const T = Math.floor(Date.now() / 1000) - 3600;
  const providers = [newKey(), newKey()];
  const buyers = [newKey(), newKey(), newKey()];
  m.announce(providers[0], T - 10, { name: 'Alpha' });
  m.announce(providers[1], T - 10, { name: 'Beta', kinds: [5930] });
  const flows = ['paid', 'prepaid', 'delivered', 'failed', 'declined', 'paid', 'bad-preimage'] as const;
  for (let i = 0; i < 21; i++) await m.job({ buyer: buyers[i % 3], provider: providers[i % 2], flow: flows[i % flows.length], at: T + i * 60, latency: 3 + (i % 4), kind: i % 2 ? 5930 : 5050 });
  const arbiter = newKey();
  const d = await m.job({ buyer: buyers[0], provider: providers[0], flow: 'paid', at: T + 2000 });
  m.dispute(buyers[0], d.request, d.result!, providers[0], arbiter, T + 2100);
  m.verdict(arbiter, d.request, buyers[0], providers[0], 'buyer', T + 2200);
  const half = Math.floor(m.events.length / 2);
  for (const e of m.events.slice(0, half)) {
    const [ok, msg] = await client.publish(e);
    t.ok(ok, msg || `stored ${e.kind}`);
  }

  const sidecar = await startSidecar({ relayUrl: strfry.url, dataDir: join(dir, 'indexer'), debounceMs: 0, minIntervalMs: 0 });
  t.teardown(() => sidecar.close());
  await sidecar.caughtUp;
  t.equal(sidecar.index.state.size, half, 'the backlog is indexed (every published event is a market fact)');
  // The rest arrives live.
  for (const e of m.events.slice(half)) await client.publish(e);

  // Reference: the same reducers over the same events, in script order.
  const reference = new MarketState();
  for (const e of m.events) reference.add(extractFact(e)!);

  // Wait until strfry holds an assertion per provider with the reference figures (frames, not time).
  const sub = await TestClient.connect(strfry.url);
  t.teardown(() => sub.close());
  const expected = new Map(providers.map((p) => [p.pk, reference.reputation(p.pk)]));
  const latest = new Map<string, ReturnType<typeof parseReputationAssertion>>();
  const matches = () => providers.every((p) => {
    const a = latest.get(p.pk);
    const r = expected.get(p.pk)!;
    return a?.ok && a.value.paidJobs === r.paidJobs && a.value.accepted === r.accepted && a.value.disputesLost === r.disputesLost && a.value.resultsDelivered === r.resultsDelivered;
  });
  sub.send(['REQ', 'rep', { kinds: [30382], authors: [sidecar.key.pubkey] }]);
  await sub.waitFor((f) => {
    if (f[0] !== 'EVENT' || f[1] !== 'rep') return false;
    const e = f[2] as Parameters<typeof parseReputationAssertion>[0] & { id: string; sig: string; pubkey: string };
    if (!verifyEvent(e as never)) return false;
    const p = parseReputationAssertion(e);
    if (p.ok) {
      const cur = latest.get(p.value.provider);
      if (!cur || !cur.ok || cur.value.createdAt <= p.value.createdAt) latest.set(p.value.provider, p);
    }
    return matches();
  }, 60_000);
  t.ok(matches(), 'strfry holds assertions with the reference figures');
  for (const p of providers) {
    const a = latest.get(p.pk)!;
    if (!a.ok) continue;
    const r = expected.get(p.pk)!;
    t.match(a.value, { provider: p.pk, tier: r.tier, rank: r.rank, jobsSeen: r.jobsSeen, paidJobs: r.paidJobs, successRate: r.successRate, satsEarned: r.satsEarned, medianLatencySecs: r.medianLatencySecs, p90LatencySecs: r.p90LatencySecs, requests: r.requests, accepted: r.accepted, disputesLost: r.disputesLost }, `figures for ${p.pk.slice(0, 8)}`);
  }
  // The whole state equals the reference (arrival order vs script order).
  await sidecar.index.catchUp();
  const at = Math.floor(Date.now() / 1000);
  t.equal(JSON.stringify(sidecar.index.state.snapshot(at)), JSON.stringify(reference.snapshot(at)), 'same state as the reducers over the same events');
  t.equal(sidecar.rejected(), 0);

  // A restart re-reads, applies nothing twice and re-publishes nothing unchanged.
  const published = sidecar.publisher.published;
  await sidecar.close();
  const again = await startSidecar({ relayUrl: strfry.url, dataDir: join(dir, 'indexer'), debounceMs: 0, minIntervalMs: 0 });
  await again.caughtUp;
  await again.publisher.flush();
  t.equal(again.index.state.size, sidecar.index.state.size, 'the same facts after a restart');
  t.equal(again.publisher.published, 0, `nothing re-published after a restart (first run published ${published})`);
  t.equal(again.key.pubkey, sidecar.key.pubkey, 'the same key');
  await again.close();
});
