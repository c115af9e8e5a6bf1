// The mint killed (SIGKILL, in a child process) in the middle of a melt, then restarted on
// the same data: a melt killed before paying releases its inputs; one killed after paying
// is settled as PAID with its change. Nobody is paid twice, no proof is spent twice, and the
// mint's Lightning account still backs exactly the ecash it owes.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet, sumProofs } from '@cashu/cashu-ts';
import { accountLightningBackend } from '../src/lightning/account-backend.ts';
import { startMint } from '../src/mint/server.ts';
import { quietLogger } from './helpers/mint-fixture.ts';
import { openTestNetwork } from './helpers/network.ts';

const CHILD = fileURLToPath(new URL('./fixtures/mint-crash-child.ts', import.meta.url));

function startChild(args: Record<string, unknown>): Promise<{ child: ChildProcess; url: string; exited: Promise<NodeJS.Signals | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mint child did not start: ${err.slice(0, 500)}`));
    }, 60_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(/^(http:\/\/\S+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], exited });
      }
    });
    child.on('error', reject);
  });
}

for (const crashAt of ['melt:reserved', 'melt:paid'] as const) {
  t.test(`mint killed at ${crashAt}`, async (t) => {
    const lnDir = mkdtempSync(join(tmpdir(), 'bazaar-ln-'));
    const mintDir = mkdtempSync(join(tmpdir(), 'bazaar-mint-'));
    t.teardown(() => {
      for (const d of [lnDir, mintDir]) rmSync(d, { recursive: true, force: true });
    });
    const net = openTestNetwork(t, { path: lnDir });
    t.teardown(() => rmSync(lnDir, { recursive: true, force: true }));
    net.createAccount('mint');
    net.createAccount('alice');
    net.createAccount('bob');
    net.fund('alice', 100_000);
    const { child, url, exited } = await startChild({ mintDir, lnDir, crashAt });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const w = new Wallet(url, { unit: 'sat' });
    await w.loadMint();
    const q = await w.createMintQuoteBolt11(64);
    net.pay('alice', q.request);
    const proofs = await w.mintProofsBolt11(64, q.quote); // the mint checks the invoice state on demand
    const inv = net.createInvoice('bob', 20_000, 'crash me', 600);
    const mq = await w.createMeltQuoteBolt11(inv.bolt11);
    const melt = await w.meltProofsBolt11(mq, proofs).catch((e: Error) => e);
    t.type(melt, Error, 'the client sees the connection drop');
    t.equal(await exited, 'SIGKILL', `mint died at ${crashAt}`);
    t.equal(net.balance('bob'), crashAt === 'melt:paid' ? 20_000 : 0, crashAt === 'melt:paid' ? 'bob was paid before the crash' : 'bob was not paid');

    // Restart on the same data, with the same URL for the wallet.
    const mint = await startMint({ port: Number(new URL(url).port), dataDir: mintDir, lightning: accountLightningBackend(net, 'mint'), inputFeePpk: 0, logger: quietLogger });
    t.teardown(() => mint.close());
    const w2 = new Wallet(url, { unit: 'sat' });
    await w2.loadMint();
    const states = await w2.checkProofsStates(proofs);
    const quote = await w2.checkMeltQuoteBolt11(mq.quote);
    if (crashAt === 'melt:reserved') {
      t.ok(states.every((s) => s.state === 'UNSPENT'), 'inputs released');
      t.equal(quote.state, 'UNPAID');
      const res = await w2.meltProofsBolt11(quote, proofs);
      t.equal(res.quote.state, 'PAID', 'the melt can be retried');
      t.equal(net.balance('bob'), 20_000, 'bob paid exactly once');
    } else {
      t.ok(states.every((s) => s.state === 'SPENT'), 'inputs spent');
      t.equal(quote.state, 'PAID', 'the paid melt is settled');
      t.equal(net.balance('bob'), 20_000, 'bob paid exactly once');
      const again = await w2.meltProofsBolt11(quote, proofs).catch((e: Error) => e);
      t.type(again, Error, 'no second payment');
    }
    const l = mint.mint.store.ledger();
    t.equal(net.balance('mint') / 1000, l.lnIn - l.lnOut, "the mint's account balance equals Lightning in - out");
    t.equal(l.lnIn - l.lnOut, l.signed - l.spent + l.feesCollected, 'outstanding ecash + fees are backed');
  });
}
