// cashu-ts (v4) as a client of the real mint over HTTP: keysets, mint, swap, send /
// receive (cashuB and cashuA), melt with change, check state, restore from seed, P2PK
// (multisig, locktime refund, SIG_ALL), HTLC, DLEQ and websocket updates. Money is
// conserved after every test.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import {
  SigAll,
  Wallet,
  createHTLCHash,
  deriveKeysetId,
  getEncodedToken,
  hasValidDleq,
  stripDleq,
  sumProofs,
} from '@cashu/cashu-ts';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { startTestMint, waitPaid } from './helpers/mint-fixture.ts';

const key = (): { sk: string; pk: string } => {
  const sk = schnorr.utils.randomSecretKey();
  return { sk: bytesToHex(sk), pk: '02' + bytesToHex(schnorr.getPublicKey(sk)) };
};

t.test('keysets follow NUT-01/02 (v2 ids that re-derive from the keys, input fee)', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 100 });
  const keys = (await (await fetch(`${h.url}/v1/keys`)).json()) as { keysets: { id: string; unit: string; keys: Record<string, string>; input_fee_ppk: number }[] };
  t.equal(keys.keysets.length, 1);
  const ks = keys.keysets[0];
  t.match(ks.id, /^01[0-9a-f]{64}$/, 'version 01 keyset id');
  t.equal(ks.unit, 'sat');
  t.equal(Object.keys(ks.keys).length, 32);
  t.equal(deriveKeysetId(ks.keys, { unit: 'sat', input_fee_ppk: 100 }), ks.id, 'id derives from keys, unit and fee');
  const sets = (await (await fetch(`${h.url}/v1/keysets`)).json()) as { keysets: { id: string; active: boolean; input_fee_ppk: number }[] };
  t.same(sets.keysets, [{ id: ks.id, unit: 'sat', active: true, input_fee_ppk: 100 }]);
  const byShortId = (await (await fetch(`${h.url}/v1/keys/${ks.id.slice(0, 16)}`)).json()) as typeof keys;
  t.equal(byShortId.keysets[0].id, ks.id, 'short (16 hex) id resolves');
  const info = (await (await fetch(`${h.url}/v1/info`)).json()) as { nuts: Record<string, unknown>; pubkey: string };
  for (const n of ['4', '5', '7', '8', '9', '10', '11', '12', '14', '17']) t.ok(info.nuts[n], `NUT-${n} advertised`);
  t.match(info.pubkey, /^0[23][0-9a-f]{64}$/);
});

t.test('NUT-02 version 1 keyset id test vector', async (t) => {
  const keys = {
    '1': '03a40f20667ed53513075dc51e715ff2046cad64eb68960632269ba7f0210e38bc',
    '2': '03fd4ce5a16b65576145949e6f99f445f8249fee17c606b688b504a849cdc452de',
    '4': '02648eccfa4c026960966276fa5a4cae46ce0fd432211a4f449bf84f13aa5f8303',
    '8': '02fdfd6796bfeac490cbee12f778f867f0a2c68f6508d17c649759ea0dc3547528',
  };
  t.equal(deriveKeysetId(keys, { versionByte: 0 }), '00456a94ab4e1c46', 'v1');
});

t.test('mint with websocket quote updates, DLEQ on every signature, swap, send/receive', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const q = await w.createMintQuoteBolt11(300);
  t.equal(q.state, 'UNPAID');
  const paid = await w.on.onceMintPaid(q.quote, { timeoutMs: 5000 });
  t.equal(paid.state, 'PAID', 'websocket reports PAID');
  const proofs = await w.mintProofsBolt11(300, q.quote);
  t.equal(sumProofs(proofs).toNumber(), 300);
  const keyset = w.getKeyset();
  t.ok(proofs.every((p) => p.dleq && hasValidDleq(p, keyset)), 'every minted proof carries a valid DLEQ');
  const again = await w.mintProofsBolt11(300, q.quote).catch((e: Error) => e);
  t.match(String(again), /already been issued/, 'a quote mints once');

  const { keep, send } = await w.send(100, proofs, { includeFees: true });
  const fee = w.getFeesForProofs(send).toNumber();
  t.ok(fee >= 1, 'input fee charged (100 ppk)');
  const token = getEncodedToken({ mint: h.url, proofs: send, unit: 'sat' });
  t.match(token, /^cashuB/);
  const bob = await h.wallet();
  const received = await bob.receive(token, { requireDleq: true });
  t.equal(sumProofs(received).toNumber(), 100, 'receiver gets the amount; the sender paid the fee');
  const states = await w.checkProofsStates(send);
  t.ok(states.every((s) => s.state === 'SPENT'), 'sent proofs are spent');
  const twice = await bob.receive(token).catch((e: Error) => e);
  t.match(String(twice), /already spent/i, 'a token is received once');
  await h.assertConserved(t, [...keep, ...received]);
});

