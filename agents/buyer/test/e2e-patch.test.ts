// PatchGen end to end on real parts: relay, devnet wallets, a provider whose coding agent is
// a script, the buyer verifying in its own bwrap sandbox, paying over Lightning only after the
// patch applied to its own checkout and the tests passed there; a receipt with the preimage.
import t from 'tap';
import { parseReceipt, verifyReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { GOOD_AGENT, agent, balance, makeBuyer, patchTask, runProvider, sampleRepo, scriptedProvider, startMarket } from './helpers.ts';
import type { ProgressEvent } from '../src/market-client.ts';
import { decodeInvoice } from '@bazaar/agents-common/wallet/lightning';

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
  const job = buyer.store.get(report.jobId!)!;
  t.match(job.payee, /^0[23][0-9a-f]{64}$/, 'the provider announced its Lightning node');
  t.equal(decodeInvoice(job.payment!.bolt11!).payee, job.payee, 'and the invoice paid was signed by it');
});

t.test('an invoice from another node than the one announced is not paid', async (t) => {
  const m = await startMarket(t, { mint: false });
  const repo = sampleRepo(t);
  // Announces the node of an account that is not its own: its invoices' payee differs.
  m.devnet.account('elsewhere');
  const elsewhere = m.devnet.network.requireAccount('elsewhere').nodePubkey;
  const rogue = await scriptedProvider(t, m, 'redirect', { kind: 5932, priceMsats: 20_000, answer: patchAnswer(FIX), lightningNode: elsewhere });
  const buyer = await makeBuyer(t, m);
  const before = balance(m, 'buyer');
  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 60, providers: [rogue.pubkey], strategy: { type: 'pinned' } });
  t.ok(report.verification?.ok, 'the work verified');
  t.equal(report.outcome, 'verified', 'verified, not paid');
  t.match(report.reason ?? '', /the invoice pays node [0-9a-f]{16}…, not the node [0-9a-f]{16}… the provider announced/);
  t.equal(balance(m, 'buyer'), before, 'not a sat paid');
  t.equal(balance(m, 'redirect'), 0);
});

const FIX = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a - b;\n+  return a + b;\n }\n';
const BROKEN = FIX.replace('+  return a + b;', '+  return a * b;');
/** PatchGen result tags for `patch`, claiming the tests passed. */
const patchAnswer = (patch: string) => (req: NostrEvent) => ({ content: patch, tags: buildPatchGenResult(req, { patch, testExitCode: 0 }).tags.filter((x) => ['patch_sha256', 'test_exit_code', 'files_changed', 'additions', 'deletions'].includes(x[0])) });

t.test('a broken patch: no payment, a dispute with the failed checks and the evidence hash', async (t) => {
  const m = await startMarket(t, { mint: false });
  const repo = sampleRepo(t);
  const rogue = await scriptedProvider(t, m, 'rogue', { kind: 5932, priceMsats: 20_000, answer: patchAnswer(BROKEN) });
  const buyer = await makeBuyer(t, m);
  const before = { buyer: balance(m, 'buyer'), rogue: balance(m, 'rogue') };
  const report = await buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 60, strategy: { type: 'first' } });
  t.equal(report.outcome, 'disputed');
  t.equal(report.provider, rogue.pubkey);
  t.notOk(report.verification?.ok);
  t.ok(report.verification?.checks.some((c) => c.name === 'tests pass on our replay' && !c.passed), 'the replayed tests failed');
  t.same([balance(m, 'buyer'), balance(m, 'rogue')], [before.buyer, before.rogue], 'no money moved');
  t.equal(report.disputeIds.length, 1);
  const [ev] = await buyer.pool.query([{ kinds: [39300], authors: [buyer.identity.pubkey] }], { timeoutMs: 5000 });
  const d = parseDispute(ev);
  t.ok(d.ok, 'the dispute parses');
  if (!d.ok) return;
  t.equal(d.value.requestId, report.jobId);
  t.equal(d.value.provider, rogue.pubkey);
  t.same(d.value.failedChecks, ['test_exit_code'], 'the failed check is named');
  const evidence = readFileSync(join(buyer.dataDir, 'evidence', `${report.jobId}.json`), 'utf8');
  t.equal(sha256Hex(evidence), d.value.evidenceSha256, 'the evidence hash is of the bundle the buyer kept');
  t.match(JSON.parse(evidence).replay.test, { command: 'node test.mjs', exitCode: 1 }, 'the evidence holds the replay');
  t.equal(buyer.store.get(report.jobId!)?.state, 'disputed');
});

t.test('budget: refused before any payment', async (t) => {
  const m = await startMarket(t, { mint: false });
  const repo = sampleRepo(t);
  await runProvider(t, m, 'prov-a', { kinds: [5932], backends: { patchGen: agent(GOOD_AGENT) } });
  const buyer = await makeBuyer(t, m);
  const before = balance(m, 'buyer');
  // The announced price (50 sats) is over the budget: nothing is even posted.
  const r1 = await buyer.client.run(patchTask(repo.url), { budgetMsats: 20_000, timeoutSecs: 60 });
  t.equal(r1.outcome, 'budget-refused');
  t.match(r1.reason ?? '', /more than the budget/);
  t.same(r1.attempts, [], 'no request was posted');
  // A provider that announces 10 sats and asks 60 after the work: verified, refused, unpaid.
  const liar = await scriptedProvider(t, m, 'liar', { kind: 5932, priceMsats: 60_000, answer: patchAnswer(FIX), announce: false });
  await buyer.pool.publish(finalizeEvent(buildAnnouncement({ d: 'liar', kinds: [5932], prices: { 5932: { baseMsats: 10_000, perUnitMsats: 0, unit: 'job' } } }), generateSecretKey()) as NostrEvent, { timeoutMs: 5000 });
  const r2 = await buyer.client.run(patchTask(repo.url), { budgetMsats: 30_000, timeoutSecs: 60, providers: [liar.pubkey], strategy: { type: 'pinned' } });
  t.equal(r2.outcome, 'budget-refused', r2.reason ?? '');
  t.ok(r2.verification?.ok, 'the work itself verified');
  t.match(r2.reason ?? '', /asks 60 sats, more than the 30 sats allowed/);
  t.equal(balance(m, 'buyer'), before, 'not a sat paid');
  t.equal(balance(m, 'liar'), 0);
});
