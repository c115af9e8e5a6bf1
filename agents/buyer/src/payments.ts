// How the buyer pays, over the agent's wallet (agents-common): a bolt11 through NWC
// (`lightning`) or by melting ecash at its mint (`cashu`), and escrow locks and releases on
// the Cashu rail. Errors are sorted into "definitely not paid" (the wallet or mint refused, or
// a limit stopped it before anything left the process) and "outcome unknown" (a timeout):
// only the first may end a payment as failed; the second is resumed, never repeated blindly.
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { LightningWalletError } from '@bazaar/agents-common/wallet/lightning';
import { CashuWalletError, type CashuWallet } from '@bazaar/agents-common/wallet/cashu';
import type { PayChoice } from './selection.ts';

export interface InvoicePayment {
  readonly preimage: string | null;
  readonly amountMsat: number;
  readonly feesPaidMsat: number;
}

export interface Payer {
  /** Methods this buyer can pay with (configured rails). */
  readonly canPay: readonly PayChoice[];
  payInvoice(bolt11: string, o: { via: 'lightning' | 'cashu'; maxAmountMsat: number; jobId: string; signal?: AbortSignal; timeoutMs?: number }): Promise<InvoicePayment>;
  /** The Cashu rail (escrow); throws when no mint is configured. */
  cashu(): CashuWallet;
}

export class PaymentRefused extends Error {
  override name = 'PaymentRefused';
  /** `budget`: over what the buyer allowed (its budget, a spending limit); `wallet`: the wallet or mint said no. */
  readonly reason: 'budget' | 'wallet';
  constructor(reason: 'budget' | 'wallet', message: string) {
    super(message);
    this.reason = reason;
  }
}

/** True when the error proves nothing was paid (so the decision may end as failed). */
export function classifyPaymentError(err: unknown): PaymentRefused | undefined {
  const e = err as { name?: string; code?: unknown; message?: string };
  if (e?.name === 'SpendingLimitError' || e?.code === 'OVER_LIMIT') return new PaymentRefused('budget', e.message ?? 'over a spending limit');
  if (err instanceof LightningWalletError) {
    if (err.code === 'OVER_BUDGET') return new PaymentRefused('budget', err.message);
    if (err.code === 'INVALID_INVOICE' || err.code === 'EXPIRED') return new PaymentRefused('wallet', err.message);
    // Not enough money (or quota) in the wallet: refused for the budget, like a spending limit.
    if (err.code === 'WALLET_ERROR') return new PaymentRefused(err.nip47Code === 'QUOTA_EXCEEDED' || err.nip47Code === 'INSUFFICIENT_BALANCE' ? 'budget' : 'wallet', err.message);
    return undefined; // TIMEOUT, ABORTED, BAD_PREIMAGE: the payment may have happened
  }
  if (err instanceof CashuWalletError && err.reason === 'OVER_LIMIT') return new PaymentRefused('budget', err.message);
  // The purse holds too little: nothing reached the mint. Ecash comes from `bazaar buyer wallet --topup`.
  if (err instanceof CashuWalletError && err.reason === 'INSUFFICIENT_FUNDS') return new PaymentRefused('budget', `${err.message} (top up: bazaar buyer wallet --topup SATS)`);
  // A mint answer with a NUT error code refused the melt; anything else (network) is unknown.
  if (err instanceof CashuWalletError && typeof err.code === 'number') return new PaymentRefused('wallet', err.message);
  if (err instanceof CashuWalletError && /over the budget|exceeds the budget/.test(err.message)) return new PaymentRefused('budget', err.message);
  return undefined;
}

/** The Payer over agents-common's Wallet. */
export function walletPayer(wallet: Wallet): Payer {
  const canPay: PayChoice[] = [];
  if (wallet.hasLightning) canPay.push('lightning');
  if (wallet.hasCashu) canPay.push('cashu', 'escrow');
  return {
    canPay,
    async payInvoice(bolt11, o) {
      // The wallet checks its spending limits (per payment, per job, per hour/day) before any call.
      const p = await wallet.pay(bolt11, { via: o.via, jobId: o.jobId, maxAmountMsat: o.maxAmountMsat, ...(o.signal ? { signal: o.signal } : {}), ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
      return { preimage: p.preimage, amountMsat: p.amountMsat, feesPaidMsat: p.feesPaidMsat };
    },
    cashu: () => wallet.cashu,
  };
}
