// The agents' Lightning wallet (NWCClient) against the devnet wallet service over our relay.
import t, { type Test } from 'tap';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startRelay } from '@bazaar/relay/server';
import { startDevnet, type RunningDevnet } from '@bazaar/devnet/devnet';
import { LightningNetwork } from '@bazaar/devnet/lightning/network';
import { Wallet } from '../src/wallet/wallet.ts';
import { LightningWallet, LightningWalletError, decodeInvoice, isWalletRefusal, preimageMatches, recoverPayee } from '../src/wallet/lightning.ts';

const logger = pino({ level: 'silent' });

async function setup(t: Test): Promise<{ devnet: RunningDevnet; buyer: Wallet; provider: Wallet; open: (uri: string, poll?: number) => Promise<LightningWallet> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-wallet-ln-'));
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'relay'), transport: 'ws', verifyWorkers: 0, logger });
  const devnet = await startDevnet({ dataDir: join(dir, 'devnet'), relayUrl: relay.url, logger, mint: false });
  const closers: (() => Promise<void> | void)[] = [];
  t.teardown(async () => {
    for (const c of closers) await c();
    await devnet.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const b = devnet.account('buyer', { fundSats: 100 });
  const p = devnet.account('provider');
  await devnet.nwc.refresh();
  const buyer = await Wallet.open({ logger, dataDir: join(dir, 'buyer'), lightning: { nwcUri: b.uri } });
  const provider = await Wallet.open({ logger, dataDir: join(dir, 'provider'), lightning: { nwcUri: p.uri, pollIntervalMs: 60_000 } });
  closers.push(() => buyer.close(), () => provider.close());
  const open = async (uri: string, poll = 50) => {
    const w = await LightningWallet.connect({ nwcUri: uri, logger, pollIntervalMs: poll });
    closers.push(() => w.close());
    return w;
  };
  return { devnet, buyer, provider, open };
}

t.test('make an invoice, pay it within budget, wait for settlement by notification', async (t) => {
  const { devnet, buyer, provider } = await setup(t);
  t.equal(await buyer.lightning.balanceMsat(), 100_000);
  const inv = await provider.lightning.makeInvoice({ amountMsat: 21_000, description: 'job 5930', expirySecs: 600 });
  t.equal(decodeInvoice(inv.bolt11).amountMsat, 21_000);
  t.equal(decodeInvoice(inv.bolt11).payee, (await provider.lightning.getInfo()).pubkey, 'the payee is the node get_info names');
  // The provider polls only every 60 s here, so a quick settlement proves the notification path.
  const settled = provider.lightning.waitForSettlement(inv.paymentHash, { timeoutMs: 20_000 });
  const paid = await buyer.lightning.pay(inv.bolt11, { maxAmountMsat: 21_000 });
  t.ok(preimageMatches(paid.preimage, inv.paymentHash));
  t.equal(paid.amountMsat, 21_000);
  const s = await settled;
  t.equal(s.paymentHash, inv.paymentHash);
  t.equal(s.preimage, paid.preimage);
  t.equal(s.amountMsat, 21_000);
  t.equal(await provider.lightning.balanceMsat(), 21_000);
  // Already settled: resolves from the first lookup.
  const again = await provider.lightning.waitForSettlement(inv.paymentHash, { timeoutMs: 5_000 });
  t.equal(again.preimage, paid.preimage);
  const looked = await buyer.lightning.lookup(inv.paymentHash);
  t.equal(looked?.state, 'settled');
  t.equal(await buyer.lightning.lookup('00'.repeat(32)), undefined, 'NOT_FOUND is undefined');
  t.ok(devnet.network.checkInvariant().ok);
});

t.test('settlement by lookup_invoice polling when no notification comes', async (t) => {
  const { devnet, open } = await setup(t);
  const provider = await open(devnet.account('provider').uri, 50);
  const inv = await provider.makeInvoice({ amountMsat: 5_000, description: 'poll me' });
  const settled = provider.waitForSettlement(inv.paymentHash, { timeoutMs: 20_000 });
  // Paid through a second handle on the network files (as another process would): the
  // service in this process sees no settlement event, so only polling can notice it.
  const other = LightningNetwork.open({ path: devnet.paths.lightning, logger });
  t.teardown(() => other.close());
  other.pay('buyer', inv.bolt11);
  const s = await settled;
  t.equal(s.paymentHash, inv.paymentHash);
  t.ok(s.preimage && preimageMatches(s.preimage, inv.paymentHash));
});

t.test('clear errors; nothing paid on refusal', async (t) => {
  const { devnet, buyer, provider } = await setup(t);
  const inv = await provider.lightning.makeInvoice({ amountMsat: 30_000, description: 'pricey' });
  await t.rejects(buyer.lightning.pay(inv.bolt11, { maxAmountMsat: 29_999 }), { code: 'OVER_BUDGET' });
  const huge = await provider.lightning.makeInvoice({ amountMsat: 500_000, description: 'too much' });
  await t.rejects(buyer.lightning.pay(huge.bolt11), { code: 'WALLET_ERROR', nip47Code: 'INSUFFICIENT_BALANCE' });
  await t.rejects(buyer.lightning.pay('lnbc1notaninvoice'), { code: 'INVALID_INVOICE' });
  const ac = new AbortController();
  ac.abort();
  await t.rejects(buyer.lightning.pay(inv.bolt11, { signal: ac.signal }), { code: 'ABORTED' });
  await t.rejects(provider.lightning.waitForSettlement(inv.paymentHash, { timeoutMs: 200 }), { code: 'TIMEOUT' });
  const first = await buyer.lightning.pay(inv.bolt11, { maxAmountMsat: 30_000 });
  const second = await buyer.lightning.pay(inv.bolt11, { maxAmountMsat: 30_000 });
  t.same(second, first, 'paying again returns the earlier payment');
  t.equal(await buyer.lightning.balanceMsat(), 70_000, 'never pays twice');
  // The payee cannot "pay" its own incoming invoice by way of the idempotency lookup.
  await t.rejects(provider.lightning.pay(inv.bolt11), { code: 'WALLET_ERROR', nip47Code: 'PAYMENT_FAILED' });
  t.ok(devnet.network.checkInvariant().ok);

  const noneDir = mkdtempSync(join(tmpdir(), 'bazaar-wallet-none-'));
  t.teardown(() => rmSync(noneDir, { recursive: true, force: true }));
  const none = await Wallet.open({ logger, dataDir: noneDir });
  t.teardown(() => none.close());
  t.equal(none.hasLightning, false);
  t.throws(() => none.lightning, /no Lightning wallet configured/);
  const secret = 'ab'.repeat(32);
  const err = await LightningWallet.connect({ nwcUri: `nostr+walletconnect://nothex?relay=ws%3A%2F%2Fx&secret=${secret}`, logger }).then(() => undefined, (e: Error) => e);
  t.match(err?.message, /invalid NWC connection URI/);
  t.notOk(err?.message.includes(secret), 'the error does not echo the secret');
});

t.test('a wallet service that stops answering: TIMEOUT within the deadline, nothing paid', async (t) => {
  const { devnet, open } = await setup(t);
  const buyer = await open(devnet.account('buyer').uri);
  const provider = await open(devnet.account('provider').uri);
  const inv = await provider.makeInvoice({ amountMsat: 1_000, description: 'never answered' });
  t.equal(await buyer.balanceMsat(), 100_000);
  await devnet.nwc.close();
  const started = Date.now();
  await t.rejects(buyer.pay(inv.bolt11, { timeoutMs: 400 }), { code: 'TIMEOUT' });
  t.ok(Date.now() - started < 5_000, 'gave up at the deadline');
  t.equal(devnet.network.balance('buyer'), 100_000);
});

t.test('the payee is recovered from the signature (BOLT11 test vectors, which carry no n field)', async (t) => {
  // BOLT11 "Examples": every invoice is signed by node 03e7156a…dd9ad.
  const node = '03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad';
  const coffee = 'lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu';
  t.equal(recoverPayee(coffee), node);
  t.equal(decodeInvoice(coffee.toUpperCase()).payee, node, 'upper case too');
  const store = 'lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j';
  t.equal(recoverPayee(store), node, 'a second vector (route hints, pico-BTC amount)');
  // One data character changed (the description): the signature no longer recovers the node.
  const tampered = coffee.replace('vdhkven9v5sxyetpdees', 'vdhkven9v5sxyetpdeeq');
  t.not(recoverPayee(tampered), node, 'a tampered invoice does not recover its node');
  t.equal(recoverPayee('lnbc1xyz'), undefined);
});

t.test('isWalletRefusal: only the wallet service\'s own error answer proves nothing was paid', async (t) => {
  t.equal(isWalletRefusal(new LightningWalletError('WALLET_ERROR', 'no money', 'INSUFFICIENT_BALANCE')), true);
  t.equal(isWalletRefusal(new LightningWalletError('WALLET_ERROR', 'route', 'PAYMENT_FAILED')), true);
  t.equal(isWalletRefusal(new LightningWalletError('WALLET_ERROR', 'no relay took it', 'NOT_PUBLISHED')), false, 'the request may still reach the wallet');
  t.equal(isWalletRefusal(new LightningWalletError('WALLET_ERROR', 'garbled', 'BAD_RESPONSE')), false, 'an answer that does not parse says nothing');
  t.equal(isWalletRefusal(new LightningWalletError('TIMEOUT', 'no answer')), false);
  t.equal(isWalletRefusal(Object.assign(new Error('look-alike'), { code: 'WALLET_ERROR', nip47Code: 'INSUFFICIENT_BALANCE' })), false, 'only the wallet\'s own error type');
});
