// NIP-47 request handling for one connection, independent of Nostr transport: a decrypted
// `{ method, params }` in, a `{ result_type, error, result }` out. Everything that can go
// wrong becomes a NIP-47 error code with a human-readable message; nothing throws.
import type { Logger } from 'pino';
import { decodeInvoice } from '../lightning/bolt11-codec.ts';
import { LightningError } from '../lightning/errors.ts';
import type { Invoice, LightningNetwork, PaymentRecord, Transaction } from '../lightning/network.ts';
import { NWC_METHODS, NWC_NOTIFICATIONS, type BudgetRenewal, type ConnectionRecord, type NwcMethod } from './connections.ts';

export const NwcErrorCode = {
  RATE_LIMITED: 'RATE_LIMITED',
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  INSUFFICIENT_BALANCE: 'INSUFFICIENT_BALANCE',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  RESTRICTED: 'RESTRICTED',
  UNAUTHORIZED: 'UNAUTHORIZED',
  INTERNAL: 'INTERNAL',
  UNSUPPORTED_ENCRYPTION: 'UNSUPPORTED_ENCRYPTION',
  PAYMENT_FAILED: 'PAYMENT_FAILED',
  NOT_FOUND: 'NOT_FOUND',
  OTHER: 'OTHER',
} as const;
export type NwcErrorCode = (typeof NwcErrorCode)[keyof typeof NwcErrorCode];

export interface NwcError {
  readonly code: NwcErrorCode;
  readonly message: string;
}

export interface NwcResponse {
  readonly result_type: string;
  readonly error: NwcError | null;
  readonly result: unknown;
}

/** NIP-47 transaction object. */
export interface NwcTransaction {
  type: 'incoming' | 'outgoing';
  state: 'settled' | 'pending' | 'failed';
  /** Absent for keysend payments (no invoice). */
  invoice?: string;
  description?: string;
  description_hash?: string;
  preimage?: string;
  payment_hash: string;
  amount: number;
  fees_paid: number;
  created_at: number;
  expires_at?: number;
  settled_at?: number;
  metadata?: unknown;
}

export interface HandlerContext {
  readonly network: LightningNetwork;
  readonly connection: ConnectionRecord;
  readonly logger: Logger;
  /** Unix seconds. */
  readonly now: () => number;
  /** Id of the request event: payments record it so a replayed request never pays twice. */
  readonly requestId?: string;
}

export const DEVNET_ALIAS = 'bazaar-devnet';
/** Bitcoin regtest genesis block hash: the devnet has no chain, it reports regtest at height 0. */
const REGTEST_GENESIS = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';

export function errorResponse(method: string, code: NwcErrorCode, message: string): NwcResponse {
  return { result_type: method, error: { code, message }, result: null };
}

const ok = (method: string, result: unknown): NwcResponse => ({ result_type: method, error: null, result });

class ParamError extends Error {}

function obj(params: unknown): Record<string, unknown> {
  if (params === undefined || params === null) return {};
  if (typeof params !== 'object' || Array.isArray(params)) throw new ParamError('params must be an object');
  return params as Record<string, unknown>;
}

function optInt(p: Record<string, unknown>, key: string, min = 0): number | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ParamError(`${key} must be an integer >= ${min}`);
  return v;
}

function optString(p: Record<string, unknown>, key: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ParamError(`${key} must be a string`);
  return v;
}

export function invoiceToNwc(inv: Invoice): NwcTransaction {
  return {
    type: 'incoming',
    state: inv.state === 'paid' ? 'settled' : inv.state === 'expired' ? 'failed' : 'pending',
    ...(inv.bolt11 ? { invoice: inv.bolt11 } : {}),
    ...(inv.description !== undefined ? { description: inv.description } : {}),
    ...(inv.descriptionHash !== undefined ? { description_hash: inv.descriptionHash } : {}),
    ...(inv.preimage !== undefined ? { preimage: inv.preimage } : {}),
    payment_hash: inv.paymentHash,
    amount: inv.amountMsat,
    fees_paid: 0,
    created_at: inv.createdAt,
    expires_at: inv.expiresAt,
    ...(inv.settledAt !== undefined ? { settled_at: inv.settledAt } : {}),
    ...(inv.metadata !== undefined ? { metadata: inv.metadata } : {}),
  };
}

