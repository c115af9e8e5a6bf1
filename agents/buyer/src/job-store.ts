// The buyer's durable memory (LMDB): every job it posted, the runs (one per task: its
// attempts, budget and outcome) and the autopilot's tasks. Each change is one synchronous
// write transaction, so what the buyer decided is on disk before it acts on it — above all a
// payment: `decidePayment` records the invoice (and claims its payment hash for this job
// alone) before the wallet is asked to pay, which is what makes "never twice for one job"
// hold across crashes and restarts.
import type { FeeRecord } from '@bazaar/agents-common/arbiter-fee';
import { mkdirSync } from 'node:fs';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { Problem } from '@bazaar/dvm-kinds/problem';
import { nextBuyerState, type BuyerJobEvent, type BuyerJobState } from './buyer-job.ts';

export const BUYER_DB_VERSION = 1;

export type PayMethod = 'lightning' | 'cashu' | 'escrow';

/** What the buyer decided to pay, persisted before the wallet is asked. */
export interface PaymentDecision {
  readonly method: PayMethod;
  /** `prepay`: asked in payment-required feedback; `after-verify`: with the result. */
  readonly when: 'prepay' | 'after-verify';
  readonly amountMsats: number;
  readonly bolt11?: string;
  readonly paymentHash?: string;
  /** Unix ms. */
  readonly decidedAt: number;
}

/** The proof, once paid. */
export interface PaymentProof {
  readonly preimage?: string;
  readonly feesPaidMsats: number;
  /** Escrow: the claim package co-signed by us (what the receipt carries). */
  readonly escrowRelease?: string;
  /** Unix ms. */
  readonly paidAt: number;
}

/** A Cashu escrow the buyer locked for the job (DESIGN §4). */
export interface EscrowHold {
  readonly token: string;
  readonly mint: string;
  readonly amountSats: number;
  /** Locked proofs as cashu-ts ProofJson (secret, C, amount, id, dleq?), for the release and refund. */
  readonly proofs: readonly Record<string, unknown>[];
  readonly locktime: number;
  /** Nostr pubkey of the arbiter named in disputes; payment keys of the three parties. */
  readonly arbiter: string;
  readonly arbiterPaymentKey: string;
  readonly providerPaymentKey: string;
  readonly buyerPaymentKey: string;
}

export interface Arbitration {
  readonly verdictId: string;
  readonly arbiter: string;
  readonly ruling: 'buyer' | 'provider' | 'split';
  readonly providerShare?: number;
  readonly reason: string;
  /** Unix ms when we read it. */
  readonly at: number;
  /** Sats redeemed with the release the arbiter sealed to us. */
  readonly redeemedSats?: number;
  /** The arbiter's fee, when the verdict went against us and asked one (agents-common arbiter-fee). */
  readonly fee?: FeeRecord;
  /** The fee's bolt11, once checked (paid from it, retried from it). */
  readonly feeInvoice?: string;
}

export interface FeedbackNote {
  readonly status: string;
  readonly message?: string;
  readonly amountMsats?: number;
  /** Unix ms. */
  readonly at: number;
}

export interface Verdict {
  readonly ok: boolean;
  /** Names of the checks (every check run), failed ones with their problem. */
  readonly checks: readonly { readonly name: string; readonly passed: boolean; readonly detail?: string }[];
  readonly problems: readonly Problem[];
  /** sha256 of the evidence bundle (DATA/evidence/<job>.json). */
  readonly evidenceSha256: string;
  readonly checkedAt: number;
}

