// Strategies and payment terms on real providers (SandboxRun, so no agent is needed):
// an offline provider is skipped for the next one; race:2 pays only the winner and cancels
// the other (kind 5); a provider that asks payment up front is paid within budget, then its
// result is verified.
import t from 'tap';
import { balance, makeBuyer, runProvider, startMarket } from './helpers.ts';
import type { ProgressEvent } from '../src/market-client.ts';

const sandboxTask = { type: 'sandbox' as const, cmd: ['echo hello from the buyer test'], timeLimitSecs: 10 };
const price = (base: number) => ({ 5930: { baseMsats: base, perUnitMsats: 100, unit: 'second', capMsats: 100_000 } });

t.test('provider offline: the next provider is used', async (t) => {
  const m = await startMarket(t, { mint: false });
  const a = await runProvider(t, m, 'prov-a', { kinds: [5930], prices: price(1000) });
  const b = await runProvider(t, m, 'prov-b', { kinds: [5930], prices: price(3000) });
  const buyer = await makeBuyer(t, m);
  const { ranking } = await buyer.client.providers({ kind: 5930, units: 10 });
  t.same(ranking?.ranked.map((c) => c.pubkey), [a.identity.pubkey, b.identity.pubkey], 'A (cheaper) ranks first');
  await a.close(); // its announcement and heartbeat are still fresh on the relay
  const events: ProgressEvent[] = [];
  const report = await buyer.client.run(sandboxTask, { budgetMsats: 10_000, onProgress: (e) => events.push(e) });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(report.provider, b.identity.pubkey, 'B served the job');
  t.ok(events.some((e) => e.type === 'skipped' && e.provider === a.identity.pubkey), 'A was skipped: no answer to the ping');
  t.same(report.attempts.map((x) => x.provider), [b.identity.pubkey], 'nothing was posted to A');
  t.equal(JSON.parse(report.result!.content).commands[0].stdout, 'hello from the buyer test\n');
  t.equal(m.devnet.network.balance('prov-b'), report.payment!.amountMsats, 'B was paid what its result asked');
  // --rerun: the commands run again in our own sandbox and are compared before paying.
  const rerun = await buyer.client.run(sandboxTask, { budgetMsats: 10_000, rerun: true, providers: [b.identity.pubkey] });
  t.equal(rerun.outcome, 'paid', rerun.reason ?? '');
  t.ok(rerun.verification?.checks.some((c) => /re-run matches/.test(c.name) && c.passed), 'verified by re-running it');
  t.equal(m.devnet.network.balance('prov-a'), 0, 'A nothing');
  // The same task twice at once: one author, one second, the same tags and content would be one
  // event id; each run must get a request (and a job) of its own, both served and paid.
  const twice = await Promise.all([0, 1].map(() => buyer.client.run(sandboxTask, { budgetMsats: 10_000, providers: [b.identity.pubkey] })));
  t.same(twice.map((r) => r.outcome), ['paid', 'paid'], twice.map((r) => r.reason ?? '').join('; '));
  t.not(twice[0].jobId, twice[1].jobId, 'two requests, two ids');
});