export function paymentToNwc(p: PaymentRecord): NwcTransaction {
  return {
    type: 'outgoing',
    state: 'settled',
    ...(p.bolt11 ? { invoice: p.bolt11 } : {}),
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(p.descriptionHash !== undefined ? { description_hash: p.descriptionHash } : {}),
    preimage: p.preimage,
    payment_hash: p.paymentHash,
    amount: p.amountMsat,
    fees_paid: p.feeMsat,
    created_at: p.createdAt,
    expires_at: p.expiresAt,
    settled_at: p.settledAt,
  };
}

function txToNwc(tx: Transaction): NwcTransaction {
  if (tx.type === 'incoming') {
    const { type: _t, ...inv } = tx;
    void _t;
    return invoiceToNwc(inv);
  }
  const { type: _t, state: _s, ...p } = tx;
  void _t;
  void _s;
  return paymentToNwc(p);
}

/** Start of the current budget period and the next renewal (unix seconds, UTC calendar). */
export function budgetPeriod(renewal: BudgetRenewal, nowSecs: number): { since: number; renewsAt?: number } {
  if (renewal === 'never') return { since: 0 };
  const d = new Date(nowSecs * 1000);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  let start: number;
  let next: number;
  switch (renewal) {
    case 'daily':
      start = Date.UTC(y, m, day);
      next = Date.UTC(y, m, day + 1);
      break;
    case 'weekly': {
      const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
      start = Date.UTC(y, m, day - dow);
      next = Date.UTC(y, m, day - dow + 7);
      break;
    }
    case 'monthly':
      start = Date.UTC(y, m, 1);
      next = Date.UTC(y, m + 1, 1);
      break;
    case 'yearly':
      start = Date.UTC(y, 0, 1);
      next = Date.UTC(y + 1, 0, 1);
      break;
  }
  return { since: Math.floor(start / 1000), renewsAt: Math.floor(next / 1000) };
}

function mapLightningError(method: string, err: LightningError): NwcResponse {
  switch (err.code) {
    case 'INSUFFICIENT_BALANCE':
      return errorResponse(method, 'INSUFFICIENT_BALANCE', err.message);
    case 'QUOTA_EXCEEDED':
      return errorResponse(method, 'QUOTA_EXCEEDED', err.message);
    case 'INVALID_INVOICE':
    case 'UNKNOWN_INVOICE':
    case 'ALREADY_PAID':
    case 'EXPIRED':
    case 'SELF_PAYMENT':
    case 'FEE_LIMIT':
    case 'ABORTED':
      return errorResponse(method, method === 'pay_invoice' || method === 'pay_keysend' ? 'PAYMENT_FAILED' : 'OTHER', err.message);
    case 'INVALID_ARGUMENT':
      return errorResponse(method, 'OTHER', err.message);
    case 'UNKNOWN_ACCOUNT':
    case 'ACCOUNT_EXISTS':
      return errorResponse(method, 'INTERNAL', err.message);
  }
}

/** Most payments one multi_pay_* request may carry. */
export const MAX_MULTI_PAY = 50;

const MULTI = {
  multi_pay_invoice: { items: 'invoices', single: 'pay_invoice' },
  multi_pay_keysend: { items: 'keysends', single: 'pay_keysend' },
} as const;

/**
 * multi_pay_invoice / multi_pay_keysend: pays each item independently (one failing does not
 * stop the others) and returns one response per item with its `d` tag value: the item's
 * `id`, else the invoice's payment hash / the keysend pubkey (NIP-47). Never throws.
 */