export interface BuyerJob {
  /** The request event id. */
  readonly id: string;
  /** The run (one task) this attempt belongs to. */
  readonly runId: string;
  readonly kind: number;
  readonly provider: string;
  readonly state: BuyerJobState;
  /** How this job is paid: an invoice over NWC or by melting ecash, or a Cashu escrow. */
  readonly pay: PayMethod;
  /** The request as published (sealed for private jobs). */
  readonly request: NostrEvent;
  /** Private jobs: the request's tags before sealing (what verification reads). */
  readonly clearTags?: string[][];
  readonly encrypted: boolean;
  /** The most this job may cost (msats); the bid. */
  readonly budgetMsats: number;
  /** The Lightning node the provider announced (`lightning_node`): an invoice to another payee is refused. */
  readonly payee?: string;
  readonly relays: readonly string[];
  readonly expiration?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly feedback: readonly FeedbackNote[];
  /** The provider's result as received (opened for private jobs). */
  readonly result?: NostrEvent;
  readonly verdict?: Verdict;
  readonly payment?: PaymentDecision;
  readonly paid?: PaymentProof;
  readonly escrow?: EscrowHold;
  readonly refundedSats?: number;
  /** Disputed escrow: our own claim (a durable swap to our outputs in the Cashu wallet), sent with the dispute for the arbiter to co-sign. */
  readonly escrowClaimId?: string;
  /** The arbiter's verdict on our dispute, once seen. */
  readonly arbitration?: Arbitration;
  /** Signed before they are published, so a restart republishes the same event. */
  readonly receipt?: NostrEvent;
  readonly receiptPublished?: boolean;
  readonly dispute?: NostrEvent;
  readonly disputePublished?: boolean;
  readonly cancellation?: NostrEvent;
  readonly error?: string;
  /** Why nothing was paid for a verified result: over the budget (or a limit), or no usable invoice/claim. */
  readonly refusal?: 'budget' | 'invoice';
}

export type RunOutcome = 'paid' | 'verified' | 'disputed' | 'no-provider' | 'budget-refused' | 'failed' | 'running';

/** One task as the buyer works on it: its attempts (jobs) and the money it may spend. */
export interface Run {
  readonly id: string;
  readonly kind: number;
  /** What the user asked for, as given (the task spec). */
  readonly task: Record<string, unknown>;
  readonly budgetMsats: number;
  readonly strategy: string;
  readonly outcome: RunOutcome;
  readonly jobIds: readonly string[];
  /** The attempt whose result was accepted. */
  readonly winner?: string;
  readonly reason?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export class StoreError extends Error {
  override name = 'StoreError';
}

export class BuyerStore {
  readonly #root: RootDatabase;
  readonly #jobs: Database<BuyerJob, string>;
  readonly #runs: Database<Run, string>;
  /** payment hash → job id: one invoice pays one job, once. */
  readonly #payments: Database<string, string>;
  /** The autopilot's task records, by task id. */
  readonly #tasks: Database<Record<string, unknown>, string>;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#jobs = root.openDB({ name: 'jobs' });
    this.#runs = root.openDB({ name: 'runs' });
    this.#payments = root.openDB({ name: 'payments' });
    this.#tasks = root.openDB({ name: 'tasks' });
  }

  static open(path: string): BuyerStore {
    mkdirSync(path, { recursive: true });
    const root = openLmdb({ path, maxDbs: 8 });
    const version = root.get('version') as number | undefined;
    if (version === undefined) root.putSync('version', BUYER_DB_VERSION);
    else if (version !== BUYER_DB_VERSION) {
      void root.close();
      throw new StoreError(`buyer database at ${path} has version ${version}; this build reads version ${BUYER_DB_VERSION}`);
    }
    return new BuyerStore(root);
  }

  get(id: string): BuyerJob | undefined {
    return this.#jobs.get(id);
  }

