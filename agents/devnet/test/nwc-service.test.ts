// @getalby/sdk's NWCClient against our wallet service over our relay: every method,
// error codes and notifications, with real keys, real encryption and real invoices.
import t from 'tap';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { generateSecretKey } from 'nostr-tools/pure';
import { buildNwcUri } from '../src/nwc/connections.ts';
import { flipDataWord } from './helpers/bech32-tamper.ts';
import { manualClock } from './helpers/network.ts';
import { startNwcFixture } from './helpers/nwc.ts';

type Nip47Notification = { notification_type: string; notification: { payment_hash: string; amount: number; type: string; preimage?: string } };

t.test('NWCClient: info, balance, invoices, payments, lookups, history, notifications', async (t) => {
  const fx = await startNwcFixture(t);
  fx.network.createAccount('alice');
  fx.network.createAccount('bob');
  fx.network.fund('alice', 100_000);
  const alice = await fx.connect('alice');
  const bob = await fx.connect('bob');

  const svcInfo = await alice.client.getWalletServiceInfo();
  t.ok(svcInfo.encryptions.includes('nip44_v2') && svcInfo.encryptions.includes('nip04'), 'info event advertises nip44_v2 and nip04');
  t.ok(svcInfo.capabilities.includes('pay_invoice') && svcInfo.capabilities.includes('notifications'));
  t.same([...svcInfo.notifications].sort(), ['payment_received', 'payment_sent']);

  const info = await alice.client.getInfo();
  t.equal(info.network, 'regtest');
  t.equal(info.pubkey, fx.network.requireAccount('alice').nodePubkey);
  t.ok(info.methods.includes('make_invoice'));
  t.equal(alice.client.encryptionType, 'nip44_v2', 'client negotiated NIP-44 v2');

  t.same(await alice.client.getBalance(), { balance: 100_000 });
  t.same(await bob.client.getBalance(), { balance: 0 });

  // Subscribe (and wait for the subscriptions to be open) before paying.
  let resolveReceived!: (n: Nip47Notification) => void;
  let resolveSent!: (n: Nip47Notification) => void;
  const received = new Promise<Nip47Notification>((r) => (resolveReceived = r));
  const sent = new Promise<Nip47Notification>((r) => (resolveSent = r));
  const offReceived = await bob.client.subscribeNotifications((n) => resolveReceived(n as Nip47Notification), ['payment_received']);
  const offSent = await alice.client.subscribeNotifications((n) => resolveSent(n as Nip47Notification), ['payment_sent']);
  t.teardown(() => {
    offReceived();
    offSent();
  });

  const inv = await bob.client.makeInvoice({ amount: 21_000, description: 'coffee', expiry: 600 });
  t.equal(inv.type, 'incoming');
  t.equal(inv.amount, 21_000);
  t.equal(inv.description, 'coffee');
  t.equal(inv.state, 'pending');
  t.match(inv.invoice, /^lnbcrt210n1/);

  const paid = await alice.client.payInvoice({ invoice: inv.invoice });
  t.equal(bytesToHex(sha256(hexToBytes(paid.preimage))), inv.payment_hash, 'preimage proves payment');
  t.equal(paid.fees_paid, 0);

  const n1 = await received;
  t.equal(n1.notification_type, 'payment_received');
  t.equal(n1.notification.payment_hash, inv.payment_hash);
  t.equal(n1.notification.amount, 21_000);
  const n2 = await sent;
  t.equal(n2.notification_type, 'payment_sent');
  t.equal(n2.notification.preimage, paid.preimage);

  t.same(await alice.client.getBalance(), { balance: 79_000 });
  t.same(await bob.client.getBalance(), { balance: 21_000 });

  const looked = await bob.client.lookupInvoice({ payment_hash: inv.payment_hash });
  t.equal(looked.state, 'settled');
  t.equal(looked.preimage, paid.preimage);
  const lookedByInvoice = await bob.client.lookupInvoice({ invoice: inv.invoice });
  t.equal(lookedByInvoice.payment_hash, inv.payment_hash);
  const outgoing = await alice.client.lookupInvoice({ payment_hash: inv.payment_hash });
  t.equal(outgoing.type, 'outgoing', 'the payer sees its payment');

  const bobTx = await bob.client.listTransactions({});
  t.equal(bobTx.transactions.length, 1);
  t.equal(bobTx.transactions[0].payment_hash, inv.payment_hash);
  await bob.client.makeInvoice({ amount: 1_000, description: 'open' });
  t.equal((await bob.client.listTransactions({ unpaid: true })).transactions.length, 2);
  t.equal((await alice.client.listTransactions({ type: 'outgoing' })).transactions.length, 1);
  t.same((await alice.client.listTransactions({ type: 'incoming' })).transactions, []);

  // Keysend to bob's node key, with a TLV record and the payer's own preimage.
  const bobNode = (await bob.client.getInfo()).pubkey;
  const myPreimage = 'cd'.repeat(32);
  const ks = await alice.client.payKeysend({ amount: 3_000, pubkey: bobNode, preimage: myPreimage, tlv_records: [{ type: 7629169, value: '48656c6c6f' }] });
  t.equal(ks.preimage, myPreimage);
  const ksHash = bytesToHex(sha256(hexToBytes(myPreimage)));
  // (NWCClient.lookupInvoice insists on an `invoice` field, which NIP-47 makes optional and a
  // keysend does not have; list_transactions shows it.)
  // Transactions carry second-resolution timestamps, so the keysend may share its second with
  // the invoice paid just before it: look it up by hash rather than by position.
  const recent = (await bob.client.listTransactions({ limit: 5 })).transactions as unknown as { type: string; state: string; amount: number; payment_hash: string; invoice?: string; metadata?: { tlv_records: unknown } }[];
  const ksIn = recent.find((tx) => tx.payment_hash === ksHash);
  if (!ksIn) throw new Error(`keysend ${ksHash} not in list_transactions: ${JSON.stringify(recent.map((x) => x.payment_hash))}`);
  t.equal(ksIn.payment_hash, ksHash);
  t.equal(ksIn.type, 'incoming');
  t.equal(ksIn.state, 'settled');
  t.equal(ksIn.amount, 3_000);
  t.equal(ksIn.invoice, undefined, 'keysend has no invoice');
  t.same(ksIn.metadata, { tlv_records: [{ type: 7629169, value: '48656c6c6f' }] });
  t.same(await bob.client.getBalance(), { balance: 24_000 });

  const m1 = await bob.client.makeInvoice({ amount: 1_000, description: 'm1' });
  const m2 = await bob.client.makeInvoice({ amount: 2_000, description: 'm2' });
  const multi = await alice.client.multiPayInvoice({ invoices: [{ id: 'a', invoice: m1.invoice }, { invoice: m2.invoice }] });
  t.same(multi.invoices.map((x) => x.dTag).sort(), ['a', m2.payment_hash].sort(), 'multi_pay_invoice answers per invoice');
  t.ok(multi.invoices.every((x) => x.preimage.length === 64));
  t.same(await alice.client.getBalance(), { balance: 73_000 });
});