t.test('race:2 — both run, only the first verified result is paid, the other is cancelled', async (t) => {
  const m = await startMarket(t, { mint: false });
  const a = await runProvider(t, m, 'prov-a', { kinds: [5930], prices: price(1000) });
  const b = await runProvider(t, m, 'prov-b', { kinds: [5930], prices: price(1000) });
  const buyer = await makeBuyer(t, m);
  const before = m.devnet.network.balance('buyer');
  const report = await buyer.client.run(sandboxTask, { budgetMsats: 10_000, strategy: { type: 'race', n: 2 } });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(report.attempts.length, 2, 'both providers got the job');
  const winner = report.attempts.find((x) => x.jobId === report.jobId)!;
  const loser = report.attempts.find((x) => x.jobId !== report.jobId)!;
  t.equal(winner.state, 'paid');
  t.equal(loser.state, 'cancelled', 'the other attempt was cancelled, not paid');
  const paid = [m.devnet.network.balance('prov-a'), m.devnet.network.balance('prov-b')];
  t.equal(paid.filter((x) => x > 0).length, 1, `exactly one provider was paid (${paid.join(', ')})`);
  t.equal(before - m.devnet.network.balance('buyer'), report.payment!.amountMsats, 'the buyer paid once');
  const deletions = await buyer.pool.query([{ kinds: [5], authors: [buyer.identity.pubkey] }], { timeoutMs: 5000 });
  t.ok(deletions.some((d) => d.tags.some((x) => x[0] === 'e' && x[1] === loser.jobId)), 'a kind 5 cancellation names the losing request');
  t.notOk(deletions.some((d) => d.tags.some((x) => x[0] === 'e' && x[1] === winner.jobId)), 'the winning request is not cancelled');
  const loserProvider = loser.provider === a.identity.pubkey ? a : b;
  t.not(loserProvider.provider.store.get(loser.jobId)?.state, 'settled', 'the losing provider holds no payment');
});

t.test('a provider that asks for payment up front is paid within budget, then verified', async (t) => {
  const m = await startMarket(t, { mint: false });
  const p = await runProvider(t, m, 'prov-pre', { kinds: [5930], prices: price(1000), terms: { default: 'prepay' } });
  const buyer = await makeBuyer(t, m);
  const before = balance(m, 'buyer');
  const events: ProgressEvent[] = [];
  const report = await buyer.client.run(sandboxTask, { budgetMsats: 10_000, onProgress: (e) => events.push(e) });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(report.payment?.when, 'prepay');
  t.equal(report.payment?.amountMsats, 2000, 'the most the job can cost: 1000 + 100 × 10 s');
  const order = events.map((e) => (e.type === 'feedback' ? `feedback:${e.status}` : e.type)).filter((x) => ['feedback:payment-required', 'paying', 'paid', 'result', 'verified'].includes(x));
  t.same(order.slice(0, 5), ['feedback:payment-required', 'paying', 'paid', 'result', 'verified'], 'paid up front, then the result arrived and was verified');
  t.equal(before - balance(m, 'buyer'), 2);
  t.ok(report.receiptId, 'a receipt once the result verified');
  t.equal(p.provider.store.get(report.jobId!)?.state, 'settled');
  // A longer job's up-front price (1000 + 100 × 100 s) is over the budget: refused before posting.
  const r2 = await buyer.client.run({ ...sandboxTask, timeLimitSecs: 100 }, { budgetMsats: 5_000, providers: [p.identity.pubkey], strategy: { type: 'pinned' }, maxPriceMsats: 50_000 });
  t.equal(r2.outcome, 'budget-refused', r2.reason ?? '');
});

t.test('a private job: inputs and params NIP-44-encrypted to the chosen provider, the result opened and verified', async (t) => {
  const m = await startMarket(t, { mint: false });
  await runProvider(t, m, 'prov-a', { kinds: [5930], prices: price(1000) });
  const buyer = await makeBuyer(t, m);
  const report = await buyer.client.run({ type: 'sandbox', cmd: ['echo a secret command'], timeLimitSecs: 10 }, { budgetMsats: 10_000, encrypt: true });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(JSON.parse(report.result!.content).commands[0].stdout, 'a secret command\n', 'the opened result');
  const [req] = await buyer.pool.query([{ ids: [report.jobId!] }], { timeoutMs: 5000 });
  t.ok(req.tags.some((x) => x[0] === 'encrypted'), 'the request is marked encrypted');
  t.notOk(req.tags.some((x) => x[0] === 'param' || x[0] === 'i'), 'no param or input in clear');
  t.notMatch(JSON.stringify(req), /secret command/, 'the command is nowhere in clear');
  const results = await buyer.pool.query([{ kinds: [6930], '#e': [report.jobId!] }], { timeoutMs: 5000 });
  t.notMatch(JSON.stringify(results), /secret command/, 'nor in the published result');
});
