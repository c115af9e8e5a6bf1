import t from 'tap';
import { rmSync } from 'node:fs';
import bolt11 from 'bolt11';
import { decode as lightDecode } from 'light-bolt11-decoder';
import { sha256 } from '@noble/hashes/sha2.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { LightningNetwork, preimageMatches } from '../src/lightning/network.ts';
import { isLightningError, type LightningErrorCode } from '../src/lightning/errors.ts';
import { flipDataWord, withHrp } from './helpers/bech32-tamper.ts';
import { manualClock, openTestNetwork, silentLogger, tempDir, type TapTest } from './helpers/network.ts';

function throwsCode(tt: TapTest, fn: () => unknown, code: LightningErrorCode, msgRe?: RegExp): void {
  try {
    fn();
    tt.fail(`expected ${code}`);
  } catch (err) {
    tt.ok(isLightningError(err, code), `code ${code} (got ${(err as { code?: string }).code}: ${(err as Error).message})`);
    if (msgRe) tt.match((err as Error).message, msgRe);
  }
}

t.test('invoices are real BOLT11 signed by the payee node key', async (t) => {
  const net = openTestNetwork(t);
  const bob = net.createAccount('bob');
  const inv = net.createInvoice('bob', 21_000, 'coffee ☕', 600);
  t.match(inv.bolt11, /^lnbcrt210n1/);
  t.equal(inv.state, 'unpaid');
  t.equal(inv.preimage, undefined, 'no preimage before payment');

  const d = bolt11.decode(inv.bolt11);
  t.equal(d.millisatoshis, '21000');
  t.equal(d.payeeNodeKey, bob.nodePubkey);
  t.equal(d.tagsObject.payment_hash, inv.paymentHash);
  t.equal(d.tagsObject.description, 'coffee ☕');
  t.equal(d.tagsObject.expire_time, 600);
  t.equal(d.timeExpireDate, inv.expiresAt);

  const l = lightDecode(inv.bolt11);
  const section = (name: string) => l.sections.find((s) => s.name === name) as { value?: unknown } | undefined;
  t.equal(section('amount')?.value, '21000');
  t.equal(section('payment_hash')?.value, inv.paymentHash);
  t.equal(section('description')?.value, 'coffee ☕');
  t.equal(section('payee')?.value, bob.nodePubkey);
  t.equal(l.expiry, 600);

  const alice = net.createAccount('alice');
  t.not(alice.nodePubkey, bob.nodePubkey, 'each account has its own node key');
});

t.test('description hash invoices carry the h tag', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('bob');
  const h = bytesToHex(sha256(new TextEncoder().encode('{"long":"metadata"}')));
  const inv = net.createInvoice('bob', 1000, undefined, 60, { descriptionHash: h });
  t.equal(bolt11.decode(inv.bolt11).tagsObject.purpose_commit_hash, h);
  t.equal(inv.descriptionHash, h);
});

t.test('paying settles atomically and returns the preimage', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('alice');
  net.createAccount('bob');
  net.fund('alice', 100_000);
  const inv = net.createInvoice('bob', 21_000, 'x', 600);
  const settled: string[] = [];
  net.onSettled((e) => settled.push(e.invoice.paymentHash));
  const p = net.pay('alice', inv.bolt11);
  t.ok(preimageMatches(p.preimage, inv.paymentHash), 'sha256(preimage) == payment hash');
  t.equal(bytesToHex(sha256(hexToBytes(p.preimage))), inv.paymentHash);
  t.equal(p.amountMsat, 21_000);
  t.equal(p.feeMsat, 0);
  t.equal(net.balance('alice'), 79_000);
  t.equal(net.balance('bob'), 21_000);
  t.same(settled, [inv.paymentHash]);
  const after = net.lookupInvoice(inv.paymentHash)!;
  t.equal(after.state, 'paid');
  t.equal(after.preimage, p.preimage);
  t.equal(after.payer, 'alice');
  t.same(net.lookupPayment('alice', inv.paymentHash)?.preimage, p.preimage);
  // `lightning:` URIs and upper-case (QR) invoices are the same invoice.
  const inv2 = net.createInvoice('bob', 1_000, 'y', 600);
  net.pay('alice', `lightning:${inv2.bolt11.toUpperCase()}`);
  t.equal(net.balance('bob'), 22_000);
});

