// End to end on real money rails: jobs paid over the devnet's Lightning network (real BOLT11,
// real settlement, preimages from the payer's wallet) and one escrowed in real Cashu (P2PK
// 2-of-[buyer, arbiter] to the provider, claimed, co-signed in the buyer's receipt, redeemed at
// the devnet mint). The relay indexes the traffic, asks the mint about the escrow, and its
// NIP-85 assertion for the provider carries the expected figures under its reputation key.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { verifyEvent } from 'nostr-tools/pure';
import { CashuWallet, proofY } from '@bazaar/agents-common/wallet/cashu';
import { lockEscrow, newPaymentKey, prepareClaim, redeemClaim, signClaim } from '@bazaar/agents-common/wallet/escrow';
import { buildReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { parseReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { startDevnet } from '@bazaar/devnet/devnet';
import { startRelay } from '@bazaar/relay/server';
import { TestClient } from '../../relay/test/helpers.ts';
import { MarketScript, newKey, sign } from '../../relay/test/market-kit.ts';

const silent = pino({ level: 'silent' });
const dir = (p: string) => mkdtempSync(join(tmpdir(), p));

t.test('paid jobs over the devnet: the provider\'s 30382 has the expected figures', async (t) => {
  // The devnet's NWC service needs a relay; the market relay is a separate one that trusts the devnet mint.
  const infraDir = dir('bazaar-e2e-infra-');
  const infra = await startRelay({ port: 0, dataDir: infraDir, transport: 'ws', verifyWorkers: 0 });
  const devDir = dir('bazaar-e2e-devnet-');
  const devnet = await startDevnet({ dataDir: devDir, relayUrl: infra.url, logger: silent, mint: { port: 0 } });
  const marketDir = dir('bazaar-e2e-market-');
  const relay = await startRelay({ port: 0, dataDir: marketDir, transport: 'uws', verifyWorkers: 0, market: { debounceMs: 0, minIntervalMs: 0, trustedMints: [devnet.mintUrl!], cashuCheckIntervalMs: 200 } });
  const walletDirs = [dir('bazaar-e2e-buyer-'), dir('bazaar-e2e-prov-')];
  t.teardown(async () => {
    await relay.close();
    await devnet.close();
    await infra.close();
    for (const d of [infraDir, devDir, marketDir, ...walletDirs]) rmSync(d, { recursive: true, force: true });
  });
  const net = devnet.network;
  net.createAccount('provider');
  const buyers = [newKey(), newKey(), newKey()];
  buyers.forEach((_, i) => { net.createAccount(`buyer${i}`); net.fund(`buyer${i}`, 1_000_000); });
  const provider = newKey();
  const client = await TestClient.connect(relay.url);
  t.teardown(() => client.close());
  const publish = async (events: readonly { id: string }[]) => {
    for (const e of events) {
      const [ok, msg] = await client.publish(e as never);
      if (!ok) t.fail(msg);
    }
  };

  // Lightning: the provider invoices through its devnet account, each buyer pays from its own.
  const m = new MarketScript();
  const now = Math.floor(Date.now() / 1000);
  m.announce(provider, now - 600, { name: 'devnet provider' });
  const flows = ['paid', 'paid', 'prepaid', 'paid', 'delivered', 'failed'] as const;
  for (let i = 0; i < flows.length; i++) {
    const b = i % 3;
    await m.job({
      buyer: buyers[b], provider, flow: flows[i], at: now - 500 + i * 30, latency: 4 + i, msats: 7_000 + 1000 * i, rating: i === 0 ? 1 : undefined,
      invoice: (msats) => ({ bolt11: net.createInvoice('provider', msats, `job ${i}`, 3600).bolt11 }),
      pay: (bolt11) => net.pay(`buyer${b}`, bolt11).preimage,
    });
  }
  await publish(m.events);
  const lightningPaid = 4;
  const lightningMsats = 7_000 + 8_000 + 9_000 + 10_000;

  // Cashu escrow: buyer 0 locks 20 sats, the provider claims with its result, the receipt releases it.
  const buyerWallet = await CashuWallet.open({ mintUrl: devnet.mintUrl!, dataDir: walletDirs[0], logger: silent });
  const providerWallet = await CashuWallet.open({ mintUrl: devnet.mintUrl!, dataDir: walletDirs[1], logger: silent });
  t.teardown(async () => { await buyerWallet.close(); await providerWallet.close(); });
  const { quote, bolt11 } = await buyerWallet.requestMint(200);
  net.pay('buyer0', bolt11);
  await buyerWallet.completeMint(quote, { timeoutMs: 10_000 });
  const buyerPay = newPaymentKey();
  const providerPay = newPaymentKey();
  const arbiterPay = newPaymentKey();
  const escrow = await lockEscrow(buyerWallet, { price: 20, provider: providerPay.pubkey, buyer: buyerPay.pubkey, arbiter: arbiterPay.pubkey, locktime: now + 3600, id: 'e2e' });
  const c = new MarketScript();
  const req = c.request(buyers[0], now - 100, { provider });
  const escrowReq = sign({ kind: req.kind, created_at: req.created_at, content: req.content, tags: [...req.tags, ['escrow', escrow.token]] }, buyers[0]);
  const claim = await prepareClaim(providerWallet, escrow.token);
  const processing = c.feedback(provider, escrowReq, 'processing', now - 99);
  const resultT = c.result(provider, escrowReq, now - 90, { msats: 20_000 });
  const result = sign({ kind: resultT.kind, created_at: resultT.created_at, content: resultT.content, tags: [...resultT.tags, ['escrow_claim', signClaim(claim.package, providerPay.secretKey)]] }, provider);
  const released = signClaim(claim.package, buyerPay.secretKey, escrow.proofs);
  const receiptT = buildReceipt({ requestId: escrowReq.id, resultId: result.id, provider: provider.pk, amountMsats: 20_000, payment: { method: 'cashu', mint: devnet.mintUrl!, proofs: escrow.proofs.map((p) => ({ secret: p.secret, y: proofY(p.secret) })) }, createdAt: now - 80 });
  const receipt = sign({ ...receiptT, tags: [...receiptT.tags, ['escrow_release', released]] }, buyers[0]);
  await publish([escrowReq, processing, result, receipt]);
  await relay.market!.index.catchUp();
  const pending = relay.market!.index.state.job(escrowReq.id)!.parts[0];
  t.equal(pending.payment, 'unverified', 'before the provider redeems, the escrow is not spent: unverified');
  // The provider redeems the co-signed release at the mint; the relay's checker sees the proofs spent.
  t.equal(await redeemClaim(providerWallet, claim.claimId, [released], providerPay.secretKey) > 0, true, 'redeemed');

  // Wait (on frames) for an assertion with every paid job counted.
  const repKey = relay.market!.key.pubkey;
  const sub = await TestClient.connect(relay.url);
  t.teardown(() => sub.close());
  sub.send(['REQ', 'rep', { kinds: [30382], authors: [repKey], '#d': [provider.pk] }]);
  const frame = await sub.waitFor((f) => f[0] === 'EVENT' && f[1] === 'rep' && (f[2] as { tags: string[][] }).tags.some((x) => x[0] === 'paid' && x[1] === String(lightningPaid + 1)), 60_000);
  const event = frame[2] as Parameters<typeof verifyEvent>[0];
  t.ok(verifyEvent(event), 'the assertion verifies');
  t.equal(event.pubkey, repKey, 'signed by the relay\'s reputation key');
  const nip11 = await (await fetch(relay.url.replace('ws', 'http'), { headers: { accept: 'application/nostr+json' } })).json() as { reputation_pubkey: string };
  t.equal(nip11.reputation_pubkey, repKey, 'the key NIP-11 announces');
  const a = parseReputationAssertion(event as never);
  t.ok(a.ok);
  if (!a.ok) return;
  t.match(a.value, {
    provider: provider.pk,
    requests: 7,
    accepted: 7, // the 6 Lightning jobs (the failed one was taken on: processing) + the escrowed one
    resultsDelivered: 6,
    paidJobs: lightningPaid + 1,
    satsEarned: Math.floor((lightningMsats + 20_000) / 1000),
    successRate: Math.round((5 / 7) * 10_000) / 10_000,
    disputesOpened: 0,
    rating: 1,
    tier: 0,
  });
  t.equal(relay.market!.index.state.job(escrowReq.id)!.parts[0].payment, 'verified', 'the escrowed Cashu payment counts once the mint says spent');
  t.equal(net.checkInvariant().ok, true, 'money is conserved on the devnet');
});
