// Every NUT error code the mint can return (cashubtc/nuts error_codes.md), each provoked
// over HTTP and asserted; the last test checks that no code the mint's sources use is left
// unasserted here. Spending-condition refusals (10001) carry the wording both nutshell- and
// CDK-style clients match (cashu-ts's integration suite, CDK-based conformance runners).
import t from 'tap';
import { createHTLCHash, type P2PKOptions, type Proof } from '@cashu/cashu-ts';
import type { Test } from 'tap';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import bolt11 from 'bolt11';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { accountLightningBackend } from '../src/lightning/account-backend.ts';
import { MintErrorCode } from '../src/mint/errors.ts';
import { FAKE_WALLET_NODE_KEY, FakeWallet } from '../src/mint/fake-wallet.ts';
import { startMint } from '../src/mint/server.ts';
import { blinded, gatedFakeWallet, outputs, postJson, quietLogger, startTestMint, waitPaid, wire, type MintFixture } from './helpers/mint-fixture.ts';
import { openTestNetwork } from './helpers/network.ts';

type Reply = Awaited<ReturnType<typeof postJson>>;
const asserted = new Set<number>();

/** Asserts a NUT error reply `{ detail, code }` with HTTP 400 and records the code as covered. */
function expectCode(tt: Test, reply: Reply, code: number, what: string, detail?: RegExp): void {
  tt.equal(reply.status, 400, `${what}: HTTP 400`);
  tt.match(reply.json, { code, detail: detail ?? String }, `${what}: code ${code}`);
  if (reply.json.code === code) asserted.add(code);
}

const key = (): { sk: Uint8Array; pk: string } => {
  const sk = schnorr.utils.randomSecretKey();
  return { sk, pk: '02' + bytesToHex(schnorr.getPublicKey(sk)) };
};
const sign = (msg: string, sk: Uint8Array): string => bytesToHex(schnorr.sign(sha256(utf8ToBytes(msg)), sk));
const withWitness = (p: Proof, witness: unknown): Record<string, unknown> => ({ ...wire(p), witness: JSON.stringify(witness) });
const sum = (ps: readonly Proof[]): number => ps.reduce((s, p) => s + p.amount.toNumber(), 0);

t.test('request shape (10000, outside the table), units (11013), limits (11006, 11014, 11015), keysets (12001, 12002)', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  expectCode(t, await postJson(`${h.url}/v1/swap`, '{"inputs": ['), MintErrorCode.generic, 'malformed JSON', /not valid JSON/);
  expectCode(t, await postJson(`${h.url}/v1/melt/bolt11`, { quote: 'nope', inputs: [] }), MintErrorCode.generic, 'unknown quote', /not found/);
  expectCode(t, await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 10, unit: 'usd' }), MintErrorCode.unitNotSupported, 'unit usd');
  expectCode(t, await postJson(`${h.url}/v1/melt/quote/bolt12`, { request: 'lno1x', unit: 'sat' }), MintErrorCode.unitNotSupported, 'bolt12 method');
  expectCode(t, await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: h.running.mint.maxAmount + 1, unit: 'sat' }), MintErrorCode.amountOutOfLimits, 'amount above the limit');
  const dummy = { id: h.running.mint.activeKeyset().id, amount: 1, secret: 's', C: '02' + '11'.repeat(32) };
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: Array.from({ length: 1001 }, () => dummy), outputs: [] }), MintErrorCode.maxInputsExceeded, '1001 inputs');
  const w = await h.wallet();
  const proofs = await h.fund(w, 2);
  const oneOutput = blinded(outputs(h, 1))[0];
  const many = Array.from({ length: 1001 }, () => oneOutput);
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: proofs.map(wire), outputs: many }), MintErrorCode.maxOutputsExceeded, '1001 outputs');
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: proofs.map((p) => ({ ...wire(p), id: '01' + 'ab'.repeat(32) })), outputs: blinded(outputs(h, 2)) }), MintErrorCode.keysetUnknown, 'unknown input keyset');
  // A fee change rotates the keyset: the old one still redeems but no longer signs.
  const oldId = h.running.mint.activeKeyset().id;
  await h.running.close();
  const m2 = await startMint({ port: 0, dataDir: h.dataDir, lightning: h.lightning, inputFeePpk: 100, logger: quietLogger, now: () => h.clock.now });
  t.teardown(() => m2.close());
  const oldOutputs = blinded(outputs(h, 1)).map((o) => ({ ...o, id: oldId }));
  expectCode(t, await postJson(`${m2.url}/v1/swap`, { inputs: proofs.map(wire), outputs: oldOutputs }), MintErrorCode.keysetInactive, 'outputs on the inactive keyset');
});

