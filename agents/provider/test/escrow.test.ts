// Escrow terms end to end on the devnet mint: the buyer locks the price (NUT-11 P2PK,
// SIG_ALL, 2-of-[buyer, arbiter] with the provider as data, refund to the buyer) and puts
// the token in the request; the provider checks it before work, sends its half-signed claim
// with the result, and redeems when the buyer's receipt returns it co-signed. A lock to an
// untrusted arbiter is refused before any work.
import t from 'tap';
import { pino } from 'pino';
import { CashuWallet, proofY } from '@bazaar/agents-common/wallet/cashu';
import { lockEscrow, newPaymentKey, signClaim } from '@bazaar/agents-common/wallet/escrow';
import { buildReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { startRelay } from '@bazaar/relay/server';
import { startDevnet } from '@bazaar/devnet/devnet';
import { Customer, isFeedback, logger, makeProviderDir, resultOrError, runProvider, sandboxJob, tempDir, waitFor } from './helpers.ts';

t.test('escrow: checked before work, claim with the result, redeemed on the buyer release', async (t) => {
  const relayDir = tempDir(t, 'bazaar-esc-relay-');
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', verifyWorkers: 0, logger });
  const devDir = tempDir(t, 'bazaar-esc-devnet-');
  const devnet = await startDevnet({ dataDir: devDir, relayUrl: relay.url, logger, mint: { port: 0 } });
  devnet.account('customer', { fundSats: 10_000 });
  const providerDir = await makeProviderDir(t, [relay.url]);
  t.teardown(async () => {
    await devnet.close();
    await relay.close();
  });
  const arbiter = newPaymentKey();
  const running = await runProvider(t, { providerDir } as never, { terms: { default: 'escrow' }, mints: [devnet.mintUrl!], arbiters: [arbiter.pubkey], disputeWindowSecs: 600 });
  const buyerWallet = await CashuWallet.open({ mintUrl: devnet.mintUrl!, dataDir: tempDir(t, 'bazaar-esc-buyer-'), logger: pino({ level: 'silent' }) });
  t.teardown(() => buyerWallet.close());
  const { quote, bolt11 } = await buyerWallet.requestMint(500);
  devnet.network.pay('customer', bolt11);
  await buyerWallet.completeMint(quote, { timeoutMs: 10_000 });

  const c = await new Customer(relay.url).ready();
  t.teardown(() => c.close());
  const buyerKey = newPaymentKey();
  const providerPay = running.identity.paymentPubkey;
  const priceSats = Math.ceil((1000 + 100 * 10) / 1000); // the most a 10 s SandboxRun costs
  const locktime = Math.floor(Date.now() / 1000) + 10 + 600 + 300;

  // Refused before work: locked to an arbiter the provider does not trust.
  const rogue = await lockEscrow(buyerWallet, { price: priceSats, provider: providerPay, buyer: buyerKey.pubkey, arbiter: newPaymentKey().pubkey, locktime, id: 'rogue' });
  const bad = sandboxJob(c, ['echo never'], [['escrow', rogue.token]], 10);
  await c.publish(bad);
  const refused = await c.waitEvent(isFeedback(bad.id, 'error'), 20_000, 'escrow refused');
  t.equal(refused.tags.find((x) => x[0] === 'error')?.[1], 'PAYMENT_FAILED');
  t.match(refused.tags.find((x) => x[0] === 'status')?.[2], /arbiter .* not one this provider trusts/);
  t.same(c.feedbackFor(bad.id, 'processing'), [], 'no work on a bad escrow');

  const escrow = await lockEscrow(buyerWallet, { price: priceSats, provider: providerPay, buyer: buyerKey.pubkey, arbiter: arbiter.pubkey, locktime, id: 'job' });
  const job = sandboxJob(c, ['echo escrowed'], [['escrow', escrow.token]], 10);
  await c.publish(job);
  const result = await resultOrError(c, job.id);
  t.equal(JSON.parse(result.content).commands[0].stdout, 'escrowed\n');
  const claim = result.tags.find((x) => x[0] === 'escrow_claim')?.[1];
  t.ok(claim, 'the result carries the provider-signed claim');
  t.equal(result.tags.find((x) => x[0] === 'amount')?.[1], String(priceSats * 1000));
  t.equal(running.provider.store.get(job.id)?.state, 'delivered', 'not paid yet');

  // The buyer verified the result: it co-signs the claim (refusing anything but its escrow) and says so in its receipt.
  const released = signClaim(claim!, buyerKey.secretKey, escrow.proofs);
  const receipt = buildReceipt({ requestId: job.id, resultId: result.id, provider: running.identity.pubkey, amountMsats: priceSats * 1000, payment: { method: 'cashu', mint: devnet.mintUrl!, proofs: escrow.proofs.map((p) => ({ secret: p.secret, y: proofY(p.secret) })) } });
  await c.publish(c.sign({ ...receipt, tags: [...receipt.tags, ['escrow_release', released]] }));
  const settled = await waitFor(() => { const j = running.provider.store.get(job.id); return j?.state === 'settled' ? j : undefined; }, 20_000, 'escrow redeemed');
  t.ok(settled.paidAt);
  const e = running.provider.store.earningsSummary();
  t.equal(e.bySource.cashu, priceSats * 1000, 'earning booked from cashu');
  const states = await buyerWallet.checkStates(escrow.proofs);
  t.same(states, escrow.proofs.map(() => 'SPENT'), 'the escrow proofs are spent at the mint');
});
