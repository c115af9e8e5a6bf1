// The dev Lightning network: named accounts with msat balances in one LMDB environment,
// each with its own secp256k1 node key. Invoices are real BOLT11 payment requests signed
// by the payee's node key; a payment between two accounts settles in one LMDB write
// transaction (debit payer, credit payee, mark the invoice paid, record the payment), so
// money is conserved at every commit. Amounts are integer millisatoshis.
import { randomBytes } from 'node:crypto';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { decodeInvoice, encodeInvoice, MAX_DESCRIPTION_BYTES, REGTEST } from './bolt11-codec.ts';
import { LightningError } from './errors.ts';

/** Bumped when the on-disk layout changes; a mismatch refuses to open rather than misread. */
export const LIGHTNING_DB_VERSION = 1;

export const DEFAULT_INVOICE_EXPIRY_SECS = 3600;
export const MAX_INVOICE_EXPIRY_SECS = 365 * 24 * 3600;

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const HEX32 = /^[0-9a-f]{64}$/;

export interface AccountRecord {
  readonly name: string;
  /** Hex secp256k1 secret of the account's node key (dev network only: stored at rest). */
  readonly nodeSecret: string;
  /** Compressed hex public key: the `payee` of every invoice the account issues. */
  readonly nodePubkey: string;
  readonly balanceMsat: number;
  /** Unix seconds. */
  readonly createdAt: number;
}

export type AccountInfo = Omit<AccountRecord, 'nodeSecret'>;

export interface InvoiceRecord {
  readonly paymentHash: string;
  readonly bolt11: string;
  /** Payee account. */
  readonly account: string;
  readonly payee: string;
  readonly amountMsat: number;
  readonly description?: string;
  readonly descriptionHash?: string;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly preimage: string;
  readonly paid: boolean;
  readonly settledAt?: number;
  readonly payer?: string;
  /** Free-form JSON metadata given at creation (NIP-47 make_invoice `metadata`), or keysend TLV records. */
  readonly metadata?: unknown;
  /** A spontaneous (keysend) payment: there is no invoice, `bolt11` is ''. */
  readonly keysend?: boolean;
}

/** An invoice as its issuer may see it: the preimage only once it is paid. */
export type Invoice = Omit<InvoiceRecord, 'preimage'> & { readonly preimage?: string; readonly state: InvoiceState };

export type InvoiceState = 'unpaid' | 'paid' | 'expired';

export interface PaymentRecord {
  readonly paymentHash: string;
  readonly bolt11: string;
  /** Paying account. */
  readonly account: string;
  /** Payee account and node key. */
  readonly payeeAccount: string;
  readonly payee: string;
  readonly amountMsat: number;
  readonly feeMsat: number;
  readonly description?: string;
  readonly descriptionHash?: string;
  readonly preimage: string;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly settledAt: number;
  readonly invoiceCreatedAt: number;
  readonly expiresAt: number;
  /** Who initiated it on the payer's side (e.g. an NWC connection's wallet pubkey), for budgets. */
  readonly via?: string;
}

export interface PayOptions {
  /** Must equal the invoice amount when given (the dev network issues no amountless invoices). */
  readonly amountMsat?: number;
  readonly maxFeeMsat?: number;
  readonly signal?: AbortSignal;
  /** Recorded on the payment; budgets count payments with the same `via`. */
  readonly via?: string;
  /** Refuse (QUOTA_EXCEEDED) if payments `via` since `sinceSecs` plus this one would exceed `limitMsat`. */
  readonly budget?: { readonly limitMsat: number; readonly sinceSecs: number };
  /**
   * Idempotency key of the request that asked for this payment (e.g. a NIP-47 request event
   * id). Recorded in the payment's transaction; a second payment with the same key is
   * refused, even after a restart — a replayed request never pays twice.
   */
  readonly requestId?: string;
}

export const MAX_METADATA_BYTES = 4096;

export type Transaction =
  | ({ readonly type: 'incoming' } & Invoice)
  | ({ readonly type: 'outgoing'; readonly state: 'paid' } & PaymentRecord);

export interface ListTransactionsQuery {
  /** Unix seconds, inclusive. */
  readonly from?: number;
  readonly until?: number;
  readonly limit?: number;
  readonly offset?: number;
  /** Include unpaid (and expired) incoming invoices. */
  readonly unpaid?: boolean;
  readonly type?: 'incoming' | 'outgoing';
}

