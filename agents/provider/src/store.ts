// The provider's durable memory (LMDB): every job's state and every earning. A job moves
// through the shared state machine; each move is one write transaction, and an earning is
// written in the same transaction as the job's move to `settled`, so totals never disagree
// with jobs. The signed result event is stored before it is published, which is what makes
// a restart safe: a result is only ever (re)published with the same event id.
import type { FeeRecord } from '@bazaar/agents-common/arbiter-fee';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { EscrowRef } from './escrow-desk.ts';
import { isTerminal, nextJobState, type JobEvent, type JobState, type PaymentTerms } from '@bazaar/agents-common/job-state';

export const PROVIDER_DB_VERSION = 1;

export interface InvoiceRef {
  readonly bolt11: string;
  readonly paymentHash: string;
  readonly msats: number;
  /** Unix seconds. */
  readonly expiresAt: number;
}

export interface JobRecord {
  readonly id: string;
  readonly kind: number;
  readonly customer: string;
  readonly state: JobState;
  /** The request as received (still encrypted for private jobs). */
  readonly request: NostrEvent;
  readonly encrypted: boolean;
  readonly terms: PaymentTerms;
  /** Unix ms. */
  readonly receivedAt: number;
  readonly updatedAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** Runs started (a restart mid-run retries once). */
  readonly attempts: number;
  readonly expiration?: number;
  readonly priceMsats?: number;
  readonly invoice?: InvoiceRef;
  /** The signed result, stored before publishing. */
  readonly result?: NostrEvent;
  readonly resultPublished?: boolean;
  readonly trajectorySha256?: string;
  readonly error?: string;
  readonly paidAt?: number;
  /** Escrow terms: the checked lock, and our claim once prepared. */
  readonly escrow?: EscrowRef;
  /** The arbiter's fee, when its verdict went against us and asked one: a cost, paid once. */
  readonly arbiterFee?: ArbiterFeeRecord;
}

export interface ArbiterFeeRecord extends FeeRecord {
  readonly arbiter: string;
  readonly verdictId: string;
  readonly bolt11?: string;
}

export const EARNING_SOURCES = ['lightning', 'cashu'] as const;
export type EarningSource = (typeof EARNING_SOURCES)[number];

export interface Earning {
  readonly jobId: string;
  readonly kind: number;
  readonly source: EarningSource;
  readonly msats: number;
  /** Unix ms. */
  readonly paidAt: number;
  readonly paymentHash?: string;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

export class ProviderStore {
  readonly #listeners = new Set<(rec: JobRecord) => void>();
  readonly #earningListeners = new Set<(e: Earning) => void>();
  readonly #root: RootDatabase;
  readonly #jobs: Database<JobRecord, string>;
  /** Key: zero-padded paidAt + ':' + jobId, so a range scan in reverse is newest first. */
  readonly #earnings: Database<Earning, string>;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#jobs = root.openDB<JobRecord, string>({ name: 'jobs' });
    this.#earnings = root.openDB<Earning, string>({ name: 'earnings' });
  }

  static open(path: string): ProviderStore {
    const root = openLmdb({ path, maxDbs: 8 });
    const version = root.get('version') as number | undefined;
    if (version === undefined) root.putSync('version', PROVIDER_DB_VERSION);
    else if (version !== PROVIDER_DB_VERSION) {
      void root.close();
      throw new StoreError(`provider database at ${path} has version ${version}; this build reads version ${PROVIDER_DB_VERSION}`);
    }
    return new ProviderStore(root);
  }

  get(id: string): JobRecord | undefined {
    return this.#jobs.get(id);
  }

