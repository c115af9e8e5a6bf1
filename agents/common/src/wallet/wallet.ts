// The agent's wallet: the one object every agent pays and invoices through. It holds the
// payment rails the agent is configured with — Lightning over NWC (lightning.ts), Cashu
// ecash at one mint (cashu.ts, escrow.ts) — and one spending ledger (spending.ts) that both
// rails reserve against before they ask a wallet service or a mint to pay, so the limits
// (per payment, per job, per hour, per day) hold whatever rail pays and across restarts.
// Either rail is optional: an agent without a configured rail gets a clear error when it
// tries to use it.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { LightningWallet, LightningWalletError, decodeInvoice, type CreatedInvoice, type LightningWalletOptions, type Settlement } from './lightning.ts';
import { CashuWallet, type CashuWalletOptions } from './cashu.ts';
import { SpendingLedger, type SpendingLimits, type SpendingUsage } from './spending.ts';
import type { P2PKOptions } from '@cashu/cashu-ts';

export interface WalletOptions {
  readonly logger: Logger;
  /** Where the wallet keeps its state: `spending/` (the limits ledger) and, by default, `cashu/`. */
  readonly dataDir: string;
  /** Spending limits in msat; unset ones take DEFAULT_SPENDING_LIMITS. */
  readonly limits?: Partial<SpendingLimits>;
  /** Lightning through Nostr Wallet Connect. */
  readonly lightning?: Omit<LightningWalletOptions, 'logger' | 'spending'>;
  /** Cashu ecash at one mint (proofs in LMDB under `dataDir`, default DIR/cashu). */
  readonly cashu?: Omit<CashuWalletOptions, 'logger' | 'spending' | 'dataDir'> & { readonly dataDir?: string };
  /** Clock of the spending ledger (unix ms; tests). */
  readonly now?: () => number;
}

/** A payment made through the wallet: the proof is the preimage. */
export interface PaymentResult {
  readonly via: 'lightning' | 'cashu';
  readonly paymentHash: string;
  /** Hex; null only when a mint paid without telling the preimage. */
  readonly preimage: string | null;
  readonly amountMsat: number;
  readonly feesPaidMsat: number;
}

export interface PayOptions {
  /** The job this payment is for: the per-job limit counts every payment with the same id. */
  readonly jobId?: string;
  /** Refuse an invoice asking more than this (msat), before any limit or wallet is consulted. */
  readonly maxAmountMsat?: number;
  /** Rail to pay with; default Lightning when configured, else Cashu (melt). */
  readonly via?: 'lightning' | 'cashu';
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export class Wallet {
  readonly #ln: LightningWallet | undefined;
  readonly #ecash: CashuWallet | undefined;
  readonly #ledger: SpendingLedger;

  private constructor(ln: LightningWallet | undefined, ecash: CashuWallet | undefined, ledger: SpendingLedger) {
    this.#ln = ln;
    this.#ecash = ecash;
    this.#ledger = ledger;
  }

  static async open(opts: WalletOptions): Promise<Wallet> {
    const ledger = SpendingLedger.open({ path: join(opts.dataDir, 'spending'), ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.now ? { now: opts.now } : {}) });
    let ln: LightningWallet | undefined;
    let ecash: CashuWallet | undefined;
    try {
      ln = opts.lightning ? await LightningWallet.connect({ ...opts.lightning, logger: opts.logger.child({ rail: 'lightning' }), spending: ledger }) : undefined;
      ecash = opts.cashu ? await CashuWallet.open({ ...opts.cashu, dataDir: opts.cashu.dataDir ?? join(opts.dataDir, 'cashu'), logger: opts.logger.child({ rail: 'cashu' }), spending: ledger }) : undefined;
    } catch (err) {
      await ln?.close();
      await ledger.close();
      throw err;
    }
    return new Wallet(ln, ecash, ledger);
  }

  get hasLightning(): boolean {
    return this.#ln !== undefined;
  }

