// CashuWallet against the real devnet mint: top up, send / receive, P2PK, melt with
// change, bad tokens, budgets; the mint's outstanding ecash always equals what the
// wallets hold.
import t from 'tap';
import { getEncodedToken } from '@cashu/cashu-ts';
import { CashuWalletError, coverWithFees, fromProofJson } from '../src/wallet/cashu.ts';
import { newPaymentKey } from '../src/wallet/escrow.ts';
import { startCashuFixture } from './helpers/cashu-fixture.ts';

t.test('top up, send, receive, confirm', async (t) => {
  const f = await startCashuFixture(t);
  const alice = await f.openWallet();
  const bob = await f.openWallet();
  await f.fund(alice, 300);
  t.equal(alice.balance(), 300);
  const { token } = await alice.send(100);
  t.match(token, /^cashuB/);
  t.equal(alice.totals().sent, 100 + alice.fee(alice.list('sent')), 'the sent value covers the receiver fee');
  const got = await bob.receive(token);
  t.equal(got, 100, 'receiver gets the price; sender paid the fee');
  t.equal(bob.balance(), 100);
  const again = await bob.receive(token).catch((e: CashuWalletError) => e);
  t.match(again, { name: 'CashuWalletError', code: 11001 }, 'second receive: already spent');
  t.equal(bob.balance(), 100, 'a failed receive changes nothing');
  t.ok((await alice.confirmSent()) > 0, 'sender learns the token was redeemed');
  t.equal(alice.totals().sent, 0);
  f.assertConserved(t, [alice, bob]);
});

t.test('P2PK: a token locked to a payment key needs that key', async (t) => {
  const f = await startCashuFixture(t);
  const alice = await f.openWallet();
  const bob = await f.openWallet();
  await f.fund(alice, 64);
  const bobKey = newPaymentKey();
  t.match(bobKey.pubkey, /^02[0-9a-f]{64}$/);
  const { token } = await alice.send(20, { p2pk: { pubkey: bobKey.pubkey } });
  const noKey = await bob.receive(token).catch((e: Error) => e);
  t.type(noKey, CashuWalletError);
  const wrong = await bob.receive(token, { privkey: newPaymentKey().secretKey }).catch((e: Error) => e);
  t.type(wrong, CashuWalletError);
  t.equal(bob.totals().reserved, 0, 'refused receives leave nothing reserved');
  t.equal(bob.balance(), 0, 'and add nothing to the purse (the locked proofs are not spendable by bob alone)');
  t.equal(await bob.receive(token, { privkey: bobKey.secretKey }), 20);
  await alice.confirmSent();
  f.assertConserved(t, [alice, bob]);
});

t.test('melt pays an invoice and keeps the change; budgets are enforced', async (t) => {
  const f = await startCashuFixture(t);
  const w = await f.openWallet();
  await f.fund(w, 500);
  const inv = await f.fake.createInvoice({ amountMsat: 100_000, description: 'x', expirySecs: 600 });
  const over = await w.payInvoice(inv.bolt11, { maxFeeSat: 1 }).catch((e: Error) => e);
  t.match(over, { name: 'CashuWalletError', message: /exceeds the budget/ }, 'fee reserve above budget refused');
  t.equal(w.balance(), 500, 'refused payment spends nothing');
  t.match(await w.payInvoice(inv.bolt11, { maxAmountSat: 99 }).catch((e: Error) => e), { message: /over the budget of 99 sat/ }, 'over-budget invoice refused');
  t.equal(w.balance(), 500);
  const res = await w.payInvoice(inv.bolt11, { maxAmountSat: 100 });
  t.equal(res.amount, 100);
  t.match(res.preimage, /^[0-9a-f]{64}$/);
  t.ok(res.feePaid >= 0 && res.feePaid < 5, 'only the input fee is lost; the reserve came back as change');
  t.equal(w.balance(), 500 - 100 - res.feePaid);
  const twice = await w.payInvoice(inv.bolt11).catch((e: Error) => e);
  t.type(twice, CashuWalletError, 'an invoice is paid once');
  const tooBig = await f.fake.createInvoice({ amountMsat: 10_000_000, description: 'x', expirySecs: 600 });
  const poor = await w.payInvoice(tooBig.bolt11).catch((e: Error) => e);
  t.match(poor, { message: /insufficient ecash/, reason: 'INSUFFICIENT_FUNDS' });
  f.assertConserved(t, [w]);
});

