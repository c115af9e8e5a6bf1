// Discovery reads NIP-85 reputation from the keys the buyer trusts: the relay's market index
// publishes a 30382 assertion after a paid, verified job (signed by its reputation key, which
// its NIP-11 document announces); the buyer finds the key there, reads the figures, and ranks
// by them. An assertion signed by any other key is ignored.
import t from 'tap';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { makeBuyer, runProvider, startMarket } from './helpers.ts';

t.test('reputation from the relay\'s key (NIP-11 reputation_pubkey) counts; a forged assertion does not', async (t) => {
  const m = await startMarket(t, { mint: false, reputation: true });
  const relayKey = m.relay.market!.key.pubkey;
  const a = await runProvider(t, m, 'prov-a', { kinds: [5930] });
  const b = await runProvider(t, m, 'prov-b', { kinds: [5930] });
  const buyer = await makeBuyer(t, m);
  t.same(await buyer.client.directory.trustedKeys(), [relayKey], 'the relay\'s reputation key, read from its NIP-11 document');

  const first = await buyer.client.run({ type: 'sandbox', cmd: ['echo rep'], timeLimitSecs: 10 }, { budgetMsats: 10_000, providers: [a.identity.pubkey], strategy: { type: 'pinned' } });
  t.equal(first.outcome, 'paid', first.reason ?? '');
  // The index sees the request, result and receipt (with its preimage) and publishes a 30382 for A.
  const deadline = Date.now() + 30_000;
  let assertion: NostrEvent | undefined;
  while (!assertion && Date.now() < deadline) {
    const found = await buyer.pool.query([{ kinds: [30382], authors: [relayKey], '#d': [a.identity.pubkey] }], { timeoutMs: 5000 });
    assertion = found.find((e) => e.tags.some((x) => x[0] === 'paid' && Number(x[1]) >= 1));
    if (!assertion) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(assertion, 'the relay published an assertion counting the paid job');

  // Someone else's glowing assertion about B (rank 100, tier 3) is not trusted.
  const forger = generateSecretKey();
  const forged = buildReputationAssertion(b.identity.pubkey, { jobsSeen: 5000, resultsDelivered: 5000, paidJobs: 5000, disputesOpened: 0, disputesLost: 0, medianLatencySecs: 1, satsEarned: 1e6, successRate: 1, tier: 3, perKind: [] });
  await buyer.pool.publish(finalizeEvent(forged, forger) as NostrEvent, { timeoutMs: 5000 });
  t.ok((await buyer.pool.query([{ kinds: [30382], authors: [getPublicKey(forger)] }], { timeoutMs: 5000 })).length === 1, 'the forged assertion is on the relay');

  const { views, ranking } = await buyer.client.providers({ kind: 5930, units: 10 });
  const va = views.find((v) => v.pubkey === a.identity.pubkey)!;
  const vb = views.find((v) => v.pubkey === b.identity.pubkey)!;
  t.equal(va.reputation?.pubkey, relayKey, 'A\'s reputation comes from the relay\'s key');
  t.ok((va.reputation?.paidJobs ?? 0) >= 1, 'with the paid job');
  t.not(vb.reputation?.pubkey, getPublicKey(forger), 'B\'s forged reputation is ignored');
  t.ok(vb.reputation === undefined || (vb.reputation.pubkey === relayKey && vb.reputation.paidJobs === 0), 'B has at most the relay\'s (empty) record');
  t.ok(ranking!.ranked[0].parts.reputation >= 0 && ranking!.ranked.find((c) => c.pubkey === b.identity.pubkey)!.parts.reputation === 0, 'B scores 0 for reputation');
  // verified-only: only providers with a trusted record of paid, verified jobs.
  const only = await buyer.client.providers({ kind: 5930, units: 10, preference: 'verified-only' });
  t.same(only.ranking!.ranked.map((c) => c.pubkey), [a.identity.pubkey], 'verified-only keeps A, leaves B out');
});