export function handleMultiPay(ctx: HandlerContext, method: keyof typeof MULTI, params: unknown): { d: string | undefined; response: NwcResponse }[] {
  const spec = MULTI[method];
  if (!ctx.connection.methods.includes(method)) return [{ d: undefined, response: errorResponse(method, 'RESTRICTED', `this connection may not call ${method}`) }];
  const p = params !== null && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>) : {};
  const items = p[spec.items];
  if (!Array.isArray(items) || items.length === 0) return [{ d: undefined, response: errorResponse(method, 'OTHER', `invalid params: ${spec.items} must be a non-empty array`) }];
  if (items.length > MAX_MULTI_PAY) return [{ d: undefined, response: errorResponse(method, 'OTHER', `invalid params: at most ${MAX_MULTI_PAY} payments per request`) }];
  // Permission to multi-pay is permission to pay each item.
  const single: HandlerContext = { ...ctx, connection: { ...ctx.connection, methods: [...ctx.connection.methods, spec.single] } };
  return items.map((item, i) => {
    const it = item !== null && typeof item === 'object' && !Array.isArray(item) ? (item as Record<string, unknown>) : {};
    let d = typeof it.id === 'string' && it.id !== '' ? it.id : undefined;
    if (d === undefined && method === 'multi_pay_keysend' && typeof it.pubkey === 'string') d = it.pubkey;
    if (d === undefined && method === 'multi_pay_invoice' && typeof it.invoice === 'string') {
      try {
        d = decodeInvoice(it.invoice).paymentHash;
      } catch {
        d = undefined;
      }
    }
    const { id: _id, ...rest } = it;
    void _id;
    const res = handleNwcRequest(ctx.requestId !== undefined ? { ...single, requestId: `${ctx.requestId}:${i}` } : single, spec.single, rest);
    return { d: d ?? String(i), response: { ...res, result_type: method } };
  });
}