t.test('transactions: 10001, 11001, 11003, 11005, 11007, 11008', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = (await h.fund(w, 96)).sort((x, y) => x.amount.toNumber() - y.amount.toNumber());
  const [p, q] = proofs; // 32, 64
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [{ ...wire(p), secret: p.secret + 'x' }], outputs: blinded(outputs(h, 32)) }), MintErrorCode.proofVerificationFailed, 'forged proof', /does not verify/);
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: blinded(outputs(h, 33)) }), MintErrorCode.transactionNotBalanced, 'outputs above inputs');
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [wire(p), wire(p)], outputs: blinded(outputs(h, 64)) }), MintErrorCode.duplicateInputs, 'duplicate inputs');
  const o = blinded(outputs(h, 16));
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: [...o, ...o] }), MintErrorCode.duplicateOutputs, 'duplicate outputs');
  const outs = blinded(outputs(h, 32));
  t.equal((await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: outs })).status, 200, 'a valid swap');
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: blinded(outputs(h, 32)) }), MintErrorCode.proofsAlreadySpent, 'spent again');
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: [wire(q)], outputs: [...outs, ...blinded(outputs(h, 32))] }), MintErrorCode.outputsAlreadySigned, 'outputs signed before');
});

t.test('spending conditions (10001) are worded for nutshell- and CDK-style clients', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const alice = key();
  const bob = key();
  const swap = async (inputs: Record<string, unknown>[], amount: number): Promise<Reply> => postJson(`${h.url}/v1/swap`, { inputs, outputs: blinded(outputs(h, amount)) });
  const lock = async (opts: P2PKOptions, amount = 8): Promise<Proof[]> => {
    const funded = await h.fund(w, amount);
    return (await w.ops.send(amount, funded).asP2PK(opts).run()).send;
  };
  const code = MintErrorCode.proofVerificationFailed;

  const p2pk = await lock({ pubkey: alice.pk });
  const missing = await swap(p2pk.map(wire), 8);
  expectCode(t, missing, code, 'P2PK without a witness');
  t.match(missing.json.detail!.toLowerCase(), /witness.*p2pk.*signature/, "cashu-ts's match (nutshell wording)");
  for (const phrase of ['Witness is missing for p2pk signature', 'no witness in proof', 'signatures not provided']) t.ok(missing.json.detail!.includes(phrase), `says "${phrase}"`);
  const wrong = await swap(p2pk.map((p) => withWitness(p, { signatures: [sign(p.secret, bob.sk)] })), 8);
  expectCode(t, wrong, code, 'P2PK signed by another key', /Signature missing or invalid: signature threshold not met \(0 of 1/);
  t.equal((await swap(p2pk.map((p) => withWitness(p, { signatures: [sign(p.secret, alice.sk)] })), 8)).status, 200, 'the right signature spends');

  const twoOfTwo = await lock({ pubkey: [alice.pk, bob.pk], requiredSignatures: 2 });
  const one = await swap(twoOfTwo.map((p) => withWitness(p, { signatures: [sign(p.secret, alice.sk), sign(p.secret, alice.sk)] })), 8);
  expectCode(t, one, code, 'multisig: one key signing twice', /signature threshold not met \(1 of 2/);

  const { hash, preimage } = createHTLCHash();
  const htlc = await lock({ pubkey: alice.pk, hashlock: hash });
  const sigOnly = await swap(htlc.map((p) => withWitness(p, { signatures: [sign(p.secret, alice.sk)] })), 8);
  expectCode(t, sigOnly, code, 'HTLC without the preimage', /HTLC spend conditions are not met: no HTLC preimage provided/);
  const notHex = await swap(htlc.map((p) => withWitness(p, { preimage: 'this_is_the_wrong_preimage', signatures: [sign(p.secret, alice.sk)] })), 8);
  expectCode(t, notHex, code, 'HTLC preimage not hex');
  for (const phrase of ['HTLC preimage must be 64 characters hex.', 'Preimage must be valid hex encoding']) t.ok(notHex.json.detail!.includes(phrase), `says "${phrase}"`);
  const other = await swap(htlc.map((p) => withWitness(p, { preimage: bytesToHex(randomBytes(32)), signatures: [sign(p.secret, alice.sk)] })), 8);
  expectCode(t, other, code, 'HTLC wrong preimage', /Preimage does not match/);
  const preOnly = await swap(htlc.map((p) => withWitness(p, { preimage })), 8);
  expectCode(t, preOnly, code, 'HTLC preimage without the signature', /Witness did not provide signatures \(no signatures in proof\)/);

  const a = await lock({ pubkey: alice.pk, sigFlag: 'SIG_ALL' }, 4);
  const b = await lock({ pubkey: bob.pk, sigFlag: 'SIG_ALL' }, 4);
  const mixed = await swap([...a, ...b].map(wire), sum([...a, ...b]));
  expectCode(t, mixed, code, 'SIG_ALL inputs with different locks', /not all secrets are equal\./);
});

t.test('mint quotes: 20001, 20002, 20007, 20008, 20009', async (t) => {
  const slow = new FakeWallet({ paidAfterMs: 60_000 });
  t.teardown(() => slow.close());
  const h = await startTestMint(t, { inputFeePpk: 0, lightning: slow });
  const q = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 8, unit: 'sat' });
  expectCode(t, await postJson(`${h.url}/v1/mint/bolt11`, { quote: q.json.quote, outputs: blinded(outputs(h, 8)) }), MintErrorCode.quoteNotPaid, 'unpaid quote');
  h.clock.now += 3601;
  expectCode(t, await postJson(`${h.url}/v1/mint/bolt11`, { quote: q.json.quote, outputs: blinded(outputs(h, 8)) }), MintErrorCode.quoteExpired, 'expired unpaid quote');
  h.clock.now -= 3601;
  expectCode(t, await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 1, unit: 'sat', pubkey: '02' + 'ff'.repeat(32) }), MintErrorCode.quotePubkeyInvalid, 'invalid quote pubkey');

  const fast = await startTestMint(t, { inputFeePpk: 0 });
  const w = await fast.wallet();
  const paid = await w.createMintQuoteBolt11(8);
  await waitPaid(fast.running, paid.quote);
  t.equal((await postJson(`${fast.url}/v1/mint/bolt11`, { quote: paid.quote, outputs: blinded(outputs(fast, 8)) })).status, 200);
  expectCode(t, await postJson(`${fast.url}/v1/mint/bolt11`, { quote: paid.quote, outputs: blinded(outputs(fast, 8)) }), MintErrorCode.quoteAlreadyIssued, 'issued twice');
  const locked = await w.createLockedMintQuote(8, key().pk);
  await waitPaid(fast.running, locked.quote);
  expectCode(t, await postJson(`${fast.url}/v1/mint/bolt11`, { quote: locked.quote, outputs: blinded(outputs(fast, 8)) }), MintErrorCode.quoteSignatureInvalid, 'locked quote without a signature');
});

