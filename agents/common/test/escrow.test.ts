// The six escrow paths of DESIGN §4 with real keys on the real mint, the provider's
// checks, and SIG_ALL's protection against redirecting a leaked signature. The mint's
// clock is injected, so the locktime passes without sleeping.
import t, { type Test } from 'tap';
import { SigAll } from '@cashu/cashu-ts';
import type { CashuWallet } from '../src/wallet/cashu.ts';
import {
  amountWithClaimFee,
  checkEscrow,
  lockEscrow,
  newPaymentKey,
  prepareClaim,
  redeemClaim,
  refundAfterLocktime,
  signClaim,
  type EscrowTerms,
} from '../src/wallet/escrow.ts';
import { startCashuFixture } from './helpers/cashu-fixture.ts';

const PRICE = 100;

async function setup(t: Test) {
  const f = await startCashuFixture(t, { inputFeePpk: 100 });
  const buyerW = await f.openWallet();
  const providerW = await f.openWallet();
  const arbiterW = await f.openWallet();
  await f.fund(buyerW, 400);
  const keys = { buyer: newPaymentKey(), provider: newPaymentKey(), arbiter: newPaymentKey() };
  const terms: EscrowTerms = { price: PRICE, provider: keys.provider.pubkey, buyer: keys.buyer.pubkey, arbiter: keys.arbiter.pubkey, locktime: f.clock.now + 3600 };
  const escrow = await lockEscrow(buyerW, { ...terms, id: 'job1' });
  return { f, buyerW, providerW, arbiterW, keys, terms, escrow, all: [buyerW, providerW, arbiterW] as CashuWallet[] };
}

t.test('lock terms: data = provider, pubkeys = [buyer, arbiter], n_sigs 2, SIG_ALL, locktime, refund = [buyer], fees included', async (t) => {
  const { f, providerW, escrow, terms, all } = await setup(t);
  const secret = JSON.parse(escrow.proofs[0].secret) as [string, { data: string; tags: string[][] }];
  t.equal(secret[0], 'P2PK');
  t.equal(secret[1].data, terms.provider);
  const tags = Object.fromEntries(secret[1].tags.map((x) => [x[0], x.slice(1)]));
  t.same(tags.pubkeys, [terms.buyer, terms.arbiter]);
  t.same(tags.n_sigs, ['2']);
  t.same(tags.sigflag, ['SIG_ALL']);
  t.same(tags.locktime, [String(terms.locktime)]);
  t.same(tags.refund, [terms.buyer]);
  t.equal(escrow.amount, amountWithClaimFee(PRICE, 100));
  t.ok(escrow.amount - providerW.fee(escrow.proofs) >= PRICE, 'after the claim fee the price remains');
  const check = await checkEscrow(providerW, escrow.token, terms);
  t.same(check.problems, []);
  t.ok(check.ok, 'provider accepts the escrow');
  f.assertConserved(t, all);
});

t.test('checkEscrow refuses wrong terms, missing DLEQ, short amounts and spent proofs', async (t) => {
  const { f, providerW, escrow, terms, keys, all } = await setup(t);
  const other = newPaymentKey().pubkey;
  t.match((await checkEscrow(providerW, escrow.token, { ...terms, provider: other })).problems.join(), /data is not the provider key/);
  t.match((await checkEscrow(providerW, escrow.token, { ...terms, arbiter: other })).problems.join(), /pubkeys are not/);
  t.match((await checkEscrow(providerW, escrow.token, { ...terms, locktime: terms.locktime + 1 })).problems.join(), /locktime/);
  t.match((await checkEscrow(providerW, escrow.token, { ...terms, price: PRICE + 50 })).problems.join(), /the price is/);
  const noDleq = escrow.proofs.map(({ dleq: _d, ...p }) => p);
  t.match((await checkEscrow(providerW, noDleq, terms)).problems.join(), /DLEQ/);
  const badDleq = escrow.proofs.map((p) => ({ ...p, dleq: { ...p.dleq!, s: p.dleq!.e } }));
  t.match((await checkEscrow(providerW, badDleq, terms)).problems.join(), /DLEQ/);
  // Spend it (a legitimate release) and check again: the provider sees it spent.
  const claim = await prepareClaim(providerW, escrow.token);
  const signed = signClaim(claim.package, keys.buyer.secretKey, escrow.proofs);
  await redeemClaim(providerW, claim.claimId, [signed], keys.provider.secretKey);
  t.match((await checkEscrow(providerW, escrow.token, terms)).problems.join(), /SPENT/);
  await f.fund(providerW, 1); // keep the test wallets busy with unrelated value
  await all[0].confirmSent();
  f.assertConserved(t, all);
});

