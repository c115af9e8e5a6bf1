// The acceptance path on real parts: relay + devnet (dev Lightning, NWC wallet service) +
// provider, and a raw nostr-tools/ws customer. A 5930 job is posted; the customer sees
// `processing`, then a result whose amount tag carries a real bolt11; it pays through its
// own NWC wallet; the provider books the earning; `bazaar provider earnings --json` shows it.
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import t from 'tap';
import { parseSandboxRunRequest, parseSandboxRunResult, verifySandboxRun } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { parseAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { parseHeartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { Customer, isFeedback, isResult, runProvider, sandboxJob, startMarket, waitFor } from './helpers.ts';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(...dieWithParent(process.execPath, ['--import=tsx', 'scripts/bazaar.mjs', ...args]), { cwd: new URL('../../..', import.meta.url).pathname, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

t.test('SandboxRun end to end: request → processing → verified result → bolt11 paid over NWC → earnings', async (t) => {
  const m = await startMarket(t);
  const running = await runProvider(t, m);
  const providerPk = running.identity.pubkey;
  const customer = await new Customer(m.relay.url).ready();
  t.teardown(() => customer.close());

  const req = sandboxJob(customer, ['echo hello from the sandbox', 'printf "%s" "$(id -u)" > uid.txt && cat uid.txt'], [['p', providerPk]]);
  const [ok, msg] = await customer.publish(req);
  t.ok(ok, `relay accepted the request ${msg}`);

  const processing = await customer.waitEvent(isFeedback(req.id, 'processing'), 20_000, 'processing feedback');
  t.equal(processing.pubkey, providerPk, 'processing comes from the provider');
  const result = await customer.waitEvent(isResult(req.id), 30_000, 'result');
  t.equal(result.kind, 6930);
  t.ok(result.created_at >= processing.created_at, 'result after processing');
  const parsedReq = parseSandboxRunRequest(req);
  const parsed = parseSandboxRunResult(result);
  t.ok(parsedReq.ok && parsed.ok, 'request and result parse with dvm-kinds');
  if (!parsedReq.ok || !parsed.ok) return;
  const verdict = verifySandboxRun(parsedReq.value, parsed.value);
  t.ok(verdict.ok, `result verifies: ${JSON.stringify(verdict)}`);
  t.equal(parsed.value.output.commands[0].stdout, 'hello from the sandbox\n');
  t.equal(parsed.value.output.commands[1].stdout, '65534', 'ran as the unprivileged sandbox user, in one shared workspace');
  t.equal(parsed.value.output.totals.exit_code, 0);
  t.match(result.tags.find((x) => x[0] === 'trajectory_sha256')?.[1], /^[0-9a-f]{64}$/, 'trajectory hash in the result');
  const amount = parsed.value.envelope.amount;
  t.ok(amount?.bolt11, 'pay-after-verify: the result carries a bolt11');
  t.equal(amount!.msats, 1000 + 100 * Math.max(1, Math.ceil(parsed.value.output.totals.wall_ms / 1000)), 'priced per the price book: base + per second');

  // Announcement and heartbeat were published on start.
  const ann = await customer.publish(customer.sign({ kind: 1, tags: [] }));
  t.ok(ann[0]);

  // The customer pays from its own NWC wallet (no Bazaar code on its side).
  const { NWCClient } = await loadNwcSdk();
  const wallet = new NWCClient({ nostrWalletConnectUrl: m.customerUri });
  t.teardown(() => wallet.close());
  const before = m.devnet.network.balance('provider');
  const paid = await wallet.payInvoice({ invoice: amount!.bolt11! });
  t.match(paid.preimage, /^[0-9a-f]{64}$/, 'payment preimage as proof');
  const settled = await waitFor(() => {
    const j = running.provider.store.get(req.id);
    return j?.state === 'settled' ? j : undefined;
  }, 15_000, 'job settled');
  t.equal(settled.priceMsats, amount!.msats);
  t.equal(m.devnet.network.balance('provider') - before, amount!.msats, 'the provider wallet received the price');
  t.equal(customer.resultsFor(req.id).length, 1, 'exactly one result');
  const partial = customer.feedbackFor(req.id, 'partial');
  t.equal(partial.length, 1, 'partial feedback between the two commands');
  t.same(partial[0]?.tags.find((x) => x[0] === 'progress'), ['progress', '0.5'], 'with progress');
  const traj = await cli(['provider', 'trajectory', req.id, '--data', m.providerDir]);
  t.equal(traj.code, 0, traj.stderr);
  t.match(traj.stderr, /matches the result/, 'the kept trajectory hashes to the sha256 in the result');
  const steps = traj.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: string; command?: string; exit?: number });
  t.same(steps.filter((s) => s.step === 'command').map((s) => [s.command, s.exit]), [[parsedReq.value.params.cmd[0], 0], [parsedReq.value.params.cmd[1], 0]], 'one step per command with its exit');
  t.ok(customer.feedbackFor(req.id, 'success').length >= 1, 'success feedback');

  const earnings = await cli(['provider', 'earnings', '--json', '--data', m.providerDir]);
  t.equal(earnings.code, 0, earnings.stderr);
  const e = JSON.parse(earnings.stdout) as { totalMsats: number; count: number; byKind: Record<string, number>; bySource: Record<string, number>; recent: { jobId: string; msats: number }[] };
  t.equal(e.totalMsats, amount!.msats, 'earnings --json shows the payment');
  t.equal(e.count, 1);
  t.equal(e.byKind['5930'], amount!.msats);
  t.equal(e.bySource.lightning, amount!.msats);
  t.equal(e.recent[0].jobId, req.id);

  const status = await cli(['provider', 'status', '--json', '--data', m.providerDir]);
  t.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { running: boolean; relaysConnected: number; jobs: { settled: number }; earnings: { totalMsats: number }; backends: Record<string, string>; wallet: boolean };
  t.same(s.backends, { 5930: 'sandbox (bwrap)' }, 'status lists the backends');
  t.equal(s.wallet, true);
  t.equal(s.running, true, 'status sees the running provider');
  t.equal(s.relaysConnected, 1);
  t.equal(s.jobs.settled, 1);
  t.equal(s.earnings.totalMsats, amount!.msats);
});

t.test('announcement, heartbeat and ping/pong', async (t) => {
  const m = await startMarket(t);
  const running = await runProvider(t, m);
  const pk = running.identity.pubkey;
  const c = new Customer(m.relay.url);
  await c.ready();
  t.teardown(() => c.close());
  c.ws.send(JSON.stringify(['REQ', 'market', { kinds: [31990, 11998], authors: [pk] }, { kinds: [7000], authors: [pk], '#k': ['7007'] }]));
  const ann = await c.waitEvent((e) => e.kind === 31990, 10_000, 'announcement');
  const a = parseAnnouncement(ann);
  t.ok(a.ok, 'announcement parses');
  if (a.ok) {
    t.same(a.value.kinds, [5930]);
    t.equal(a.value.capacity, running.provider.config.capacity);
    t.equal(a.value.isolation, 'bwrap');
    t.equal(a.value.prices[5930].baseMsats, 1000);
    t.ok(a.value.paramSchemas['5930'], 'param schema announced');
    t.same(ann.tags.find((x) => x[0] === 'terms'), ['terms', '5930', 'after-verify'], 'payment terms announced');
    t.equal(a.value.lightningNode, m.devnet.network.requireAccount('provider').nodePubkey, 'the node its invoices come from (NWC get_info), so buyers can check the payee');
  }
  const hb = await c.waitEvent((e) => e.kind === 11998, 10_000, 'heartbeat');
  const h = parseHeartbeat(hb);
  t.ok(h.ok && h.value.expiration > hb.created_at, 'heartbeat with a NIP-40 expiration');
  const ping = c.sign({ kind: 7007, tags: [['p', pk], ['expiration', String(Math.floor(Date.now() / 1000) + 60)]] });
  await c.publish(ping);
  const pong: NostrEvent = await c.waitEvent((e) => e.kind === 7000 && e.tags.some((x) => x[0] === 'e' && x[1] === ping.id), 10_000, 'pong');
  t.same(pong.tags.find((x) => x[0] === 'status'), ['status', 'success', 'pong']);
  // A config change re-announces.
  await running.provider.reconfigure({ ...running.provider.config, capacity: 7 });
  const again = await c.waitEvent((e) => e.kind === 31990 && e.tags.some((x) => x[0] === 'capacity' && x[1] === '7'), 10_000, 'new announcement');
  t.ok(again.created_at >= ann.created_at, 'the announcement is replaced with the new capacity');
});
