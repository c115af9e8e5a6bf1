// The mint on the real dev Lightning network (its own account): mint quotes paid by
// another account's payment, melts paying other accounts' invoices, internal melts of
// the mint's own invoices, tampered invoices. Money is conserved on both sides: the
// network's balances add up, and the mint's account holds exactly what the mint owes.
import t from 'tap';
import { sumProofs, type Proof } from '@cashu/cashu-ts';
import type { Test } from 'tap';
import { accountLightningBackend } from '../src/lightning/account-backend.ts';
import type { LightningNetwork } from '../src/lightning/network.ts';
import { withHrp } from './helpers/bech32-tamper.ts';
import { postJson, startTestMint, type MintFixture } from './helpers/mint-fixture.ts';
import { openTestNetwork } from './helpers/network.ts';

async function setup(t: Test): Promise<{ net: LightningNetwork; h: MintFixture }> {
  const net = openTestNetwork(t);
  net.createAccount('mint');
  net.createAccount('alice');
  net.createAccount('bob');
  net.fund('alice', 1_000_000);
  const h = await startTestMint(t, { lightning: accountLightningBackend(net, 'mint', { feeReserveBaseMsat: 1000 }) });
  return { net, h };
}

/** The mint's Lightning account holds what it owes: outstanding ecash + fees it collected. */
function assertBacked(t: Test, net: LightningNetwork, h: MintFixture): void {
  const l = h.running.mint.store.ledger();
  t.equal(net.balance('mint') / 1000, l.lnIn - l.lnOut, "the mint's account balance equals Lightning in - out");
}

t.test('mint quote paid from another dev-network account, then melt to a third', async (t) => {
  const { net, h } = await setup(t);
  const w = await h.wallet();
  const q = await w.createMintQuoteBolt11(500);
  const paidEvent = w.on.onceMintPaid(q.quote, { timeoutMs: 5000 });
  const payment = net.pay('alice', q.request);
  t.match(payment.preimage, /^[0-9a-f]{64}$/);
  t.equal((await paidEvent).state, 'PAID', 'websocket: paid by a real dev-network payment');
  const proofs = await w.mintProofsBolt11(500, q.quote);
  t.equal(net.balance('mint'), 500_000);

  const inv = net.createInvoice('bob', 200_000, 'bob sells', 600);
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  t.equal(mq.amount.toNumber(), 200);
  t.equal(mq.fee_reserve.toNumber(), 1);
  const { keep, send } = await w.send(mq.amount.add(mq.fee_reserve), proofs, { includeFees: true });
  const res = await w.meltProofsBolt11(mq, send);
  t.equal(res.quote.state, 'PAID');
  t.equal(net.balance('bob'), 200_000, 'bob was paid');
  t.equal(net.lookupInvoice(inv.paymentHash)?.state, 'paid');
  t.equal(res.quote.payment_preimage, net.lookupInvoice(inv.paymentHash)?.preimage, 'the preimage proves the payment');
  t.equal(sumProofs(res.change).toNumber(), 1, 'unused fee reserve returned');
  assertBacked(t, net, h);
  await h.assertConserved(t, [...keep, ...res.change]);
});

t.test("an internal melt settles the mint's own invoice without Lightning", async (t) => {
  const { net, h } = await setup(t);
  const w = await h.wallet();
  const q0 = await w.createMintQuoteBolt11(300);
  net.pay('alice', q0.request);
  await w.on.onceMintPaid(q0.quote, { timeoutMs: 5000 });
  const minted = await w.mintProofsBolt11(300, q0.quote);
  const w2 = await h.wallet();
  const q = await w2.createMintQuoteBolt11(100);
  const mq = await w.createMeltQuoteBolt11(q.request);
  t.equal(mq.fee_reserve.toNumber(), 0, 'no routing for an internal payment');
  const { keep, send } = await w.send(mq.amount, minted, { includeFees: true });
  const res = await w.meltProofsBolt11(mq, send);
  t.equal(res.quote.state, 'PAID');
  const got = await w2.mintProofsBolt11(100, q.quote);
  t.equal(sumProofs(got).toNumber(), 100, 'the payee mints from the internally paid quote');
  t.equal(net.balance('mint'), 300_000, 'no Lightning movement');
  assertBacked(t, net, h);
  await h.assertConserved(t, [...keep, ...res.change, ...got]);
});

t.test('tampered and over-budget invoices are refused with nothing lost', async (t) => {
  const { net, h } = await setup(t);
  const w = await h.wallet();
  const q = await w.createMintQuoteBolt11(100);
  net.pay('alice', q.request);
  await w.on.onceMintPaid(q.quote, { timeoutMs: 5000 });
  const proofs: Proof[] = await w.mintProofsBolt11(100, q.quote);
  const inv = net.createInvoice('bob', 10_000, 'small', 600);
  const inflated = withHrp(inv.bolt11, 'lnbcrt1m');
  const tq = await postJson(`${h.url}/v1/melt/quote/bolt11`, { request: inflated, unit: 'sat' });
  t.match(tq, { status: 400, json: { code: 10000, detail: /invalid bolt11/ } }, 'amount-tampered invoice refused (signature no longer matches)');
  const big = net.createInvoice('bob', 5_000_000, 'too big', 600);
  const bq = await w.createMeltQuoteBolt11(big.bolt11);
  const short = await w.meltProofsBolt11(bq, proofs).catch((e: Error) => e);
  t.type(short, Error, 'over-budget melt refused');
  const states = await w.checkProofsStates(proofs);
  t.ok(states.every((s) => s.state === 'UNSPENT'), 'proofs untouched');
  t.equal(net.balance('bob'), 0, 'bob was not paid');
  assertBacked(t, net, h);
  await h.assertConserved(t, proofs);
});

t.test('a failed Lightning payment releases the reserved inputs (20004)', async (t) => {
  const { net, h } = await setup(t);
  const w = await h.wallet();
  const q = await w.createMintQuoteBolt11(100);
  net.pay('alice', q.request);
  await w.on.onceMintPaid(q.quote, { timeoutMs: 5000 });
  const proofs = await w.mintProofsBolt11(100, q.quote);
  const inv = net.createInvoice('bob', 20_000, 'paid elsewhere', 600);
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  net.pay('alice', inv.bolt11); // someone else pays it first: the mint's payment must fail
  const res = await w.meltProofsBolt11(mq, proofs).catch((e: Error & { code?: number }) => e);
  t.match(res, { code: 20004 }, 'Lightning payment failed');
  const states = await w.checkProofsStates(proofs);
  t.ok(states.every((s) => s.state === 'UNSPENT'), 'inputs released, not spent');
  t.equal((await w.checkMeltQuoteBolt11(mq.quote)).state, 'UNPAID');
  assertBacked(t, net, h);
  await h.assertConserved(t, proofs);
});
