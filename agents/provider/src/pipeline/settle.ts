// Settle: getting paid. Invoices come from the agent's Wallet (NWC make_invoice, retried on
// a wallet's rate limit); payments are seen through the wallet's payment_received
// notifications (the fast path) and lookup_invoice polling (the safety net, gentle: each
// invoice looked up with backoff, a few per tick). A prepayment releases its job to execute;
// a payment after delivery settles the job. An escrow release (the buyer's receipt or the
// arbiter's verdict carrying our claim co-signed) is redeemed at the mint. The earning is
// written in the same store transaction as the move to `settled` (or to `queued`, prepaid).
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { isWalletRefusal, type LightningWalletError } from '@bazaar/agents-common/wallet/lightning';
import type { ProviderConfig } from '../config.ts';
import type { InvoiceRef, JobRecord, ProviderStore } from '../store.ts';
import { openEscrowRelease } from '@bazaar/dvm-kinds/market/escrow';
import type { Filter } from 'nostr-tools/filter';
import { VERDICT_KIND, parseVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { DISPUTE_KIND, parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { arbiterAnnouncementFilter, checkArbiterFee, newestArbiterAnnouncement } from '@bazaar/agents-common/arbiter-fee';
import type { EscrowDesk } from '../escrow-desk.ts';
import type { PreparedJob } from '../backends/registry.ts';
import { maxPriceMsats } from './decide.ts';
import type { Publisher } from './publisher.ts';

const MAX_LOOKUPS_PER_TICK = 5;
const MAX_POLL_BACKOFF_MS = 300_000;

export interface SettleOptions {
  readonly store: ProviderStore;
  readonly log: Logger;
  readonly config: () => ProviderConfig;
  readonly publisher: Publisher;
  /** The wallet when it has a Lightning rail to invoice with. */
  readonly wallet: Wallet | null;
  readonly escrow: EscrowDesk | undefined;
  /** Our identity key: an arbiter's verdict seals the release to the winner. */
  readonly secretKey: Uint8Array;
  readonly pollMs: number;
  /** A prepaid job may run now. */
  readonly onPrepaid: (id: string) => void;
  /** Our Nostr key and a relay query: a verdict's author must be the arbiter the buyer's dispute named. */
  readonly pubkey?: string;
  readonly query?: (filters: Filter[]) => Promise<NostrEvent[]>;
}

export class Settler {
  readonly #o: SettleOptions;
  readonly #watching = new Set<string>();
  readonly #nextCheck = new Map<string, { at: number; n: number }>();
  readonly #settling = new Set<string>();
  readonly #paying = new Set<string>();
  #paidSub: Promise<() => void> | undefined;
  #stopped = false;

  constructor(o: SettleOptions) {
    this.#o = o;
  }

  get hasWallet(): boolean {
    return this.#o.wallet !== null;
  }

  /** Starts listening for payment notifications (not awaited: polling covers a slow wallet). */
  start(): void {
    this.#paidSub = this.#o.wallet?.onPaymentReceived((s) => void this.#onPaymentHash(s.paymentHash));
    this.#paidSub?.catch((err: unknown) => this.#o.log.warn({ err: (err as Error).message }, 'payment notifications unavailable; polling only'));
  }

  stop(): void {
    this.#stopped = true;
    void this.#paidSub?.then((off) => off(), () => {});
  }

  /** Watches a job's invoice until it is paid or expires. */
  watch(id: string): void {
    this.#watching.add(id);
  }

  /** make_invoice, retried on a wallet's rate limit (3 attempts, 250 ms then 1 s apart); undefined without a wallet. */
  async invoice(msats: number, jobId: string): Promise<InvoiceRef | undefined> {
    const wallet = this.#o.wallet;
    if (!wallet) return undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const inv = await wallet.makeInvoice({ amountMsat: msats, description: `bazaar job ${jobId}`, expirySecs: this.#o.config().invoiceExpirySecs });
        return { bolt11: inv.bolt11, paymentHash: inv.paymentHash, msats: inv.amountMsat, expiresAt: inv.expiresAt };
      } catch (err) {
        if ((err as LightningWalletError).nip47Code !== 'RATE_LIMITED' || attempt >= 2 || this.#stopped) throw err;
        await new Promise((r) => setTimeout(r, attempt === 0 ? 250 : 1000));
      }
    }
  }

  /** Prepay terms: the most the job can cost, asked for in `payment-required` feedback. */
  async requestPrepayment(rec: JobRecord, job: PreparedJob, log: Logger): Promise<void> {
    const o = this.#o;
    if (!o.wallet) {
      await o.store.transition(rec.id, { type: 'fail', reason: 'no wallet' }, { error: 'prepay terms need a wallet' });
      await o.publisher.feedback(rec, { status: 'error', errorCode: 'SERVICE_UNAVAILABLE', message: 'the provider has no wallet to take payment' });
      return;
    }
    const msats = maxPriceMsats(o.config(), job);
    let invoice: InvoiceRef | undefined;
    try {
      invoice = await this.invoice(msats, rec.id);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'make_invoice failed');
    }
    if (!invoice) {
      await o.store.transition(rec.id, { type: 'fail', reason: 'wallet' }, { error: 'make_invoice failed' });
      await o.publisher.feedback(rec, { status: 'error', errorCode: 'SERVICE_UNAVAILABLE', message: 'the provider wallet is unavailable' });
      return;
    }
    await o.store.transition(rec.id, { type: 'request-payment' }, { invoice, priceMsats: msats });
    this.watch(rec.id);
    await o.publisher.feedback(rec, { status: 'payment-required', amount: { msats, bolt11: invoice.bolt11 }, message: 'pay this invoice to start the job' });
    log.info({ msats }, 'payment requested');
  }

  async #onPaymentHash(hash: string): Promise<void> {
    for (const id of this.#watching) {
      const rec = this.#o.store.get(id);
      if (rec?.invoice?.paymentHash === hash) await this.#checkPaid(rec);
    }
  }

  /**
   * Notifications are the fast path; polling is the safety net, so it is gentle on the
   * wallet (NWC services rate-limit per connection): each invoice is looked up with
   * exponential backoff (poll interval × 2^n, at most 5 min) and a bounded number per tick.
   */
  async poll(): Promise<void> {
    const now = Date.now();
    const due = [...this.#watching].filter((id) => (this.#nextCheck.get(id)?.at ?? 0) <= now).slice(0, MAX_LOOKUPS_PER_TICK);
    for (const id of due) {
      const rec = this.#o.store.get(id);
      if (!rec) {
        this.#watching.delete(id);
        continue;
      }
      const n = this.#nextCheck.get(id)?.n ?? 0;
      this.#nextCheck.set(id, { at: now + Math.min(MAX_POLL_BACKOFF_MS, this.#o.pollMs * 2 ** n), n: n + 1 });
      await this.#checkPaid(rec);
      if (!this.#watching.has(id)) this.#nextCheck.delete(id);
    }
  }

  async #checkPaid(rec: JobRecord): Promise<void> {
    const o = this.#o;
    if (!rec.invoice || !o.wallet || this.#settling.has(rec.id)) return;
    this.#settling.add(rec.id);
    try {
      const look = await o.wallet.lookupInvoice(rec.invoice.paymentHash);
      const cur = o.store.get(rec.id);
      if (!cur) return;
      if (look?.settlement) {
        this.#watching.delete(rec.id);
        const paidAt = look.settlement.settledAt ? look.settlement.settledAt * 1000 : Date.now();
        const earning = { source: 'lightning' as const, msats: cur.invoice!.msats, paidAt, paymentHash: cur.invoice!.paymentHash };
        if (cur.state === 'awaiting-payment') {
          // Prepaid: the earning is booked now, the job runs next.
          await o.store.transition(cur.id, { type: 'prepaid' }, { paidAt }, earning);
          o.log.info({ jobId: cur.id, msats: earning.msats }, 'prepayment received');
          o.onPrepaid(cur.id);
        } else if (cur.state === 'delivered' || cur.state === 'unpaid') {
          await o.store.transition(cur.id, { type: 'paid' }, { paidAt }, earning);
          o.log.info({ jobId: cur.id, msats: earning.msats }, 'invoice paid: job settled');
        }
      } else if (look?.state === 'expired' || look?.state === 'failed' || rec.invoice.expiresAt < Date.now() / 1000) {
        this.#watching.delete(rec.id);
        if (cur.state === 'delivered') await o.store.transition(cur.id, { type: 'unpaid' });
        else if (cur.state === 'awaiting-payment') {
          await o.store.transition(cur.id, { type: 'fail', reason: 'PAYMENT_TIMEOUT' }, { error: 'the invoice expired unpaid' });
          await o.publisher.feedback(cur, { status: 'error', errorCode: 'PAYMENT_TIMEOUT', message: 'the invoice expired unpaid' });
        }
        o.log.info({ jobId: cur.id }, 'invoice expired unpaid');
      }
    } catch (err) {
      o.log.warn({ jobId: rec.id, err: (err as Error).message }, 'invoice lookup failed; will retry');
    } finally {
      this.#settling.delete(rec.id);
    }
  }

  /** A co-signed escrow claim came back (buyer's receipt or arbiter's verdict): redeem it. The mint enforces who could sign. */
  async onRelease(e: NostrEvent): Promise<void> {
    const o = this.#o;
    // A buyer's receipt carries the release in clear; an arbiter's verdict seals it to the winner.
    if (e.kind === VERDICT_KIND) await this.#verdictFee(e);
    const opened = openEscrowRelease(e, o.secretKey);
    const pkg = opened.ok ? opened.value?.raw : undefined;
    const jobId = e.tags.find((t) => t[0] === 'd')?.[1];
    if (!pkg || !jobId || !o.escrow) return;
    const rec = o.store.get(jobId);
    if (!rec?.escrow?.claimId || (rec.state !== 'delivered' && rec.state !== 'unpaid') || this.#settling.has(jobId)) return;
    const log = o.log.child({ jobId, from: e.pubkey, kind: e.kind });
    this.#settling.add(jobId);
    try {
      const sats = await o.escrow.redeem(rec.escrow, pkg);
      await o.store.transition(jobId, { type: 'paid' }, { paidAt: Date.now() }, { source: 'cashu', msats: sats * 1000, paidAt: Date.now() });
      log.info({ sats }, 'escrow redeemed: job settled');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'escrow release not redeemable');
    } finally {
      this.#settling.delete(jobId);
    }
  }

  /**
   * A verdict against us (ruling `buyer`) may ask the arbiter's fee: paid once, from our wallet,
   * only when the verdict is by the arbiter the buyer's dispute named, the amount is the one the
   * arbiter announced and the invoice's payee its announced node (agents-common arbiter-fee).
   * A re-read verdict (restart, another relay) finds the fee recorded and pays nothing again.
   */
  async #verdictFee(e: NostrEvent): Promise<void> {
    const o = this.#o;
    const jobId = e.tags.find((t) => t[0] === 'd')?.[1];
    if (!jobId || this.#paying.has(jobId)) return; // the same verdict from two relays: one payer
    this.#paying.add(jobId);
    try {
      await this.#verdictFeeOnce(e);
    } finally {
      this.#paying.delete(jobId);
    }
  }

  async #verdictFeeOnce(e: NostrEvent): Promise<void> {
    const o = this.#o;
    const v = parseVerdict(e);
    if (!v.ok || !v.value.fee || v.value.provider !== o.pubkey || v.value.ruling !== 'buyer' || !o.query) return;
    const rec = o.store.get(v.value.requestId);
    if (!rec || rec.customer !== v.value.buyer) return;
    if (rec.arbiterFee && (rec.arbiterFee.state !== 'due' || rec.arbiterFee.verdictId !== e.id)) return;
    const log = o.log.child({ jobId: rec.id, arbiter: e.pubkey });
    let fee = rec.arbiterFee;
    if (!fee) {
      // Only the arbiter the job's customer named in its dispute can charge us.
      const disputes = await o.query([{ kinds: [DISPUTE_KIND], authors: [rec.customer], '#d': [rec.id] }]);
      const named = disputes.map(parseDispute).some((d) => d.ok && d.value.requestId === rec.id && d.value.arbiter === e.pubkey);
      if (!named) {
        log.warn({}, 'a verdict against us asks a fee, but its author is not the arbiter the buyer named: ignored');
        return;
      }
      const ask = checkArbiterFee(v.value, 'provider', newestArbiterAnnouncement(await o.query([arbiterAnnouncementFilter(e.pubkey)]), e.pubkey));
      if (!ask.owed) return;
      fee = ask.ok
        ? { arbiter: e.pubkey, verdictId: e.id, msats: ask.msats, paymentHash: ask.paymentHash, bolt11: ask.bolt11, state: 'due' }
        : { arbiter: e.pubkey, verdictId: e.id, msats: ask.msats, ...(ask.paymentHash ? { paymentHash: ask.paymentHash } : {}), state: 'refused', reason: ask.reason };
      if (!o.wallet && fee.state === 'due') fee = { ...fee, state: 'refused', reason: 'no Lightning wallet to pay it from' };
      await o.store.update(rec.id, { arbiterFee: fee });
      if (fee.state === 'refused') {
        log.warn({ feeMsats: fee.msats, reason: fee.reason }, 'the arbiter ruled against us; its fee is not paid');
        return;
      }
    }
    if (!fee.bolt11 || !o.wallet) return;
    try {
      const p = await o.wallet.pay(fee.bolt11, { maxAmountMsat: fee.msats, jobId: rec.id });
      await o.store.update(rec.id, { arbiterFee: { ...fee, state: 'paid', feesPaidMsat: p.feesPaidMsat, paidAt: Date.now() } });
      log.info({ feeMsats: fee.msats, paymentHash: fee.paymentHash }, 'the arbiter ruled against us: its fee paid');
    } catch (err) {
      const code = (err as LightningWalletError).code;
      // A definite no (over a limit, the wallet refused, expired) ends it; an unknown outcome is retried when the verdict is read again (the wallet never pays an invoice twice).
      const definite = code === 'OVER_BUDGET' || code === 'OVER_LIMIT' || code === 'INVALID_INVOICE' || code === 'EXPIRED' || isWalletRefusal(err);
      if (definite) await o.store.update(rec.id, { arbiterFee: { ...fee, state: 'refused', reason: (err as Error).message } });
      log.warn({ feeMsats: fee.msats, err: (err as Error).message, retried: !definite }, definite ? 'the arbiter\'s fee was refused by our wallet' : 'paying the arbiter\'s fee: outcome unknown, retried');
    }
  }
}