t.test('melts: 11002, 11004, 11011, 20004, 20005, 20006, 20007', async (t) => {
  // The Lightning payment waits on a gate so the test can look at the mint mid-melt.
  const { fake, lightning: gated, open, pending: whenPending } = gatedFakeWallet(t);
  const h: MintFixture = await startTestMint(t, { inputFeePpk: 0, lightning: gated });
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const spare = await h.fund(w, 8);

  const amountless = bolt11.sign(bolt11.encode({ network: { bech32: 'bc', pubKeyHash: 0, scriptHash: 5, validWitnessVersions: [0, 1] }, timestamp: h.clock.now, tags: [{ tagName: 'payment_hash', data: bytesToHex(randomBytes(32)) }, { tagName: 'payment_secret', data: bytesToHex(randomBytes(32)) }, { tagName: 'description', data: 'any amount' }] }), FAKE_WALLET_NODE_KEY).paymentRequest!;
  expectCode(t, await postJson(`${h.url}/v1/melt/quote/bolt11`, { request: amountless, unit: 'sat' }), MintErrorCode.amountlessInvoice, 'amountless invoice');

  const inv = await fake.createInvoice({ amountMsat: 10_000, description: 'x', expirySecs: 600 });
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  const twin = await w.createMeltQuoteBolt11(inv.bolt11); // a second quote for the same invoice, made before it is paid
  const pending = whenPending(h.running);
  const blanks = blinded(outputs(h, 63)).map((o) => ({ ...o, amount: 1 }));
  const melting = postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: proofs.map(wire), outputs: blanks });
  await pending;
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: proofs.map(wire), outputs: blinded(outputs(h, 64)) }), MintErrorCode.proofsPending, 'swap of proofs in a melt');
  expectCode(t, await postJson(`${h.url}/v1/swap`, { inputs: spare.map(wire), outputs: [{ ...blanks[0], amount: 8 }] }), MintErrorCode.outputsPending, "swap onto a melt's blank outputs", /outputs are pending/);
  expectCode(t, await postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: spare.map(wire) }), MintErrorCode.quotePending, 'melt of a pending quote');
  open();
  t.equal((await melting).json.state, 'PAID');
  t.equal((await postJson(`${h.url}/v1/swap`, { inputs: spare.map(wire), outputs: [{ ...blanks[5], amount: 8 }] })).status, 200, 'blank outputs left unused by the change are free again');
  expectCode(t, await postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: spare.map(wire) }), MintErrorCode.invoiceAlreadyPaid, 'melt of a paid quote');
  expectCode(t, await postJson(`${h.url}/v1/melt/quote/bolt11`, { request: inv.bolt11, unit: 'sat' }), MintErrorCode.invoiceAlreadyPaid, 'new quote for a paid invoice');
  const more = await h.fund(w, 32);
  const failed = await postJson(`${h.url}/v1/melt/bolt11`, { quote: twin.quote, inputs: more.map(wire) });
  expectCode(t, failed, MintErrorCode.lightningPaymentFailed, 'the twin quote: the backend refuses to pay twice', /Lightning payment failed/);
  t.same((await w.checkProofsStates(more)).map((s) => s.state), more.map(() => 'UNSPENT'), 'a failed payment releases the inputs');

  const later = await w.createMeltQuoteBolt11((await fake.createInvoice({ amountMsat: 1000, description: 'y', expirySecs: 600 })).bolt11);
  h.clock.now = later.expiry;
  expectCode(t, await postJson(`${h.url}/v1/melt/bolt11`, { quote: later.quote, inputs: more.map(wire) }), MintErrorCode.quoteExpired, 'expired melt quote');
});