  /** Called with the new record after every committed insert and state transition. */
  onChange(listener: (rec: JobRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(rec: JobRecord): void {
    for (const l of this.#listeners) l(rec);
  }

  /** Called with each earning after the transaction that books it committed. */
  onEarning(listener: (e: Earning) => void): () => void {
    this.#earningListeners.add(listener);
    return () => this.#earningListeners.delete(listener);
  }

  /**
   * A job taken over from another worker of a pool: recorded here as received (its decision
   * was made by the worker that claimed it first). A record already here that is finished (this
   * worker lost the job earlier) is replaced; one still active is left as it is. False then.
   */
  async adopt(rec: JobRecord): Promise<boolean> {
    const adopted = await this.#root.transaction(() => {
      const cur = this.#jobs.get(rec.id);
      if (cur && !isTerminal(cur.state)) return false;
      this.#jobs.put(rec.id, { ...rec, attempts: Math.max(rec.attempts, cur?.attempts ?? 0) });
      return true;
    });
    if (adopted) this.#changed(this.#jobs.get(rec.id)!);
    return adopted;
  }

  /** Insert a new job; false when the id is already known (a duplicate across relays or a replay). */
  async insert(rec: JobRecord): Promise<boolean> {
    const inserted = await this.#jobs.ifNoExists(rec.id, () => {
      this.#jobs.put(rec.id, rec);
    });
    if (inserted) this.#changed(rec);
    return inserted;
  }

  /** Apply a state-machine event plus field updates in one transaction. Throws on an illegal move. */
  async transition(id: string, event: JobEvent, patch: Partial<JobRecord> = {}, earning?: Omit<Earning, 'jobId' | 'kind'>): Promise<JobRecord> {
    let booked: Earning | undefined;
    const rec = await this.#root.transaction(() => {
      const cur = this.#jobs.get(id);
      if (!cur) throw new StoreError(`unknown job ${id}`);
      const next = nextJobState(cur.state, event);
      if (!next.ok) throw new StoreError(`job ${id}: ${next.reason}`);
      const rec: JobRecord = { ...cur, ...patch, state: next.state, updatedAt: Date.now() };
      this.#jobs.put(id, rec);
      if (earning) {
        const e: Earning = { ...earning, jobId: id, kind: cur.kind };
        this.#earnings.put(`${String(e.paidAt).padStart(15, '0')}:${id}`, e);
        booked = e;
      }
      return rec;
    });
    this.#changed(rec);
    if (booked) for (const l of this.#earningListeners) l(booked);
    return rec;
  }

  /** Field updates that do not change the state (e.g. the result was published). */
  async update(id: string, patch: Partial<Omit<JobRecord, 'state' | 'id'>>): Promise<JobRecord> {
    return this.#root.transaction(() => {
      const cur = this.#jobs.get(id);
      if (!cur) throw new StoreError(`unknown job ${id}`);
      const rec = { ...cur, ...patch, updatedAt: Date.now() };
      this.#jobs.put(id, rec);
      return rec;
    });
  }

  *jobs(): Iterable<JobRecord> {
    for (const { value } of this.#jobs.getRange({})) yield value;
  }

  jobsIn(states: readonly JobState[]): JobRecord[] {
    const s = new Set(states);
    return [...this.jobs()].filter((j) => s.has(j.state));
  }

  counts(): Record<JobState, number> {
    const out = {} as Record<JobState, number>;
    for (const j of this.jobs()) out[j.state] = (out[j.state] ?? 0) + 1;
    return out;
  }

  /** Earnings, newest first. */
  earnings(limit = Infinity): Earning[] {
    const out: Earning[] = [];
    for (const { value } of this.#earnings.getRange({ reverse: true })) {
      if (out.length >= limit) break;
      out.push(value);
    }
    return out;
  }

  /** What we paid out: arbiters' fees on disputes we lost (msats, count). */
  costs(): { arbiterFeesMsats: number; arbiterFees: number; unpaid: number } {
    let arbiterFeesMsats = 0;
    let arbiterFees = 0;
    let unpaid = 0;
    for (const j of this.jobs()) {
      const f = j.arbiterFee;
      if (!f) continue;
      if (f.state === 'paid') {
        arbiterFeesMsats += f.msats + (f.feesPaidMsat ?? 0);
        arbiterFees++;
      } else unpaid++;
    }
    return { arbiterFeesMsats, arbiterFees, unpaid };
  }

  earningsSummary(recent = 10): { totalMsats: number; count: number; byKind: Record<string, number>; bySource: Record<string, number>; recent: Earning[] } {
    let totalMsats = 0;
    let count = 0;
    const byKind: Record<string, number> = {};
    const bySource: Record<string, number> = {};
    for (const e of this.earnings()) {
      totalMsats += e.msats;
      count++;
      byKind[e.kind] = (byKind[e.kind] ?? 0) + e.msats;
      bySource[e.source] = (bySource[e.source] ?? 0) + e.msats;
    }
    return { totalMsats, count, byKind, bySource, recent: this.earnings(recent) };
  }

  async close(): Promise<void> {
    await this.#root.close();
  }
}