t.test('cashuA (v3) tokens are accepted too', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const v3 = { token: [{ mint: h.url, proofs: proofs.map((p) => ({ id: p.id, amount: p.amount.toNumber(), secret: p.secret, C: p.C })) }], unit: 'sat' };
  const tokenA = 'cashuA' + Buffer.from(JSON.stringify(v3)).toString('base64url');
  const got = await (await h.wallet()).receive(tokenA);
  t.equal(sumProofs(got).toNumber(), 64);
  await h.assertConserved(t, got);
});

t.test('melt pays an invoice, returns NUT-08 change, websocket melt updates', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 500);
  const inv = await h.lightning.createInvoice({ amountMsat: 120_000, description: 'pay out', expirySecs: 600 });
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  t.equal(mq.amount.toNumber(), 120);
  t.ok(mq.fee_reserve.toNumber() > 0, 'fee reserve > 0');
  const updates: string[] = [];
  const stop = await w.on.meltQuoteUpdates([mq.quote], (u) => updates.push(u.state), () => {});
  const paidEvent = w.on.onceMeltPaid(mq.quote, { timeoutMs: 5000 });
  const { keep, send } = await w.send(mq.amount.add(mq.fee_reserve), proofs, { includeFees: true });
  const res = await w.meltProofsBolt11(mq, send);
  t.equal(res.quote.state, 'PAID');
  t.match(res.quote.payment_preimage, /^[0-9a-f]{64}$/);
  t.equal((await paidEvent).state, 'PAID', 'websocket reports the melt PAID');
  t.ok(updates.includes('PAID'));
  stop();
  const change = res.change;
  t.equal(sumProofs(change).toNumber(), mq.fee_reserve.toNumber() - 1, 'unused fee reserve comes back as change (the FakeWallet spends a 1 sat routing fee)');
  const twice = await w.meltProofsBolt11(mq, keep).catch((e: Error) => e);
  t.match(String(twice), /already paid/i, 'a melt quote pays once');
  await h.assertConserved(t, [...keep, ...change]);
});

t.test('check state and proof_state websocket subscription', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 16);
  const seen: string[] = [];
  let resolveSpent!: () => void;
  const spent = new Promise<void>((r) => (resolveSpent = r));
  const cancel = await w.on.proofStateUpdates(
    proofs,
    (p) => {
      seen.push(p.state);
      if (p.state === 'SPENT') resolveSpent();
    },
    () => {},
  );
  const before = await w.checkProofsStates(proofs);
  t.ok(before.every((s) => s.state === 'UNSPENT'));
  const { keep, send } = await w.send(8, proofs, { includeFees: true });
  await spent;
  cancel();
  t.equal(seen[0], 'UNSPENT', 'current state first (NUT-17)');
  t.ok(seen.includes('SPENT'));
  await h.assertConserved(t, [...keep, ...send]);
});

t.test('restore from seed (NUT-09) after losing the wallet', async (t) => {
  const h = await startTestMint(t);
  const seed = randomBytes(64);
  const w = await h.wallet({ bip39seed: seed });
  const minted = await w.ops.mintBolt11(200, await mintQuotePaid(h, w, 200)).asDeterministic(0).run();
  t.equal(sumProofs(minted).toNumber(), 200);
  const fresh = await h.wallet({ bip39seed: seed });
  const { proofs } = await fresh.batchRestore();
  t.equal(sumProofs(proofs).toNumber(), 200, 'all proofs restored');
  t.same(proofs.map((p) => p.secret).sort(), minted.map((p) => p.secret).sort());
  await h.assertConserved(t, proofs);
});

async function mintQuotePaid(h: Awaited<ReturnType<typeof startTestMint>>, w: Wallet, amount: number): Promise<string> {
  const q = await w.createMintQuoteBolt11(amount);
  await waitPaid(h.running, q.quote);
  return q.quote;
}