t.test('outside fake mode an expired invoice is refused (20007); in fake mode it melts', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('mint');
  net.createAccount('bob');
  const real = await startTestMint(t, { lightning: accountLightningBackend(net, 'mint') });
  const inv = net.createInvoice('bob', 5_000, 'soon gone', 1);
  real.clock.now += 10;
  expectCode(t, await postJson(`${real.url}/v1/melt/quote/bolt11`, { request: inv.bolt11, unit: 'sat' }), MintErrorCode.quoteExpired, 'dev-network mint, expired invoice', /invoice is expired/);

  const fake = await startTestMint(t, { inputFeePpk: 0 });
  const w = await fake.wallet();
  const yesterday = new FakeWallet({ now: () => fake.clock.now - 86_400 });
  t.teardown(() => yesterday.close());
  const old = await yesterday.createInvoice({ amountMsat: 5_000, description: 'yesterday', expirySecs: 60 });
  const mq = await w.createMeltQuoteBolt11(old.bolt11);
  t.ok(mq.expiry > fake.clock.now, 'the quote itself is valid for the usual time');
  const proofs = await fake.fund(w, 16);
  const res = await w.meltProofsBolt11(mq, proofs);
  t.equal(res.quote.state, 'PAID', 'FakeWallet pays an expired invoice, like nutshell');
  await fake.assertConserved(t, res.change);
});

t.test('every error code the mint sources use is asserted above', async (t) => {
  const dir = new URL('../src/mint/', import.meta.url);
  const used = new Set<number>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts') && n !== 'errors.ts')) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    for (const m of src.matchAll(/\b(?:E|MintErrorCode)\.(\w+)/g)) {
      const c = (MintErrorCode as Record<string, number>)[m[1]];
      t.ok(c !== undefined, `${f}: ${m[0]} is a known code`);
      used.add(c);
    }
  }
  t.ok(used.size >= 20, `found ${used.size} codes in the mint sources`);
  t.same([...used].filter((c) => !asserted.has(c)).sort(), [], 'no code the mint can return is left unasserted');
});