  /** The Lightning rail (limits apply to its `pay` too); throws if the agent has no NWC connection configured. */
  get lightning(): LightningWallet {
    if (!this.#ln) throw new Error('no Lightning wallet configured (give the agent a nostr+walletconnect:// URI)');
    return this.#ln;
  }

  get hasCashu(): boolean {
    return this.#ecash !== undefined;
  }

  /** The Cashu rail (limits apply to its `send` and `payInvoice`; see escrow.ts for escrow over it); throws if no mint is configured. */
  get cashu(): CashuWallet {
    if (!this.#ecash) throw new Error('no Cashu wallet configured (give the agent a mint URL)');
    return this.#ecash;
  }

  /** Spending so far against the limits (rolling hour and day; and the job's total when given). */
  spending(jobId?: string): SpendingUsage {
    return this.#ledger.usage(jobId);
  }

  /**
   * Pays a bolt11 invoice within the limits. Refused before any wallet or mint call when it
   * asks more than `maxAmountMsat` (OVER_BUDGET) or would break a spending limit
   * (OVER_LIMIT). Idempotent per invoice on the Lightning rail.
   */
  async pay(bolt11: string, opts: PayOptions = {}): Promise<PaymentResult> {
    const via = opts.via ?? (this.#ln ? 'lightning' : 'cashu');
    if (via === 'lightning') {
      const p = await this.lightning.pay(bolt11, opts);
      return { via, paymentHash: p.paymentHash, preimage: p.preimage, amountMsat: p.amountMsat, feesPaidMsat: p.feesPaidMsat };
    }
    const inv = decodeInvoice(bolt11);
    if (opts.maxAmountMsat !== undefined && inv.amountMsat > opts.maxAmountMsat) throw new LightningWalletError('OVER_BUDGET', `invoice asks ${inv.amountMsat} msat, more than the allowed ${opts.maxAmountMsat} msat`);
    const r = await this.cashu.payInvoice(bolt11, opts.jobId !== undefined ? { jobId: opts.jobId } : {});
    return { via, paymentHash: inv.paymentHash, preimage: r.preimage, amountMsat: r.amount * 1000, feesPaidMsat: r.feePaid * 1000 };
  }

  /** An invoice for incoming money (Lightning rail), checked to be for exactly the amount asked. */
  makeInvoice(req: { amountMsat: number; description?: string; expirySecs?: number; signal?: AbortSignal }): Promise<CreatedInvoice> {
    return this.lightning.makeInvoice(req);
  }

  /** lookup_invoice: undefined when the wallet does not know the hash. */
  lookupInvoice(paymentHash: string, opts: { signal?: AbortSignal } = {}): Promise<{ state: string; settlement?: Settlement } | undefined> {
    return this.lightning.lookup(paymentHash, opts);
  }

  waitForSettlement(paymentHash: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<Settlement> {
    return this.lightning.waitForSettlement(paymentHash, opts);
  }

  /** Every incoming Lightning payment the wallet service notifies (the fast path; lookups are the safety net). */
  onPaymentReceived(listener: (s: Settlement) => void): Promise<() => void> {
    return this.lightning.onPaymentReceived(listener);
  }

  /** Sends `amountSat` as a Cashu token (P2PK-locked with `p2pk`) within the limits. */
  sendEcash(amountSat: number, opts: { jobId?: string; p2pk?: P2PKOptions; tag?: string } = {}): Promise<{ token: string }> {
    return this.cashu.send(amountSat, opts).then(({ token }) => ({ token }));
  }

  /** Receives a Cashu token into the purse (`privkey` signs P2PK inputs locked to us). */
  receiveEcash(token: string, opts: { privkey?: string } = {}): Promise<number> {
    return this.cashu.receive(token, opts);
  }

  async close(): Promise<void> {
    await this.#ln?.close();
    await this.#ecash?.close();
    await this.#ledger.close();
  }
}
