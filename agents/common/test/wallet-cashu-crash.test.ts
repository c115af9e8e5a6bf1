// The couch pattern under real crashes: a child process runs a wallet action and is
// SIGKILLed between durable steps; reopening the wallet reconciles with the mint and no
// sat is lost (the mint's outstanding ecash equals what the wallets hold).
import t from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { fileURLToPath } from 'node:url';
import { startCashuFixture } from './helpers/cashu-fixture.ts';

const CHILD = fileURLToPath(new URL('./fixtures/cashu-crash-child.ts', import.meta.url));

function runChild(args: Record<string, unknown>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

const cases = [
  { action: 'send', crashAt: 'swap:persisted', executed: false },
  { action: 'send', crashAt: 'swap:answered', executed: true },
  { action: 'receive', crashAt: 'swap:persisted', executed: false },
  { action: 'receive', crashAt: 'swap:answered', executed: true },
  { action: 'melt', crashAt: 'melt:persisted', executed: false },
  { action: 'melt', crashAt: 'melt:answered', executed: true },
  { action: 'mint', crashAt: 'mint:answered', executed: true },
] as const;

for (const c of cases) {
  t.test(`${c.action} killed at ${c.crashAt}`, async (t) => {
    const f = await startCashuFixture(t);
    const dir = f.tempDir();
    const w0 = await f.openWallet(dir);
    await f.fund(w0, 256);
    await w0.close();
    const sender = await f.openWallet();
    let token: string | undefined;
    if (c.action === 'receive') {
      await f.fund(sender, 64);
      token = (await sender.send(40)).token;
    }
    const invoice = c.action === 'melt' ? (await f.fake.createInvoice({ amountMsat: 30_000, description: 'crash', expirySecs: 600 })).bolt11 : undefined;
    const res = await runChild({ mintUrl: f.mint.url, dataDir: dir, action: c.action, crashAt: c.crashAt, token, invoice });
    t.equal(res.signal, 'SIGKILL', `child died at ${c.crashAt}${res.stderr ? `: ${res.stderr.slice(0, 300)}` : ''}`);
    const w = await f.openWallet(dir); // open() reconciles
    t.equal(w.totals().reserved, 0, 'no proof left reserved after reconcile');
    const l = f.mint.mint.store.ledger();
    if (c.action === 'send') {
      t.equal(w.totals().sent > 0, c.executed, c.executed ? 'the executed send is recovered as sent proofs' : 'nothing was sent');
      t.equal(w.totals().ready + w.totals().sent, 256 - (c.executed ? l.feesCollected : 0), 'all value accounted for');
    } else if (c.action === 'receive') {
      t.equal(w.balance(), 256 + 40, c.executed ? 'the received token is in the purse (outputs restored)' : 'the interrupted receive completed on reopen');
      t.match(await w.receive(token!).catch((e: Error) => e), { code: 11001 }, 'and the token cannot be received twice');
      await sender.confirmSent();
    } else if (c.action === 'melt') {
      t.equal(l.lnOut > 0, c.executed, c.executed ? 'invoice paid' : 'invoice not paid');
      if (c.executed) t.ok(w.balance() > 256 - 30 - 5, 'change recovered');
      else t.equal(w.balance(), 256);
    } else {
      t.equal(w.balance(), 256 + 64, 'minted proofs recovered through restore');
    }
    f.assertConserved(t, [w, sender]);
  });
}