t.test('P2PK: lock to a key, only that key redeems', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const bob = key();
  const eve = key();
  const { keep, send } = await w.ops.send(20, proofs).asP2PK({ pubkey: bob.pk }).includeFees(true).run();
  const token = getEncodedToken({ mint: h.url, proofs: send, unit: 'sat' });
  const wb = await h.wallet();
  const stolen = await wb.receive(token, { privkey: eve.sk }).catch((e: Error) => e);
  t.match(String(stolen), /spending condition|signature/i, 'wrong key rejected');
  const unsigned = await wb.receive(token).catch((e: Error) => e);
  t.type(unsigned, Error, 'no signature rejected');
  const got = await wb.receive(token, { privkey: bob.sk });
  t.equal(sumProofs(got).toNumber(), 20);
  await h.assertConserved(t, [...keep, ...got]);
});

t.test('P2PK multisig n_sigs 2 of 3', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const [a, b, c] = [key(), key(), key()];
  const { keep, send } = await w.ops.send(16, proofs).asP2PK({ pubkey: [a.pk, b.pk, c.pk], requiredSignatures: 2 }).includeFees(true).run();
  const wr = await h.wallet();
  const one = await wr.receive(send, { privkey: a.sk }).catch((e: Error) => e);
  t.type(one, Error, 'one signature is not enough');
  const got = await wr.receive(send, { privkey: [a.sk, c.sk] });
  t.equal(sumProofs(got).toNumber(), 16, 'two of three signatures redeem');
  await h.assertConserved(t, [...keep, ...got]);
});

t.test('P2PK locktime and refund follow the mint clock', async (t) => {
  // cashu-ts decides which keys may sign from the real clock, so the lock is already
  // expired in real time and the mint's injected clock starts an hour before it.
  const realNow = Math.floor(Date.now() / 1000);
  const locktime = realNow - 10;
  const h = await startTestMint(t, { startAt: locktime - 3600 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const owner = key();
  const refund = key();
  const { keep, send } = await w.ops.send(16, proofs).asP2PK({ pubkey: owner.pk, locktime, refundKeys: [refund.pk] }).includeFees(true).run();
  const wr = await h.wallet();
  const early = await wr.receive(send, { privkey: refund.sk }).catch((e: Error) => e);
  t.type(early, Error, 'refund key cannot redeem before the locktime');
  h.clock.now = realNow;
  const got = await wr.receive(send, { privkey: refund.sk });
  t.equal(sumProofs(got).toNumber(), 16, 'refund key redeems after the locktime');
  await h.assertConserved(t, [...keep, ...got]);
});

t.test('SIG_ALL binds signatures to the outputs', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const owner = key();
  const { keep, send } = await w.ops.send(32, proofs).asP2PK({ pubkey: owner.pk, sigFlag: 'SIG_ALL' }).includeFees(true).run();
  const wr = await h.wallet();
  const preview = await wr.prepareSwapToReceive(send);
  const pkg = SigAll.signPackage(SigAll.extractSwapPackage(preview), owner.sk);
  // Redirect: same signature, different outputs (another receiver's preview).
  const other = await wr.prepareSwapToReceive(send);
  const redirected = await wr.completeSwap(SigAll.mergeSwapPackage(pkg, other)).catch((e: Error) => e);
  t.type(redirected, Error, 'a SIG_ALL signature does not carry over to other outputs');
  const done = await wr.completeSwap(SigAll.mergeSwapPackage(pkg, preview));
  const got = [...done.keep, ...done.send];
  t.equal(sumProofs(got).toNumber(), sumProofs(send).toNumber() - w.getFeesForProofs(send).toNumber(), 'the owner gets the locked value minus the input fee');
  await h.assertConserved(t, [...keep, ...got]);
});

t.test('HTLC (NUT-14): preimage plus signature', async (t) => {
  const h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 32);
  const { hash, preimage } = createHTLCHash();
  const owner = key();
  const { keep, send } = await w.ops.send(8, proofs).asP2PK({ pubkey: owner.pk, hashlock: hash }).includeFees(true).run();
  const wr = await h.wallet();
  const noPre = await wr.receive(send, { privkey: owner.sk }).catch((e: Error) => e);
  t.type(noPre, Error, 'signature without the preimage is rejected');
  const withPre = send.map((p) => ({ ...p, witness: JSON.stringify({ preimage }) }));
  const got = await wr.receive(withPre, { privkey: owner.sk });
  t.equal(sumProofs(got).toNumber(), 8);
  await h.assertConserved(t, [...keep, ...got]);
});

