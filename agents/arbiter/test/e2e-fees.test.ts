// The arbiter's loser-pays fee, end to end on real parts (our relay, the devnet Lightning network
// and NWC wallets, the mint, bwrap): the arbiter announces `["fee", "7000", "loser"]` with its
// node, the verdict asks 7 sats with a bolt11 of its wallet, and the side that lost — our real
// buyer, or our real provider — pays exactly that, once, through its own wallet; the arbiter sees
// the invoice settle (NIP-47) and `bazaar arbiter cases` shows the fee paid.
//
// For the honest agents to lose, the facts must change between their check and the arbiter's
// replay: the job names the branch `main`, and a commit lands on it in between (the arbiter is
// started only then, so its replay sees the new tests).
//   (a) the buyer's tests fail, the dispute goes out, then a commit makes the patch pass → the
//       arbiter rules for the provider → the buyer pays the fee (and again, nothing more)
//   (b) the provider's patch passes, a lying buyer disputes, then a commit makes it fail → the
//       arbiter rules for the buyer → the provider pays the fee, once across a restart
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import { caseView } from '../src/cli.ts';
import { BROKEN, arbiterDir, escrowProvider, fund, lyingBuyer, lyingProvider, makeBuyer, patchTask, runArbiter, runProvider, sampleRepo, startMarket, until, type Market } from './helpers.ts';

const FEE = { feeSats: 7 };

/** A commit on the repository's `main` that changes what its test expects of add(2, 3). */
function expect(dir: string, sum: number): void {
  writeFileSync(join(dir, 'test.mjs'), `import { add } from './sum.mjs';\nif (add(2, 3) !== ${sum}) { console.error('add(2, 3) =', add(2, 3)); process.exit(1); }\nconsole.log('ok');\n`);
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: dir, encoding: 'utf8' });
  git('commit', '-q', '-am', `the test expects ${sum}`);
}

/** An arbiter identity announced once (so buyers can name it), stopped until the test wants it to replay. */
async function announcedArbiter(t: Test, m: Market, responseWindowSecs: number) {
  const wallet = m.devnet.account('arbiter');
  await m.devnet.nwc.refresh();
  const dataDir = await arbiterDir(m, { responseWindowSecs });
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const overrides = { ...FEE, nwcUri: wallet.uri };
  const first = await runArbiter(t, m, { dataDir, overrides });
  const ids = { pubkey: first.arbiter.pubkey, paymentPubkey: first.arbiter.paymentPubkey };
  await first.close();
  return { ...ids, start: () => runArbiter(t, m, { dataDir, overrides }) };
}

const paymentsTo = (m: Market, account: string, paymentHash: string) => m.devnet.network.listTransactions(account, { type: 'incoming' }).transactions.filter((x) => x.paymentHash === paymentHash);

t.test('(a) the buyer loses its dispute and pays the announced fee, once', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const arbiter = await announcedArbiter(t, m, 3);
  const liar = await lyingProvider(t, m, { arbiterPaymentKey: arbiter.paymentPubkey, patch: BROKEN, priceMsats: 50_000 });
  const buyer = await makeBuyer(t, m, { arbiters: [arbiter.pubkey] });
  await fund(m, buyer.wallet.cashu, 'buyer', 200);

  // add = a * b: add(2, 3) is 6, not 5 — our buyer's tests fail and it disputes.
  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 120, pay: 'escrow', providers: [liar.pubkey], strategy: { type: 'pinned' } });
  t.equal(report.outcome, 'disputed', report.reason ?? '');
  const jobId = report.jobId!;
  // Then main moves: the test now expects 6, and the arbiter's replay passes.
  expect(repo.dir, 6);
  const arb = await arbiter.start();

  const decided = await until('the arbiter publishes its verdict', () => {
    const c = arb.arbiter.store.get(jobId);
    return c?.state === 'published' ? c : undefined;
  });
  t.equal(decided.decision?.ruling, 'provider', 'the replay passed: the provider wins');
  const fee = decided.decision!.fee!;
  t.same([fee.msats, fee.payer], [7000, buyer.identity.pubkey], 'the fee is asked of the buyer');
  const [annEv] = await buyer.pool.query([{ kinds: [31990], authors: [arb.arbiter.pubkey], '#k': ['39300'] }], { timeoutMs: 5000 });
  const ann = parseArbiterAnnouncement(annEv);
  t.same(ann.ok && [ann.value.fee, ann.value.lightningNode], [{ msats: 7000, payer: 'loser' }, m.devnet.network.getAccount('arbiter')?.nodePubkey], 'announced: the fee, loser pays, and the node its invoices come from');
  t.match(caseView(arb.arbiter.store.get(jobId)!), { fee: { msats: 7000, payer: 'buyer', paid: false } }, '`cases`: the fee unpaid');

  const before = m.devnet.network.balance('arbiter');
  await until('the buyer reads the verdict', async () => (await buyer.client.collectVerdicts()).decided > 0 || buyer.store.get(jobId)?.arbitration);
  const a = buyer.store.get(jobId)!.arbitration!;
  t.equal(a.ruling, 'provider');
  t.match(a.fee, { msats: 7000, state: 'paid', paymentHash: fee.paymentHash }, 'the buyer paid the fee');
  t.equal(paymentsTo(m, 'arbiter', fee.paymentHash).length, 1, 'one payment of the fee invoice');
  t.equal(m.devnet.network.balance('arbiter') - before, 7000, "the arbiter's wallet got exactly the fee");

  // Read again (a later `bazaar buyer jobs`): nothing paid twice.
  await buyer.client.resume();
  await buyer.client.collectVerdicts();
  t.equal(m.devnet.network.balance('arbiter') - before, 7000, 'still exactly the fee');
  t.match(buyer.client.report(report.runId).arbitration, { jobId, ruling: 'provider', fee: { msats: 7000, state: 'paid' } }, '`bazaar buyer jobs` shows the fee paid');

  const seen = await until('the arbiter sees its fee paid', () => arb.arbiter.store.get(jobId)?.feePaidAt);
  t.ok(seen);
  t.match(caseView(arb.arbiter.store.get(jobId)!), { ruling: 'provider', fee: { msats: 7000, payer: 'buyer', paid: true } }, '`bazaar arbiter cases` shows the fee paid');
});

