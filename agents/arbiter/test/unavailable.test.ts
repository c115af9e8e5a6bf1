// A replay the arbiter cannot run yields no verdict and a clear status, never a guess: the
// repository goes away after the job, so the arbiter's own checkout fails; the case stays
// `unavailable` (shown by `bazaar arbiter cases`) past its response window, retried with backoff,
// and is decided once the repository is reachable again. The same for a sandbox that cannot
// start (an arbiter on a machine without bubblewrap).
import t from 'tap';
import { execFile } from 'node:child_process';
import { renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BwrapRunner } from '@bazaar/agents-common/sandbox/bwrap-runner';
import { PASSPHRASE, escrowProvider, logger, lyingBuyer, runArbiter, runProvider, sampleRepo, startMarket, until } from './helpers.ts';

const BAZAAR = fileURLToPath(new URL('../../../scripts/bazaar.mjs', import.meta.url));
const bazaar = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [BAZAAR, ...args], { env: { ...process.env, BAZAAR_PASSPHRASE: PASSPHRASE, BAZAAR_LOG_LEVEL: 'warn' }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });

t.test('repository unreachable: no verdict, a clear status; decided when it is back', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const arb = await runArbiter(t, m, { responseWindowSecs: 2 });
  const prov = await runProvider(t, m, 'prov', escrowProvider(m, arb.arbiter.paymentPubkey));
  const liar = await lyingBuyer(t, m, { provider: prov.identity.pubkey, arbiter: arb.arbiter.pubkey, repo: repo.url, priceSats: 50 });
  await liar.result();
  renameSync(repo.dir, `${repo.dir}.away`);
  let away = true;
  t.teardown(() => {
    if (away) renameSync(`${repo.dir}.away`, repo.dir);
  });
  await liar.dispute();

  const stuck = await until('the arbiter gives up on this replay for now, twice, past the window', () => {
    const c = arb.arbiter.store.get(liar.request.id);
    return c?.state === 'unavailable' && c.unavailable!.attempts >= 2 && Date.now() > c.windowEndsAt ? c : undefined;
  });
  t.equal(stuck.unavailable?.reason, 'repository');
  t.match(stuck.unavailable?.message, /cannot check out/);
  t.ok(stuck.response, 'the provider answered meanwhile (evidence is still gathered)');
  t.equal(stuck.decision, undefined, 'no decision');
  const [verdict] = await arb.arbiter.pool.query([{ kinds: [39301], '#d': [liar.request.id] }], { timeoutMs: 5000 });
  t.equal(verdict, undefined, 'no verdict on the relay: no guess');

  const json = await bazaar(['arbiter', 'cases', '--data', arb.dataDir, '--json']);
  t.equal(json.code, 0, json.stderr);
  const listed = (JSON.parse(json.stdout) as { cases: { id: string; state: string; unavailable?: { reason: string } }[] }).cases.find((c) => c.id === liar.request.id);
  t.match(listed, { state: 'unavailable', unavailable: { reason: 'repository' } }, '`cases --json` shows why');
  const text = await bazaar(['arbiter', 'cases', '--data', arb.dataDir, '--state', 'undecided']);
  t.match(text.stdout, /unavailable\s+cannot replay \(repository\)/, '`cases` says it cannot replay, and why');

  renameSync(`${repo.dir}.away`, repo.dir);
  away = false;
  const done = await until('decided once the repository is back', () => {
    const c = arb.arbiter.store.get(liar.request.id);
    return c?.state === 'published' ? c : undefined;
  });
  t.equal(done.decision?.ruling, 'provider', 'the replay ran and passed');
  const decided = await bazaar(['arbiter', 'cases', '--data', arb.dataDir, '--json', '--state', 'published']);
  t.match(JSON.parse(decided.stdout), { cases: [{ id: liar.request.id, state: 'published', ruling: 'provider', release: 'provider' }] }, '`cases` lists the decided case with its ruling');
  const status = await bazaar(['arbiter', 'status', '--data', arb.dataDir, '--json']);
  t.match(JSON.parse(status.stdout), { running: true, cases: { published: 1, unavailable: 0 } });
});

t.test('sandbox unavailable: no verdict, a clear status', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  // bubblewrap missing on the arbiter's machine: the real runner, pointed at a binary that is not there.
  const arb = await runArbiter(t, m, { responseWindowSecs: 2, runner: new BwrapRunner({ log: logger, bwrapPath: '/nonexistent/bwrap' }) });
  const prov = await runProvider(t, m, 'prov', escrowProvider(m, arb.arbiter.paymentPubkey));
  const liar = await lyingBuyer(t, m, { provider: prov.identity.pubkey, arbiter: arb.arbiter.pubkey, repo: repo.url, priceSats: 50 });
  await liar.dispute();

  const stuck = await until('the replay cannot run, past the window', () => {
    const c = arb.arbiter.store.get(liar.request.id);
    return c?.state === 'unavailable' && c.unavailable!.attempts >= 2 && Date.now() > c.windowEndsAt ? c : undefined;
  });
  t.equal(stuck.unavailable?.reason, 'sandbox');
  t.match(stuck.unavailable?.message, /the sandbox is unavailable/);
  t.equal(stuck.decision, undefined, 'no decision');
  const [verdict] = await arb.arbiter.pool.query([{ kinds: [39301], '#d': [liar.request.id] }], { timeoutMs: 5000 });
  t.equal(verdict, undefined, 'no verdict on the relay: no guess');
  const text = await bazaar(['arbiter', 'cases', '--data', arb.dataDir]);
  t.match(text.stdout, /unavailable\s+cannot replay \(sandbox\): the sandbox is unavailable/, '`cases` says it cannot replay, and why');
});