t.test('durability: keysets and spent proofs survive a restart', async (t) => {
  let h = await startTestMint(t);
  const w = await h.wallet();
  const proofs = await h.fund(w, 32);
  const id = h.running.mint.activeKeyset().id;
  const { keep, send } = await w.send(8, proofs, { includeFees: true });
  const token = getEncodedToken({ mint: h.url, proofs: send, unit: 'sat' });
  const got = await (await h.wallet()).receive(token);
  h = await h.restart();
  t.equal(h.running.mint.activeKeyset().id, id, 'same keyset after restart');
  const w2 = await h.wallet();
  const again = await w2.receive(token).catch((e: Error) => e);
  t.match(String(again), /already spent/i, 'spent before the restart stays spent');
  const states = await w2.checkProofsStates(send);
  t.ok(states.every((s) => s.state === 'SPENT'));
  const more = await w2.send(4, keep, { includeFees: true });
  t.ok(more.send.length > 0, 'pre-restart proofs remain spendable');
  await h.assertConserved(t, [...more.keep, ...more.send, ...got]);
});

t.test('an input fee change rotates the keyset; old proofs stay redeemable', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 100 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 32);
  const oldId = h.running.mint.activeKeyset().id;
  await h.running.close();
  const { startMint } = await import('../src/mint/server.ts');
  const { quietLogger } = await import('./helpers/mint-fixture.ts');
  const m2 = await startMint({ port: 0, dataDir: h.dataDir, lightning: h.lightning, inputFeePpk: 0, logger: quietLogger, now: () => h.clock.now });
  t.teardown(() => m2.close());
  t.not(m2.mint.activeKeyset().id, oldId, 'new active keyset');
  const w2 = new Wallet(m2.url, { unit: 'sat' });
  await w2.loadMint();
  // cashu-ts checks input DLEQs against keys it loaded from /v1/keys (active keysets only).
  const swapped = await w2.receive(stripDleq(proofs));
  t.equal(sumProofs(swapped).toNumber(), 32 - 1, 'old keyset inputs redeem (paying their 100 ppk fee)');
  t.equal(swapped[0].id, m2.mint.activeKeyset().id, 'new proofs on the new keyset');
});

t.test('NUT-20: a quote locked to a pubkey mints only with its signature', async (t) => {
  const { secp256k1 } = await import('@noble/curves/secp256k1.js');
  const { OutputData } = await import('@cashu/cashu-ts');
  const { amendedQuoteDigest } = await import('../src/mint/quote-signature.ts');
  const h = await startTestMint(t);
  const w = await h.wallet();
  const sk = secp256k1.utils.randomSecretKey();
  const pk = bytesToHex(secp256k1.getPublicKey(sk, true));
  const q = await w.createLockedMintQuote(32, pk);
  t.equal(q.pubkey, pk, 'the quote carries the pubkey');
  await waitPaid(h.running, q.quote);
  const ks = h.running.mint.keysResponse().keysets[0];
  const outs = OutputData.createRandomData(32, { id: ks.id, keys: ks.keys }).map((o) => ({ ...o.blindedMessage, amount: Number(o.blindedMessage.amount) }));
  const post = (body: unknown) => fetch(`${h.url}/v1/mint/bolt11`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
  t.match(await post({ quote: q.quote, outputs: outs }), { code: 20008 }, 'no signature: refused');
  const other = schnorr.utils.randomSecretKey();
  const forged = bytesToHex(schnorr.sign(amendedQuoteDigest(q.quote, outs), other));
  t.match(await post({ quote: q.quote, outputs: outs, signature: forged }), { code: 20008 }, 'a signature by another key: refused');
  const proofs = await w.mintProofsBolt11(32, q, { privkey: bytesToHex(sk) });
  t.equal(sumProofs(proofs).toNumber(), 32, 'the key holder mints (cashu-ts signs the amended message)');
  const bad = await fetch(`${h.url}/v1/mint/quote/bolt11`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1, unit: 'sat', pubkey: '02' + 'ff'.repeat(32) }) });
  t.match(await bad.json(), { code: 20009 }, 'an invalid pubkey is refused');
  await h.assertConserved(t, proofs);
});