  insert(job: BuyerJob): void {
    this.#root.transactionSync(() => {
      if (this.#jobs.get(job.id)) throw new StoreError(`job ${job.id} exists`);
      this.#jobs.putSync(job.id, job);
      const run = this.#runs.get(job.runId);
      if (run) this.#runs.putSync(run.id, { ...run, jobIds: [...run.jobIds, job.id], updatedAt: Date.now() });
    });
  }

  /** A state-machine step plus field updates, in one durable transaction. Throws on an illegal step. */
  step(id: string, event: BuyerJobEvent, patch: Partial<Omit<BuyerJob, 'id' | 'state'>> = {}): BuyerJob {
    return this.#root.transactionSync(() => {
      const cur = this.#jobs.get(id);
      if (!cur) throw new StoreError(`unknown job ${id}`);
      const next = nextBuyerState(cur.state, event);
      if (!next.ok) throw new StoreError(`job ${id}: ${next.reason}`);
      const job: BuyerJob = { ...cur, ...patch, state: next.state, updatedAt: Date.now() };
      this.#jobs.putSync(id, job);
      return job;
    });
  }

  /** Like step, but a no-op (returning undefined) when the step is not allowed from the current state. */
  tryStep(id: string, event: BuyerJobEvent, patch: Partial<Omit<BuyerJob, 'id' | 'state'>> = {}): BuyerJob | undefined {
    return this.#root.transactionSync(() => {
      const cur = this.#jobs.get(id);
      if (!cur) return undefined;
      const next = nextBuyerState(cur.state, event);
      if (!next.ok) return undefined;
      const job: BuyerJob = { ...cur, ...patch, state: next.state, updatedAt: Date.now() };
      this.#jobs.putSync(id, job);
      return job;
    });
  }

  update(id: string, patch: Partial<Omit<BuyerJob, 'id' | 'state'>>): BuyerJob {
    return this.#root.transactionSync(() => {
      const cur = this.#jobs.get(id);
      if (!cur) throw new StoreError(`unknown job ${id}`);
      const job = { ...cur, ...patch, updatedAt: Date.now() };
      this.#jobs.putSync(id, job);
      return job;
    });
  }

  /**
   * Records the decision to pay, durably, before any wallet call: the job moves to
   * prepaying/paying with the decision. Refused when the job already has a payment decision
   * (one job is paid once) or when the invoice was already claimed by another job.
   */
  decidePayment(id: string, decision: PaymentDecision): BuyerJob {
    return this.#root.transactionSync(() => {
      const cur = this.#jobs.get(id);
      if (!cur) throw new StoreError(`unknown job ${id}`);
      if (cur.payment) throw new StoreError(`job ${id} already has a payment decision (${cur.payment.when}, ${cur.payment.amountMsats} msats): a job is paid once`);
      const next = nextBuyerState(cur.state, 'decide-pay');
      if (!next.ok) throw new StoreError(`job ${id}: ${next.reason}`);
      if (decision.paymentHash) {
        const owner = this.#payments.get(decision.paymentHash);
        if (owner !== undefined && owner !== id) throw new StoreError(`invoice ${decision.paymentHash.slice(0, 16)}… already belongs to job ${owner}`);
        this.#payments.putSync(decision.paymentHash, id);
      }
      const job: BuyerJob = { ...cur, payment: decision, state: next.state, updatedAt: Date.now() };
      this.#jobs.putSync(id, job);
      return job;
    });
  }

  *jobs(): Iterable<BuyerJob> {
    for (const { value } of this.#jobs.getRange({})) yield value;
  }

  jobsIn(states: Iterable<BuyerJobState>): BuyerJob[] {
    const s = new Set(states);
    return [...this.jobs()].filter((j) => s.has(j.state));
  }

  // ---- runs ----

  putRun(run: Run): void {
    this.#runs.putSync(run.id, run);
  }

  getRun(id: string): Run | undefined {
    return this.#runs.get(id);
  }

  updateRun(id: string, patch: Partial<Omit<Run, 'id'>>): Run {
    return this.#root.transactionSync(() => {
      const cur = this.#runs.get(id);
      if (!cur) throw new StoreError(`unknown run ${id}`);
      const run = { ...cur, ...patch, updatedAt: Date.now() };
      this.#runs.putSync(id, run);
      return run;
    });
  }

  *runs(): Iterable<Run> {
    for (const { value } of this.#runs.getRange({})) yield value;
  }

  /** Msats the run's jobs paid or have a payment in flight for. */
  spentMsats(runId: string): number {
    const run = this.#runs.get(runId);
    let s = 0;
    for (const id of run?.jobIds ?? []) {
      const j = this.#jobs.get(id);
      if (j?.arbitration?.fee?.state === 'paid') s += j.arbitration.fee.msats + (j.arbitration.fee.feesPaidMsat ?? 0);
      if (j?.payment) s += j.payment.amountMsats;
      else if (j?.escrow && j.state !== 'refunded') s += j.escrow.amountSats * 1000;
    }
    return s;
  }

  // ---- autopilot tasks ----

  getTask<T extends Record<string, unknown>>(id: string): T | undefined {
    return this.#tasks.get(id) as T | undefined;
  }

  putTask(id: string, task: Record<string, unknown>): void {
    this.#tasks.putSync(id, task);
  }

  *tasks(): Iterable<Record<string, unknown>> {
    for (const { value } of this.#tasks.getRange({})) yield value;
  }

  async close(): Promise<void> {
    await this.#root.close();
  }
}