t.test('path 1: provider + buyer release to the provider', async (t) => {
  const { f, buyerW, providerW, escrow, keys, all } = await setup(t);
  const claim = await prepareClaim(providerW, escrow.token);
  const bySig = signClaim(claim.package, keys.buyer.secretKey, escrow.proofs);
  const got = await redeemClaim(providerW, claim.claimId, [bySig], keys.provider.secretKey);
  t.equal(got, escrow.amount - providerW.fee(escrow.proofs), 'provider receives the escrow minus the claim fee');
  t.ok(got >= PRICE);
  t.equal(await buyerW.confirmSent('escrow:job1'), escrow.amount, 'buyer sees the escrow spent');
  f.assertConserved(t, all);
});

t.test('path 2: arbiter + provider (dispute won by the provider)', async (t) => {
  const { f, buyerW, providerW, escrow, keys, all } = await setup(t);
  const claim = await prepareClaim(providerW, escrow.token);
  const arb = signClaim(claim.package, keys.arbiter.secretKey, escrow.proofs);
  t.ok((await redeemClaim(providerW, claim.claimId, [arb], keys.provider.secretKey)) >= PRICE);
  await buyerW.confirmSent();
  f.assertConserved(t, all);
});

t.test('a claim prepared before a restart is redeemed after it (a dispute\'s claim waits for the verdict)', async (t) => {
  const f = await startCashuFixture(t, { inputFeePpk: 100 });
  const dir = f.tempDir();
  const first = await f.openWallet(dir);
  await f.fund(first, 400);
  const keys = { buyer: newPaymentKey(), provider: newPaymentKey(), arbiter: newPaymentKey() };
  const escrow = await lockEscrow(first, { price: PRICE, provider: keys.provider.pubkey, buyer: keys.buyer.pubkey, arbiter: keys.arbiter.pubkey, locktime: f.clock.now + 3600, id: 'job1' });
  const claim = await prepareClaim(first, escrow.proofs);
  const before = first.balance();
  await first.close();
  // Reopening reconciles (the escrow proofs are unspent: the claim must still wait for its
  // co-signature); closing flushes whatever that wrote, so the third open sees it.
  await (await f.openWallet(dir)).close();
  const buyerW = await f.openWallet(dir);
  t.ok(buyerW.claimPackage(claim.claimId), 'the pending claim survived the restart');
  const arb = signClaim(claim.package, keys.arbiter.secretKey, escrow.proofs);
  const got = await redeemClaim(buyerW, claim.claimId, [arb], keys.buyer.secretKey);
  t.ok(got >= PRICE, `redeemed ${got} sats`);
  t.equal(buyerW.balance(), before + got);
  f.assertConserved(t, [buyerW]);
});

t.test('path 3: arbiter + buyer (dispute won by the buyer) pays the buyer', async (t) => {
  const { f, buyerW, escrow, keys, all } = await setup(t);
  const before = buyerW.balance();
  const claim = await prepareClaim(buyerW, escrow.proofs);
  const arb = signClaim(claim.package, keys.arbiter.secretKey, escrow.proofs);
  const got = await redeemClaim(buyerW, claim.claimId, [arb], keys.buyer.secretKey);
  t.ok(got >= PRICE);
  t.equal(buyerW.balance(), before + got);
  t.equal(buyerW.totals().sent, 0, 'the escrow left the sent list when the buyer claimed it');
  f.assertConserved(t, all);
});

t.test('path 4: any single key before the locktime is rejected', async (t) => {
  const { f, buyerW, providerW, arbiterW, escrow, keys, all } = await setup(t);
  for (const [name, w, k] of [
    ['provider', providerW, keys.provider],
    ['buyer', buyerW, keys.buyer],
    ['arbiter', arbiterW, keys.arbiter],
  ] as const) {
    const claim = await prepareClaim(w, escrow.token);
    const res = await redeemClaim(w, claim.claimId, [], k.secretKey).catch((e: Error & { code?: number }) => e);
    t.match(res, { name: 'CashuWalletError', code: 10001 }, `${name} alone cannot claim`);
  }
  const refund = await refundAfterLocktime(buyerW, escrow.proofs, keys.buyer.secretKey).catch((e: Error) => e);
  t.match(refund, { name: 'CashuWalletError', message: /locktime \d+ not reached/ }, 'buyer refund before the locktime is refused (wallet clock)');
  // Even a wallet whose clock runs ahead cannot refund early: the mint's clock decides.
  const claim = await prepareClaim(buyerW, escrow.proofs);
  t.match(await redeemClaim(buyerW, claim.claimId, [], keys.buyer.secretKey).catch((e: Error) => e), { code: 10001 }, 'the mint refuses a refund-key-only claim before its locktime');
  t.same(await providerW.checkStates(escrow.proofs), escrow.proofs.map(() => 'UNSPENT'), 'escrow untouched');
  f.assertConserved(t, all);
});

t.test('path 5: buyer refund after the locktime', async (t) => {
  const { f, buyerW, escrow, keys, terms, all } = await setup(t);
  f.clock.now = terms.locktime + 1;
  const got = await refundAfterLocktime(buyerW, escrow.token, keys.buyer.secretKey);
  t.ok(got >= PRICE, 'buyer takes the escrow back');
  f.assertConserved(t, all);
});

