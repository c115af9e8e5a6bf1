// Lightning for agents through Nostr Wallet Connect (NIP-47) with our NwcClient (over the
// agents' RelayPool, so NIP-42 AUTH relays work): pay, make invoices, wait for settlement,
// balance. The same code talks to the devnet's wallet service or a real one (Alby Hub,
// Coinos, Primal…) — only the URI differs.
//
// Defensive by design: amounts are checked against the caller's ceiling before paying,
// the preimage returned by the wallet is verified against the invoice's payment hash, and
// every call has a deadline. A pay_invoice that times out is reported as *unknown* (the
// wallet may still complete it), never as failed.
import { decode as decodeBolt11 } from 'light-bolt11-decoder';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { NwcClient, NwcError, type NwcInfo } from './nwc-client.ts';
import { SpendingLimitError, type SpendingLedger } from './spending.ts';

export const LightningWalletErrorCode = {
  /** Invoice does not decode or has no amount. */
  INVALID_INVOICE: 'INVALID_INVOICE',
  /** The invoice asks for more than the caller allowed. */
  OVER_BUDGET: 'OVER_BUDGET',
  /** The wallet answered with a NIP-47 error (see `nip47Code`). */
  WALLET_ERROR: 'WALLET_ERROR',
  /** No answer before the deadline; for a payment the outcome is unknown. */
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  /** The wallet returned a preimage that does not hash to the payment hash. */
  BAD_PREIMAGE: 'BAD_PREIMAGE',
  /** The invoice expired (or failed) before it was paid. */
  EXPIRED: 'EXPIRED',
  /** Paying would break one of the wallet's spending limits; nothing was sent. */
  OVER_LIMIT: 'OVER_LIMIT',
} as const;
export type LightningWalletErrorCode = (typeof LightningWalletErrorCode)[keyof typeof LightningWalletErrorCode];

export class LightningWalletError extends Error {
  override name = 'LightningWalletError';
  readonly code: LightningWalletErrorCode;
  /** NIP-47 error code when the wallet answered with one (INSUFFICIENT_BALANCE, PAYMENT_FAILED…). */
  readonly nip47Code: string | undefined;
  constructor(code: LightningWalletErrorCode, message: string, nip47Code?: string) {
    super(message);
    this.code = code;
    this.nip47Code = nip47Code;
  }
}

/**
 * The wallet service answered with a NIP-47 error of its own, so it did not pay. A timeout, an
 * abort, a request no relay took (NOT_PUBLISHED) or an answer that does not parse
 * (BAD_RESPONSE) leave the outcome unknown.
 */
export function isWalletRefusal(err: unknown): boolean {
  return err instanceof LightningWalletError && err.code === 'WALLET_ERROR' && err.nip47Code !== 'NOT_PUBLISHED' && err.nip47Code !== 'BAD_RESPONSE';
}

export interface DecodedInvoice {
  readonly bolt11: string;
  readonly amountMsat: number;
  readonly paymentHash: string;
  readonly description?: string;
  /** Unix seconds. */
  readonly expiresAt: number;
  readonly payee?: string;
}

/** Decodes a BOLT11 invoice (amount, hash, expiry). Throws LightningWalletError INVALID_INVOICE. */
export function decodeInvoice(bolt11: string): DecodedInvoice {
  const pr = bolt11.trim().toLowerCase().replace(/^lightning:/, '');
  let d: ReturnType<typeof decodeBolt11>;
  try {
    d = decodeBolt11(pr);
  } catch (err) {
    throw new LightningWalletError('INVALID_INVOICE', `invoice does not decode: ${(err as Error).message}`);
  }
  const section = (name: string) => (d.sections as { name: string; value?: unknown }[]).find((s) => s.name === name)?.value;
  const amount = section('amount');
  const hash = section('payment_hash');
  const timestamp = section('timestamp');
  if (typeof amount !== 'string' || !/^\d+$/.test(amount) || amount === '0') throw new LightningWalletError('INVALID_INVOICE', 'invoice has no amount');
  if (typeof hash !== 'string') throw new LightningWalletError('INVALID_INVOICE', 'invoice has no payment hash');
  const description = section('description');
  // The payee is the key the signature recovers (BOLT11); an `n` field must agree with it.
  const tagged = section('payee');
  const payee = recoverPayee(pr);
  if (typeof tagged === 'string' && payee !== undefined && tagged !== payee) throw new LightningWalletError('INVALID_INVOICE', 'invoice signature does not match its payee (n) field');
  return {
    bolt11: pr,
    amountMsat: Number(amount),
    paymentHash: hash,
    ...(typeof description === 'string' ? { description } : {}),
    expiresAt: (typeof timestamp === 'number' ? timestamp : 0) + (d.expiry ?? 3600),
    ...(typeof payee === 'string' ? { payee } : {}),
  };
}

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

