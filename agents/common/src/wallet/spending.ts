// Spending limits of an agent's wallet, enforced before any wallet or mint is asked to pay
// and kept in LMDB so they hold across restarts (and across processes sharing the file).
//
// Every outgoing payment is first *reserved* here under a key (the Lightning payment hash,
// a Cashu operation id) in one write transaction that checks the limits: per payment, per
// job, and the rolling last hour and last 24 hours. Then the rail pays; the reservation is
// *settled* (with the real amount, fees included) on success, *released* only when the
// payment definitely did not happen (the wallet or mint refused it), and otherwise stays
// counted: a payment whose outcome is unknown is treated as spent. Reserving an existing key
// again (a retry of the same invoice) counts nothing twice.
import { mkdirSync } from 'node:fs';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '../lmdb.ts';

export const SPENDING_STORE_VERSION = 1;

export interface SpendingLimits {
  /** Most one payment may cost (msat, fees included). */
  readonly perPaymentMsat: number;
  /** Most all payments for one job may cost together. */
  readonly perJobMsat: number;
  /** Most spent in any rolling 60 minutes. */
  readonly perHourMsat: number;
  /** Most spent in any rolling 24 hours. */
  readonly perDayMsat: number;
}

/** Deliberately small: an agent that needs more says so in its configuration. */
export const DEFAULT_SPENDING_LIMITS: SpendingLimits = {
  perPaymentMsat: 50_000_000,
  perJobMsat: 50_000_000,
  perHourMsat: 200_000_000,
  perDayMsat: 1_000_000_000,
};

export const SPENDING_LIMIT_NAMES = ['per-payment', 'per-job', 'per-hour', 'per-day'] as const;
export type SpendingLimitName = (typeof SPENDING_LIMIT_NAMES)[number];

export class SpendingLimitError extends Error {
  override name = 'SpendingLimitError';
  readonly code = 'OVER_LIMIT';
  readonly limit: SpendingLimitName;
  readonly limitMsat: number;
  readonly wouldSpendMsat: number;
  constructor(limit: SpendingLimitName, limitMsat: number, wouldSpendMsat: number, message: string) {
    super(message);
    this.limit = limit;
    this.limitMsat = limitMsat;
    this.wouldSpendMsat = wouldSpendMsat;
  }
}

export type SpendRail = 'lightning' | 'cashu';

export interface SpendRecord {
  readonly key: string;
  readonly msat: number;
  readonly rail: SpendRail;
  readonly jobId?: string;
  /** Unix ms of the reservation. */
  readonly at: number;
  /** pending: reserved, outcome not known yet (counted); spent: paid. */
  readonly state: 'pending' | 'spent';
}

export interface SpendingUsage {
  readonly limits: SpendingLimits;
  readonly lastHourMsat: number;
  readonly lastDayMsat: number;
  readonly jobMsat?: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const pad = (ms: number) => String(ms).padStart(15, '0');

export class SpendingLedger {
  readonly limits: SpendingLimits;
  readonly #root: RootDatabase;
  readonly #spends: Database<SpendRecord, string>;
  /** `<at>:<key>` → msat, for the rolling windows; pruned past 24 h. */
  readonly #byTime: Database<number, string>;
  /** [jobId, key] → msat. */
  readonly #byJob: Database<number, [string, string]>;
  readonly #now: () => number;

  private constructor(root: RootDatabase, limits: SpendingLimits, now: () => number) {
    this.#root = root;
    this.limits = limits;
    this.#now = now;
    this.#spends = root.openDB({ name: 'spends' });
    this.#byTime = root.openDB({ name: 'by-time' });
    this.#byJob = root.openDB({ name: 'by-job' });
  }

  /** Opens (or creates) the ledger in directory `path`. `now` is unix ms (tests move it). */
  static open(opts: { path: string; limits?: Partial<SpendingLimits>; now?: () => number }): SpendingLedger {
    const limits = { ...DEFAULT_SPENDING_LIMITS, ...opts.limits };
    for (const name of Object.keys(limits) as (keyof SpendingLimits)[]) {
      const v = limits[name];
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`spending limit ${name} must be a non-negative integer of msat, got ${v}`);
    }
    mkdirSync(opts.path, { recursive: true });
    const root = openLmdb({ path: opts.path, maxDbs: 8 });
    const meta = root.openDB<number, string>({ name: 'meta' });
    const version = meta.get('version');
    if (version === undefined) {
      meta.putSync('version', SPENDING_STORE_VERSION);
    } else if (version !== SPENDING_STORE_VERSION) {
      void root.close();
      throw new Error(`spending ledger ${opts.path} has version ${version}; this build reads ${SPENDING_STORE_VERSION}`);
    }
    return new SpendingLedger(root, limits, opts.now ?? Date.now);
  }

  /** Sum of spends made after `fromMs` (a spend exactly one window old no longer counts). */
  #sumSince(fromMs: number): number {
    let s = 0;
    for (const { value } of this.#byTime.getRange({ start: pad(fromMs + 1) })) s += value;
    return s;
  }