t.test('path 6: two of three still valid after the locktime; a lone provider is not', async (t) => {
  const { f, providerW, escrow, keys, terms, all, buyerW } = await setup(t);
  f.clock.now = terms.locktime + 10;
  const lone = await prepareClaim(providerW, escrow.token);
  t.type(await redeemClaim(providerW, lone.claimId, [], keys.provider.secretKey).catch((e: Error) => e), Error, 'provider alone still cannot');
  const claim = await prepareClaim(providerW, escrow.token);
  const arb = signClaim(claim.package, keys.arbiter.secretKey, escrow.proofs);
  t.ok((await redeemClaim(providerW, claim.claimId, [arb], keys.provider.secretKey)) >= PRICE);
  await buyerW.confirmSent();
  f.assertConserved(t, all);
});

t.test('SIG_ALL: a leaked arbiter signature cannot be redirected to other outputs', async (t) => {
  const { f, buyerW, providerW, escrow, keys, all } = await setup(t);
  // The arbiter rules for the buyer and signs the buyer's claim; the signature leaks.
  const buyerClaim = await prepareClaim(buyerW, escrow.proofs);
  const leaked = signClaim(buyerClaim.package, keys.arbiter.secretKey, escrow.proofs);
  const leakedSigs = SigAll.deserializePackage(leaked).witness!.signatures;
  // The provider tries to use it for its own outputs, with its own signature: 2 keys, wrong message.
  const providerClaim = await prepareClaim(providerW, escrow.token);
  t.match(await redeemClaim(providerW, providerClaim.claimId, [leaked], keys.provider.secretKey).catch((e: Error) => e), { message: /different transaction/ }, 'the wallet refuses a foreign package');
  const forged = SigAll.signPackage({ ...SigAll.deserializePackage(providerClaim.package), witness: { signatures: [...leakedSigs] } }, keys.provider.secretKey);
  const res = await redeemClaim(providerW, providerClaim.claimId, [SigAll.serializePackage(forged)]).catch((e: Error & { code?: number }) => e);
  t.match(res, { name: 'CashuWalletError', code: 10001 }, 'the mint rejects the redirected signature');
  t.same(await buyerW.checkStates(escrow.proofs), escrow.proofs.map(() => 'UNSPENT'), 'escrow untouched');
  // The buyer's legitimate claim with the same arbiter signature still works.
  t.ok((await redeemClaim(buyerW, buyerClaim.claimId, [leaked], keys.buyer.secretKey)) >= PRICE);
  f.assertConserved(t, all);
});

t.test('signClaim refuses packages that do not spend the expected escrow', async (t) => {
  const { f, providerW, escrow, keys, all } = await setup(t);
  const claim = await prepareClaim(providerW, escrow.token);
  t.throws(() => signClaim(claim.package, keys.arbiter.secretKey, escrow.proofs.slice(1).concat([{ ...escrow.proofs[0], C: '02' + '11'.repeat(32) }])), /not the escrow proofs/);
  t.throws(() => signClaim('sigallAgarbage', keys.arbiter.secretKey), /not a signing package/);
  f.assertConserved(t, all);
});

t.test('keys printed as "03" + x (odd y) work: the lock is written "02" + x-only', async (t) => {
  const { secp256k1 } = await import('@noble/curves/secp256k1.js');
  const { bytesToHex } = await import('@noble/hashes/utils.js');
  const f = await startCashuFixture(t, { inputFeePpk: 0 });
  const buyerW = await f.openWallet();
  const providerW = await f.openWallet();
  await f.fund(buyerW, 200);
  let sk: Uint8Array;
  let pk: string;
  do {
    sk = secp256k1.utils.randomSecretKey();
    pk = bytesToHex(secp256k1.getPublicKey(sk, true));
  } while (!pk.startsWith('03'));
  const keys = { buyer: newPaymentKey(), arbiter: newPaymentKey() };
  const terms: EscrowTerms = { price: 50, provider: pk, buyer: keys.buyer.pubkey, arbiter: keys.arbiter.pubkey, locktime: f.clock.now + 60 };
  const escrow = await lockEscrow(buyerW, terms);
  t.equal((JSON.parse(escrow.proofs[0].secret) as [string, { data: string }])[1].data, '02' + pk.slice(2));
  t.ok((await checkEscrow(providerW, escrow.token, terms)).ok, 'checks compare x-only keys');
  const claim = await prepareClaim(providerW, escrow.token);
  const signed = signClaim(claim.package, keys.buyer.secretKey, escrow.proofs);
  t.equal(await redeemClaim(providerW, claim.claimId, [signed], bytesToHex(sk)), 50, 'the odd-y key signs its claim');
  await buyerW.confirmSent();
  f.assertConserved(t, [buyerW, providerW]);
});