t.test('failures are clear and move no money', async (t) => {
  const clock = manualClock();
  const net = openTestNetwork(t, { now: clock.now });
  net.createAccount('alice');
  net.createAccount('bob');
  net.fund('alice', 50_000);
  const inv = net.createInvoice('bob', 21_000, 'x', 60);

  throwsCode(t, () => net.pay('bob', inv.bolt11), 'SELF_PAYMENT');
  throwsCode(t, () => net.pay('carol', inv.bolt11), 'UNKNOWN_ACCOUNT');
  throwsCode(t, () => net.pay('alice', 'lnbcrt1garbage'), 'INVALID_INVOICE');
  throwsCode(t, () => net.pay('alice', ''), 'INVALID_INVOICE');
  throwsCode(t, () => net.pay('alice', inv.bolt11, { amountMsat: 1 }), 'INVALID_ARGUMENT');

  // Amount changed in the human-readable part, checksum recomputed: the signature no longer matches.
  const moreExpensive = withHrp(inv.bolt11, 'lnbcrt1u');
  t.not(moreExpensive, inv.bolt11);
  throwsCode(t, () => net.pay('alice', moreExpensive), 'INVALID_INVOICE', /does not decode|tampered/);
  // A flipped data bit (timestamp) with a valid checksum: signature check fails.
  throwsCode(t, () => net.pay('alice', flipDataWord(inv.bolt11, 3)), 'INVALID_INVOICE');

  // Same payment hash, re-signed by a key that is not the payee's: valid signature, wrong invoice.
  const d = bolt11.decode(inv.bolt11);
  const forged = bolt11.sign(bolt11.encode({
    network: d.network,
    millisatoshis: '1000',
    timestamp: d.timestamp,
    tags: d.tags.filter((x) => x.tagName !== 'payee_node_key'),
  }, false), bytesToHex(secp256k1.utils.randomSecretKey())).paymentRequest!;
  t.equal(bolt11.decode(forged).tagsObject.payment_hash, inv.paymentHash);
  throwsCode(t, () => net.pay('alice', forged), 'INVALID_INVOICE', /tampered/);

  // An invoice from another network with a valid signature is unroutable.
  const other = LightningNetwork.open({ path: tempDir(t), logger: silentLogger });
  t.teardown(() => other.close());
  other.createAccount('zed');
  const foreign = other.createInvoice('zed', 1000, 'elsewhere', 60);
  throwsCode(t, () => net.pay('alice', foreign.bolt11), 'UNKNOWN_INVOICE');

  const big = net.createInvoice('bob', 60_000, 'too much', 60);
  throwsCode(t, () => net.pay('alice', big.bolt11), 'INSUFFICIENT_BALANCE', /50000 msat available/);

  net.pay('alice', inv.bolt11);
  throwsCode(t, () => net.pay('alice', inv.bolt11), 'ALREADY_PAID');

  const late = net.createInvoice('bob', 1_000, 'late', 30);
  clock.advance(30);
  t.equal(net.invoiceState(late.paymentHash), 'expired');
  throwsCode(t, () => net.pay('alice', late.bolt11), 'EXPIRED');

  const ac = new AbortController();
  ac.abort();
  const fresh = net.createInvoice('bob', 1_000, 'aborted', 30);
  throwsCode(t, () => net.pay('alice', fresh.bolt11, { signal: ac.signal }), 'ABORTED');

  t.equal(net.balance('alice'), 29_000, 'only the one good payment moved money');
  t.equal(net.balance('bob'), 21_000);
});

