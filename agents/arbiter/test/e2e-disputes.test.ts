// Disputes over escrowed PatchGen jobs, end to end on real parts: our relay, the devnet mint and
// wallets, providers and buyers as their CLIs run them, the arbiter as `serve` runs it, bwrap.
//   (1) the provider's patch really fails the tests → the buyer wins and redeems the escrow with
//       the arbiter's signature (the provider never answered: it loses because the replay failed);
//       the arbiter's fee, announced as loser-pays, is asked of the provider in the verdict; the
//       relay's market index counts the lost dispute against the provider's reputation
//   (2) the buyer disputes a patch that passes → the provider answers, serves its trajectory over
//       Nostr (hash checked, case 5), wins, and redeems; a repeated dispute changes nothing
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { parseVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { parseArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import { caseView } from '../src/cli.ts';
import { BROKEN, escrowProvider, fund, lyingBuyer, lyingProvider, makeBuyer, patchTask, peer, runArbiter, runProvider, sampleRepo, startMarket, until } from './helpers.ts';

t.test('(1) a patch that fails the tests: the buyer wins and redeems the escrow with the arbiter', async (t) => {
  const m = await startMarket(t, { market: true });
  const repo = sampleRepo(t);
  // A fee of 7 sats, invoiced from the arbiter's own devnet wallet over NWC.
  const arbWallet = m.devnet.account('arbiter');
  await m.devnet.nwc.refresh();
  const arb = await runArbiter(t, m, { responseWindowSecs: 3, overrides: { feeSats: 7, nwcUri: arbWallet.uri } });
  const liar = await lyingProvider(t, m, { arbiterPaymentKey: arb.arbiter.paymentPubkey, patch: BROKEN, priceMsats: 50_000 });
  const buyer = await makeBuyer(t, m, { arbiters: [arb.arbiter.pubkey] });
  const cashu = buyer.wallet.cashu;
  await fund(m, cashu, 'buyer', 200);
  const before = cashu.balance();

  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 120, pay: 'escrow', providers: [liar.pubkey], strategy: { type: 'pinned' } });
  t.equal(report.outcome, 'disputed', report.reason ?? '');
  const jobId = report.jobId!;
  const job = buyer.store.get(jobId)!;
  t.ok(job.escrow && job.escrowClaimId, 'escrowed, and our claim prepared with the dispute');
  const d = parseDispute(job.dispute!);
  t.ok(d.ok && d.value.arbiter === arb.arbiter.pubkey && d.value.escrowClaim, 'the dispute names the arbiter and carries our claim');

  const decided = await until('the arbiter publishes its verdict', () => {
    const c = arb.arbiter.store.get(jobId);
    return c?.state === 'published' ? c : undefined;
  });
  t.equal(decided.decision?.ruling, 'buyer');
  t.equal(decided.decision?.release?.to, 'buyer', 'the escrow released to the buyer');
  t.equal(decided.response, undefined, 'the provider never answered');
  t.notOk(decided.replay?.ok, 'the replay failed');
  t.ok(decided.replay?.checks.some((c) => c.name === 'tests pass on our replay' && !c.passed), 'the tests failed in the arbiter\'s own sandbox');
  t.match(decided.decision?.reasons.join(' '), /did not answer within the response window/);

  const [ev] = await buyer.pool.query([{ kinds: [39301], authors: [arb.arbiter.pubkey], '#d': [jobId] }], { timeoutMs: 5000 });
  t.equal(ev?.id, decided.verdict?.id, 'the stored verdict is the one on the relay');
  const v = parseVerdict(ev);
  t.ok(v.ok, 'the verdict parses');
  if (!v.ok) return;
  t.same([v.value.ruling, v.value.sealedRelease?.recipient, v.value.reputationDelta], ['buyer', buyer.identity.pubkey, { provider: -1, buyer: 0 }]);
  const evidence = readFileSync(join(arb.dataDir, 'evidence', `${jobId}.json`), 'utf8');
  t.equal(sha256Hex(evidence), v.value.evidenceSha256, "the verdict's evidence hash is of the bundle the arbiter kept");

  const got = await until('the buyer redeems its escrow', async () => {
    const r = await buyer.client.collectVerdicts();
    return r.redeemedSats > 0 ? r : undefined;
  });
  t.equal(buyer.store.get(jobId)?.state, 'refunded', 'the job is refunded by the verdict');
  t.equal(buyer.store.get(jobId)?.arbitration?.ruling, 'buyer');
  const after = cashu.balance();
  t.ok(after > before - job.escrow!.amountSats && after >= before - 3, `the money came back (${before} → ${after} sats; input fees only; redeemed ${got.redeemedSats})`);
  t.same(await cashu.checkStates(job.escrow!.proofs as never), job.escrow!.proofs.map(() => 'SPENT'), 'the escrow proofs are spent (into the buyer\'s outputs)');
  // The liar's own half-signed claim can never be completed now.
  t.equal(liar.wallet.balance(), 0, 'the provider got nothing');

  // The fee: announced as the loser's to pay, asked of the losing provider with a bolt11 of the arbiter's wallet.
  const [annEv] = await buyer.pool.query([{ kinds: [31990], authors: [arb.arbiter.pubkey], '#k': ['39300'] }], { timeoutMs: 5000 });
  const ann = parseArbiterAnnouncement(annEv);
  t.same(ann.ok && ann.value.fee, { msats: 7000, payer: 'loser' }, 'the 31990 announces the fee and who pays it');
  t.equal(v.value.fee?.msats, 7000, 'the verdict asks the fee');
  t.equal(decided.decision?.fee?.payer, liar.pubkey, 'of the losing provider');
  const invoice = m.devnet.network.lookupInvoice(decided.decision!.fee!.paymentHash);
  t.same([invoice?.bolt11, invoice?.account, invoice?.amountMsat], [v.value.fee?.bolt11, 'arbiter', 7000], "a real bolt11 of the arbiter's wallet");
  t.match(caseView(arb.arbiter.store.get(jobId)!), { state: 'published', ruling: 'buyer', release: 'buyer', fee: { msats: 7000, payer: 'provider' } }, '`bazaar arbiter cases` shows the fee and who owes it');

  // The verdict moves reputation: the relay's index (from the events it stored) counts the lost dispute.
  const api = m.relay.url.replace(/^ws/, 'http');
  const rep = await until('the relay indexes the verdict', async () => {
    const r = (await (await fetch(`${api}/api/providers/${liar.pubkey}`)).json()) as { reputation?: { disputesLost: number; disputesOpened: number } };
    return r.reputation && r.reputation.disputesLost > 0 ? r.reputation : undefined;
  });
  t.match(rep, { disputesOpened: 1, disputesLost: 1 }, "the provider's reputation counts the dispute it lost");
  const jobView = (await (await fetch(`${api}/api/jobs/${jobId}`)).json()) as { verdict: { id: string; ruling: string } | null; providers: { pubkey: string; disputeLost: boolean }[] };
  t.same([jobView.verdict?.id, jobView.verdict?.ruling], [ev.id, 'buyer'], 'the job shows the verdict');
  t.ok(jobView.providers.find((p) => p.pubkey === liar.pubkey)?.disputeLost, 'lost by the provider');
});