t.test('NIP-47 error codes', async (t) => {
  const clock = manualClock();
  const fx = await startNwcFixture(t, { now: clock.now });
  fx.network.createAccount('alice');
  fx.network.createAccount('bob');
  fx.network.fund('alice', 10_000);
  const alice = await fx.connect('alice');
  const bob = await fx.connect('bob');

  const code = async (p: Promise<unknown>) => {
    try {
      await p;
      return 'no error';
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };

  const big = await bob.client.makeInvoice({ amount: 50_000, description: 'too much' });
  t.equal(await code(alice.client.payInvoice({ invoice: big.invoice })), 'INSUFFICIENT_BALANCE');

  const inv = await bob.client.makeInvoice({ amount: 1_000, description: 'once' });
  await alice.client.payInvoice({ invoice: inv.invoice });
  t.equal(await code(alice.client.payInvoice({ invoice: inv.invoice })), 'PAYMENT_FAILED', 'already paid');
  const own = await alice.client.makeInvoice({ amount: 1_000, description: 'mine' });
  t.equal(await code(alice.client.payInvoice({ invoice: own.invoice })), 'PAYMENT_FAILED', 'self-payment');
  const fresh = await bob.client.makeInvoice({ amount: 1_000, description: 'tamper me' });
  t.equal(await code(alice.client.payInvoice({ invoice: flipDataWord(fresh.invoice, 5) })), 'PAYMENT_FAILED', 'tampered');
  t.equal(await code(alice.client.payInvoice({ invoice: 'garbage' })), 'PAYMENT_FAILED', 'garbage invoice');
  const soon = await bob.client.makeInvoice({ amount: 1_000, description: 'expires', expiry: 10 });
  clock.advance(11);
  t.equal(await code(alice.client.payInvoice({ invoice: soon.invoice })), 'PAYMENT_FAILED', 'expired');
  t.equal(await code(alice.client.lookupInvoice({ payment_hash: '00'.repeat(32) })), 'NOT_FOUND');
  t.equal(await code(alice.client.lookupInvoice({ payment_hash: own.payment_hash.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) })), 'NOT_FOUND');
  t.equal(await code(bob.client.lookupInvoice({ payment_hash: own.payment_hash })), 'NOT_FOUND', 'another account\'s invoice is not visible');
  t.equal(await code(alice.client.makeInvoice({ amount: 1.5 })), 'OTHER', 'bad params: fractional msat');
  t.equal(await code(alice.client.payKeysend({ amount: 1000, pubkey: '02'.padEnd(66, '1') })), 'PAYMENT_FAILED', 'keysend: no route');
  t.equal(await code(alice.client.signMessage({ message: 'hi' })), 'NOT_IMPLEMENTED');

  // A client secret the service never issued, aimed at alice's wallet pubkey.
  const stranger = await fx.clientFor(buildNwcUri(alice.walletPubkey, [fx.relay.url], bytesToHex(generateSecretKey())));
  t.equal(await code(stranger.getBalance()), 'UNAUTHORIZED');
  // A revoked connection is refused too.
  fx.connections.revoke(bob.walletPubkey);
  t.equal(await code(bob.client.getBalance()), 'UNAUTHORIZED');

  // Budgets: QUOTA_EXCEEDED before any money moves; get_budget reports usage.
  const capped = await fx.connect('alice', { maxAmountMsat: 1_500, budgetRenewal: 'daily', name: 'capped' });
  fx.network.createAccount('carol');
  const c1 = fx.network.createInvoice('carol', 1_000, 'a', 600);
  const c2 = fx.network.createInvoice('carol', 1_000, 'b', 600);
  await capped.client.payInvoice({ invoice: c1.bolt11 });
  t.equal(await code(capped.client.payInvoice({ invoice: c2.bolt11 })), 'QUOTA_EXCEEDED');
  t.equal(fx.network.invoiceState(c2.paymentHash), 'unpaid');
  const budget = (await capped.client.getBudget()) as { used_budget: number; total_budget: number; renewal_period: string; renews_at: number };
  t.equal(budget.used_budget, 1_000);
  t.equal(budget.total_budget, 1_500);
  t.equal(budget.renewal_period, 'daily');
  t.ok(budget.renews_at > clock.now() / 1000);
  t.same(await alice.client.getBudget(), {}, 'no budget on an uncapped connection');
  // Restricted methods.
  const readOnly = await fx.connect('alice', { methods: ['get_info', 'get_balance'], name: 'read-only' });
  t.equal(await code(readOnly.client.payInvoice({ invoice: c2.bolt11 })), 'RESTRICTED');
  t.equal(fx.network.balance('alice'), 8_000, 'only the two good payments moved money');
});

t.test('RATE_LIMITED when a connection floods the service', async (t) => {
  const fx = await startNwcFixture(t, { service: { rateLimit: { burst: 2, perSecond: 0.001 } } });
  fx.network.createAccount('alice');
  const alice = await fx.connect('alice');
  await alice.client.getBalance();
  await alice.client.getBalance();
  await t.rejects(alice.client.getBalance(), { code: 'RATE_LIMITED' });
});
