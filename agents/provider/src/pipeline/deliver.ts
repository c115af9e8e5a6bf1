// Deliver: the product becomes the signed result event. It is priced by the price book (the
// measured units after-verify; the agreed price for prepay and escrow), carries what is owed —
// after-verify a bolt11 from settle, escrow our half-signed claim — is sealed with NIP-44 for
// private jobs, and is **stored signed before it is published**: a restart republishes the
// same event id, never a second result. Results no relay accepted yet are retried.
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { sealJobResult } from '@bazaar/dvm-kinds/private';
import { priceFor } from '@bazaar/dvm-kinds/pricing';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import type { ProviderConfig } from '../config.ts';
import type { InvoiceRef, JobRecord, ProviderStore } from '../store.ts';
import { ESCROW_CLAIM_TAG, type EscrowDesk } from '../escrow-desk.ts';
import type { Produced } from '../backends/backend.ts';
import type { Publisher } from './publisher.ts';
import { LeaseLostError } from '../pool/claims.ts';

export interface DeliverOptions {
  readonly store: ProviderStore;
  readonly identity: Identity;
  readonly log: Logger;
  readonly config: () => ProviderConfig;
  readonly publisher: Publisher;
  readonly escrow: EscrowDesk | undefined;
  /** An invoice for `msats` (after-verify), or undefined when there is no wallet to make one. */
  readonly invoice: (msats: number, jobId: string) => Promise<InvoiceRef | undefined>;
  /** Watch a delivered job's invoice until it is paid or expires. */
  readonly watch: (jobId: string) => void;
  /**
   * In a provider pool: the fence. The signed result is written into the job's claim before it
   * is stored or published; a reason back means this worker lost the job and must not publish.
   */
  readonly fence?: (rec: JobRecord, result: NostrEvent) => Promise<string | undefined>;
  /** A relay took the result (in a pool: the claim is closed). */
  readonly onPublished?: (rec: JobRecord) => void;
}

export class Deliverer {
  readonly #o: DeliverOptions;
  /** Jobs whose stored result no relay accepted yet. */
  readonly #unpublished = new Set<string>();

  constructor(o: DeliverOptions) {
    this.#o = o;
  }

  async deliver(job: JobRecord, produced: Produced, trajectorySha256: string, log: Logger): Promise<void> {
    const o = this.#o;
    let rec = job;
    const price = priceFor(rec.kind, o.config().prices, produced.units);
    const msats = rec.terms === 'after-verify' ? (price.ok ? price.value.msats : 0) : rec.priceMsats ?? 0;
    let invoice = rec.invoice;
    if (rec.terms === 'after-verify' && msats > 0) {
      try {
        invoice = await o.invoice(msats, rec.id);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'make_invoice failed; the result carries the amount without an invoice');
      }
    }
    let claimTag: string[] | undefined;
    if (rec.terms === 'escrow' && rec.escrow && o.escrow) {
      const claim = await o.escrow.prepare(rec.escrow);
      rec = await o.store.update(rec.id, { escrow: { ...rec.escrow, claimId: claim.claimId } });
      claimTag = [ESCROW_CLAIM_TAG, claim.signedPackage];
    }
    const template = produced.template;
    // The amount tag: what is owed and, after-verify, the invoice to pay it with.
    const owed: string[][] = [];
    if (rec.terms === 'after-verify') owed.push(invoice ? ['amount', String(msats), invoice.bolt11] : ['amount', String(msats)]);
    if (claimTag) owed.push(['amount', String(rec.escrow!.priceSats * 1000)], claimTag);
    const withAmount: EventTemplate = {
      ...template,
      tags: [...template.tags.filter((t) => t[0] !== 'amount' && t[0] !== 'trajectory_sha256'), ...owed, ['trajectory_sha256', trajectorySha256]],
    };
    const sealed = rec.encrypted ? sealJobResult(withAmount, o.identity.secretKey, rec.customer) : ({ ok: true, value: withAmount } as const);
    if (!sealed.ok) throw new Error(formatProblems(sealed.errors));
    const result = finalizeEvent(sealed.value, o.identity.secretKey) as NostrEvent;
    const lost = await o.fence?.(rec, result);
    if (lost) throw new LeaseLostError(lost);
    // Prepaid: the earning was booked when the prepayment arrived; the job settles now.
    const finish = rec.terms === 'prepay' ? ({ type: 'finish-prepaid' } as const) : ({ type: 'finish' } as const);
    const next = await o.store.transition(rec.id, finish, { result, resultPublished: false, trajectorySha256, priceMsats: msats, finishedAt: Date.now(), ...(invoice ? { invoice } : {}) });
    await this.publish(next, log);
    if (next.state === 'delivered' && invoice) o.watch(rec.id);
    await o.publisher.feedback(next, { status: 'success', message: 'result delivered' });
    log.info({ msats, resultId: result.id, terms: rec.terms }, 'result delivered');
  }

  /** Publishes a stored result; until some relay accepts it, it is retried by retryUnpublished(). */
  async publish(rec: JobRecord, log: Logger): Promise<void> {
    if (!rec.result) return;
    const res = await this.#o.publisher.result(rec, rec.result);
    if (res.some((r) => r.ok || r.message.startsWith('duplicate:'))) {
      this.#unpublished.delete(rec.id);
      await this.#o.store.update(rec.id, { resultPublished: true });
      this.#o.onPublished?.(rec);
    } else {
      this.#unpublished.add(rec.id);
      log.warn({ relays: res.map((r) => `${r.url}: ${r.message}`) }, 'no relay accepted the result yet; it will be republished');
    }
  }

  /** Marks a recovered job whose result was never accepted, to be republished. */
  pending(id: string): void {
    this.#unpublished.add(id);
  }

  async retryUnpublished(): Promise<void> {
    for (const id of [...this.#unpublished]) {
      const rec = this.#o.store.get(id);
      if (!rec?.result || rec.resultPublished) {
        this.#unpublished.delete(id);
        continue;
      }
      await this.publish(rec, this.#o.log.child({ jobId: id }));
    }
  }
}
