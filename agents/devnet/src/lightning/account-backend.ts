// The LightningBackend contract (what the Cashu mint needs) over one account of the dev
// Lightning network: the mint's invoices are issued by that account's node key and its
// melts are paid from that account's balance.
import type { InvoiceState, LightningBackend, LightningInvoice, PaymentResult } from '../lightning-backend.ts';
import { decodeInvoice } from './bolt11-codec.ts';
import { LightningError } from './errors.ts';
import type { LightningNetwork } from './network.ts';

export interface AccountBackendOptions {
  /** Fee reserve asked of melts: base + ppm of the amount. The dev network routes for free, so both default to 0. */
  readonly feeReserveBaseMsat?: number;
  readonly feeReservePpm?: number;
}

export function accountLightningBackend(network: LightningNetwork, account: string, opts: AccountBackendOptions = {}): LightningBackend {
  network.requireAccount(account);
  const base = opts.feeReserveBaseMsat ?? 0;
  const ppm = opts.feeReservePpm ?? 0;
  return {
    async createInvoice(req): Promise<LightningInvoice> {
      const inv = network.createInvoice(account, req.amountMsat, req.description, req.expirySecs);
      return { bolt11: inv.bolt11, paymentHash: inv.paymentHash, amountMsat: inv.amountMsat, expiresAt: inv.expiresAt };
    },
    // For the account's own invoices: their state. For invoices of other accounts it is the
    // state of *this account's payment* of them — settlement is atomic, so after a crash in
    // the middle of a melt this tells the mint exactly whether its payment happened.
    async invoiceState(paymentHash): Promise<InvoiceState> {
      const inv = network.lookupInvoice(paymentHash);
      if (!inv) throw new LightningError('UNKNOWN_INVOICE', `no invoice ${paymentHash} on the dev network`);
      if (inv.account === account) return inv.state;
      if (network.lookupPayment(account, paymentHash)) return 'paid';
      return inv.state === 'expired' ? 'expired' : 'unpaid';
    },
    onInvoicePaid(paymentHash, onPaid) {
      return network.watchInvoice(paymentHash, onPaid);
    },
    decode(bolt11) {
      const d = decodeInvoice(bolt11);
      // 0 = amountless: the mint answers that with its own NUT error (11011).
      return { amountMsat: d.amountMsat ?? 0, paymentHash: d.paymentHash, expiresAt: d.expiresAt, payee: d.payee };
    },
    feeReserveMsat(amountMsat) {
      return base + Math.ceil((amountMsat * ppm) / 1_000_000);
    },
    async pay(bolt11, payOpts): Promise<PaymentResult> {
      const p = network.pay(account, bolt11, { maxFeeMsat: payOpts.maxFeeMsat, ...(payOpts.signal ? { signal: payOpts.signal } : {}) });
      return { preimage: p.preimage, feeMsat: p.feeMsat };
    },
  };
}
