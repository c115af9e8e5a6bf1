// Decide: whether a recorded request becomes work, in the order a customer would want the
// reasons: expiry (NIP-40), the request itself (NIP-44 opened, parsed by its kind's backend —
// once), the per-customer rate limit, capacity, the customer's price cap, and the payment
// terms (an escrow checked before any work). Every refusal is an `error` feedback with the
// reason; an accepted job goes to execute, or first to settle for a prepayment.
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { ErrorCode } from '@bazaar/dvm-kinds/feedback';
import { formatProblems, type Problem } from '@bazaar/dvm-kinds/problem';
import { openJobRequest } from '@bazaar/dvm-kinds/private';
import { priceFor } from '@bazaar/dvm-kinds/pricing';
import { TokenBuckets } from '@bazaar/policies/rules/token-bucket';
import { systemClock } from '@bazaar/policies/clock';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import type { ProviderConfig } from '../config.ts';
import type { JobRecord, ProviderStore } from '../store.ts';
import { ESCROW_TAG, type EscrowDesk, type EscrowRef } from '../escrow-desk.ts';
import { prepareJob, type PreparedJob } from '../backends/registry.ts';
import type { Publisher } from './publisher.ts';

/** Escrow locks must outlast the job; kinds without their own time limit are given this. */
const DEFAULT_TIME_LIMIT_SECS = 300;

export interface DecideOptions {
  readonly store: ProviderStore;
  readonly identity: Identity;
  readonly config: () => ProviderConfig;
  readonly publisher: Publisher;
  readonly escrow: EscrowDesk | undefined;
  /** Jobs running and waiting now. */
  readonly load: () => { running: number; queued: number };
  readonly enqueue: (id: string, job: PreparedJob) => void;
  readonly requestPrepayment: (rec: JobRecord, job: PreparedJob, log: Logger) => Promise<void>;
}

/** The most a job can cost before it runs (what prepay asks for, what max_cost is checked against). */
export function maxPriceMsats(config: ProviderConfig, job: PreparedJob): number {
  const p = priceFor(job.kind, config.prices, job.maxUnits);
  return p.ok ? p.value.msats : config.prices[job.kind]?.baseMsats ?? 0;
}

/** Opens (decrypts) and parses a stored request: the prepared job, or every problem found. */
export function openRequest(rec: JobRecord, identity: Identity): { ok: true; job: PreparedJob } | { ok: false; problems: readonly Problem[] } {
  let event = rec.request;
  if (rec.encrypted) {
    const opened = openJobRequest(rec.request, identity.secretKey);
    if (!opened.ok) return { ok: false, problems: opened.errors };
    event = opened.value as NostrEvent;
  }
  return prepareJob(event);
}

export class Decider {
  readonly #o: DecideOptions;
  #buckets: { burst: number; perMinute: number; buckets: TokenBuckets } | undefined;

  constructor(o: DecideOptions) {
    this.#o = o;
  }

  /** One token per request from `customer`, at the configured rate (buckets follow config changes). */
  #takeToken(customer: string): boolean {
    const { burst, perMinute } = this.#o.config().rateLimit;
    if (this.#buckets?.burst !== burst || this.#buckets.perMinute !== perMinute) {
      this.#buckets = { burst, perMinute, buckets: new TokenBuckets({ burst, perSecond: perMinute / 60, maxKeys: 10_000, clock: systemClock }) };
    }
    return this.#buckets.buckets.take(customer);
  }

  async #refuse(rec: JobRecord, reason: string, code: ErrorCode, message: string, extra: { content?: string; error?: string } = {}): Promise<void> {
    await this.#o.store.transition(rec.id, { type: 'reject', reason }, { error: extra.error ?? message });
    await this.#o.publisher.feedback(rec, { status: 'error', errorCode: code, message, ...(extra.content !== undefined ? { content: extra.content } : {}) });
  }

  /** `counted`: the customer's rate-limit token was taken already (a pool worker taking over a job). */
  async decide(rec: JobRecord, log: Logger, opts: { counted?: boolean } = {}): Promise<void> {
    const o = this.#o;
    const config = o.config();
    if (rec.expiration !== undefined && rec.expiration <= Math.floor(Date.now() / 1000)) {
      await o.store.transition(rec.id, { type: 'expire' });
      await o.publisher.feedback(rec, { status: 'error', errorCode: 'EXPIRED', message: `the request expired at ${rec.expiration}` });
      log.info({ expiration: rec.expiration }, 'expired request refused');
      return;
    }
    const opened = openRequest(rec, o.identity);
    if (!opened.ok) {
      const code: ErrorCode = opened.problems.some((p) => p.path.startsWith('tags.param')) ? 'INVALID_PARAMETER' : 'BAD_REQUEST';
      await this.#refuse(rec, code, code, formatProblems(opened.problems), { content: JSON.stringify({ problems: opened.problems }) });
      log.info({ problems: opened.problems.length }, 'invalid request refused');
      return;
    }
    const job = opened.job;
    if (!opts.counted && !this.#takeToken(rec.customer)) {
      await this.#refuse(rec, 'RATE_LIMITED', 'RATE_LIMITED', `at most ${config.rateLimit.perMinute} jobs per minute per customer`, { error: 'rate limited' });
      log.info({}, 'request rate-limited');
      return;
    }
    const { running, queued } = o.load();
    if (running + queued >= config.capacity + config.queue) {
      await this.#refuse(rec, 'SERVICE_UNAVAILABLE', 'SERVICE_UNAVAILABLE', `at capacity: ${running} running, ${queued} queued`, { error: 'at capacity' });
      log.info({ running, queued }, 'at capacity: request refused');
      return;
    }
    const price = maxPriceMsats(config, job);
    if (job.maxCostMsats !== undefined && price > job.maxCostMsats) {
      await this.#refuse(rec, 'price', 'INVALID_PARAMETER', `this provider charges ${price} msats for the job, more than max_cost_msats ${job.maxCostMsats}`, { error: `price ${price} msats exceeds max_cost_msats ${job.maxCostMsats}` });
      return;
    }
    let escrow: EscrowRef | undefined;
    if (rec.terms === 'escrow') {
      const token = job.event.tags.find((t) => t[0] === ESCROW_TAG)?.[1];
      const check = token && o.escrow ? await o.escrow.check(token, price, job.timeLimitSecs ?? DEFAULT_TIME_LIMIT_SECS) : { problems: [token ? 'this provider has no escrow desk' : `escrow terms: put a P2PK-locked Cashu token in an ["${ESCROW_TAG}", "<token>"] tag`] };
      if (!check.ref) {
        const message = `escrow refused: ${check.problems.join('; ')}`.slice(0, 1000);
        await this.#refuse(rec, 'PAYMENT_FAILED', 'PAYMENT_FAILED', message);
        log.info({ problems: check.problems.length }, 'escrow refused');
        return;
      }
      escrow = check.ref;
      log.info({ mint: escrow.mint, sats: escrow.priceSats }, 'escrow checked: locked, unspent, terms as agreed');
    }
    await o.store.transition(rec.id, { type: 'accept' }, escrow ? { escrow, priceMsats: escrow.priceSats * 1000 } : {});
    if (rec.terms === 'prepay') await o.requestPrepayment(rec, job, log);
    else o.enqueue(rec.id, job);
  }
}