t.test('a small melt is paid when only a larger proof covers it with its fee', async (t) => {
  // 30 sat = 16 + 8 + 4 + 2; a 2-sat invoice plus the input fee needs the 4 (cashu-ts's own
  // selector returns nothing for it).
  const f = await startCashuFixture(t);
  const w = await f.openWallet();
  await f.fund(w, 30);
  t.same(w.list('ready').map((p) => p.amount).sort((a, b) => a - b), [2, 4, 8, 16]);
  const inv = await f.fake.createInvoice({ amountMsat: 2_000, description: 'x', expirySecs: 600 });
  const res = await w.payInvoice(inv.bolt11);
  t.equal(res.amount, 2);
  t.equal(w.balance(), 30 - 2 - res.feePaid, 'the change came back');
  f.assertConserved(t, [w]);
});

t.test('coverWithFees: the smallest proof that covers, else the largest first', async (t) => {
  const p = (amount: number) => ({ id: '00', amount, secret: String(amount) + Math.random(), C: '02' });
  const fee = (ps: readonly unknown[]) => Math.ceil((ps.length * 100) / 1000);
  t.same(coverWithFees([p(16), p(8), p(4), p(2)], 2, fee)?.map((x) => x.amount), [4]);
  t.same(coverWithFees([p(2), p(2), p(1)], 4, fee)?.map((x) => x.amount), [2, 2, 1]);
  t.equal(coverWithFees([p(2), p(1)], 3, fee), undefined, 'not enough with the fee');
});

t.test('bad tokens: garbage, another mint, another unit, tampered proofs', async (t) => {
  const f = await startCashuFixture(t, { inputFeePpk: 0 });
  const alice = await f.openWallet();
  const bob = await f.openWallet();
  await f.fund(alice, 32);
  t.match(await bob.receive('cashuBgarbage').catch((e: Error) => e), { name: 'CashuWalletError', message: /not a valid Cashu token/ });
  const { proofs } = await alice.send(8);
  const foreign = getEncodedToken({ mint: 'http://127.0.0.1:1', proofs: proofs.map(fromProofJson), unit: 'sat' });
  t.match(await bob.receive(foreign).catch((e: Error) => e), { message: /token is for mint/ });
  const usd = getEncodedToken({ mint: f.mint.url, proofs: proofs.map(fromProofJson), unit: 'usd' });
  t.match(await bob.receive(usd).catch((e: Error) => e), { message: /unit usd/ });
  const forged = getEncodedToken({ mint: f.mint.url, proofs: proofs.map((p) => fromProofJson({ ...p, secret: p.secret.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) })), unit: 'sat' });
  const bad = await bob.receive(forged).catch((e: Error) => e);
  t.match(bad, { name: 'CashuWalletError' }, 'forged proofs refused');
  t.equal(bob.balance(), 0);
  t.equal(await bob.receive(getEncodedToken({ mint: f.mint.url, proofs: proofs.map(fromProofJson), unit: 'sat' })), 8, 'the genuine token still redeems');
  await alice.confirmSent();
  f.assertConserved(t, [alice, bob]);
});

t.test('the purse survives a reopen', async (t) => {
  const f = await startCashuFixture(t);
  const dir = f.tempDir();
  const w = await f.openWallet(dir);
  await f.fund(w, 128);
  await w.close();
  const again = await f.openWallet(dir);
  t.equal(again.balance(), 128);
  f.assertConserved(t, [again]);
});

t.test('the Wallet facade carries the Cashu rail', async (t) => {
  const { Wallet } = await import('../src/wallet/wallet.ts');
  const { quiet } = await import('./helpers/cashu-fixture.ts');
  const f = await startCashuFixture(t);
  const none = await Wallet.open({ logger: quiet, dataDir: f.tempDir() });
  t.teardown(() => none.close());
  t.equal(none.hasCashu, false);
  t.throws(() => none.cashu, /no Cashu wallet configured/);
  const w = await Wallet.open({ logger: quiet, dataDir: f.tempDir(), cashu: { mintUrl: f.mint.url } });
  t.teardown(() => w.close());
  t.equal(w.hasCashu, true);
  await f.fund(w.cashu, 16);
  t.equal(w.cashu.balance(), 16);
  f.assertConserved(t, [w.cashu]);
});