/** Handles one decrypted request for `ctx.connection`. Never throws. */
export function handleNwcRequest(ctx: HandlerContext, method: unknown, params: unknown): NwcResponse {
  if (typeof method !== 'string' || method === '') return errorResponse('', 'OTHER', 'request has no method');
  if (!(NWC_METHODS as readonly string[]).includes(method)) return errorResponse(method, 'NOT_IMPLEMENTED', `method ${method} is not implemented by the devnet wallet service`);
  const conn = ctx.connection;
  if (!conn.methods.includes(method as NwcMethod)) return errorResponse(method, 'RESTRICTED', `this connection may not call ${method}`);
  const { network } = ctx;
  if (method === 'multi_pay_invoice' || method === 'multi_pay_keysend') return errorResponse(method, 'INTERNAL', `${method} answers with one event per payment (handleMultiPay)`);
  try {
    const p = obj(params);
    switch (method as NwcMethod) {
      case 'get_info': {
        const acc = network.requireAccount(conn.account);
        return ok(method, {
          alias: DEVNET_ALIAS,
          color: '#f7931a',
          pubkey: acc.nodePubkey,
          network: 'regtest',
          block_height: 0,
          block_hash: REGTEST_GENESIS,
          methods: [...conn.methods],
          notifications: [...NWC_NOTIFICATIONS],
        });
      }
      case 'get_balance':
        return ok(method, { balance: network.balance(conn.account) });
      case 'get_budget': {
        if (conn.maxAmountMsat === undefined) return ok(method, {});
        const period = budgetPeriod(conn.budgetRenewal, ctx.now());
        return ok(method, {
          used_budget: network.spentVia(conn.account, conn.walletPubkey, period.since),
          total_budget: conn.maxAmountMsat,
          ...(period.renewsAt !== undefined ? { renews_at: period.renewsAt } : {}),
          renewal_period: conn.budgetRenewal,
        });
      }
      case 'make_invoice': {
        const amount = optInt(p, 'amount', 1);
        if (amount === undefined) throw new ParamError('amount (msat) is required');
        const description = optString(p, 'description');
        const descriptionHash = optString(p, 'description_hash');
        const expiry = optInt(p, 'expiry', 1);
        const inv = network.createInvoice(conn.account, amount, description, expiry, {
          ...(descriptionHash !== undefined && description === undefined ? { descriptionHash } : {}),
          ...(p.metadata !== undefined && p.metadata !== null ? { metadata: p.metadata } : {}),
        });
        ctx.logger.info({ account: conn.account, paymentHash: inv.paymentHash, amountMsat: amount }, 'nwc invoice made');
        return ok(method, invoiceToNwc(inv));
      }
      case 'pay_invoice': {
        const invoice = optString(p, 'invoice');
        if (invoice === undefined || invoice.trim() === '') throw new ParamError('invoice is required');
        const amount = optInt(p, 'amount', 1);
        const budget = conn.maxAmountMsat === undefined ? undefined : { limitMsat: conn.maxAmountMsat, sinceSecs: budgetPeriod(conn.budgetRenewal, ctx.now()).since };
        const paid = network.pay(conn.account, invoice, {
          via: conn.walletPubkey,
          ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
          ...(amount !== undefined ? { amountMsat: amount } : {}),
          ...(budget ? { budget } : {}),
        });
        ctx.logger.info({ account: conn.account, paymentHash: paid.paymentHash, amountMsat: paid.amountMsat }, 'nwc invoice paid');
        return ok(method, { preimage: paid.preimage, fees_paid: paid.feeMsat });
      }
      case 'pay_keysend': {
        const amount = optInt(p, 'amount', 1);
        if (amount === undefined) throw new ParamError('amount (msat) is required');
        const pubkey = optString(p, 'pubkey');
        if (pubkey === undefined) throw new ParamError('pubkey is required');
        const preimage = optString(p, 'preimage');
        const tlv = p.tlv_records;
        if (tlv !== undefined && tlv !== null && (!Array.isArray(tlv) || !tlv.every((r) => r !== null && typeof r === 'object' && Number.isSafeInteger((r as { type?: unknown }).type) && typeof (r as { value?: unknown }).value === 'string' && /^([0-9a-f]{2})*$/i.test((r as { value: string }).value)))) {
          throw new ParamError('tlv_records must be [{ type: integer, value: hex }]');
        }
        const budget = conn.maxAmountMsat === undefined ? undefined : { limitMsat: conn.maxAmountMsat, sinceSecs: budgetPeriod(conn.budgetRenewal, ctx.now()).since };
        const paid = network.keysend(conn.account, pubkey, amount, {
          via: conn.walletPubkey,
          ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
          ...(preimage !== undefined ? { preimage } : {}),
          ...(Array.isArray(tlv) && tlv.length ? { tlvRecords: tlv as { type: number; value: string }[] } : {}),
          ...(budget ? { budget } : {}),
        });
        ctx.logger.info({ account: conn.account, paymentHash: paid.paymentHash, amountMsat: paid.amountMsat }, 'nwc keysend paid');
        return ok(method, { preimage: paid.preimage, fees_paid: paid.feeMsat });
      }
      case 'lookup_invoice': {
        let hash = optString(p, 'payment_hash')?.toLowerCase();
        const invoice = optString(p, 'invoice');
        if (hash === undefined && invoice === undefined) throw new ParamError('one of payment_hash or invoice is required');
        if (hash === undefined) hash = decodeInvoice(invoice!).paymentHash;
        if (!/^[0-9a-f]{64}$/.test(hash)) throw new ParamError('payment_hash must be 32 bytes of hex');
        const inv = network.lookupInvoice(hash);
        if (inv && inv.account === conn.account) return ok(method, invoiceToNwc(inv));
        const pay = network.lookupPayment(conn.account, hash);
        if (pay) return ok(method, paymentToNwc(pay));
        return errorResponse(method, 'NOT_FOUND', `no invoice or payment ${hash} in this wallet`);
      }
      case 'list_transactions': {
        const type = optString(p, 'type');
        if (type !== undefined && type !== 'incoming' && type !== 'outgoing') throw new ParamError('type must be "incoming" or "outgoing"');
        const unpaid = p.unpaid;
        if (unpaid !== undefined && unpaid !== null && typeof unpaid !== 'boolean') throw new ParamError('unpaid must be a boolean');
        const from = optInt(p, 'from');
        const until = optInt(p, 'until');
        const limit = optInt(p, 'limit');
        const offset = optInt(p, 'offset');
        const { transactions, totalCount } = network.listTransactions(conn.account, {
          ...(from !== undefined ? { from } : {}),
          ...(until !== undefined ? { until } : {}),
          ...(limit !== undefined ? { limit } : {}),
          ...(offset !== undefined ? { offset } : {}),
          ...(unpaid === true ? { unpaid: true } : {}),
          ...(type !== undefined ? { type } : {}),
        });
        return ok(method, { transactions: transactions.map(txToNwc), total_count: totalCount });
      }
    }
  } catch (err) {
    if (err instanceof ParamError) return errorResponse(method, 'OTHER', `invalid params: ${err.message}`);
    if (err instanceof LightningError) return mapLightningError(method, err);
    ctx.logger.error({ err, method, account: conn.account }, 'nwc request failed');
    return errorResponse(method, 'INTERNAL', 'internal error');
  }
  return errorResponse(method, 'NOT_IMPLEMENTED', `method ${method} is not implemented`);
}
