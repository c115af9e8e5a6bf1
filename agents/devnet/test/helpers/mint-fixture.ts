// Test helper: a real Cashu mint over HTTP on 127.0.0.1 (ephemeral port) in a fresh
// temp directory, with an injectable clock, cashu-ts wallets pointed at it, and the
// conservation invariant: Lightning in - out == outstanding ecash + fees collected +
// paid-but-unissued quotes,
// and outstanding ecash == the value of the unspent proofs the test still holds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputData, Wallet, injectWebSocketImpl, sumProofs, type Proof } from '@cashu/cashu-ts';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import WebSocket from 'ws';
import type { LightningBackend } from '../../src/lightning-backend.ts';
import { FakeWallet } from '../../src/mint/fake-wallet.ts';
import { startMint, type RunningMint } from '../../src/mint/server.ts';

injectWebSocketImpl(WebSocket as unknown as Parameters<typeof injectWebSocketImpl>[0]);

export const quietLogger: Logger = pino({ level: process.env.BAZAAR_TEST_LOG ?? 'silent' });

export interface MintFixture {
  readonly url: string;
  readonly running: RunningMint;
  readonly dataDir: string;
  readonly clock: { now: number };
  readonly lightning: LightningBackend;
  wallet(opts?: { bip39seed?: Uint8Array }): Promise<Wallet>;
  /** Mints `amount` sat through a paid bolt11 quote. */
  fund(wallet: Wallet, amount: number): Promise<Proof[]>;
  /** Stops and starts the mint on the same data directory. */
  restart(): Promise<MintFixture>;
  /** Throws unless money is conserved given the proofs the test still holds. */
  assertConserved(t: Test, held: readonly Proof[]): Promise<void>;
}

export interface MintFixtureOptions {
  readonly inputFeePpk?: number;
  readonly lightning?: LightningBackend;
  /** Mint clock in unix seconds; defaults to the real clock, move it with fixture.clock.now. */
  readonly startAt?: number;
}

export async function startTestMint(t: Test, opts: MintFixtureOptions = {}): Promise<MintFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-mint-'));
  const clock = { now: opts.startAt ?? Math.floor(Date.now() / 1000) };
  const fake = opts.lightning ? undefined : new FakeWallet({ paidAfterMs: 20, now: () => clock.now });
  const lightning = opts.lightning ?? fake!;
  const wallets: Wallet[] = [];
  let current: RunningMint | undefined;
  t.teardown(async () => {
    for (const w of wallets) w.mint.disconnectWebSocket();
    await current?.close();
    fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const build = async (port = 0): Promise<MintFixture> => {
    const running = await startMint({ port, dataDir, lightning, inputFeePpk: opts.inputFeePpk ?? 100, logger: quietLogger, now: () => clock.now });
    current = running;
    const f: MintFixture = {
      url: running.url,
      running,
      dataDir,
      clock,
      lightning,
      async wallet(wopts = {}) {
        const w = new Wallet(running.url, { unit: 'sat', ...(wopts.bip39seed ? { bip39seed: wopts.bip39seed } : {}) });
        await w.loadMint();
        wallets.push(w);
        return w;
      },
      async fund(wallet, amount) {
        const q = await wallet.createMintQuoteBolt11(amount);
        await waitPaid(running, q.quote);
        return wallet.mintProofsBolt11(amount, q.quote);
      },
      async restart() {
        for (const w of wallets.splice(0)) w.mint.disconnectWebSocket();
        await running.close();
        return build(Number(new URL(running.url).port)); // same URL: tokens name the mint by URL
      },
      async assertConserved(tt, held) {
        const l = running.mint.store.ledger();
        // Paid but not yet issued mint quotes are ecash the mint owes.
        const owed = [...running.mint.store.mintQuotes.getRange()].filter((e) => e.value.state === 'PAID').reduce((s, e) => s + e.value.amount, 0);
        tt.equal(l.lnIn - l.lnOut, l.signed - l.spent + l.feesCollected + owed, 'Lightning in - out == outstanding ecash + fees + paid unissued quotes');
        const w = new Wallet(running.url, { unit: 'sat' });
        await w.loadMint();
        const states = held.length ? await w.checkProofsStates([...held]) : [];
        const unspent = held.filter((_, i) => states[i].state === 'UNSPENT');
        tt.equal(sumProofs(unspent).toNumber(), l.signed - l.spent, 'outstanding ecash == value of the unspent proofs held');
      },
    };
    return f;
  };
  return build();
}

/** Waits (on the mint's own event, no polling) until a mint quote is paid. */
export function waitPaid(running: RunningMint, quote: string, timeoutMs = 5000): Promise<void> {
  const q = running.mint.store.mintQuotes.get(quote);
  if (q && q.state !== 'UNPAID') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      running.mint.off('mintQuote', on);
      reject(new Error(`mint quote ${quote} not paid within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (r: { quote: string; state: string }): void => {
      if (r.quote === quote && r.state !== 'UNPAID') {
        clearTimeout(timer);
        running.mint.off('mintQuote', on);
        resolve();
      }
    };
    running.mint.on('mintQuote', on);
  });
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: { detail?: string; code?: number } & Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: (await res.json()) as { detail?: string; code?: number } };
}

/** A proof as it travels on the wire (amount as a number). */
export const wire = (p: Proof): Record<string, unknown> => ({ id: p.id, amount: p.amount.toNumber(), secret: p.secret, C: p.C, ...(p.witness ? { witness: p.witness } : {}) });

/** Fresh random outputs for `amount` on the mint's active keyset. */
export const outputs = (h: MintFixture, amount: number): OutputData[] => {
  const ks = h.running.mint.keysResponse().keysets[0];
  return OutputData.createRandomData(amount, { id: ks.id, keys: ks.keys });
};

/** The blinded messages of outputs, as posted. */
export const blinded = (o: OutputData[]): Record<string, unknown>[] => o.map((x) => ({ ...x.blindedMessage, amount: Number(x.blindedMessage.amount) }));

/**
 * A FakeWallet whose payments wait until `open()`, so a test can look at the mint while a
 * melt is in flight; `pending(running)` resolves when the mint marks inputs PENDING.
 */
export function gatedFakeWallet(t: Test): { fake: FakeWallet; lightning: FakeWallet; open: () => void; pending: (running: RunningMint) => Promise<void> } {
  const fake = new FakeWallet({ paidAfterMs: 20 });
  t.teardown(() => fake.close());
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const lightning = Object.assign(Object.create(fake) as FakeWallet, {
    pay: async (pr: string, o: { maxFeeMsat: number; signal?: AbortSignal }) => {
      await gate;
      return fake.pay(pr, o);
    },
  });
  const pending = (running: RunningMint): Promise<void> =>
    new Promise<void>((resolve) => {
      const on = (p: { state: string }): void => {
        if (p.state === 'PENDING') {
          running.mint.off('proofState', on);
          resolve();
        }
      };
      running.mint.on('proofState', on);
    });
  return { fake, lightning, open, pending };
}
