// PatchGen over a Cashu escrow (DESIGN §4) on the devnet mint: the buyer locks the price to
// the provider's payment key with [buyer, arbiter] (an arbiter the provider announces it
// accepts), the provider checks the lock before working and sends its signed claim with the
// result, the buyer verifies in its sandbox and only then co-signs the claim in its receipt;
// the provider redeems it at the mint.
import t from 'tap';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildPaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { parseReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { newPaymentKey } from '@bazaar/agents-common/wallet/escrow';
import { GOOD_AGENT, agent, buyerConfig, makeBuyer, patchTask, runProvider, sampleRepo, startMarket, waitFor } from './helpers.ts';


t.test('PatchGen paid after verify over a Cashu escrow', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  // The arbiter: a Nostr identity and a payment key, published as NIP-61 payment info.
  const arbiterSk = generateSecretKey();
  const arbiterPay = newPaymentKey();
  const prov = await runProvider(t, m, 'prov-esc', { kinds: [5932], backends: { patchGen: agent(GOOD_AGENT) }, terms: { default: 'escrow' }, mints: [m.mintUrl], arbiters: [arbiterPay.pubkey], disputeWindowSecs: 600 });
  const buyer = await makeBuyer(t, m, { config: buyerConfig(m, { mint: true, extra: { arbiters: [getPublicKey(arbiterSk)] } }) });
  await buyer.pool.publish(finalizeEvent(buildPaymentInfo({ mints: [{ url: m.mintUrl }], p2pkPubkey: arbiterPay.pubkey }), arbiterSk) as NostrEvent, { timeoutMs: 5000 });
  // Ecash for the buyer: minted against a bolt11 paid from its devnet account.
  const cashu = buyer.wallet.cashu;
  const { quote, bolt11 } = await cashu.requestMint(200);
  m.devnet.network.pay('buyer', bolt11);
  await cashu.completeMint(quote, { timeoutMs: 10_000 });
  t.equal(cashu.balance(), 200);

  const t0 = Date.now();
  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 120 });
  t.equal(report.outcome, 'paid', `${report.reason ?? ''} (${Date.now() - t0} ms)`);
  t.equal(report.payment?.method, 'escrow', 'the provider asked for escrow: the buyer locked one');
  t.ok(report.verification?.checks.some((c) => c.name === 'tests pass on our replay' && c.passed), 'verified in our sandbox first');
  const job = buyer.store.get(report.jobId!)!;
  t.ok(job.escrow && job.escrow.amountSats >= 50, `locked ${job.escrow?.amountSats} sats (50 + the claim fee)`);
  const left = cashu.balance();
  t.ok(left <= 200 - job.escrow!.amountSats && left >= 200 - job.escrow!.amountSats - 2, `the lock left the purse (${left} sats left: 200 − the lock − the swap's input fee)`);
  const [ev] = await buyer.pool.query([{ kinds: [39302], '#d': [report.jobId!] }], { timeoutMs: 5000 });
  const receipt = parseReceipt(ev);
  t.ok(receipt.ok && receipt.value.escrowRelease && receipt.value.payment.method === 'cashu', 'the receipt carries the co-signed release and the escrow proofs');
  const settled = await waitFor('the provider redeems the escrow', () => prov.provider.store.get(report.jobId!)?.state === 'settled');
  t.ok(settled);
  t.equal(prov.provider.store.earningsSummary().bySource.cashu, 50_000, 'the provider booked 50 sats of ecash');
  const states = await cashu.checkStates(job.escrow!.proofs as never);
  t.same(states, job.escrow!.proofs.map(() => 'SPENT'), 'the escrow proofs are spent at the mint');
});
