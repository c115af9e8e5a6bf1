// (3) The provider disappears mid-job: the buyer takes its escrow back after the locktime with
// its refund key alone — the arbiter is gone too, and is not needed. Before the locktime the
// mint refuses the refund; the mint's clock (and the buyer's) is moved past it, not waited for.
import t from 'tap';
import { agent, escrowProvider, fund, makeBuyer, patchTask, runArbiter, runProvider, sampleRepo, startMarket, until } from './helpers.ts';

t.test('(3) the provider disappears: the buyer takes the refund after the locktime, without the arbiter', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const arb = await runArbiter(t, m);
  // An agent that never finishes: the provider will be gone before it delivers.
  const prov = await runProvider(t, m, 'gone', escrowProvider(m, arb.arbiter.paymentPubkey, { backends: { patchGen: agent('cat >/dev/null; sleep 120') } }));
  const buyer = await makeBuyer(t, m, { arbiters: [arb.arbiter.pubkey] });
  const cashu = buyer.wallet.cashu;
  await fund(m, cashu, 'buyer', 200);
  const before = cashu.balance();

  const run = buyer.client.run(patchTask(repo.url), { budgetMsats: 100_000, timeoutSecs: 15, pay: 'escrow', providers: [prov.identity.pubkey], strategy: { type: 'pinned' } });
  await until('the provider starts the job', () => [...prov.provider.store.jobsIn(['running'])][0]);
  await prov.close(); // gone, escrow and all
  const report = await run;
  t.not(report.outcome, 'paid', `not paid: ${report.outcome} (${report.reason ?? ''})`);
  const job = buyer.store.get(report.jobId!)!;
  t.ok(job.escrow, 'the job was escrowed');
  const locked = job.escrow!.amountSats;
  t.ok(cashu.balance() <= before - locked, 'the escrow is out of the purse');
  await arb.close(); // the arbiter is gone as well

  t.equal(await buyer.client.refundExpiredEscrows(), 0, 'before the locktime: no refund');
  t.not(buyer.store.get(job.id)?.state, 'refunded');
  // Past the locktime, by the mint's clock and the buyer's.
  m.clock.offsetMs = (job.escrow!.locktime - m.clock.secs() + 5) * 1000;
  const refunded = await buyer.client.refundExpiredEscrows();
  t.ok(refunded > 0 && refunded >= locked - 2, `refunded ${refunded} of ${locked} sats (the swap's input fee aside)`);
  t.equal(buyer.store.get(job.id)?.state, 'refunded');
  t.same(await cashu.checkStates(job.escrow!.proofs as never), job.escrow!.proofs.map(() => 'SPENT'), 'the escrow is spent into the buyer\'s own outputs');
  const after = cashu.balance();
  t.ok(after >= before - 3, `the purse is whole again but for input fees (${before} → ${after} sats)`);
  t.equal(await buyer.client.refundExpiredEscrows(), 0, 'refunded once');
});