export interface SettledEvent {
  readonly payment: PaymentRecord;
  readonly invoice: InvoiceRecord;
}

export interface Invariant {
  readonly ok: boolean;
  readonly totalFundedMsat: number;
  readonly balancesMsat: number;
  /** Payments debited but not yet credited. Settlement is atomic, so always 0 here. */
  readonly inFlightMsat: number;
  readonly accounts: number;
}

export interface LightningNetworkOptions {
  /** Directory for the LMDB environment (created if missing). */
  readonly path: string;
  readonly logger: Logger;
  /** Clock in milliseconds; tests inject one to cross expiry boundaries without sleeping. */
  readonly now?: () => number;
  /** Interval for noticing settlements committed by another process (ms). */
  readonly pollIntervalMs?: number;
}

type TxDir = 'in' | 'out';
type TxKey = [string, number, TxDir, string];

function assertAmount(msat: unknown, what: string): asserts msat is number {
  if (typeof msat !== 'number' || !Number.isSafeInteger(msat) || msat <= 0) {
    throw new LightningError('INVALID_ARGUMENT', `${what} must be a positive integer number of millisatoshis, got ${JSON.stringify(msat)}`);
  }
}

export function validateAccountName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !ACCOUNT_NAME.test(name)) {
    throw new LightningError('INVALID_ARGUMENT', `account name must match ${ACCOUNT_NAME} (lower-case letters, digits, '-' and '_'), got ${JSON.stringify(name)}`);
  }
}

export class LightningNetwork {
  readonly path: string;
  private readonly root: RootDatabase;
  private readonly meta: Database<unknown, string>;
  private readonly accounts: Database<AccountRecord, string>;
  private readonly invoices: Database<InvoiceRecord, string>;
  private readonly payments: Database<PaymentRecord, [string, string]>;
  private readonly txs: Database<null, TxKey>;
  private readonly requests: Database<string, string>;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly listeners = new Set<(e: SettledEvent) => void>();
  private readonly watched = new Map<string, Set<() => void>>();
  private readonly pollIntervalMs: number;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(opts: LightningNetworkOptions) {
    this.path = opts.path;
    this.log = opts.logger;
    this.nowMs = opts.now ?? Date.now;
    this.pollIntervalMs = opts.pollIntervalMs ?? 250;
    this.root = openLmdb({ path: opts.path, compression: false });
    this.meta = this.root.openDB({ name: 'meta' });
    this.accounts = this.root.openDB({ name: 'accounts' });
    this.invoices = this.root.openDB({ name: 'invoices' });
    this.payments = this.root.openDB({ name: 'payments' });
    this.txs = this.root.openDB({ name: 'txs' });
    this.requests = this.root.openDB({ name: 'requests' });
    const version = this.meta.get('version');
    if (version === undefined) {
      this.root.transactionSync(() => {
        if (this.meta.get('version') === undefined) {
          this.meta.putSync('version', LIGHTNING_DB_VERSION);
          this.meta.putSync('totalFundedMsat', 0);
        }
      });
    } else if (version !== LIGHTNING_DB_VERSION) {
      void this.root.close();
      throw new Error(`dev Lightning network at ${opts.path} has format version ${String(version)}, this build reads version ${LIGHTNING_DB_VERSION}`);
    }
  }

  /** Opens (or creates) the network stored at `opts.path`. */
  static open(opts: LightningNetworkOptions): LightningNetwork {
    return new LightningNetwork(opts);
  }

