// NWC against a relay that requires NIP-42 AUTH: the devnet wallet service and our client
// each authenticate (the client with its connection key, not an agent identity), and
// invoices, payments and payment notifications work as on an open relay.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startRelay } from '@bazaar/relay/server';
import { startDevnet } from '@bazaar/devnet/devnet';
import { LightningWallet, preimageMatches } from '../src/wallet/lightning.ts';

const logger = pino({ level: 'silent' });

t.test('invoice, payment and notification through an auth-required relay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-nwc-auth-'));
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'relay'), transport: 'ws', verifyWorkers: 0, logger, info: { authRequired: true } });
  const devnet = await startDevnet({ dataDir: join(dir, 'devnet'), relayUrl: relay.url, logger, mint: false, nwc: { refreshIntervalMs: 200 } });
  const wallets: LightningWallet[] = [];
  t.teardown(async () => {
    for (const w of wallets) await w.close();
    await devnet.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const b = devnet.account('buyer', { fundSats: 100 });
  const p = devnet.account('provider');
  await devnet.nwc.refresh();
  // Poll only once a minute: a quick settlement proves the notification arrived.
  const provider = await LightningWallet.connect({ nwcUri: p.uri, logger, pollIntervalMs: 60_000 });
  const buyer = await LightningWallet.connect({ nwcUri: b.uri, logger });
  wallets.push(provider, buyer);

  const info = await buyer.info({ timeoutMs: 5000 });
  t.ok(info?.encryptions.includes('nip44_v2'), 'the info event (a stored event, read after AUTH) lists nip44_v2');
  const inv = await provider.makeInvoice({ amountMsat: 7_000, description: 'through auth' });
  const settled = provider.waitForSettlement(inv.paymentHash, { timeoutMs: 20_000 });
  const paid = await buyer.pay(inv.bolt11, { maxAmountMsat: 7_000 });
  t.ok(preimageMatches(paid.preimage, inv.paymentHash));
  const s = await settled;
  t.equal(s.preimage, paid.preimage, 'settled by the payment_received notification');
  t.equal(await buyer.balanceMsat(), 93_000);
  t.ok(devnet.network.checkInvariant().ok);
});