t.test('(b) the provider loses and pays the announced fee, once across a restart', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const arbiter = await announcedArbiter(t, m, 30);
  m.devnet.account('prov', { fundSats: 1000 });
  const prov = await runProvider(t, m, 'prov', escrowProvider(m, arbiter.paymentPubkey));
  const liar = await lyingBuyer(t, m, { provider: prov.identity.pubkey, arbiter: arbiter.pubkey, repo: repo.url, priceSats: 50 });
  const result = await liar.result();
  t.ok(result.tags.some((x) => x[0] === 'escrow_claim'), 'the provider delivered a patch that passes');
  // Then main moves: the test now expects 6 — the arbiter's replay of the patch fails.
  expect(repo.dir, 6);
  await liar.dispute();
  const arb = await arbiter.start();

  const decided = await until('the arbiter publishes its verdict', () => {
    const c = arb.arbiter.store.get(liar.request.id);
    return c?.state === 'published' ? c : undefined;
  });
  t.equal(decided.decision?.ruling, 'buyer', 'the replay failed: the buyer wins');
  const fee = decided.decision!.fee!;
  t.same([fee.msats, fee.payer], [7000, prov.identity.pubkey], 'the fee is asked of the provider');

  const paid = await until('the provider pays the fee', () => {
    const f = prov.provider.store.get(liar.request.id)?.arbiterFee;
    return f?.state === 'paid' || f?.state === 'refused' ? f : undefined;
  });
  t.match(paid, { msats: 7000, state: 'paid', paymentHash: fee.paymentHash, arbiter: arb.arbiter.pubkey, verdictId: decided.verdict?.id }, 'paid from its wallet');
  t.same(prov.provider.store.costs(), { arbiterFeesMsats: 7000, arbiterFees: 1, unpaid: 0 }, 'booked as a cost');
  t.equal(paymentsTo(m, 'arbiter', fee.paymentHash).length, 1, 'one payment of the fee invoice');

  // Restarted, the provider reads the verdict again (its 30-day look-back) and pays nothing more.
  const balance = m.devnet.network.balance('prov');
  await prov.close();
  const again = await runProvider(t, m, 'prov', escrowProvider(m, arbiter.paymentPubkey), { dataDir: prov.dataDir });
  await until('the restarted provider is connected', () => again.provider.status().relays.some((r) => r.connected));
  await until('the arbiter sees its fee paid', () => arb.arbiter.store.get(liar.request.id)?.feePaidAt);
  t.equal(m.devnet.network.balance('prov'), balance, 'nothing paid again after the restart');
  t.equal(paymentsTo(m, 'arbiter', fee.paymentHash).length, 1, 'still one payment');
  t.match(caseView(arb.arbiter.store.get(liar.request.id)!), { ruling: 'buyer', fee: { msats: 7000, payer: 'provider', paid: true } }, '`bazaar arbiter cases` shows the fee paid');
  await again.close();
});