/** 5-bit words to bytes; `pad` appends zero bits to the last byte (BOLT11's signing preimage). */
function wordsToBytes(words: readonly number[], pad: boolean): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (pad && bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

/**
 * The node that signed a (checksum-valid, lower-case) BOLT11 invoice: the compressed public key
 * recovered from its signature over sha256(hrp ‖ data words as bytes, zero-padded). Undefined
 * when it does not recover.
 */
export function recoverPayee(bolt11: string): string | undefined {
  const sep = bolt11.lastIndexOf('1');
  if (sep < 1) return undefined;
  const words = [...bolt11.slice(sep + 1, -6)].map((c) => BECH32.indexOf(c));
  if (words.length < 104 + 7 || words.some((w) => w < 0)) return undefined;
  const sig = wordsToBytes(words.slice(-104), false); // 520 bits: r ‖ s ‖ recovery id
  const data = wordsToBytes(words.slice(0, -104), true);
  const preimage = new Uint8Array(sep + data.length);
  preimage.set(new TextEncoder().encode(bolt11.slice(0, sep)));
  preimage.set(data, sep);
  try {
    return secp256k1.Signature.fromBytes(sig.slice(0, 64), 'compact').addRecoveryBit(sig[64]!).recoverPublicKey(sha256(preimage)).toHex(true);
  } catch {
    return undefined;
  }
}

export function preimageMatches(preimageHex: string, paymentHash: string): boolean {
  if (!/^[0-9a-f]{64}$/i.test(preimageHex)) return false;
  return bytesToHex(sha256(hexToBytes(preimageHex.toLowerCase()))) === paymentHash.toLowerCase();
}

export interface LightningWalletOptions {
  /** `nostr+walletconnect://` URI (secret: never logged). */
  readonly nwcUri: string;
  readonly logger: Logger;
  /** Deadline for each NWC request (ms). */
  readonly requestTimeoutMs?: number;
  /** lookup_invoice polling interval while waiting for settlement (ms). */
  readonly pollIntervalMs?: number;
  /** Relay reconnect backoff of the NWC connection (tests shorten it). */
  readonly minBackoffMs?: number;
  /** Spending limits every `pay` is reserved against before the wallet is asked (see spending.ts). */
  readonly spending?: SpendingLedger;
}

export interface Payment {
  readonly paymentHash: string;
  readonly preimage: string;
  readonly amountMsat: number;
  readonly feesPaidMsat: number;
}

export interface CreatedInvoice {
  readonly bolt11: string;
  readonly paymentHash: string;
  readonly amountMsat: number;
  readonly expiresAt: number;
}

export interface Settlement {
  readonly paymentHash: string;
  readonly preimage?: string;
  readonly amountMsat: number;
  readonly settledAt?: number;
}

interface NwcTx {
  type: string;
  state?: string;
  payment_hash: string;
  preimage?: string;
  amount: number;
  fees_paid?: number;
  settled_at?: number;
  expires_at?: number;
}

type Waiter = { resolve: (s: Settlement) => void; reject: (err: Error) => void };

export class LightningWallet {
  private readonly client: NwcClient;
  private readonly log: Logger;
  private readonly requestTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly spending: SpendingLedger | undefined;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly received = new Set<(s: Settlement) => void>();
  private unsubscribe: (() => void) | undefined;
  private subscribing: Promise<void> | undefined;
  private closed = false;

  private constructor(client: NwcClient, opts: LightningWalletOptions) {
    this.client = client;
    this.log = opts.logger;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 2_000;
    this.spending = opts.spending;
  }

  static async connect(opts: LightningWalletOptions): Promise<LightningWallet> {
    // parseNwcUri's messages never include the secret.
    const client = new NwcClient({ uri: opts.nwcUri, logger: opts.logger, timeoutMs: opts.requestTimeoutMs ?? 30_000, ...(opts.minBackoffMs ? { minBackoffMs: opts.minBackoffMs } : {}) });
    return new LightningWallet(client, opts);
  }

  /** Wallet-service public key (not secret); useful in logs. */
  get walletPubkey(): string {
    return this.client.walletPubkey;
  }

  /** One NIP-47 request with our deadline, errors as LightningWalletError. */
  private async request<T>(method: string, params: Record<string, unknown>, valid: (r: T) => boolean, signal?: AbortSignal, timeoutMs = this.requestTimeoutMs): Promise<T> {
    if (this.closed) throw new LightningWalletError('ABORTED', 'lightning wallet is closed');
    if (signal?.aborted) throw new LightningWalletError('ABORTED', `${method} aborted`);
    let r: T;
    try {
      r = await this.client.request<T>(method, params, { timeoutMs, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof NwcError) {
        if (err.code === 'TIMEOUT') throw new LightningWalletError('TIMEOUT', err.message);
        if (err.code === 'ABORTED') throw new LightningWalletError('ABORTED', err.message);
        throw new LightningWalletError('WALLET_ERROR', `${method} failed: ${err.message}`, err.code);
      }
      throw new LightningWalletError('WALLET_ERROR', `${method} failed: ${(err as Error).message}`);
    }
    if (!valid(r)) throw new LightningWalletError('WALLET_ERROR', `${method}: the wallet's answer is malformed`, 'BAD_RESPONSE');
    return r;
  }

  /** The wallet service's info event: methods, notifications, encryptions (undefined if none is published). */
  info(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<NwcInfo | undefined> {
    return this.client.info(opts);
  }

  /** NIP-47 get_info: the methods this connection may use, the node's alias and its public key (the payee of its invoices). */
  async getInfo(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ alias?: string; methods: string[]; network?: string; pubkey?: string }> {
    const r = await this.request<{ alias?: unknown; methods?: unknown; network?: unknown; pubkey?: unknown }>('get_info', {}, (x) => typeof x === 'object' && x !== null, opts.signal, opts.timeoutMs);
    return {
      ...(typeof r.alias === 'string' && r.alias ? { alias: r.alias } : {}),
      ...(typeof r.pubkey === 'string' && /^0[23][0-9a-f]{64}$/.test(r.pubkey) ? { pubkey: r.pubkey } : {}),
      methods: Array.isArray(r.methods) ? r.methods.filter((m): m is string => typeof m === 'string') : [],
      ...(typeof r.network === 'string' ? { network: r.network } : {}),
    };
  }

  async balanceMsat(opts: { signal?: AbortSignal } = {}): Promise<number> {
    const r = await this.request<{ balance: number }>('get_balance', {}, (x) => typeof x?.balance === 'number', opts.signal);
    return r.balance;
  }

  /**
   * Pays `bolt11`, refusing before any request if it asks for more than `maxAmountMsat`.
   * Idempotent per invoice: paying an invoice this wallet already paid returns the earlier
   * payment. On TIMEOUT the payment may still complete; calling `pay` again is safe.
   */
  async pay(bolt11: string, opts: { maxAmountMsat?: number; jobId?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Payment> {
    const inv = decodeInvoice(bolt11);
    if (opts.maxAmountMsat !== undefined && inv.amountMsat > opts.maxAmountMsat) {
      throw new LightningWalletError('OVER_BUDGET', `invoice asks ${inv.amountMsat} msat, more than the allowed ${opts.maxAmountMsat} msat`);
    }
    // The wallet's limits come first: an over-limit payment never reaches the wallet service.
    const key = `ln:${inv.paymentHash}`;
    let created = false;
    if (this.spending) {
      try {
        created = this.spending.reserve({ key, amountMsat: inv.amountMsat, rail: 'lightning', ...(opts.jobId !== undefined ? { jobId: opts.jobId } : {}) }).created;
      } catch (err) {
        if (err instanceof SpendingLimitError) throw new LightningWalletError('OVER_LIMIT', err.message);
        throw err;
      }
    }
    // Only a reservation made by this call is released on a definite refusal: an earlier
    // attempt of the same invoice may have paid it.
    const refused = () => {
      if (created) this.spending?.release(key);
    };
    // Idempotent: if this wallet already paid the invoice (a retry after TIMEOUT, a job
    // re-delivered), return that payment instead of trying again.
    let prior: Payment | undefined;
    try {
      prior = await this.findOutgoing(inv, opts.signal, opts.timeoutMs);
    } catch (err) {
      refused(); // nothing was asked to pay yet
      throw err;
    }
    if (prior) {
      this.spending?.settle(key, prior.amountMsat + prior.feesPaidMsat);
      this.log.info({ paymentHash: inv.paymentHash, amountMsat: prior.amountMsat }, 'invoice already paid by this wallet; returning the earlier payment');
      return prior;
    }
    if (inv.expiresAt <= Math.floor(Date.now() / 1000)) {
      refused();
      throw new LightningWalletError('EXPIRED', `invoice ${inv.paymentHash} has expired`);
    }
    this.log.info({ paymentHash: inv.paymentHash, amountMsat: inv.amountMsat, jobId: opts.jobId }, 'paying invoice');
    let r: { preimage: string; fees_paid?: number };
    try {
      r = await this.request<{ preimage: string; fees_paid?: number }>('pay_invoice', { invoice: inv.bolt11 }, (x) => typeof x?.preimage === 'string', opts.signal, opts.timeoutMs);
    } catch (err) {
      // The wallet's own error answer means it did not pay; anything else leaves the outcome
      // unknown, and the reservation keeps counting.
      if (isWalletRefusal(err)) refused();
      throw err;
    }
    if (!preimageMatches(r.preimage, inv.paymentHash)) {
      throw new LightningWalletError('BAD_PREIMAGE', `wallet returned a preimage that does not match payment hash ${inv.paymentHash}`);
    }
    const fees = typeof r.fees_paid === 'number' && r.fees_paid >= 0 ? r.fees_paid : 0;
    this.spending?.settle(key, inv.amountMsat + fees);
    this.log.info({ paymentHash: inv.paymentHash, amountMsat: inv.amountMsat, feesPaidMsat: fees }, 'invoice paid');
    return { paymentHash: inv.paymentHash, preimage: r.preimage, amountMsat: inv.amountMsat, feesPaidMsat: fees };
  }

  private lookupTx(paymentHash: string, signal?: AbortSignal, timeoutMs?: number): Promise<NwcTx> {
    return this.request<NwcTx>('lookup_invoice', { payment_hash: paymentHash }, (x) => typeof x?.payment_hash === 'string', signal, timeoutMs);
  }

  /** This wallet's settled outgoing payment of `inv`, if lookup_invoice knows one. */
  private async findOutgoing(inv: DecodedInvoice, signal?: AbortSignal, timeoutMs?: number): Promise<Payment | undefined> {
    let tx: NwcTx;
    try {
      tx = await this.lookupTx(inv.paymentHash, signal, timeoutMs);
    } catch (err) {
      // A wallet that does not answer will not answer the payment either.
      if (err instanceof LightningWalletError && (err.code === 'ABORTED' || err.code === 'TIMEOUT')) throw err;
      return undefined; // NOT_FOUND, or a wallet that cannot look up payments: pay normally
    }
    if (tx.type !== 'outgoing' || tx.state !== 'settled' || !tx.preimage || !preimageMatches(tx.preimage, inv.paymentHash)) return undefined;
    return { paymentHash: inv.paymentHash, preimage: tx.preimage, amountMsat: tx.amount, feesPaidMsat: tx.fees_paid ?? 0 };
  }

  async makeInvoice(req: { amountMsat: number; description?: string; expirySecs?: number; signal?: AbortSignal }): Promise<CreatedInvoice> {
    if (!Number.isSafeInteger(req.amountMsat) || req.amountMsat <= 0) throw new LightningWalletError('INVALID_INVOICE', `amount must be a positive integer of msat, got ${req.amountMsat}`);
    const params = { amount: req.amountMsat, ...(req.description !== undefined ? { description: req.description } : {}), ...(req.expirySecs !== undefined ? { expiry: req.expirySecs } : {}) };
    const tx = await this.request<{ invoice: string }>('make_invoice', params, (x) => typeof x?.invoice === 'string', req.signal);
    // Trust the invoice, not the wallet's summary of it.
    const inv = decodeInvoice(tx.invoice);
    if (inv.amountMsat !== req.amountMsat) throw new LightningWalletError('INVALID_INVOICE', `wallet made an invoice for ${inv.amountMsat} msat, asked ${req.amountMsat}`);
    this.log.info({ paymentHash: inv.paymentHash, amountMsat: inv.amountMsat }, 'invoice created');
    return { bolt11: inv.bolt11, paymentHash: inv.paymentHash, amountMsat: inv.amountMsat, expiresAt: inv.expiresAt };
  }

  /** lookup_invoice; undefined when the wallet does not know the hash (NOT_FOUND). */
  async lookup(paymentHash: string, opts: { signal?: AbortSignal } = {}): Promise<{ state: string; settlement?: Settlement } | undefined> {
    try {
      const tx = await this.lookupTx(paymentHash, opts.signal);
      const settled = tx.state === 'settled' || (tx.state === undefined && typeof tx.settled_at === 'number' && tx.settled_at > 0);
      const state = settled ? 'settled' : tx.state ?? 'pending';
      return settled ? { state, settlement: toSettlement(tx) } : { state };
    } catch (err) {
      if (err instanceof LightningWalletError && err.nip47Code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  /**
   * Resolves when the incoming invoice `paymentHash` is settled: on a payment_received
   * notification, or on a lookup_invoice poll (for wallets without notifications or a
   * notification lost on a reconnect). Rejects on timeout, abort or an expired invoice.
   */
  async waitForSettlement(paymentHash: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<Settlement> {
    const hash = paymentHash.toLowerCase();
    if (opts.signal?.aborted) throw new LightningWalletError('ABORTED', 'wait aborted');
    await this.ensureNotifications();
    return new Promise<Settlement>((resolve, reject) => {
      let done = false;
      let pollTimer: NodeJS.Timeout | undefined;
      const waiter: Waiter = { resolve: (s) => finish(() => resolve(s)), reject: (err) => finish(() => reject(err)) };
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(pollTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        const set = this.waiters.get(hash);
        set?.delete(waiter);
        if (set && set.size === 0) this.waiters.delete(hash);
        fn();
      };
      const onAbort = () => finish(() => reject(new LightningWalletError('ABORTED', 'wait aborted')));
      const deadline = setTimeout(() => finish(() => reject(new LightningWalletError('TIMEOUT', `invoice ${hash} not settled within ${opts.timeoutMs} ms`))), opts.timeoutMs);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(hash);
      if (!set) this.waiters.set(hash, (set = new Set()));
      set.add(waiter);
      const poll = async () => {
        if (done) return;
        try {
          const r = await this.lookup(hash);
          if (r?.settlement) return waiter.resolve(r.settlement);
          if (r && (r.state === 'failed' || r.state === 'expired')) return finish(() => reject(new LightningWalletError('EXPIRED', `invoice ${hash} ${r.state} unpaid`)));
        } catch (err) {
          this.log.debug({ err, paymentHash: hash }, 'settlement poll failed; will retry');
        }
        if (!done) pollTimer = setTimeout(() => void poll(), this.pollIntervalMs);
      };
      void poll();
    });
  }

  /**
   * Calls `listener` for every payment_received notification whose preimage checks out
   * (the provider's fast path; lookups remain the safety net). Returns the unsubscribe.
   */
  async onPaymentReceived(listener: (s: Settlement) => void): Promise<() => void> {
    this.received.add(listener);
    await this.ensureNotifications();
    return () => this.received.delete(listener);
  }

  private async ensureNotifications(): Promise<void> {
    if (this.unsubscribe || this.closed) return;
    this.subscribing ??= (async () => {
      try {
        this.unsubscribe = await this.client.onNotification((n) => this.onNotification(n.type, n.notification as unknown as NwcTx));
      } catch (err) {
        // Polling still covers settlement; try notifications again on the next wait.
        this.log.warn({ err: (err as Error).message }, 'nwc notifications unavailable; relying on lookup_invoice polling');
        this.subscribing = undefined;
      }
    })();
    await this.subscribing;
  }

  private onNotification(type: string, tx: NwcTx): void {
    if (type !== 'payment_received' || typeof tx?.payment_hash !== 'string' || typeof tx.amount !== 'number') return;
    const s = toSettlement(tx);
    if (s.preimage !== undefined && !preimageMatches(s.preimage, s.paymentHash)) {
      this.log.warn({ paymentHash: s.paymentHash }, 'notification preimage does not match; waiting for lookup');
      return;
    }
    for (const l of [...this.received]) l(s);
    const set = this.waiters.get(s.paymentHash);
    if (set) for (const w of [...set]) w.resolve(s);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.reject(new LightningWalletError('ABORTED', 'lightning wallet closed'));
    this.received.clear();
    this.unsubscribe?.();
    await this.client.close();
  }
}

function toSettlement(tx: NwcTx): Settlement {
  return {
    paymentHash: tx.payment_hash.toLowerCase(),
    amountMsat: tx.amount,
    ...(tx.preimage ? { preimage: tx.preimage } : {}),
    ...(typeof tx.settled_at === 'number' ? { settledAt: tx.settled_at } : {}),
  };
}
