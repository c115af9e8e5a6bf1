// Asks trusted mints whether the proofs of Cashu receipts are spent (NUT-07 `POST /v1/checkstate`).
// An escrowed job's proofs are spent once the provider redeemed the co-signed release, so a
// receipt counts as paid only from then on. Answers are observations the index stores; a
// receipt still unspent is asked again on the next round.
import type { Logger } from 'pino';
import type { MarketIndex } from './market-index.ts';

export interface CashuCheckerOptions {
  readonly index: MarketIndex;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly logger?: Logger;
  readonly fetch?: typeof fetch;
}

/** NUT-07 over HTTP: the state of each Y (`UNSPENT | PENDING | SPENT`). */
export async function checkProofStates(mint: string, ys: readonly string[], o: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<string[]> {
  const res = await (o.fetch ?? fetch)(`${mint}/v1/checkstate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ Ys: ys }),
    signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
  });
  if (!res.ok) throw new Error(`mint answered HTTP ${res.status}`);
  const body = (await res.json()) as { states?: { Y?: string; state?: string }[] };
  const byY = new Map((body.states ?? []).map((s) => [s.Y, s.state]));
  return ys.map((y) => byY.get(y) ?? 'UNKNOWN');
}

export class CashuChecker {
  readonly #o: CashuCheckerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(o: CashuCheckerOptions) {
    this.#o = o;
  }

  start(): void {
    const tick = () => {
      void this.check().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, this.#o.intervalMs ?? 30_000).unref();
      });
    };
    tick();
  }

  /** One round over every pending receipt. */
  check(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = (async () => {
      // Yield first: the body may otherwise finish (nothing pending) before #running is assigned,
      // and its `finally` would then clear nothing while a settled promise stays in #running.
      await Promise.resolve();
      try {
        const pending = this.#o.index.state.pendingCashuReceipts();
        for (const r of pending) {
          if (this.#closed) return;
          const at = Math.floor(Date.now() / 1000);
          try {
            const states = await checkProofStates(r.mint, r.ys, this.#o);
            await this.#o.index.setCashuCheck(r.id, { state: states.every((s) => s === 'SPENT') ? 'spent' : 'unspent', at });
          } catch (err) {
            this.#o.logger?.warn({ err, mint: r.mint, receipt: r.id }, 'mint check failed');
            await this.#o.index.setCashuCheck(r.id, { state: 'error', at });
          }
        }
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