t.test('(2) a dispute of a patch that passes: the provider answers, serves its trajectory, wins and redeems', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const arb = await runArbiter(t, m, { responseWindowSecs: 30 });
  const prov = await runProvider(t, m, 'prov', escrowProvider(m, arb.arbiter.paymentPubkey));
  const watcher = peer(t, m);
  const verdicts = new Set<string>();
  watcher.pool.subscribe([{ kinds: [39301] }], (e: NostrEvent) => verdicts.add(e.id));

  const liar = await lyingBuyer(t, m, { provider: prov.identity.pubkey, arbiter: arb.arbiter.pubkey, repo: repo.url, priceSats: 50 });
  const result = await liar.result();
  t.ok(result.tags.some((x) => x[0] === 'escrow_claim'), 'the provider delivered with its claim');
  const dispute = await liar.dispute();

  // Decided before the 30 s window ends: the provider answered and its trajectory is in.
  const decided = await until('the arbiter publishes its verdict', () => {
    const c = arb.arbiter.store.get(liar.request.id);
    return c?.state === 'published' ? c : undefined;
  }, 29_000);
  t.equal(decided.decision?.ruling, 'provider');
  t.equal(decided.decision?.release?.to, 'provider');
  t.equal(decided.response?.position, 'stand', 'the provider answered: it stands by its result');
  t.ok(decided.replay?.ok, 'the replay passed');
  // (5) the trajectory, fetched over Nostr, hashes to the result's trajectory_sha256.
  const committed = result.tags.find((x) => x[0] === 'trajectory_sha256')?.[1];
  t.same([decided.trajectory?.status, decided.trajectory?.served, decided.trajectory?.committed], ['matched', committed, committed], 'trajectory matched');
  t.equal(sha256Hex(readFileSync(join(arb.dataDir, 'trajectories', `${liar.request.id}.jsonl`), 'utf8')), committed, 'the arbiter keeps the log it checked');
  t.ok(decided.decision?.checks.some((c) => c.name.startsWith('the trajectory served matches') && c.passed));

  const settled = await until('the provider redeems the sealed release', () => prov.provider.store.get(liar.request.id)?.state === 'settled');
  t.ok(settled);
  t.equal(prov.provider.store.earningsSummary().bySource.cashu, 50_000, 'the provider booked its 50 sats');
  const [ev] = await watcher.pool.query([{ kinds: [39301], '#d': [liar.request.id] }], { timeoutMs: 5000 });
  const v = parseVerdict(ev);
  t.ok(v.ok && v.value.sealedRelease?.recipient === prov.identity.pubkey && v.value.reputationDelta?.buyer === -1, 'sealed to the provider; the buyer loses the dispute');

  // The buyer disputes again (a new version): the same case, the same verdict, no new signature.
  const second = await liar.dispute(dispute.created_at + 1);
  await until('the arbiter sees the repeated dispute', () => arb.arbiter.store.get(liar.request.id)?.dispute.id === second.id);
  const [again] = await watcher.pool.query([{ kinds: [39301], '#d': [liar.request.id] }], { timeoutMs: 5000 });
  t.equal(again.id, decided.verdict?.id, 'the verdict on the relay is still the one decided');
  t.equal(arb.arbiter.store.get(liar.request.id)?.decision?.decidedAt, decided.decision?.decidedAt, 'decided once');
  t.equal(verdicts.size, 1, 'one verdict event ever published for the job');
});
