// A LightningBackend that behaves like nutshell's FakeWallet, so that `bazaar devnet mint
// --fake-wallet` can stand in for it in client test suites (cashu-ts, CDK, nutshell's own):
// - invoices it issues are real signed BOLT11 with the *mainnet* prefix and the amount
//   (`lnbc13370n1…` for 1,337 sat), signed by nutshell's well-known FakeWallet key
//   (PBKDF2-SHA256("FAKEWALLET SECRET", "FakeWallet", 2048)), and settle by themselves after
//   `paidAfterMs`; with `brr` (nutshell's FAKEWALLET_BRR) a status check finds them paid at once;
// - paying succeeds for any well-formed invoice of any network, *expired or not* (suites
//   melt fixed invoices that expired long ago), with a fee reserve of max(2 sat, 1 %) of which
//   1 sat is spent as the routing fee (nutshell's FakeWallet reports fee 1, CDK's spends
//   amount + 1; suites check that not all of the reserve comes back); the preimage is the real one for our own invoices and 64 zeros for foreign
//   ones, as nutshell answers (nothing was paid, so no preimage exists).
// Unlike nutshell (whose payment hash is sha256 of the hex *string* of the secret it also
// puts in the invoice) our preimages are random and hash to the payment hash as in Lightning.
import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import bolt11 from 'bolt11';
import type { InvoiceState, LightningBackend, LightningInvoice, PaymentResult } from '../lightning-backend.ts';

export interface FakeWalletOptions {
  /** Delay before an issued invoice counts as paid (default 1000 ms). */
  readonly paidAfterMs?: number;
  /** A status check settles the invoice immediately, as nutshell's FAKEWALLET_BRR (default false). */
  readonly brr?: boolean;
  /** Clock in unix seconds. */
  readonly now?: () => number;
  /** Pay expired invoices too, as nutshell's FakeWallet does (default true). */
  readonly payExpired?: boolean;
  /** Routing fee reported for each payment, capped by the payer's fee limit (default 1000 msat = 1 sat). */
  readonly routingFeeMsat?: number;
}

/** nutshell's FakeWallet node key: PBKDF2-HMAC-SHA256("FAKEWALLET SECRET", "FakeWallet", 2048, 32). */
export const FAKE_WALLET_NODE_KEY = pbkdf2Sync('FAKEWALLET SECRET', 'FakeWallet', 2048, 32, 'sha256').toString('hex');
/** Mainnet: FakeWallet invoices read `lnbc…` like nutshell's and CDK's. */
const MAINNET = { bech32: 'bc', pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };
/** What nutshell's FakeWallet answers as the preimage of a payment it did not make. */
export const NO_PREIMAGE = '0'.repeat(64);

interface FakeInvoice {
  readonly bolt11: string;
  readonly preimage: string;
  readonly expiresAt: number;
  paid: boolean;
  timer?: NodeJS.Timeout;
  readonly listeners: Set<() => void>;
}

const sha256hex = (hex: string): string => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

export function decodeBolt11(pr: string): { amountMsat: number; paymentHash: string; expiresAt: number; payee?: string } {
  if (typeof pr !== 'string' || !/^ln(bc|tb|bcrt|tbs|sb)[0-9a-z]+$/i.test(pr.trim())) throw new Error('not a bolt11 payment request');
  let d: ReturnType<typeof bolt11.decode>;
  try {
    d = bolt11.decode(pr.trim());
  } catch (err) {
    throw new Error(`malformed or tampered bolt11: ${(err as Error).message}`);
  }
  const paymentHash = d.tagsObject.payment_hash;
  if (!paymentHash) throw new Error('bolt11 has no payment hash');
  const expiresAt = d.timeExpireDate ?? (d.timestamp ?? 0) + (d.tagsObject.expire_time ?? 3600);
  return { amountMsat: Number(d.millisatoshis ?? 0), paymentHash, expiresAt, payee: d.payeeNodeKey };
}

