// The mint under bad input: every case answers a clear NUT error `{ detail, code }`,
// nothing is lost, money is conserved; two concurrent swaps of the same proofs: one wins.
import t from 'tap';
import WebSocket from 'ws';
import { FakeWallet } from '../src/mint/fake-wallet.ts';
import { MAX_BODY_BYTES } from '../src/mint/server.ts';
import { blinded, gatedFakeWallet, outputs, postJson, startTestMint, wire } from './helpers/mint-fixture.ts';

t.test('malformed requests get NUT error bodies, never a crash', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const notJson = await postJson(`${h.url}/v1/swap`, '{"inputs": [');
  t.equal(notJson.status, 400);
  t.match(notJson.json, { code: 10000, detail: /not valid JSON/ });
  const big = await postJson(`${h.url}/v1/swap`, JSON.stringify({ x: 'a'.repeat(MAX_BODY_BYTES + 10) })).catch((e: Error) => e);
  if (!(big instanceof Error)) t.match(big, { status: 413, json: { detail: /exceeds/ } }, 'oversized body refused');
  const shape = await postJson(`${h.url}/v1/swap`, { inputs: 'x', outputs: [] });
  t.match(shape, { status: 400, json: { code: 10000, detail: /inputs must be/ } });
  const garbageProof = await postJson(`${h.url}/v1/swap`, { inputs: [{ id: '00ff', amount: 1, secret: 's', C: 'zz' }], outputs: blinded(outputs(h, 1)) });
  t.match(garbageProof.json, { code: 10000, detail: /C must be/ });
  const unit = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 10, unit: 'usd' });
  t.match(unit, { status: 400, json: { code: 11013 } }, 'wrong unit');
  const negative = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: -5, unit: 'sat' });
  t.match(negative.json, { code: 10000, detail: /positive integer/ });
  const unknownQuote = await fetch(`${h.url}/v1/mint/quote/bolt11/nope`);
  t.equal(unknownQuote.status, 400);
  const notFound = await fetch(`${h.url}/v1/nothing`);
  t.equal(notFound.status, 404);
  const unknownKeyset = await fetch(`${h.url}/v1/keys/00deadbeefdeadbe`);
  t.match(await unknownKeyset.json(), { code: 12001 });
  const bolt12 = await postJson(`${h.url}/v1/mint/quote/bolt12`, { amount: 1, unit: 'sat' });
  t.match(bolt12.json, { code: 11013 });
  await h.assertConserved(t, []);
});

t.test('garbage and forged proofs, unknown keysets, unbalanced and duplicate requests', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = (await h.fund(w, 96)).sort((x, y) => x.amount.toNumber() - y.amount.toNumber());
  const [p, q] = proofs; // 32, 64
  const forged = await postJson(`${h.url}/v1/swap`, { inputs: [{ ...wire(p), secret: p.secret + 'x' }], outputs: blinded(outputs(h, p.amount.toNumber())) });
  t.match(forged.json, { code: 10001 }, 'secret not signed by the mint');
  const wrongAmount = await postJson(`${h.url}/v1/swap`, { inputs: [{ ...wire(p), amount: p.amount.toNumber() * 2 }], outputs: blinded(outputs(h, p.amount.toNumber() * 2)) });
  t.match(wrongAmount.json, { code: 10001 }, 'amount inflated');
  const unknownKs = await postJson(`${h.url}/v1/swap`, { inputs: [{ ...wire(p), id: '01' + 'ab'.repeat(32) }], outputs: blinded(outputs(h, p.amount.toNumber())) });
  t.match(unknownKs.json, { code: 12001 }, 'unknown keyset');
  const badOutKs = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: blinded(outputs(h, p.amount.toNumber())).map((o) => ({ ...o, id: '009a1f293253e41e' })) });
  t.match(badOutKs.json, { code: 12001 }, 'unknown output keyset');
  const unbalanced = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: blinded(outputs(h, p.amount.toNumber() + 1)) });
  t.match(unbalanced.json, { code: 11005 }, 'outputs exceed inputs');
  const dupIn = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p), wire(p)], outputs: blinded(outputs(h, p.amount.toNumber() * 2)) });
  t.match(dupIn.json, { code: 11007 });
  const o = blinded(outputs(h, 1));
  const dupOut = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: [...o, ...o] });
  t.match(dupOut.json, { code: 11008 });
  const notPow2 = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: [{ ...o[0], amount: 3 }] });
  t.match(notPow2.json, { code: 10000, detail: /power of two/ });
  // Outputs signed once are never signed again (a blinded message is single use).
  const outs = outputs(h, p.amount.toNumber());
  const first = await postJson(`${h.url}/v1/swap`, { inputs: [wire(p)], outputs: blinded(outs) });
  t.equal(first.status, 200);
  const reused = await postJson(`${h.url}/v1/swap`, { inputs: [wire(q)], outputs: blinded(outputs(h, q.amount.toNumber() - p.amount.toNumber())).concat(blinded(outs)) });
  t.ok(reused.json.code === 11003 || reused.json.code === 11005, 'already-signed outputs refused');
  const sigs = (first.json.signatures as { C_: string; id: string; amount: number }[]).map((s) => ({ ...s, amount: s.amount }));
  const ks = h.running.mint.keysResponse().keysets[0];
  const newProofs = outs.map((x, i) => x.toProof(sigs[i] as never, { id: ks.id, keys: ks.keys }));
  await h.assertConserved(t, [...proofs.slice(1), ...newProofs]);
});

