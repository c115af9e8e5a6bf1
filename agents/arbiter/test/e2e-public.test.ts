// A public arbiter takes disputes that name no arbiter (jobs without escrow): our buyer re-runs a
// SandboxRun whose result lies about the exit code and disputes it; the public arbiter re-runs
// the commands in its own sandbox and rules for the buyer — a reputation-only verdict (no escrow,
// no release). An arbiter that is not public leaves the same dispute alone. A result whose work
// reproduces but whose time totals are misstated is a split.
import t, { type Test } from 'tap';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { parseVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { SANDBOX_RUN_KIND, buildSandboxRunResult, commandResult, parseSandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { makeBuyer, peer, runArbiter, startMarket, until, type Market } from './helpers.ts';

/**
 * A SandboxRun provider written on the wire. `exit`: every command "exits 0 printing hi" (output
 * hashes consistent with that claim); `totals`: the commands as they really run (`echo hi`),
 * but totals that do not add up.
 */
async function lyingRunner(t: Test, m: Market, lie: 'exit' | 'totals'): Promise<string> {
  const liar = peer(t, m);
  await liar.pool.publishAny(liar.sign(buildAnnouncement({ d: 'liar-run', kinds: [SANDBOX_RUN_KIND], prices: { [SANDBOX_RUN_KIND]: { baseMsats: 1000, perUnitMsats: 0, unit: 'job' } }, terms: { [SANDBOX_RUN_KIND]: 'after-verify' } })), { timeoutMs: 5000 });
  const sub = liar.pool.subscribe([{ kinds: [SANDBOX_RUN_KIND], '#p': [liar.pubkey] }], (req) => {
    void (async () => {
      const r = parseSandboxRunRequest(req);
      if (!r.ok) return;
      await liar.pool.publish(liar.sign(buildFeedback({ request: req, status: 'processing' })), { timeoutMs: 5000 });
      const commands = r.value.params.cmd.map((cmd) => commandResult({ cmd, exitCode: 0, stdout: 'hi\n', stderr: '', wallMs: 5, cpuMs: 1 }));
      const wall = lie === 'totals' ? 900 : 5 * commands.length;
      await liar.pool.publish(liar.sign(buildSandboxRunResult(req, { commands, totals: { exit_code: 0, commands_run: commands.length, wall_ms: wall, cpu_ms: commands.length, timed_out: false } })), { timeoutMs: 5000 });
    })();
  });
  t.teardown(() => sub.close());
  return liar.pubkey;
}

t.test('a public arbiter rules on an unescrowed SandboxRun dispute by re-running it', async (t) => {
  const m = await startMarket(t);
  const pub = await runArbiter(t, m, { responseWindowSecs: 2, overrides: { public: true } });
  const named = await runArbiter(t, m, { responseWindowSecs: 2 });
  const liar = { pubkey: await lyingRunner(t, m, 'exit') };

  const buyer = await makeBuyer(t, m);
  const report = await buyer.client.run({ type: 'sandbox', cmd: ['echo hi; exit 3'], timeLimitSecs: 10 }, { budgetMsats: 10_000, timeoutSecs: 60, providers: [liar.pubkey], strategy: { type: 'pinned' }, rerun: true });
  t.equal(report.outcome, 'disputed', report.reason ?? '');
  const jobId = report.jobId!;
  const d = parseDispute(buyer.store.get(jobId)!.dispute!);
  t.ok(d.ok && d.value.arbiter === undefined, 'the dispute names no arbiter (no escrow)');

  const decided = await until('the public arbiter publishes its verdict', () => {
    const c = pub.arbiter.store.get(jobId);
    return c?.state === 'published' ? c : undefined;
  });
  t.equal(decided.decision?.ruling, 'buyer');
  t.equal(decided.escrow, undefined, 'no escrow');
  t.equal(decided.decision?.release, undefined, 'nothing to release');
  t.ok(decided.replay?.checks.some((c) => c.name.startsWith('sandbox run: re-run matches') && !c.passed), "the re-run in the arbiter's own sandbox did not match");
  const [ev] = await buyer.pool.query([{ kinds: [39301], authors: [pub.arbiter.pubkey], '#d': [jobId] }], { timeoutMs: 5000 });
  const v = parseVerdict(ev);
  t.ok(v.ok && v.value.ruling === 'buyer' && !v.value.sealedRelease && v.value.reputationDelta?.provider === -1, 'a reputation-only verdict against the provider');
  t.equal(named.arbiter.store.get(jobId), undefined, 'an arbiter that is not public leaves it alone');
});

t.test('right work, misstated totals: a split', async (t) => {
  const m = await startMarket(t);
  const pub = await runArbiter(t, m, { responseWindowSecs: 2, overrides: { public: true, splitProviderShare: 0.7 } });
  const liar = await lyingRunner(t, m, 'totals');
  const buyer = await makeBuyer(t, m);
  const report = await buyer.client.run({ type: 'sandbox', cmd: ['echo hi'], timeLimitSecs: 10 }, { budgetMsats: 10_000, timeoutSecs: 60, providers: [liar], strategy: { type: 'pinned' }, rerun: true });
  t.equal(report.outcome, 'disputed', report.reason ?? '');
  const decided = await until('the public arbiter publishes its verdict', () => {
    const c = pub.arbiter.store.get(report.jobId!);
    return c?.state === 'published' ? c : undefined;
  });
  t.same([decided.decision?.ruling, decided.decision?.providerShare], ['split', 0.7], 'split, with the configured provider share');
  t.match(decided.decision?.reasons[0], /the result misstates it: content\.totals\.wall_ms/);
  const [ev] = await buyer.pool.query([{ kinds: [39301], authors: [pub.arbiter.pubkey], '#d': [report.jobId!] }], { timeoutMs: 5000 });
  const v = parseVerdict(ev);
  t.ok(v.ok && v.value.ruling === 'split' && v.value.providerShare === 0.7, 'the verdict says split and the share');
});