export class FakeWallet implements LightningBackend {
  readonly paysExpiredInvoices: boolean;
  private readonly invoices = new Map<string, FakeInvoice>();
  private readonly paidOut = new Set<string>();
  private readonly paidAfterMs: number;
  private readonly brr: boolean;
  private readonly now: () => number;
  private readonly routingFeeMsat: number;

  constructor(opts: FakeWalletOptions = {}) {
    this.routingFeeMsat = opts.routingFeeMsat ?? 1000;
    this.paidAfterMs = opts.paidAfterMs ?? 1000;
    this.brr = opts.brr ?? false;
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.paysExpiredInvoices = opts.payExpired ?? true;
  }

  async createInvoice(req: { amountMsat: number; description: string; expirySecs: number }): Promise<LightningInvoice> {
    const preimage = randomBytes(32).toString('hex');
    const paymentHash = sha256hex(preimage);
    const timestamp = this.now();
    const unsigned = bolt11.encode({
      network: MAINNET,
      millisatoshis: String(req.amountMsat),
      timestamp,
      tags: [
        { tagName: 'payment_hash', data: paymentHash },
        { tagName: 'payment_secret', data: randomBytes(32).toString('hex') },
        { tagName: 'description', data: req.description },
        { tagName: 'expire_time', data: req.expirySecs },
      ],
    });
    const signed = bolt11.sign(unsigned, FAKE_WALLET_NODE_KEY);
    const inv: FakeInvoice = { bolt11: signed.paymentRequest!, preimage, expiresAt: timestamp + req.expirySecs, paid: false, listeners: new Set() };
    this.invoices.set(paymentHash, inv);
    inv.timer = setTimeout(() => this.settle(paymentHash), this.paidAfterMs);
    inv.timer.unref();
    return { bolt11: inv.bolt11, paymentHash, amountMsat: req.amountMsat, expiresAt: inv.expiresAt };
  }

  private settle(paymentHash: string): void {
    const inv = this.invoices.get(paymentHash);
    if (!inv || inv.paid) return;
    inv.paid = true;
    for (const l of inv.listeners) l();
    inv.listeners.clear();
  }

  async invoiceState(paymentHash: string): Promise<InvoiceState> {
    const inv = this.invoices.get(paymentHash);
    // An invoice of an earlier process run would have settled by itself long ago.
    if (!inv) return 'paid';
    if (inv.paid) return 'paid';
    if (inv.expiresAt <= this.now()) return 'expired';
    if (this.brr) {
      clearTimeout(inv.timer);
      this.settle(paymentHash);
      return 'paid';
    }
    return 'unpaid';
  }

  onInvoicePaid(paymentHash: string, onPaid: () => void): () => void {
    const inv = this.invoices.get(paymentHash);
    if (!inv) {
      queueMicrotask(onPaid);
      return () => {};
    }
    if (inv.paid) {
      queueMicrotask(onPaid);
      return () => {};
    }
    inv.listeners.add(onPaid);
    return () => inv.listeners.delete(onPaid);
  }

  decode(pr: string): { amountMsat: number; paymentHash: string; expiresAt: number; payee?: string } {
    return decodeBolt11(pr);
  }

  feeReserveMsat(amountMsat: number): number {
    return Math.max(2000, Math.ceil(amountMsat / 100));
  }

  async pay(pr: string, opts: { maxFeeMsat: number; signal?: AbortSignal }): Promise<PaymentResult> {
    opts.signal?.throwIfAborted();
    const d = decodeBolt11(pr);
    if (!this.paysExpiredInvoices && d.expiresAt <= this.now()) throw new Error('invoice expired');
    if (this.paidOut.has(d.paymentHash)) throw new Error('invoice already paid');
    this.paidOut.add(d.paymentHash);
    const own = this.invoices.get(d.paymentHash);
    if (own) this.settle(d.paymentHash);
    return { preimage: own?.preimage ?? NO_PREIMAGE, feeMsat: Math.min(this.routingFeeMsat, opts.maxFeeMsat) };
  }

  /** Stops pending settlement timers (the mint calls nothing here; tests and the CLI do). */
  close(): void {
    for (const inv of this.invoices.values()) clearTimeout(inv.timer);
  }
}
