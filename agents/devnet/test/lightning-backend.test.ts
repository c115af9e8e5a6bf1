import t from 'tap';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { accountLightningBackend } from '../src/lightning/account-backend.ts';
import type { LightningBackend } from '../src/lightning-backend.ts';
import { flipDataWord } from './helpers/bech32-tamper.ts';
import { manualClock, openTestNetwork } from './helpers/network.ts';

t.test('the mint account issues invoices a user pays, and is told when they settle', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('mint');
  net.createAccount('user');
  net.fund('user', 50_000);
  const mint: LightningBackend = accountLightningBackend(net, 'mint');

  const inv = await mint.createInvoice({ amountMsat: 10_000, description: 'mint quote', expirySecs: 600 });
  t.equal(inv.amountMsat, 10_000);
  t.same(mint.decode(inv.bolt11), { amountMsat: 10_000, paymentHash: inv.paymentHash, expiresAt: inv.expiresAt, payee: net.requireAccount('mint').nodePubkey });
  t.equal(await mint.invoiceState(inv.paymentHash), 'unpaid');

  const settled = new Promise<void>((resolve) => mint.onInvoicePaid(inv.paymentHash, resolve));
  net.pay('user', inv.bolt11);
  await settled;
  t.equal(await mint.invoiceState(inv.paymentHash), 'paid');
  t.equal(net.balance('mint'), 10_000);
  await t.rejects(mint.invoiceState('00'.repeat(32)), /no invoice/);
  // Someone else's payment of a third party's invoice is not the mint's payment.
  net.createAccount('third');
  const other = net.createInvoice('third', 1_000, 'x', 600);
  net.pay('user', other.bolt11);
  t.equal(await mint.invoiceState(other.paymentHash), 'unpaid');
});

t.test('the mint account pays (melts) invoices of other accounts', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('mint');
  net.createAccount('user');
  net.fund('mint', 20_000);
  const mint = accountLightningBackend(net, 'mint');
  const userInv = net.createInvoice('user', 7_000, 'melt', 600);
  t.equal(mint.feeReserveMsat(7_000), 0, 'free routing: no reserve by default');
  t.equal(await mint.invoiceState(userInv.paymentHash), 'unpaid', 'not yet paid by the mint');
  const res = await mint.pay(userInv.bolt11, { maxFeeMsat: 0 });
  t.equal(await mint.invoiceState(userInv.paymentHash), 'paid', 'the mint can tell its payment happened (melt recovery)');
  t.equal(bytesToHex(sha256(hexToBytes(res.preimage))), userInv.paymentHash);
  t.equal(res.feeMsat, 0);
  t.equal(net.balance('mint'), 13_000);
  t.equal(net.balance('user'), 7_000);
  await t.rejects(mint.pay(userInv.bolt11, { maxFeeMsat: 0 }), { code: 'ALREADY_PAID' });
  const own = await mint.createInvoice({ amountMsat: 1_000, description: 'self', expirySecs: 60 });
  await t.rejects(mint.pay(own.bolt11, { maxFeeMsat: 0 }), { code: 'SELF_PAYMENT' });
  const big = net.createInvoice('user', 1_000_000, 'big', 600);
  await t.rejects(mint.pay(big.bolt11, { maxFeeMsat: 0 }), { code: 'INSUFFICIENT_BALANCE' });
  const ac = new AbortController();
  ac.abort();
  const small = net.createInvoice('user', 1_000, 'aborted', 600);
  await t.rejects(mint.pay(small.bolt11, { maxFeeMsat: 0, signal: ac.signal }), { code: 'ABORTED' });
  t.equal(net.balance('mint'), 13_000, 'failed payments moved nothing');
});

t.test('decode rejects malformed and tampered invoices; reserve is configurable; expiry reported', async (t) => {
  const clock = manualClock();
  const net = openTestNetwork(t, { now: clock.now });
  net.createAccount('mint');
  const mint = accountLightningBackend(net, 'mint', { feeReserveBaseMsat: 1_000, feeReservePpm: 10_000 });
  t.equal(mint.feeReserveMsat(100_000), 2_000);
  t.throws(() => mint.decode('not an invoice'), /invoice does not decode/);
  const inv = await mint.createInvoice({ amountMsat: 5_000, description: 'x', expirySecs: 60 });
  t.throws(() => mint.decode(flipDataWord(inv.bolt11, 10)), /invoice does not decode/);
  clock.advance(60);
  t.equal(await mint.invoiceState(inv.paymentHash), 'expired');
  t.throws(() => accountLightningBackend(net, 'nobody'), { code: 'UNKNOWN_ACCOUNT' });
});