  /** Unix seconds. */
  now(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  // ---- accounts ---------------------------------------------------------------------

  createAccount(name: string): AccountInfo {
    validateAccountName(name);
    const sk = secp256k1.utils.randomSecretKey();
    const rec: AccountRecord = {
      name,
      nodeSecret: bytesToHex(sk),
      nodePubkey: bytesToHex(secp256k1.getPublicKey(sk, true)),
      balanceMsat: 0,
      createdAt: this.now(),
    };
    this.root.transactionSync(() => {
      if (this.accounts.get(name)) throw new LightningError('ACCOUNT_EXISTS', `account ${JSON.stringify(name)} already exists`);
      this.accounts.putSync(name, rec);
    });
    this.log.info({ account: name, nodePubkey: rec.nodePubkey }, 'lightning account created');
    return publicAccount(rec);
  }

  /** Returns the account, creating it when missing (idempotent set-up for devnet services). */
  ensureAccount(name: string): AccountInfo {
    const existing = this.getAccount(name);
    if (existing) return existing;
    try {
      return this.createAccount(name);
    } catch (err) {
      if (err instanceof LightningError && err.code === 'ACCOUNT_EXISTS') return this.requireAccount(name);
      throw err;
    }
  }

  getAccount(name: string): AccountInfo | undefined {
    const rec = this.accounts.get(name);
    return rec ? publicAccount(rec) : undefined;
  }

  requireAccount(name: string): AccountInfo {
    const rec = this.getAccount(name);
    if (!rec) throw new LightningError('UNKNOWN_ACCOUNT', `no account named ${JSON.stringify(name)}`);
    return rec;
  }

  listAccounts(): AccountInfo[] {
    const out: AccountInfo[] = [];
    for (const { value } of this.accounts.getRange()) out.push(publicAccount(value));
    return out;
  }

  balance(name: string): number {
    return this.requireAccount(name).balanceMsat;
  }

  /** Creates money out of thin air for `name` (the only way money enters the network). */
  fund(name: string, amountMsat: number): number {
    assertAmount(amountMsat, 'funding amount');
    const balance = this.root.transactionSync(() => {
      const acc = this.accounts.get(name);
      if (!acc) throw new LightningError('UNKNOWN_ACCOUNT', `no account named ${JSON.stringify(name)}`);
      const total = (this.meta.get('totalFundedMsat') as number) + amountMsat;
      const next = acc.balanceMsat + amountMsat;
      if (!Number.isSafeInteger(total)) throw new LightningError('INVALID_ARGUMENT', 'funding would overflow the network total');
      this.accounts.putSync(name, { ...acc, balanceMsat: next });
      this.meta.putSync('totalFundedMsat', total);
      return next;
    });
    this.log.info({ account: name, amountMsat, balanceMsat: balance }, 'lightning account funded');
    return balance;
  }

  // ---- invoices ---------------------------------------------------------------------

  createInvoice(
    account: string,
    amountMsat: number,
    description: string | undefined,
    expirySecs: number = DEFAULT_INVOICE_EXPIRY_SECS,
    opts: { descriptionHash?: string; metadata?: unknown } = {},
  ): Invoice {
    assertAmount(amountMsat, 'invoice amount');
    if (!Number.isSafeInteger(expirySecs) || expirySecs <= 0 || expirySecs > MAX_INVOICE_EXPIRY_SECS) {
      throw new LightningError('INVALID_ARGUMENT', `expiry must be an integer between 1 and ${MAX_INVOICE_EXPIRY_SECS} seconds, got ${JSON.stringify(expirySecs)}`);
    }
    if (description !== undefined && typeof description !== 'string') throw new LightningError('INVALID_ARGUMENT', 'description must be a string');
    if (description !== undefined && Buffer.byteLength(description, 'utf8') > MAX_DESCRIPTION_BYTES) {
      throw new LightningError('INVALID_ARGUMENT', `description is longer than ${MAX_DESCRIPTION_BYTES} bytes (the BOLT11 limit)`);
    }
    const descriptionHash = opts.descriptionHash?.toLowerCase();
    if (descriptionHash !== undefined && !HEX32.test(descriptionHash)) throw new LightningError('INVALID_ARGUMENT', 'description hash must be 32 bytes of hex');
    if (opts.metadata !== undefined) {
      let json: string | undefined;
      try {
        json = JSON.stringify(opts.metadata);
      } catch {
        json = undefined;
      }
      if (json === undefined || Buffer.byteLength(json, 'utf8') > MAX_METADATA_BYTES) {
        throw new LightningError('INVALID_ARGUMENT', `metadata must be JSON of at most ${MAX_METADATA_BYTES} bytes`);
      }
    }
    const acc = this.accounts.get(account);
    if (!acc) throw new LightningError('UNKNOWN_ACCOUNT', `no account named ${JSON.stringify(account)}`);
    const preimage = randomBytes(32);
    const paymentHash = bytesToHex(sha256(preimage));
    const timestamp = this.now();
    const pr = encodeInvoice({
      amountMsat,
      paymentHash,
      paymentSecret: randomBytes(32).toString('hex'),
      ...(descriptionHash !== undefined ? { descriptionHash } : { description: description ?? '' }),
      expirySecs,
      timestamp,
    }, acc.nodeSecret, acc.nodePubkey);
    const rec: InvoiceRecord = {
      paymentHash,
      bolt11: pr,
      account,
      payee: acc.nodePubkey,
      amountMsat,
      ...(descriptionHash !== undefined ? { descriptionHash } : { description: description ?? '' }),
      createdAt: timestamp,
      expiresAt: timestamp + expirySecs,
      preimage: bytesToHex(preimage),
      paid: false,
      ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
    };
    this.root.transactionSync(() => {
      if (this.invoices.get(paymentHash)) throw new Error('payment hash collision');
      this.invoices.putSync(paymentHash, rec);
      this.txs.putSync([account, rec.createdAt, 'in', paymentHash], null);
    });
    this.log.debug({ account, paymentHash, amountMsat, expiresAt: rec.expiresAt }, 'invoice created');
    return this.toInvoice(rec);
  }

  /** The invoice with this payment hash, as its issuer sees it; undefined if unknown. */
  lookupInvoice(paymentHash: string): Invoice | undefined {
    const rec = this.invoices.get(paymentHash.toLowerCase());
    return rec ? this.toInvoice(rec) : undefined;
  }

  invoiceState(paymentHash: string): InvoiceState | undefined {
    return this.lookupInvoice(paymentHash)?.state;
  }

  /** A payment `account` made, by payment hash. */
  lookupPayment(account: string, paymentHash: string): PaymentRecord | undefined {
    return this.payments.get([account, paymentHash.toLowerCase()]);
  }

  // ---- payments ---------------------------------------------------------------------

  /**
   * Pays `bolt11` from `payer`. Verifies the invoice signature, then in one write
   * transaction checks it is known, unpaid, unexpired, not the payer's own and affordable,
   * and moves the money. Returns the payment with the preimage (the proof of payment).
   */
  pay(payer: string, bolt11: string, opts: PayOptions = {}): PaymentRecord {
    if (opts.signal?.aborted) throw new LightningError('ABORTED', 'payment aborted before it started');
    const decoded = decodeInvoice(bolt11);
    if (decoded.network !== REGTEST.bech32) {
      throw new LightningError('UNKNOWN_INVOICE', `no route: the dev network only reaches its own regtest (lnbcrt) invoices, this one is for network ${JSON.stringify(decoded.network)}`);
    }
    if (decoded.amountMsat === undefined) throw new LightningError('INVALID_INVOICE', 'amountless invoices are not supported by the dev network');
    if (opts.amountMsat !== undefined && opts.amountMsat !== decoded.amountMsat) {
      throw new LightningError('INVALID_ARGUMENT', `amount ${opts.amountMsat} msat does not match the invoice amount ${decoded.amountMsat} msat`);
    }
    const feeMsat = 0;
    if (opts.maxFeeMsat !== undefined && feeMsat > opts.maxFeeMsat) throw new LightningError('FEE_LIMIT', 'routing fee exceeds the fee limit');
    const now = this.now();
    const result = this.root.transactionSync(() => {
      const payerAcc = this.accounts.get(payer);
      if (!payerAcc) throw new LightningError('UNKNOWN_ACCOUNT', `no account named ${JSON.stringify(payer)}`);
      const inv = this.invoices.get(decoded.paymentHash);
      if (!inv) throw new LightningError('UNKNOWN_INVOICE', `no route: invoice ${decoded.paymentHash} was not issued on this network`);
      // The signature verified, but it must also be byte-for-byte the invoice we issued:
      // anything else was altered after signing (or signed by a key we do not hold).
      if (inv.bolt11 !== decoded.bolt11 || inv.payee !== decoded.payee) {
        throw new LightningError('INVALID_INVOICE', 'invoice does not match the one issued for its payment hash (tampered)');
      }
      if (inv.paid) throw new LightningError('ALREADY_PAID', `invoice ${inv.paymentHash} is already paid`);
      if (now >= inv.expiresAt) throw new LightningError('EXPIRED', `invoice ${inv.paymentHash} expired at ${new Date(inv.expiresAt * 1000).toISOString()}`);
      if (inv.account === payer) throw new LightningError('SELF_PAYMENT', 'an account cannot pay its own invoice');
      const payeeAcc = this.accounts.get(inv.account);
      if (!payeeAcc) throw new Error(`invoice ${inv.paymentHash} belongs to missing account ${inv.account}`);
      const total = inv.amountMsat + feeMsat;
      if (payerAcc.balanceMsat < total) {
        throw new LightningError('INSUFFICIENT_BALANCE', `insufficient balance: ${payerAcc.balanceMsat} msat available, ${total} msat needed`);
      }
      this.claimRequest(opts.requestId, inv.paymentHash);
      if (opts.budget) {
        // Counted inside the write transaction, so concurrent payments cannot both slip under the limit.
        const spent = this.spentVia(payer, opts.via ?? '', opts.budget.sinceSecs);
        if (spent + total > opts.budget.limitMsat) {
          throw new LightningError('QUOTA_EXCEEDED', `budget exceeded: ${spent} of ${opts.budget.limitMsat} msat used, this payment needs ${total} msat`);
        }
      }
      const paidInv: InvoiceRecord = { ...inv, paid: true, settledAt: now, payer };
      const payment: PaymentRecord = {
        paymentHash: inv.paymentHash,
        bolt11: inv.bolt11,
        account: payer,
        payeeAccount: inv.account,
        payee: inv.payee,
        amountMsat: inv.amountMsat,
        feeMsat,
        ...(inv.description !== undefined ? { description: inv.description } : {}),
        ...(inv.descriptionHash !== undefined ? { descriptionHash: inv.descriptionHash } : {}),
        preimage: inv.preimage,
        createdAt: now,
        settledAt: now,
        invoiceCreatedAt: inv.createdAt,
        expiresAt: inv.expiresAt,
        ...(opts.via !== undefined ? { via: opts.via } : {}),
      };
      this.accounts.putSync(payer, { ...payerAcc, balanceMsat: payerAcc.balanceMsat - total });
      this.accounts.putSync(inv.account, { ...payeeAcc, balanceMsat: payeeAcc.balanceMsat + inv.amountMsat });
      this.invoices.putSync(inv.paymentHash, paidInv);
      this.payments.putSync([payer, inv.paymentHash], payment);
      this.txs.putSync([payer, now, 'out', inv.paymentHash], null);
      return { payment, invoice: paidInv };
    });
    this.log.info({ payer, payee: result.invoice.account, paymentHash: result.payment.paymentHash, amountMsat: result.payment.amountMsat }, 'payment settled');
    this.emitSettled(result);
    return result.payment;
  }

  /**
   * Keysend: pays `amountMsat` to the account whose node key is `payeePubkey`, without an
   * invoice. The preimage is the payer's (given, or random); its hash must be new to the
   * network. Same single write transaction and the same checks as `pay`.
   */
  keysend(
    payer: string,
    payeePubkey: string,
    amountMsat: number,
    opts: { preimage?: string; tlvRecords?: readonly { type: number; value: string }[]; via?: string; budget?: PayOptions['budget']; requestId?: string; signal?: AbortSignal } = {},
  ): PaymentRecord {
    if (opts.signal?.aborted) throw new LightningError('ABORTED', 'payment aborted before it started');
    assertAmount(amountMsat, 'keysend amount');
    const pubkey = payeePubkey.toLowerCase();
    if (!/^0[23][0-9a-f]{64}$/.test(pubkey)) throw new LightningError('INVALID_ARGUMENT', 'keysend pubkey must be a 33-byte compressed public key in hex');
    const preimage = opts.preimage?.toLowerCase() ?? randomBytes(32).toString('hex');
    if (!HEX32.test(preimage)) throw new LightningError('INVALID_ARGUMENT', 'keysend preimage must be 32 bytes of hex');
    const paymentHash = bytesToHex(sha256(hexToBytes(preimage)));
    const now = this.now();
    const result = this.root.transactionSync(() => {
      const payerAcc = this.accounts.get(payer);
      if (!payerAcc) throw new LightningError('UNKNOWN_ACCOUNT', `no account named ${JSON.stringify(payer)}`);
      let payeeAcc: AccountRecord | undefined;
      for (const { value } of this.accounts.getRange()) if (value.nodePubkey === pubkey) payeeAcc = value;
      if (!payeeAcc) throw new LightningError('UNKNOWN_INVOICE', `no route to node ${pubkey} on the dev network`);
      if (payeeAcc.name === payer) throw new LightningError('SELF_PAYMENT', 'an account cannot keysend to itself');
      if (this.invoices.get(paymentHash)) throw new LightningError('ALREADY_PAID', `payment hash ${paymentHash} is already used on this network (reused preimage)`);
      if (payerAcc.balanceMsat < amountMsat) {
        throw new LightningError('INSUFFICIENT_BALANCE', `insufficient balance: ${payerAcc.balanceMsat} msat available, ${amountMsat} msat needed`);
      }
      this.claimRequest(opts.requestId, paymentHash);
      if (opts.budget) {
        const spent = this.spentVia(payer, opts.via ?? '', opts.budget.sinceSecs);
        if (spent + amountMsat > opts.budget.limitMsat) {
          throw new LightningError('QUOTA_EXCEEDED', `budget exceeded: ${spent} of ${opts.budget.limitMsat} msat used, this payment needs ${amountMsat} msat`);
        }
      }
      const invoice: InvoiceRecord = {
        paymentHash,
        bolt11: '',
        account: payeeAcc.name,
        payee: pubkey,
        amountMsat,
        createdAt: now,
        expiresAt: now,
        preimage,
        paid: true,
        settledAt: now,
        payer,
        keysend: true,
        ...(opts.tlvRecords?.length ? { metadata: { tlv_records: opts.tlvRecords } } : {}),
      };
      const payment: PaymentRecord = {
        paymentHash,
        bolt11: '',
        account: payer,
        payeeAccount: payeeAcc.name,
        payee: pubkey,
        amountMsat,
        feeMsat: 0,
        preimage,
        createdAt: now,
        settledAt: now,
        invoiceCreatedAt: now,
        expiresAt: now,
        ...(opts.via !== undefined ? { via: opts.via } : {}),
      };
      this.accounts.putSync(payer, { ...payerAcc, balanceMsat: payerAcc.balanceMsat - amountMsat });
      this.accounts.putSync(payeeAcc.name, { ...payeeAcc, balanceMsat: payeeAcc.balanceMsat + amountMsat });
      this.invoices.putSync(paymentHash, invoice);
      this.txs.putSync([payeeAcc.name, now, 'in', paymentHash], null);
      this.payments.putSync([payer, paymentHash], payment);
      this.txs.putSync([payer, now, 'out', paymentHash], null);
      return { payment, invoice };
    });
    this.log.info({ payer, payee: result.invoice.account, paymentHash, amountMsat }, 'keysend settled');
    this.emitSettled(result);
    return result.payment;
  }

  /** Inside a payment transaction: records `requestId`, refusing one seen before. */
  private claimRequest(requestId: string | undefined, paymentHash: string): void {
    if (requestId === undefined) return;
    const prior = this.requests.get(requestId);
    if (prior !== undefined) throw new LightningError('ALREADY_PAID', `request ${requestId} was already processed (payment ${prior})`);
    this.requests.putSync(requestId, paymentHash);
  }

  /** Total (amount + fees) `account` paid with this `via` since `sinceSecs` (inclusive). */
  spentVia(account: string, via: string, sinceSecs: number): number {
    let sum = 0;
    for (const key of this.txs.getKeys({ start: [account, sinceSecs], end: [account, Number.MAX_SAFE_INTEGER] })) {
      const [, , dir, hash] = key as TxKey;
      if (dir !== 'out') continue;
      const p = this.payments.get([account, hash]);
      if (p && p.via === via) sum += p.amountMsat + p.feeMsat;
    }
    return sum;
  }

  // ---- history ----------------------------------------------------------------------

  /** Transactions of `account`, newest first (NIP-47 list_transactions semantics). */
  listTransactions(account: string, q: ListTransactionsQuery = {}): { transactions: Transaction[]; totalCount: number } {
    this.requireAccount(account);
    const from = q.from ?? 0;
    const until = q.until ?? Number.MAX_SAFE_INTEGER;
    const keys: TxKey[] = [];
    for (const key of this.txs.getKeys({ start: [account, from], end: [account, until + 1] })) keys.push(key as TxKey);
    keys.reverse();
    const all: Transaction[] = [];
    for (const [, , dir, hash] of keys) {
      if (q.type === 'incoming' && dir !== 'in') continue;
      if (q.type === 'outgoing' && dir !== 'out') continue;
      if (dir === 'in') {
        const inv = this.lookupInvoice(hash);
        if (!inv) continue;
        if (inv.state !== 'paid' && !q.unpaid) continue;
        all.push({ type: 'incoming', ...inv });
      } else {
        const p = this.lookupPayment(account, hash);
        if (p) all.push({ type: 'outgoing', state: 'paid', ...p });
      }
    }
    const offset = Math.max(0, q.offset ?? 0);
    const limit = q.limit === undefined ? all.length : Math.max(0, q.limit);
    return { transactions: all.slice(offset, offset + limit), totalCount: all.length };
  }

  // ---- settlement notifications -----------------------------------------------------

  /** Called after every settlement committed by this process. Returns an unsubscribe function. */
  onSettled(listener: (e: SettledEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `onPaid` once when the invoice is settled — by this process (immediately) or by
   * another process sharing the LMDB files (noticed by a light poll while anything is
   * watched). Returns an unsubscribe function.
   */
  watchInvoice(paymentHash: string, onPaid: () => void): () => void {
    const hash = paymentHash.toLowerCase();
    let done = false;
    const fire = () => {
      if (done) return;
      done = true;
      unsubscribe();
      onPaid();
    };
    const unsubscribe = () => {
      const set = this.watched.get(hash);
      set?.delete(fire);
      if (set && set.size === 0) this.watched.delete(hash);
      if (this.watched.size === 0 && this.pollTimer) {
        clearInterval(this.pollTimer);
        this.pollTimer = undefined;
      }
    };
    let set = this.watched.get(hash);
    if (!set) this.watched.set(hash, (set = new Set()));
    set.add(fire);
    if (this.invoices.get(hash)?.paid) queueMicrotask(fire);
    else if (!this.pollTimer && !this.closed) {
      // Ref'd on purpose: a pending watch is work in progress; unsubscribing or close() ends it.
      this.pollTimer = setInterval(() => this.pollWatched(), this.pollIntervalMs);
    }
    return () => {
      done = true;
      unsubscribe();
    };
  }

  private pollWatched(): void {
    for (const [hash, set] of [...this.watched]) {
      if (this.invoices.get(hash)?.paid) for (const fire of [...set]) fire();
    }
  }

  private emitSettled(e: SettledEvent): void {
    for (const fire of [...(this.watched.get(e.invoice.paymentHash) ?? [])]) {
      try {
        fire();
      } catch (err) {
        this.log.error({ err, paymentHash: e.invoice.paymentHash }, 'invoice watcher threw');
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err, paymentHash: e.invoice.paymentHash }, 'settlement listener threw');
      }
    }
  }

  // ---- invariants -------------------------------------------------------------------

  /** Money conservation: the sum of balances plus in-flight payments equals all funding. */
  checkInvariant(): Invariant {
    return this.root.transactionSync(() => {
      let balances = 0;
      let n = 0;
      for (const { value } of this.accounts.getRange()) {
        balances += value.balanceMsat;
        n++;
      }
      const total = (this.meta.get('totalFundedMsat') as number) ?? 0;
      const inFlight = 0;
      return { ok: balances + inFlight === total, totalFundedMsat: total, balancesMsat: balances, inFlightMsat: inFlight, accounts: n };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.watched.clear();
    this.listeners.clear();
    await this.root.close();
  }

  private toInvoice(rec: InvoiceRecord): Invoice {
    const state: InvoiceState = rec.paid ? 'paid' : this.now() >= rec.expiresAt ? 'expired' : 'unpaid';
    const { preimage, ...rest } = rec;
    return rec.paid ? { ...rest, preimage, state } : { ...rest, state };
  }
}

function publicAccount(rec: AccountRecord): AccountInfo {
  const { nodeSecret: _secret, ...rest } = rec;
  void _secret;
  return rest;
}

/** Verifies that `preimage` hashes to `paymentHash` (both hex). */
export function preimageMatches(preimage: string, paymentHash: string): boolean {
  if (!HEX32.test(preimage.toLowerCase()) || !HEX32.test(paymentHash.toLowerCase())) return false;
  return bytesToHex(sha256(hexToBytes(preimage.toLowerCase()))) === paymentHash.toLowerCase();
}
