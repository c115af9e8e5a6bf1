// What the Cashu mint needs from Lightning. The dev Lightning network implements it
// (an account of its own for the mint); `--fake-wallet` mode implements it with
// nutshell-FakeWallet behaviour. A real deployment would adapt a real node/NWC.

export interface LightningInvoice {
  /** BOLT11 payment request. */
  readonly bolt11: string;
  /** hex sha256 of the preimage. */
  readonly paymentHash: string;
  readonly amountMsat: number;
  /** Unix seconds. */
  readonly expiresAt: number;
}

export type InvoiceState = 'unpaid' | 'paid' | 'expired';

export interface PaymentResult {
  /** hex preimage: proof of payment. */
  readonly preimage: string;
  /** Routing fee actually paid, msat (0 on the dev network). */
  readonly feeMsat: number;
}

export interface LightningBackend {
  /**
   * Pays invoices whatever their expiry (nutshell's FakeWallet: client suites melt fixed,
   * long-expired invoices). A real node refuses expired invoices, and so does the mint
   * when this is not set.
   */
  readonly paysExpiredInvoices?: boolean;
  createInvoice(req: { amountMsat: number; description: string; expirySecs: number }): Promise<LightningInvoice>;
  invoiceState(paymentHash: string): Promise<InvoiceState>;
  /** Calls `onPaid` once when the invoice is settled; returns an unsubscribe function. */
  onInvoicePaid(paymentHash: string, onPaid: () => void): () => void;
  /** Decodes a bolt11 (amount, hash, expiry; amount 0 = amountless); throws a clear Error on a malformed or tampered invoice. */
  decode(bolt11: string): { amountMsat: number; paymentHash: string; expiresAt: number; payee?: string };
  /** Fee reserve (msat) the mint should ask for when melting to this invoice. */
  feeReserveMsat(amountMsat: number): number;
  /** Pays; rejects with a clear Error (already paid, expired, unknown, insufficient funds, self-payment…). */
  pay(bolt11: string, opts: { maxFeeMsat: number; signal?: AbortSignal }): Promise<PaymentResult>;
}
