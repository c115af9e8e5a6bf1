// Interop on real connections:
//  - a provider built with NDK's DVM classes (NDKDVMRequest / NDKDVMJobFeedback /
//    NDKDVMJobResult, an NDKAppHandlerEvent as its NIP-89 handler): plain NIP-90, no
//    heartbeat, `payment_required` with a bolt11 first — discovered from its 31990 and served;
//  - the buyer's jobs are readable by NDK (its request as an NDKDVMRequest, its receipt);
//  - the buyer works against a relay that requires NIP-42 AUTH.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { fileURLToPath } from 'node:url';
import { balance, makeBuyer, runProvider, startMarket } from './helpers.ts';
import type { ProgressEvent } from '../src/market-client.ts';

const CHILD = fileURLToPath(new URL('./fixtures/ndk-dvm.ts', import.meta.url));

/** Runs the NDK program; resolves with its first stdout line (the child keeps running in `serve` mode). */
function ndkChild(t: Test, args: Record<string, unknown>): Promise<string> {
  const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)]), { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on('exit', (code) => reject(new Error(`NDK program exited (${code}) before answering: ${err.slice(0, 500)}`)));
  });
}

t.test('a provider built with NDK (plain NIP-90, payment-required first) serves the buyer; NDK reads the buyer\'s job', async (t) => {
  const m = await startMarket(t, { mint: false });
  const nwc = m.devnet.account('ndk-prov');
  await m.devnet.nwc.refresh();
  const pubkey = (await ndkChild(t, { mode: 'serve', relay: m.relay.url, nwcUri: nwc.uri, priceMsats: 3000 })).replace(/^ready /, '');
  const p = { pubkey };
  const buyer = await makeBuyer(t, m);
  const { views } = await buyer.client.providers({ kind: 5050 });
  t.match(views.find((v) => v.pubkey === p.pubkey), { plain: true, liveness: 'unknown' }, 'discovered from its NIP-89 handler, liveness unknown (no heartbeat)');
  const events: ProgressEvent[] = [];
  const report = await buyer.client.run({ type: 'text', prompt: 'hello, market' }, { budgetMsats: 10_000, timeoutSecs: 30, onProgress: (e) => events.push(e) });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(report.provider, p.pubkey);
  t.equal(report.payment?.when, 'prepay', 'paid up front, as asked');
  t.equal(report.result?.content, 'echo: hello, market');
  t.ok(events.some((e) => e.type === 'feedback' && e.status === 'payment-required'), 'NDK\'s payment_required was understood');
  t.equal(balance(m, 'ndk-prov'), 3);

  // The buyer's request and receipt, read back by NDK.
  const read = JSON.parse(await ndkChild(t, { mode: 'read', relay: m.relay.url, jobId: report.jobId })) as { kind: number; bid: number; inputs: string[][]; p: string; expiration: string; receiptP: string | null };
  t.equal(read.kind, 5050, 'NDK fetches the request as an NDKDVMRequest');
  t.equal(read.bid, 10_000, 'NDK reads the bid');
  t.same(read.inputs, [['i', 'hello, market', 'text']], 'NDK reads the input');
  t.equal(read.p, p.pubkey, 'addressed to the provider');
  t.ok(Number(read.expiration) > Math.floor(Date.now() / 1000), 'with a NIP-40 expiration');
  t.equal(read.receiptP, p.pubkey, 'NDK reads the receipt naming the provider');
});

t.test('the buyer works against a relay that requires NIP-42 AUTH', async (t) => {
  const m = await startMarket(t, { mint: false, authRequired: true });
  const prov = await runProvider(t, m, 'prov-auth', { kinds: [5930] });
  const buyer = await makeBuyer(t, m);
  const report = await buyer.client.run({ type: 'sandbox', cmd: ['echo authed'], timeLimitSecs: 10 }, { budgetMsats: 10_000 });
  t.equal(report.outcome, 'paid', report.reason ?? '');
  t.equal(report.provider, prov.identity.pubkey);
  t.equal(JSON.parse(report.result!.content).commands[0].stdout, 'authed\n');
  t.ok(buyer.pool.status().every((s) => s.authedAs === buyer.identity.pubkey), 'the buyer authenticated as itself');
});
