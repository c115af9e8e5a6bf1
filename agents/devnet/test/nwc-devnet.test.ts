// startDevnet end to end: relay + NWC service + Cashu mint on the same dev Lightning
// network. A buyer pays the mint's quote invoice through NWC; the mint sees it paid.
import t from 'tap';
import { statSync, readFileSync, rmSync } from 'node:fs';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { startDevnet } from '../src/devnet.ts';
import { silentLogger, tempDir } from './helpers/network.ts';
import { startRelayForTest } from './helpers/nwc.ts';

t.test('startDevnet: accounts with URI files, NWC payments, mint quotes paid over NWC', async (t) => {
  const relay = await startRelayForTest(t);
  const dir = tempDir(t, 'bazaar-devnet-');
  const devnet = await startDevnet({ dataDir: dir, relayUrl: relay.url, logger: silentLogger, mint: { port: 0, inputFeePpk: 0 }, accounts: ['provider'] });
  const { NWCClient } = await loadNwcSdk();
  const clients: InstanceType<typeof NWCClient>[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await devnet.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const provider = devnet.account('provider');
  t.equal(provider.created, false, 'accounts listed at start were created then');
  t.equal(statSync(provider.uriFile).mode & 0o777, 0o600, 'URI file is 0600');
  t.equal(readFileSync(provider.uriFile, 'utf8').trim(), provider.uri);
  t.equal(statSync(devnet.paths.connections).mode & 0o777, 0o700);
  t.equal(statSync(devnet.paths.root).mode & 0o777, 0o700, 'the data dir (node keys, wallet secrets) is private');
  const again = devnet.account('provider');
  t.equal(again.walletPubkey, provider.walletPubkey, 'idempotent: the stored connection is reused');

  const buyer = devnet.account('buyer', { fundSats: 50 });
  t.equal(buyer.created, true);
  await devnet.nwc.refresh();
  const buyerClient = new NWCClient({ nostrWalletConnectUrl: buyer.uri });
  const providerClient = new NWCClient({ nostrWalletConnectUrl: provider.uri });
  clients.push(buyerClient, providerClient);
  t.same(await buyerClient.getBalance(), { balance: 50_000 });

  const inv = await providerClient.makeInvoice({ amount: 10_000, description: 'job 5930' });
  await buyerClient.payInvoice({ invoice: inv.invoice });
  t.same(await providerClient.getBalance(), { balance: 10_000 });

  // The mint's Lightning side is the same network: its quote invoice is payable through NWC.
  t.ok(devnet.mintUrl, 'mint started');
  const quote = (await (await fetch(`${devnet.mintUrl}/v1/mint/quote/bolt11`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount: 20, unit: 'sat' }),
    signal: AbortSignal.timeout(5000),
  })).json()) as { quote: string; request: string; state: string };
  t.equal(quote.state, 'UNPAID');
  t.match(quote.request, /^lnbcrt200n1/);
  await buyerClient.payInvoice({ invoice: quote.request });
  const after = (await (await fetch(`${devnet.mintUrl}/v1/mint/quote/bolt11/${quote.quote}`, { signal: AbortSignal.timeout(5000) })).json()) as { state: string };
  t.equal(after.state, 'PAID');
  t.equal(devnet.network.balance('mint'), 20_000);
  t.same(await buyerClient.getBalance(), { balance: 20_000 });
  t.ok(devnet.network.checkInvariant().ok);

  // A revoked connection file is replaced by a fresh connection.
  devnet.connections.revoke(buyer.walletPubkey);
  const renewed = devnet.account('buyer');
  t.equal(renewed.created, true);
  t.not(renewed.walletPubkey, buyer.walletPubkey);
});