  #sumJob(jobId: string): number {
    let s = 0;
    for (const { key, value } of this.#byJob.getRange({ start: [jobId] })) {
      if (key[0] !== jobId) break;
      s += value;
    }
    return s;
  }

  /** Throws SpendingLimitError if paying `amountMsat` now (for `jobId`) would break a limit. Writes nothing. */
  check(amountMsat: number, jobId?: string): void {
    this.#check(amountMsat, jobId, this.#now());
  }

  #check(amountMsat: number, jobId: string | undefined, now: number): void {
    const l = this.limits;
    const sat = (m: number) => `${Math.ceil(m / 1000)} sat`;
    if (!Number.isSafeInteger(amountMsat) || amountMsat <= 0) throw new Error(`payment amount must be a positive integer of msat, got ${amountMsat}`);
    if (amountMsat > l.perPaymentMsat) throw new SpendingLimitError('per-payment', l.perPaymentMsat, amountMsat, `payment of ${sat(amountMsat)} is over the per-payment limit of ${sat(l.perPaymentMsat)}`);
    if (jobId !== undefined) {
      const job = this.#sumJob(jobId) + amountMsat;
      if (job > l.perJobMsat) throw new SpendingLimitError('per-job', l.perJobMsat, job, `job ${jobId.slice(0, 16)} would have cost ${sat(job)}, over the per-job limit of ${sat(l.perJobMsat)}`);
    }
    const hour = this.#sumSince(now - HOUR_MS) + amountMsat;
    if (hour > l.perHourMsat) throw new SpendingLimitError('per-hour', l.perHourMsat, hour, `${sat(hour)} spent in the last hour would be over the hourly limit of ${sat(l.perHourMsat)}`);
    const day = this.#sumSince(now - DAY_MS) + amountMsat;
    if (day > l.perDayMsat) throw new SpendingLimitError('per-day', l.perDayMsat, day, `${sat(day)} spent in the last 24 hours would be over the daily limit of ${sat(l.perDayMsat)}`);
  }

  /**
   * Reserves `amountMsat` under `key`, or throws SpendingLimitError. A key already reserved
   * or spent is not counted again: `created` is false and the earlier record is returned.
   */
  reserve(r: { key: string; amountMsat: number; rail: SpendRail; jobId?: string }): { created: boolean; record: SpendRecord } {
    return this.#root.transactionSync(() => {
      const existing = this.#spends.get(r.key);
      if (existing) return { created: false, record: existing };
      const now = this.#now();
      this.#check(r.amountMsat, r.jobId, now);
      const record: SpendRecord = { key: r.key, msat: r.amountMsat, rail: r.rail, at: now, state: 'pending', ...(r.jobId !== undefined ? { jobId: r.jobId } : {}) };
      this.#write(record);
      this.#prune(now);
      return { created: true, record };
    });
  }

  /** The payment happened: record its real cost (fees included) when known. */
  settle(key: string, actualMsat?: number): void {
    this.#root.transactionSync(() => {
      const cur = this.#spends.get(key);
      if (!cur) return;
      this.#remove(cur);
      this.#write({ ...cur, state: 'spent', ...(actualMsat !== undefined && Number.isSafeInteger(actualMsat) && actualMsat > 0 ? { msat: actualMsat } : {}) });
    });
  }

  /** The payment definitely did not happen (refused by the wallet or mint): stop counting it. */
  release(key: string): void {
    this.#root.transactionSync(() => {
      const cur = this.#spends.get(key);
      if (cur?.state === 'pending') this.#remove(cur);
    });
  }

  get(key: string): SpendRecord | undefined {
    return this.#spends.get(key);
  }

  usage(jobId?: string): SpendingUsage {
    const now = this.#now();
    return { limits: this.limits, lastHourMsat: this.#sumSince(now - HOUR_MS), lastDayMsat: this.#sumSince(now - DAY_MS), ...(jobId !== undefined ? { jobMsat: this.#sumJob(jobId) } : {}) };
  }

  // #write, #remove and #prune run inside transactionSync only: the *Sync forms write in that transaction.
  #write(rec: SpendRecord): void {
    this.#spends.putSync(rec.key, rec);
    this.#byTime.putSync(`${pad(rec.at)}:${rec.key}`, rec.msat);
    if (rec.jobId !== undefined) this.#byJob.putSync([rec.jobId, rec.key], rec.msat);
  }

  #remove(rec: SpendRecord): void {
    this.#spends.removeSync(rec.key);
    this.#byTime.removeSync(`${pad(rec.at)}:${rec.key}`);
    if (rec.jobId !== undefined) this.#byJob.removeSync([rec.jobId, rec.key]);
  }

  /** Time-index entries older than 24 h no longer count; a few are dropped per reservation. */
  #prune(now: number): void {
    let n = 0;
    for (const { key } of this.#byTime.getRange({ end: pad(now - DAY_MS + 1) })) {
      this.#byTime.removeSync(key);
      if (++n >= 64) break;
    }
  }

  async close(): Promise<void> {
    await this.#root.close();
  }
}
