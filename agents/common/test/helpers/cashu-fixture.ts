// Test helper: a real devnet Cashu mint (HTTP on 127.0.0.1, ephemeral port, FakeWallet
// Lightning side, injectable clock) plus CashuWallets in temp dirs, with the
// conservation check: the mint's outstanding ecash equals what the wallets hold.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import { FakeWallet } from '@bazaar/devnet/mint/fake-wallet';
import { startMint, type RunningMint } from '@bazaar/devnet/mint/server';
import { CashuWallet, type CashuWalletOptions } from '../../src/wallet/cashu.ts';

export const quiet: Logger = pino({ level: process.env.BAZAAR_TEST_LOG ?? 'silent' });

export interface CashuFixture {
  readonly mint: RunningMint;
  readonly fake: FakeWallet;
  readonly clock: { now: number };
  tempDir(): string;
  openWallet(dir?: string, opts?: Partial<CashuWalletOptions>): Promise<CashuWallet>;
  fund(w: CashuWallet, amount: number): Promise<void>;
  /** Mint outstanding ecash == value the given wallets hold (ready + sent), nothing reserved. */
  assertConserved(t: Test, wallets: readonly CashuWallet[]): void;
}

export async function startCashuFixture(t: Test, opts: { inputFeePpk?: number } = {}): Promise<CashuFixture> {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'bazaar-cashu-'));
    dirs.push(d);
    return d;
  };
  const clock = { now: Math.floor(Date.now() / 1000) };
  const fake = new FakeWallet({ paidAfterMs: 20 });
  const mint = await startMint({ port: 0, dataDir: tempDir(), lightning: fake, inputFeePpk: opts.inputFeePpk ?? 100, logger: quiet, now: () => clock.now });
  const wallets: CashuWallet[] = [];
  t.teardown(async () => {
    for (const w of wallets) await w.close().catch(() => {});
    await mint.close();
    fake.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    mint,
    fake,
    clock,
    tempDir,
    async openWallet(dir, wopts = {}) {
      const w = await CashuWallet.open({ mintUrl: mint.url, dataDir: dir ?? tempDir(), logger: quiet, now: () => clock.now, ...wopts });
      wallets.push(w);
      return w;
    },
    async fund(w, amount) {
      const { quote } = await w.requestMint(amount);
      await w.completeMint(quote, { timeoutMs: 5000 });
    },
    assertConserved(tt, ws) {
      const l = mint.mint.store.ledger();
      const owed = [...mint.mint.store.mintQuotes.getRange()].filter((e) => e.value.state === 'PAID').reduce((s, e) => s + e.value.amount, 0);
      tt.equal(l.lnIn - l.lnOut, l.signed - l.spent + l.feesCollected + owed, 'mint: Lightning in - out == outstanding + fees + paid unissued quotes');
      const held = ws.reduce((s, w) => s + w.totals().ready + w.totals().sent, 0);
      tt.equal(held, l.signed - l.spent, 'wallets hold exactly the outstanding ecash');
      tt.equal(ws.reduce((s, w) => s + w.totals().reserved, 0), 0, 'nothing left reserved');
    },
  };
}