t.test('double spend: two concurrent swaps of the same proofs, exactly one wins', async (t) => {
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 128);
  const amount = proofs.reduce((s, p) => s + p.amount.toNumber(), 0);
  const a = outputs(h, amount);
  const b = outputs(h, amount);
  const results = await Promise.all([
    postJson(`${h.url}/v1/swap`, { inputs: proofs.map(wire), outputs: blinded(a) }),
    postJson(`${h.url}/v1/swap`, { inputs: proofs.map(wire), outputs: blinded(b) }),
  ]);
  const winners = results.filter((r) => r.status === 200);
  t.equal(winners.length, 1, 'exactly one swap succeeds');
  t.match(results.find((r) => r.status !== 200)?.json, { code: 11001 }, 'the other is told the proofs are spent');
  const ks = h.running.mint.keysResponse().keysets[0];
  const won = results[0].status === 200 ? a : b;
  const sigs = winners[0].json.signatures as never[];
  const got = won.map((x, i) => x.toProof(sigs[i], { id: ks.id, keys: ks.keys }));
  t.equal(h.running.mint.store.ledger().signed - h.running.mint.store.ledger().spent, amount, 'no value created');
  await h.assertConserved(t, got);
});

t.test('melt: tampered invoice, over-budget inputs, unpaid mint quote', async (t) => {
  const slow = new FakeWallet({ paidAfterMs: 60_000 });
  t.teardown(() => slow.close());
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 100);
  const inv = await slow.createInvoice({ amountMsat: 50_000, description: 'x', expirySecs: 600 });
  const i = inv.bolt11.length - 20;
  const tampered = inv.bolt11.slice(0, i) + (inv.bolt11[i] === 'q' ? 'p' : 'q') + inv.bolt11.slice(i + 1);
  const tq = await postJson(`${h.url}/v1/melt/quote/bolt11`, { request: tampered, unit: 'sat' });
  t.match(tq, { status: 400, json: { code: 10000, detail: /invalid bolt11/ } }, 'tampered invoice rejected');
  const garbage = await postJson(`${h.url}/v1/melt/quote/bolt11`, { request: 'lnbc1garbage', unit: 'sat' });
  t.match(garbage.json, { detail: /invalid bolt11/ });
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  const few = proofs.filter((p) => p.amount.toNumber() <= 32);
  const short = await postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: few.map(wire) });
  t.match(short, { status: 400, json: { code: 11005 } }, 'inputs below amount + fee reserve');
  const st = await w.checkProofsStates(few);
  t.ok(st.every((s) => s.state === 'UNSPENT'), 'a refused melt spends nothing');
  // A mint quote whose invoice is not paid cannot mint.
  const q = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 8, unit: 'sat' });
  t.equal(q.status, 200);
  await h.assertConserved(t, proofs);
});

t.test('unpaid mint quotes cannot mint (20001)', async (t) => {
  const slow = new FakeWallet({ paidAfterMs: 60_000 });
  t.teardown(() => slow.close());
  const h = await startTestMint(t, { inputFeePpk: 0, lightning: slow });
  const q = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 8, unit: 'sat' });
  const res = await postJson(`${h.url}/v1/mint/bolt11`, { quote: q.json.quote, outputs: blinded(outputs(h, 8)) });
  t.match(res, { status: 400, json: { code: 20001 } });
  await h.assertConserved(t, []);
});

t.test('websocket: garbage gets JSON-RPC errors and the connection survives', async (t) => {
  const h = await startTestMint(t);
  const ws = new WebSocket(`${h.url.replace('http', 'ws')}/v1/ws`);
  t.teardown(() => ws.close());
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const replies: Record<string, unknown>[] = [];
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((r) => ws.once('message', (d) => r(JSON.parse(String(d)) as Record<string, unknown>)));
  let reply = next();
  ws.send('not json');
  replies.push(await reply);
  reply = next();
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: { kind: 'nope', subId: 'a', filters: ['x'] } }));
  replies.push(await reply);
  reply = next();
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'subscribe', params: { kind: 'proof_state', subId: 'b', filters: ['02' + '00'.repeat(32)] } }));
  replies.push(await reply);
  t.match(replies[0], { error: { code: -32700 } });
  t.match(replies[1], { id: 1, error: { code: -32602 } });
  t.match(replies[2], { id: 2, result: { status: 'OK', subId: 'b' } });
});