t.test('bad arguments are rejected', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('bob');
  throwsCode(t, () => net.createAccount('bob'), 'ACCOUNT_EXISTS');
  throwsCode(t, () => net.createAccount('Bad Name!'), 'INVALID_ARGUMENT');
  throwsCode(t, () => net.createInvoice('bob', 0, 'x'), 'INVALID_ARGUMENT');
  throwsCode(t, () => net.createInvoice('bob', 1.5, 'x'), 'INVALID_ARGUMENT');
  throwsCode(t, () => net.createInvoice('bob', 1000, 'x', 0), 'INVALID_ARGUMENT');
  throwsCode(t, () => net.createInvoice('bob', 1000, 'x'.repeat(640)), 'INVALID_ARGUMENT', /639 bytes/);
  throwsCode(t, () => net.createInvoice('nobody', 1000, 'x'), 'UNKNOWN_ACCOUNT');
  throwsCode(t, () => net.fund('bob', -5), 'INVALID_ARGUMENT');
  throwsCode(t, () => net.fund('nobody', 5), 'UNKNOWN_ACCOUNT');
});

t.test('state is durable across a reopen; the invariant holds throughout', async (t) => {
  const dir = tempDir(t);
  const a = LightningNetwork.open({ path: dir, logger: silentLogger });
  a.createAccount('alice');
  a.createAccount('bob');
  a.fund('alice', 10_000);
  const inv = a.createInvoice('bob', 4_000, 'x', 600);
  a.pay('alice', inv.bolt11);
  await a.close();
  const b = openTestNetwork(t, { path: dir });
  t.equal(b.balance('alice'), 6_000);
  t.equal(b.balance('bob'), 4_000);
  t.equal(b.invoiceState(inv.paymentHash), 'paid');
  const inv2 = b.createInvoice('alice', 1_000, 'back', 600);
  b.pay('bob', inv2.bolt11);
  t.same(b.checkInvariant(), { ok: true, totalFundedMsat: 10_000, balancesMsat: 10_000, inFlightMsat: 0, accounts: 2 });
  // Existing account keys survive too: invoices still decode to the same payee.
  t.equal(bolt11.decode(inv2.bolt11).payeeNodeKey, b.requireAccount('alice').nodePubkey);
});

t.test('list_transactions: newest first, filters, pagination', async (t) => {
  const clock = manualClock(1_700_000_000_000);
  const net = openTestNetwork(t, { now: clock.now });
  net.createAccount('alice');
  net.createAccount('bob');
  net.fund('alice', 100_000);
  const paid: string[] = [];
  for (let i = 0; i < 3; i++) {
    const inv = net.createInvoice('bob', 1_000 * (i + 1), `n${i}`, 600);
    clock.advance(10);
    net.pay('alice', inv.bolt11);
    paid.push(inv.paymentHash);
    clock.advance(10);
  }
  const unpaid = net.createInvoice('bob', 5_000, 'open', 600);
  const bobTx = net.listTransactions('bob');
  t.same(bobTx.transactions.map((x) => x.paymentHash), [...paid].reverse(), 'paid incoming only by default, newest first');
  const withUnpaid = net.listTransactions('bob', { unpaid: true });
  t.equal(withUnpaid.transactions[0].paymentHash, unpaid.paymentHash);
  t.equal(withUnpaid.totalCount, 4);
  t.same(net.listTransactions('bob', { limit: 1, offset: 1 }).transactions.map((x) => x.paymentHash), [paid[1]]);
  const aliceTx = net.listTransactions('alice', { type: 'outgoing' });
  t.equal(aliceTx.transactions.length, 3);
  t.ok(aliceTx.transactions.every((x) => x.type === 'outgoing'));
  t.same(net.listTransactions('alice', { type: 'incoming' }).transactions, []);
  const start = 1_700_000_000;
  t.same(net.listTransactions('bob', { from: start + 20, until: start + 20 }).transactions.map((x) => x.paymentHash), [paid[1]], 'from/until inclusive on created_at');
});

