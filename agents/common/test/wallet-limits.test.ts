// Spending limits of the agent's wallet: per payment, per job, rolling hour and day, kept
// in LMDB across restarts, and enforced before any wallet service or mint is asked to pay.
// "Before any NWC call" is observed on the relay itself: a watcher sees every NIP-47
// request (kind 23194) the client publishes, and an over-limit payment publishes none.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { startDevnet, type RunningDevnet } from '@bazaar/devnet/devnet';
import { RelayPool } from '../src/relay-pool.ts';
import { Wallet } from '../src/wallet/wallet.ts';
import { parseNwcUri } from '../src/wallet/nip47.ts';
import { SpendingLedger, SpendingLimitError } from '../src/wallet/spending.ts';
import { startCashuFixture } from './helpers/cashu-fixture.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
/** The limit a call breaks, or undefined when it does not throw a SpendingLimitError. */
function limitOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpendingLimitError) return err.limit;
    throw err;
  }
  return undefined;
}
const tmp = (t: Test, p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('ledger: each limit, idempotent keys, release and settle, rolling windows, reopened', async (t) => {
  const dir = tmp(t, 'bazaar-ledger-');
  const clock = { ms: Date.UTC(2026, 0, 1, 12) };
  const limits = { perPaymentMsat: 10_000, perJobMsat: 15_000, perHourMsat: 25_000, perDayMsat: 40_000 };
  let ledger = SpendingLedger.open({ path: dir, limits, now: () => clock.ms });
  t.equal(limitOf(() => ledger.reserve({ key: 'a', amountMsat: 10_001, rail: 'lightning' })), 'per-payment');
  t.equal(ledger.reserve({ key: 'a', amountMsat: 10_000, rail: 'lightning', jobId: 'job1' }).created, true);
  t.equal(ledger.reserve({ key: 'a', amountMsat: 10_000, rail: 'lightning', jobId: 'job1' }).created, false, 'the same key is not counted twice');
  t.equal(limitOf(() => ledger.reserve({ key: 'b', amountMsat: 6_000, rail: 'lightning', jobId: 'job1' })), 'per-job');
  ledger.reserve({ key: 'b', amountMsat: 5_000, rail: 'cashu', jobId: 'job1' });
  ledger.release('b');
  t.equal(ledger.usage('job1').jobMsat, 10_000, 'a released reservation stops counting');
  ledger.settle('a', 10_500);
  t.equal(ledger.usage().lastHourMsat, 10_500, 'settled with the fees');
  ledger.reserve({ key: 'c', amountMsat: 10_000, rail: 'lightning' });
  t.equal(limitOf(() => ledger.reserve({ key: 'd', amountMsat: 5_000, rail: 'lightning' })), 'per-hour', '10.5 + 10 + 5 > 25 in the hour');
  await ledger.close();

  // Reopened (a restart): the same spending still counts.
  ledger = SpendingLedger.open({ path: dir, limits, now: () => clock.ms });
  t.equal(ledger.usage().lastHourMsat, 20_500);
  t.throws(() => ledger.check(5_000), SpendingLimitError);
  clock.ms += 61 * 60_000; // the hour rolls over, the day does not
  ledger.reserve({ key: 'd', amountMsat: 10_000, rail: 'lightning' });
  t.equal(ledger.usage().lastHourMsat, 10_000);
  t.equal(limitOf(() => ledger.reserve({ key: 'e', amountMsat: 10_000, rail: 'lightning' })), 'per-day', '30.5 + 10 > 40 in the day');
  clock.ms += 24 * 3_600_000;
  ledger.reserve({ key: 'e', amountMsat: 10_000, rail: 'lightning' });
  t.same({ hour: ledger.usage().lastHourMsat, day: ledger.usage().lastDayMsat }, { hour: 10_000, day: 10_000 }, 'a day later only the new payment counts');
  await ledger.close();
  t.throws(() => SpendingLedger.open({ path: dir, limits: { perHourMsat: -1 } }), /non-negative integer/);
});

interface LnSetup {
  relay: RunningRelay;
  devnet: RunningDevnet;
  buyerUri: string;
  invoice(msat: number, what: string): Promise<string>;
  /** NIP-47 requests the buyer's connection published, as seen on the relay. */
  requests: NostrEvent[];
}

async function lnSetup(t: Test): Promise<LnSetup> {
  const dir = tmp(t, 'bazaar-limits-');
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'relay'), transport: 'ws', verifyWorkers: 0, logger });
  const devnet = await startDevnet({ dataDir: join(dir, 'devnet'), relayUrl: relay.url, logger, mint: false });
  const buyer = devnet.account('buyer', { fundSats: 100 });
  devnet.account('provider');
  await devnet.nwc.refresh();
  const watcher = new RelayPool({ relays: [relay.url], logger });
  const requests: NostrEvent[] = [];
  await new Promise<void>((resolve) => watcher.subscribe([{ kinds: [23194], authors: [parseNwcUri(buyer.uri).clientPubkey] }], (e) => requests.push(e), { onEose: () => resolve() }));
  t.teardown(async () => {
    await watcher.close();
    await devnet.close();
    await relay.close();
  });
  let n = 0;
  return {
    relay,
    devnet,
    buyerUri: buyer.uri,
    requests,
    async invoice(msat, what) {
      return devnet.network.createInvoice('provider', msat, `${what} ${++n}`, 600).bolt11;
    },
  };
}

