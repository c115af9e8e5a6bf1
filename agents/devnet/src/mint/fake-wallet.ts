// A LightningBackend that behaves like nutshell's FakeWallet, for client conformance
// tests without a Lightning network: invoices it issues (real signed BOLT11, by a
// throwaway node key) settle by themselves after `paidAfterMs`; with `brr` (nutshell's
// FAKEWALLET_BRR) a status check finds them paid at once. Paying any well-formed,
// unexpired invoice succeeds, with a fee reserve > 0 (max(2 sat, 1%)) and no fee spent.
import { createHash, randomBytes } from 'node:crypto';
import bolt11 from 'bolt11';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { InvoiceState, LightningBackend, LightningInvoice, PaymentResult } from '../lightning-backend.ts';

export interface FakeWalletOptions {
  /** Delay before an issued invoice counts as paid (default 1000 ms). */
  readonly paidAfterMs?: number;
  /** A status check settles the invoice immediately, as nutshell's FAKEWALLET_BRR (default false). */
  readonly brr?: boolean;
  /** Clock in unix seconds. */
  readonly now?: () => number;
}

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
  private readonly invoices = new Map<string, FakeInvoice>();
  private readonly paidOut = new Set<string>();
  private readonly nodeKey = randomBytes(32).toString('hex');
  private readonly paidAfterMs: number;
  private readonly brr: boolean;
  private readonly now: () => number;

  constructor(opts: FakeWalletOptions = {}) {
    this.paidAfterMs = opts.paidAfterMs ?? 1000;
    this.brr = opts.brr ?? false;
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  async createInvoice(req: { amountMsat: number; description: string; expirySecs: number }): Promise<LightningInvoice> {
    const preimage = randomBytes(32).toString('hex');
    const paymentHash = sha256hex(preimage);
    const timestamp = this.now();
    const unsigned = bolt11.encode({
      network: { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
      millisatoshis: String(req.amountMsat),
      timestamp,
      tags: [
        { tagName: 'payment_hash', data: paymentHash },
        { tagName: 'payment_secret', data: randomBytes(32).toString('hex') },
        { tagName: 'description', data: req.description },
        { tagName: 'expire_time', data: req.expirySecs },
      ],
    });
    const signed = bolt11.sign(unsigned, this.nodeKey);
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
    if (d.expiresAt <= this.now()) throw new Error('invoice expired');
    if (this.paidOut.has(d.paymentHash)) throw new Error('invoice already paid');
    this.paidOut.add(d.paymentHash);
    const own = this.invoices.get(d.paymentHash);
    if (own) this.settle(d.paymentHash);
    return { preimage: own?.preimage ?? bytesToHex(randomBytes(32)), feeMsat: 0 };
  }

  /** Stops pending settlement timers (the mint calls nothing here; tests and the CLI do). */
  close(): void {
    for (const inv of this.invoices.values()) clearTimeout(inv.timer);
  }
}