t.test('watchInvoice fires once, also for a payment committed by another handle', async (t) => {
  const dir = tempDir(t);
  const net = openTestNetwork(t, { path: dir });
  net.createAccount('alice');
  net.createAccount('bob');
  net.fund('alice', 10_000);
  const inv = net.createInvoice('bob', 1_000, 'x', 600);
  // A second handle on the same files plays the part of another process.
  const other = LightningNetwork.open({ path: dir, logger: silentLogger, pollIntervalMs: 20 });
  t.teardown(() => other.close());
  let fired = 0;
  const paid = new Promise<void>((resolve) => other.watchInvoice(inv.paymentHash, () => { fired++; resolve(); }));
  net.pay('alice', inv.bolt11);
  await paid;
  t.equal(fired, 1);
  // Watching an already-paid invoice fires on the next microtask.
  await new Promise<void>((resolve) => net.watchInvoice(inv.paymentHash, resolve));
  // Unsubscribing before payment means no call.
  const inv2 = net.createInvoice('bob', 1_000, 'y', 600);
  let called = false;
  const off = net.watchInvoice(inv2.paymentHash, () => { called = true; });
  off();
  net.pay('alice', inv2.bolt11);
  t.equal(called, false);
});

t.test('keysend: pay a node key without an invoice', async (t) => {
  const net = openTestNetwork(t);
  net.createAccount('alice');
  const bob = net.createAccount('bob');
  net.fund('alice', 10_000);
  const settled: string[] = [];
  net.onSettled((e) => settled.push(e.invoice.account));
  const p = net.keysend('alice', bob.nodePubkey, 2_500, { tlvRecords: [{ type: 34349334, value: '6869' }] });
  t.ok(preimageMatches(p.preimage, p.paymentHash));
  t.equal(p.payeeAccount, 'bob');
  t.same(settled, ['bob']);
  const incoming = net.lookupInvoice(p.paymentHash)!;
  t.equal(incoming.keysend, true);
  t.equal(incoming.state, 'paid');
  t.same(incoming.metadata, { tlv_records: [{ type: 34349334, value: '6869' }] });
  t.equal(net.listTransactions('bob').transactions[0].paymentHash, p.paymentHash);
  const own = 'ef'.repeat(32);
  const q = net.keysend('alice', bob.nodePubkey, 500, { preimage: own });
  t.equal(q.preimage, own);
  throwsCode(t, () => net.keysend('alice', bob.nodePubkey, 500, { preimage: own }), 'ALREADY_PAID', /reused preimage/);
  throwsCode(t, () => net.keysend('alice', '02' + '11'.repeat(32), 500), 'UNKNOWN_INVOICE', /no route/);
  throwsCode(t, () => net.keysend('alice', net.requireAccount('alice').nodePubkey, 500), 'SELF_PAYMENT');
  throwsCode(t, () => net.keysend('alice', bob.nodePubkey, 1_000_000), 'INSUFFICIENT_BALANCE');
  throwsCode(t, () => net.keysend('alice', 'nothex', 500), 'INVALID_ARGUMENT');
  t.equal(net.balance('alice'), 7_000);
  t.equal(net.balance('bob'), 3_000);
});

t.test('a request id pays at most once, across a restart; a failed attempt does not consume it', async (t) => {
  const dir = tempDir(t);
  const a = LightningNetwork.open({ path: dir, logger: silentLogger });
  a.createAccount('alice');
  const bob = a.createAccount('bob');
  a.fund('alice', 5_000);
  a.keysend('alice', bob.nodePubkey, 1_000, { requestId: 'req-1' });
  throwsCode(t, () => a.keysend('alice', bob.nodePubkey, 1_000, { requestId: 'req-1' }), 'ALREADY_PAID', /already processed/);
  const big = a.createInvoice('bob', 9_000, 'big', 600);
  throwsCode(t, () => a.pay('alice', big.bolt11, { requestId: 'req-2' }), 'INSUFFICIENT_BALANCE');
  a.fund('alice', 10_000);
  a.pay('alice', big.bolt11, { requestId: 'req-2' });
  await a.close();
  const b = openTestNetwork(t, { path: dir });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  throwsCode(t, () => b.keysend('alice', bob.nodePubkey, 1_000, { requestId: 'req-1' }), 'ALREADY_PAID', /already processed/);
  t.equal(b.balance('alice'), 5_000);
  t.equal(b.balance('bob'), 10_000);
});
