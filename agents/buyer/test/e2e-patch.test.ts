// PatchGen end to end on real parts: relay, devnet wallets, a provider whose coding agent is
// a script, the buyer verifying in its own bwrap sandbox, paying over Lightning only after the
// patch applied to its own checkout and the tests passed there; a receipt with the preimage.
import t from 'tap';
import { parseReceipt, verifyReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { GOOD_AGENT, agent, balance, makeBuyer, patchTask, runProvider, sampleRepo, startMarket } from './helpers.ts';
import type { ProgressEvent } from '../src/market-client.ts';

t.test('PatchGen paid after verify over Lightning', async (t) => {
  const m = await startMarket(t, { mint: false });
  const repo = sampleRepo(t);
  const prov = await runProvider(t, m, 'prov-a', { kinds: [5932], backends: { patchGen: agent(GOOD_AGENT) } });
  const buyer = await makeBuyer(t, m);
  const before = { buyer: balance(m, 'buyer'), provider: balance(m, 'prov-a') };
  const events: ProgressEvent[] = [];
  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 120, onProgress: (e) => events.push(e) });
  t.equal(report.outcome, 'paid', `paid (${report.reason ?? ''})`);
  t.equal(report.provider, prov.identity.pubkey);
  t.ok(report.verification?.ok, 'verified');
  t.ok(report.verification?.checks.some((c) => c.name === 'tests pass on our replay' && c.passed), 'the tests ran on our replay');
  t.match(report.result?.content, /\+  return a \+ b;/, 'the patch is the fix');
  t.equal(report.payment?.method, 'lightning');
  t.equal(report.payment?.amountMsats, 50_000, "the provider's PatchGen price");
  const order = events.map((e) => e.type).filter((x) => ['posted', 'result', 'verifying', 'verified', 'paying', 'paid', 'receipt'].includes(x));
  t.same(order, ['posted', 'result', 'verifying', 'verified', 'paying', 'paid', 'receipt'], 'verified before paying');
  t.equal(balance(m, 'buyer'), before.buyer - 50, 'the buyer paid 50 sats');
  t.equal(balance(m, 'prov-a'), before.provider + 50, 'the provider received them');
  // The receipt is on the relay and proves the payment.
  const [ev] = await buyer.pool.query([{ kinds: [39302], authors: [buyer.identity.pubkey], '#d': [report.jobId!] }], { timeoutMs: 5000 });
  const receipt = parseReceipt(ev);
  t.ok(receipt.ok && verifyReceipt(receipt.value).ok, 'a receipt with a valid preimage');
  t.ok(m.devnet.network.checkInvariant().ok, 'money conserved');
});