t.test('lightning: an over-limit payment is refused before any NWC request, also after a restart', async (t) => {
  const s = await lnSetup(t);
  const dataDir = tmp(t, 'bazaar-limits-wallet-');
  const limits = { perPaymentMsat: 20_000, perJobMsat: 30_000, perHourMsat: 45_000 };
  let wallet = await Wallet.open({ logger, dataDir, limits, lightning: { nwcUri: s.buyerUri } });
  const big = await s.invoice(21_000, 'too big');
  await t.rejects(wallet.pay(big), { code: 'OVER_LIMIT', message: /per-payment limit of 20 sat/ });
  t.equal(s.requests.length, 0, 'no NIP-47 request was published');

  const p1 = await wallet.pay(await s.invoice(20_000, 'job A, first'), { jobId: 'A' });
  t.ok(p1.preimage);
  const sent = s.requests.length;
  t.ok(sent >= 1, 'a payment within the limits does reach the wallet');
  await t.rejects(wallet.pay(await s.invoice(15_000, 'job A, second'), { jobId: 'A' }), { code: 'OVER_LIMIT', message: /per-job limit/ });
  t.equal(s.requests.length, sent, 'the per-job refusal sent nothing');
  await wallet.pay(await s.invoice(15_000, 'job B'), { jobId: 'B' });
  t.same(wallet.spending(), { limits: { perPaymentMsat: 20_000, perJobMsat: 30_000, perHourMsat: 45_000, perDayMsat: 1_000_000_000 }, lastHourMsat: 35_000, lastDayMsat: 35_000 });
  await wallet.close();

  // A restart: a new Wallet over the same data dir remembers the hour's spending.
  wallet = await Wallet.open({ logger, dataDir, limits, lightning: { nwcUri: s.buyerUri } });
  t.teardown(() => wallet.close());
  const before = s.requests.length;
  await t.rejects(wallet.pay(await s.invoice(15_000, 'after restart'), { jobId: 'C' }), { code: 'OVER_LIMIT', message: /hourly limit of 45 sat/ });
  t.equal(s.requests.length, before, 'refused before any NWC request after the restart too');
  t.equal(s.devnet.network.balance('buyer'), 100_000 - 35_000, 'only the two allowed payments left the account');

  // A refusal by the wallet itself releases the reservation; paying an invoice again counts once.
  const own = s.devnet.network.createInvoice('buyer', 5_000, 'to myself', 600).bolt11;
  await t.rejects(wallet.pay(own, { jobId: 'E' }), { code: 'WALLET_ERROR', nip47Code: 'PAYMENT_FAILED' });
  t.equal(wallet.spending('E').jobMsat, 0, 'a payment the wallet refused stops counting');
  const inv = await s.invoice(5_000, 'small');
  const a1 = await wallet.pay(inv, { jobId: 'D' });
  const a2 = await wallet.pay(inv, { jobId: 'D' });
  t.same(a2, a1, 'the earlier payment is returned');
  t.equal(wallet.spending('D').jobMsat, 5_000, 'and counted once');
  t.equal(wallet.spending().lastHourMsat, 40_000);
});

t.test('cashu: over-limit sends and melts are refused before the mint is called', async (t) => {
  const f = await startCashuFixture(t);
  const dataDir = f.tempDir();
  const wallet = await Wallet.open({ logger, dataDir, limits: { perPaymentMsat: 40_000, perJobMsat: 50_000 }, cashu: { mintUrl: f.mint.url, now: () => f.clock.now } });
  t.teardown(() => wallet.close());
  await f.fund(wallet.cashu, 128);
  const ledgerBefore = f.mint.mint.store.ledger();
  const err = await wallet.sendEcash(41, { jobId: 'J' }).catch((e: { reason?: string; message: string }) => e);
  t.equal((err as { reason?: string }).reason, 'OVER_LIMIT', `refused: ${(err as Error).message}`);
  t.same(f.mint.mint.store.ledger(), ledgerBefore, 'the mint signed and spent nothing');
  t.equal(wallet.cashu.balance(), 128);
  const { token } = await wallet.sendEcash(30, { jobId: 'J' });
  t.ok(token.startsWith('cashuB'));
  const cost = wallet.spending('J').jobMsat!;
  t.ok(cost >= 30_000 && cost <= 32_000, `the send's cost (amount + fees) counts: ${cost}`);
  await t.rejects(wallet.sendEcash(20, { jobId: 'J' }), { reason: 'OVER_LIMIT', message: /per-job limit/ });
  const quotes = [...f.mint.mint.store.meltQuotes.getRange()].length;
  const { bolt11 } = await f.fake.createInvoice({ amountMsat: 41_000, description: 'too big for the limit', expirySecs: 600 });
  await t.rejects(wallet.pay(bolt11, { via: 'cashu' }), { reason: 'OVER_LIMIT', message: /per-payment limit/ });
  t.equal([...f.mint.mint.store.meltQuotes.getRange()].length, quotes, 'no melt quote was asked for');
  f.assertConserved(t, [wallet.cashu]);
});
