// Two processes race to pay the same invoice on the same LMDB files: exactly one wins,
// the other gets ALREADY_PAID, and money is conserved.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openTestNetwork, tempDir } from './helpers/network.ts';

const CHILD = fileURLToPath(new URL('./helpers/pay-child.ts', import.meta.url));

function startChild(dir: string, payer: string, bolt11: string) {
  const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, dir, payer, bolt11]), { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const nextLine = () => new Promise<string>((resolve, reject) => {
    const l = lines.shift();
    if (l !== undefined) return resolve(l);
    waiters.push(resolve);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before answering`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, nextLine, exited };
}

t.test('concurrent payments of one invoice from two processes: exactly one wins', async (t) => {
  const dir = tempDir(t);
  const net = openTestNetwork(t, { path: dir });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  net.createAccount('alice');
  net.createAccount('bob');
  net.createAccount('carol');
  net.fund('alice', 10_000);
  net.fund('bob', 10_000);
  const inv = net.createInvoice('carol', 7_000, 'race', 600);
  const a = startChild(dir, 'alice', inv.bolt11);
  const b = startChild(dir, 'bob', inv.bolt11);
  t.teardown(() => { a.child.kill(); b.child.kill(); });
  t.equal(await a.nextLine(), 'ready');
  t.equal(await b.nextLine(), 'ready');
  a.child.stdin.write('go\n');
  b.child.stdin.write('go\n');
  const results = [JSON.parse(await a.nextLine()), JSON.parse(await b.nextLine())] as { ok: boolean; code?: string }[];
  await Promise.all([a.exited, b.exited]);
  t.equal(results.filter((r) => r.ok).length, 1, 'one payment succeeded');
  t.same(results.filter((r) => !r.ok).map((r) => r.code), ['ALREADY_PAID']);
  t.equal(net.balance('carol'), 7_000);
  t.equal(net.balance('alice') + net.balance('bob'), 13_000, 'exactly one payer debited');
  t.equal(net.invoiceState(inv.paymentHash), 'paid');
  t.ok(net.checkInvariant().ok);
});
