// The buyer killed (SIGKILL of a child process) between "verified" and "paid" — after the
// payment decision is on disk but before the wallet is asked, and after the wallet paid but
// before the payment is recorded — then restarted: the job is paid exactly once.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PASSPHRASE, buyerConfig, makeBuyer, runProvider, startMarket, tempDir, waitFor } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));

function runChild(args: Record<string, unknown>): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    });
  });
}

for (const crashAt of ['decision:persisted', 'payment:answered'] as const) {
  t.test(`killed at ${crashAt}, restarted: paid exactly once`, async (t) => {
    const m = await startMarket(t, { mint: false });
    const prov = await runProvider(t, m, 'prov-a', { kinds: [5930] });
    const cfg = buyerConfig(m);
    const dataDir = tempDir('bazaar-buyer-crash-');
    const before = { buyer: m.devnet.network.balance('buyer'), provider: m.devnet.network.balance('prov-a') };
    const res = await runChild({ dataDir, relay: m.relay.url, nwcUri: cfg.nwcUri, passphrase: PASSPHRASE, crashAt });
    t.equal(res.signal, 'SIGKILL', `the child died at ${crashAt}${res.stdout || res.stderr ? `: ${(res.stdout + res.stderr).slice(0, 300)}` : ''}`);
    const paidBefore = before.buyer - m.devnet.network.balance('buyer');
    t.equal(paidBefore > 0, crashAt === 'payment:answered', crashAt === 'payment:answered' ? 'the wallet paid before the crash' : 'nothing paid before the crash');

    const buyer = await makeBuyer(t, m, { dataDir, config: buyerConfig(m, { fundSats: 0 }) });
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const [job] = [...buyer.store.jobs()];
    t.equal(job.state, 'paying', 'the decision survived the crash: payment in flight');
    const { resumed } = await buyer.client.resume();
    t.equal(resumed, 1, 'one job resumed');
    const after = buyer.store.get(job.id)!;
    t.equal(after.state, 'paid');
    t.ok(after.receiptPublished, 'the receipt went out after the restart');
    const price = job.payment!.amountMsats;
    t.equal(before.buyer - m.devnet.network.balance('buyer'), price, 'the buyer paid once');
    t.equal(m.devnet.network.balance('prov-a') - before.provider, price, 'the provider was paid once');
    t.ok(await waitFor('the provider to see the payment', () => prov.provider.store.get(job.id)?.state === 'settled'), 'the provider saw it settled');
    // Another restart finds nothing to do and pays nothing.
    t.same(await buyer.client.resume(), { resumed: 0, refundedSats: 0, arbitratedSats: 0 });
    t.equal(before.buyer - m.devnet.network.balance('buyer'), price, 'still paid once');
    t.equal([...buyer.store.runs()][0].outcome, 'paid', 'the run is concluded as paid');
  });
}