t.test('restore from seed after losing the store (NUT-09 + NUT-13)', async (t) => {
  const { randomBytes } = await import('node:crypto');
  const { rmSync } = await import('node:fs');
  const f = await startCashuFixture(t);
  const seed = randomBytes(64);
  const dir = f.tempDir();
  const a = await f.openWallet(dir, { seed });
  const bob = await f.openWallet();
  await f.fund(a, 200);
  await bob.receive((await a.send(50)).token);
  const kept = a.balance();
  t.ok(kept > 0 && kept < 150);
  await a.close();
  rmSync(dir, { recursive: true, force: true }); // the disk is gone
  const a2 = await f.openWallet(f.tempDir(), { seed });
  t.equal(a2.balance(), 0);
  t.equal(await a2.restoreFromSeed(), kept, 'every unspent sat comes back; spent ones do not');
  t.equal(a2.balance(), kept);
  const again = await a2.send(10);
  t.match(again.token, /^cashuB/, 'counters moved past the restored ones: new outputs are not reused');
  t.equal(await a2.restoreFromSeed(), 0, 'a second restore finds nothing new');
  await a2.confirmSent();
  f.assertConserved(t, [a2, bob]);
});

t.test('a token partly double-spent by its sender: the receiver keeps the unspent part', async (t) => {
  const { Wallet: CashuTsWallet } = await import('@cashu/cashu-ts');
  const f = await startCashuFixture(t, { inputFeePpk: 0 });
  const alice = await f.openWallet();
  const bob = await f.openWallet();
  await f.fund(alice, 64);
  const { token, proofs } = await alice.send(3);
  t.same(proofs.map((p) => p.amount).sort(), [1, 2]);
  const thief = new CashuTsWallet(f.mint.url, { unit: 'sat' });
  await thief.loadMint();
  const stolen = await thief.receive(proofs.filter((p) => p.amount === 2).map(fromProofJson));
  t.equal(stolen.length, 1, 'the sender spent the 2-sat proof elsewhere first');
  const res = await bob.receive(token).catch((e: CashuWalletError) => e);
  t.match(res, { name: 'CashuWalletError', code: 11001 });
  t.equal(bob.balance(), 1, 'the unspent 1-sat proof is kept');
  t.equal(bob.totals().reserved, 0);
  const { token: onward } = await bob.send(1, { includeFees: false });
  t.equal(await alice.receive(onward), 1, 'and it is really spendable');
});

t.test('sign and redeem loose P2PK proofs', async (t) => {
  const f = await startCashuFixture(t);
  const alice = await f.openWallet();
  const bob = await f.openWallet();
  await f.fund(alice, 64);
  const bobKey = newPaymentKey();
  const { proofs } = await alice.send(16, { p2pk: { pubkey: bobKey.pubkey } });
  const signed = bob.sign(proofs, bobKey.secretKey);
  t.ok(signed.every((p) => typeof p.witness === 'string' && JSON.parse(p.witness).signatures.length === 1), 'each proof carries a signature');
  t.equal(await bob.redeem(signed), 16, 'pre-signed proofs redeem without the key');
  await alice.confirmSent();
  f.assertConserved(t, [alice, bob]);
});

t.test('concurrent sends and payments from one wallet never pick the same proofs', async (t) => {
  const f = await startCashuFixture(t);
  const w = await f.openWallet();
  const bob = await f.openWallet();
  for (let i = 0; i < 4; i++) await f.fund(w, 64);
  const inv = await f.fake.createInvoice({ amountMsat: 20_000, description: 'x', expirySecs: 600 });
  const results = await Promise.all([w.send(30), w.send(20), w.payInvoice(inv.bolt11), w.send(10)]);
  t.equal(results.length, 4, 'all four operations succeed');
  for (const r of results) if ('token' in r) await bob.receive(r.token);
  t.equal(bob.balance(), 60);
  await w.confirmSent();
  f.assertConserved(t, [w, bob]);
});