t.test('melt in flight: inputs PENDING, concurrent swap and second melt refused, then SPENT', async (t) => {
  // The Lightning payment waits on a gate so the test can look at the mint mid-melt.
  const { fake, lightning: gated, open, pending: whenPending } = gatedFakeWallet(t);
  const h = await startTestMint(t, { inputFeePpk: 0, lightning: gated });
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const inv = await fake.createInvoice({ amountMsat: 10_000, description: 'x', expirySecs: 600 });
  const mq = await w.createMeltQuoteBolt11(inv.bolt11);
  const pending = whenPending(h.running);
  const melting = postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: proofs.map(wire), outputs: blinded(outputs(h, 63)).map((o) => ({ ...o, amount: 1 })) }); // six blank outputs
  await pending;
  t.same((await w.checkProofsStates(proofs)).map((s) => s.state), proofs.map(() => 'PENDING'), 'inputs are PENDING during the payment');
  const swap = await postJson(`${h.url}/v1/swap`, { inputs: proofs.map(wire), outputs: blinded(outputs(h, 64)) });
  t.match(swap.json, { code: 11002 }, 'a swap of pending proofs is refused');
  const again = await postJson(`${h.url}/v1/melt/bolt11`, { quote: mq.quote, inputs: proofs.map(wire) });
  t.match(again.json, { code: 20005 }, 'the quote is pending');
  t.equal((await w.checkMeltQuoteBolt11(mq.quote)).state, 'PENDING');
  open();
  const done = await melting;
  t.equal(done.status, 200);
  t.equal(done.json.state, 'PAID');
  t.same((await w.checkProofsStates(proofs)).map((s) => s.state), proofs.map(() => 'SPENT'));
  const change = done.json.change as { C_: string; id: string; amount: number }[];
  t.equal(change.reduce((s, c) => s + c.amount, 0), 64 - 10 - 1, 'change for everything above the invoice and the 1 sat routing fee');
  const l = h.running.mint.store.ledger();
  t.equal(l.signed - l.spent, 53, 'outstanding ecash is exactly the change');
  t.equal(l.lnIn - l.lnOut, l.signed - l.spent + l.feesCollected, 'Lightning in - out == outstanding + fees');
});

t.test('FakeWallet brr: a status check finds the quote paid at once (nutshell FAKEWALLET_BRR)', async (t) => {
  const brr = new FakeWallet({ paidAfterMs: 60_000, brr: true });
  t.teardown(() => brr.close());
  const h = await startTestMint(t, { inputFeePpk: 0, lightning: brr });
  const q = await postJson(`${h.url}/v1/mint/quote/bolt11`, { amount: 8, unit: 'sat' });
  t.equal(q.json.state, 'UNPAID', 'a new quote is UNPAID');
  const res = await postJson(`${h.url}/v1/mint/bolt11`, { quote: q.json.quote, outputs: blinded(outputs(h, 8)) });
  t.equal(res.status, 200, 'minting right away works: the status check paid it');
  t.equal((res.json.signatures as unknown[]).length, 1);
});

t.test('SIG_ALL signs the request exactly as sent (upper-case hex outputs)', async (t) => {
  const { schnorr } = await import('@noble/curves/secp256k1.js');
  const { sha256 } = await import('@noble/hashes/sha2.js');
  const { bytesToHex, utf8ToBytes } = await import('@noble/hashes/utils.js');
  const h = await startTestMint(t, { inputFeePpk: 0 });
  const w = await h.wallet();
  const proofs = await h.fund(w, 64);
  const sk = schnorr.utils.randomSecretKey();
  const pk = '02' + bytesToHex(schnorr.getPublicKey(sk));
  const { keep, send } = await w.ops.send(32, proofs).asP2PK({ pubkey: pk, sigFlag: 'SIG_ALL' }).run();
  const outs = (blinded(outputs(h, 32)) as { amount: number; id: string; B_: string }[]).map((o) => ({ ...o, B_: o.B_.toUpperCase() }));
  const msg = send.map((p) => p.secret + p.C).join('') + outs.map((o) => String(o.amount) + o.B_).join('');
  const sig = bytesToHex(schnorr.sign(sha256(utf8ToBytes(msg)), sk));
  const inputs = send.map(wire);
  inputs[0] = { ...inputs[0], witness: JSON.stringify({ signatures: [sig] }) };
  const res = await postJson(`${h.url}/v1/swap`, { inputs, outputs: outs });
  t.equal(res.status, 200, 'accepted: the message uses the B_ strings as sent');
  const lower = await postJson(`${h.url}/v1/swap`, { inputs, outputs: outs.map((o) => ({ ...o, B_: o.B_.toLowerCase() })) });
  t.not(lower.status, 200, 'the same signature does not cover differently written outputs');
  t.equal(keep.length > 0, true);
});
