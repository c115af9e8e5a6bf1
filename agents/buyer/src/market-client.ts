// MarketClient: the buyer as a library. Discover → select → request → verify → pay (or
// dispute) → receipt, for one task at a time (`run`), with every step durable in the buyer's
// store so a restart resumes where it stopped (`resume`). It owns no I/O of its own: the
// caller hands in a logger, a RelayPool, a wallet, a sandbox Runner, the identity and the store.
//
//   run(task)   discovery (Directory) → ranking (selection.ts) → attempts by strategy:
//               first | prefer | retry:N (sequential, backoff) | pinned | race:N (concurrent,
//               only the first verified result is paid, the others get a kind 5 cancellation)
//   attempt     request built with dvm-kinds (bid, NIP-40 expiration = the timeout, p = the
//               provider, relays; optional NIP-44 sealing; an escrow lock when the provider's
//               terms ask for one) → stored → published → feedback and result driven one at a time
//   payment     after verification passed (or up front when the provider asks, within budget):
//               the decision is persisted (store.decidePayment) before the wallet is called;
//               an unknown outcome stays "in flight" and is resumed, never repeated blindly
//   failure     no payment, a 39300 dispute with the failed checks and the evidence hash
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { FEEDBACK_KIND, parseFeedback, type Feedback } from '@bazaar/dvm-kinds/feedback';
import { parseJobResult } from '@bazaar/dvm-kinds/job';
import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { openJobResult, sealJobRequest } from '@bazaar/dvm-kinds/private';
import { buildDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildReceipt, hashToCurve, type Payment } from '@bazaar/dvm-kinds/market/receipt';
import { buildEscrowTag, openEscrowRelease, parseEscrowClaim, readEscrowToken, verifyEscrowPackage, xOnlyKey } from '@bazaar/dvm-kinds/market/escrow';
import { VERDICT_KIND, parseVerdict } from '@bazaar/dvm-kinds/market/verdict';
import type { Isolation } from '@bazaar/dvm-kinds/market/announcement';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import type { RelayPool } from '@bazaar/agents-common/relay-pool';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { decodeInvoice } from '@bazaar/agents-common/wallet/lightning';
import { lockEscrow, prepareClaim, redeemClaim, refundAfterLocktime, signClaim } from '@bazaar/agents-common/wallet/escrow';
import type { ProofJson } from '@bazaar/agents-common/wallet/cashu';
import { FINAL_STATES, PAYMENT_IN_FLIGHT } from './buyer-job.ts';
import { Directory } from './discovery.ts';
import { EventQueue } from './event-queue.ts';
import { BuyerStore, type Arbitration, type BuyerJob, type EscrowHold, type PayMethod, type Run, type RunOutcome, type Verdict } from './job-store.ts';
import { classifyPaymentError, walletPayer, type Payer } from './payments.ts';
import { arbiterAnnouncementFilter, checkArbiterFee, newestArbiterAnnouncement, type FeeRecord } from '@bazaar/agents-common/arbiter-fee';
import { DEFAULT_STRATEGY, formatStrategy, rankProviders, retryBackoffMs, type Candidate, type PayChoice, type Preference, type ProviderView, type Ranking, type Strategy, type Weights } from './selection.ts';
import { DEFAULT_TIMEOUT_SECS, KIND_OF, buildTaskRequest, describeTask, maxUnits, type TaskSpec } from './tasks.ts';
import { verifyResult } from './verify.ts';

export const DELETION_KIND = 5;

export interface BuyerSettings {
  /** Reputation keys whose NIP-85 assertions count. */
  readonly trustedReputationKeys: readonly string[];
  /** Also trust the `reputation_pubkey` the buyer's relays announce in NIP-11. */
  readonly trustRelayReputation: boolean;
  /** Arbiters (Nostr pubkeys) the buyer names in escrow locks; their payment keys come from their kind 10019. */
  readonly arbiters: readonly string[];
  readonly weights?: Partial<Weights>;
  readonly region?: string;
  readonly minSuccessRate?: number;
  readonly minIsolation?: Isolation;
  /** The least dispute window the buyer leaves in an escrow locktime after the job's deadline. */
  readonly disputeWindowSecs: number;
  /** Cancel an attempt when a heartbeat provider sends nothing for this long (0 = only the job timeout). */
  readonly ackTimeoutMs: number;
  /** Deadline of the liveness ping before posting to a heartbeat provider. */
  readonly pingTimeoutMs: number;
  /** First backoff of retry:N (doubles per attempt). */
  readonly retryBaseMs: number;
  /** Deadline of one pay_invoice. */
  readonly payTimeoutMs: number;
  /** Deadline of discovery queries. */
  readonly queryTimeoutMs: number;
  /** Rating put in receipts of verified jobs (0..1). */
  readonly rating: number;
}

export const DEFAULT_SETTINGS: BuyerSettings = {
  trustedReputationKeys: [],
  trustRelayReputation: true,
  arbiters: [],
  disputeWindowSecs: 3600,
  ackTimeoutMs: 0,
  pingTimeoutMs: 5000,
  retryBaseMs: 1000,
  payTimeoutMs: 30_000,
  queryTimeoutMs: 5000,
  rating: 1,
};

export type ProgressEvent =
  | { readonly type: 'discovered'; readonly candidates: number; readonly excluded: readonly { pubkey: string; reason: string }[] }
  | { readonly type: 'skipped'; readonly provider: string; readonly reason: string }
  | { readonly type: 'posted'; readonly jobId: string; readonly provider: string; readonly quoteMsats?: number; readonly pay: PayMethod; readonly attempt: number }
  | { readonly type: 'feedback'; readonly jobId: string; readonly status: string; readonly message?: string; readonly amountMsats?: number }
  | { readonly type: 'result'; readonly jobId: string }
  | { readonly type: 'verifying'; readonly jobId: string }
  | { readonly type: 'verified'; readonly jobId: string; readonly ok: boolean; readonly failed: readonly string[] }
  | { readonly type: 'paying'; readonly jobId: string; readonly amountMsats: number; readonly method: PayMethod; readonly when: 'prepay' | 'after-verify' }
  | { readonly type: 'paid'; readonly jobId: string; readonly amountMsats: number; readonly feesMsats: number }
  | { readonly type: 'disputed'; readonly jobId: string; readonly disputeId: string }
  | { readonly type: 'receipt'; readonly jobId: string; readonly receiptId: string }
  | { readonly type: 'refused'; readonly jobId: string; readonly reason: string }
  | { readonly type: 'cancelled'; readonly jobId: string; readonly reason: string }
  | { readonly type: 'failed'; readonly jobId: string; readonly reason: string };

export interface RunOptions {
  /** The most this task may cost in total (msats, every attempt together). */
  readonly budgetMsats: number;
  /** The most one provider may charge (msats). */
  readonly maxPriceMsats?: number;
  readonly strategy?: Strategy;
  readonly preference?: Preference;
  /** Pinned providers (hex pubkeys), tried first and allowed without an announcement. */
  readonly providers?: readonly string[];
  /** Force a payment method; default: what the provider's terms need (Lightning when possible). */
  readonly pay?: PayChoice;
  readonly timeoutSecs?: number;
  /** NIP-44-encrypt inputs and params to the chosen provider. */
  readonly encrypt?: boolean;
  /** SandboxRun: re-run the commands in our sandbox and compare. */
  readonly rerun?: boolean;
  readonly minSuccessRate?: number;
  readonly minIsolation?: Isolation;
  /** A stable id (the autopilot's task id): a run already finished is not repeated. */
  readonly runId?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (e: ProgressEvent) => void;
}

export interface RunReport {
  readonly runId: string;
  readonly kind: number;
  readonly task: string;
  readonly outcome: RunOutcome;
  readonly reason?: string;
  readonly strategy: string;
  readonly budgetMsats: number;
  readonly spentMsats: number;
  /** The accepted attempt. */
  readonly jobId?: string;
  readonly provider?: string;
  readonly result?: { readonly id: string; readonly content: string; readonly tags: string[][] };
  readonly verification?: Verdict;
  readonly payment?: { readonly method: PayMethod; readonly when: string; readonly amountMsats: number; readonly feesMsats: number; readonly preimage?: string };
  readonly receiptId?: string;
  readonly disputeIds: readonly string[];
  /** The arbiter's verdict on a disputed attempt: its ruling and, when it went against us, the fee asked and whether we paid it. */
  readonly arbitration?: { readonly jobId: string; readonly verdictId: string; readonly ruling: string; readonly redeemedSats?: number; readonly fee?: { readonly msats: number; readonly state: string; readonly reason?: string; readonly paidAt?: number } };
  readonly attempts: readonly { readonly jobId: string; readonly provider: string; readonly state: string; readonly error?: string }[];
  readonly elapsedMs: number;
}

export interface MarketClientOptions {
  readonly logger: Logger;
  readonly pool: RelayPool;
  readonly wallet: Wallet | Payer;
  readonly runner: Runner;
  readonly identity: Identity;
  readonly store: BuyerStore;
  /** Evidence, scratch checkouts and the repository cache live under it. */
  readonly dataDir: string;
  readonly settings?: Partial<BuyerSettings>;
  /** Relays named in requests (`relays` tag: where the provider answers); default: the pool's. */
  readonly relays?: readonly string[];
  /** Observes durable steps (tests kill the process here to prove a restart resumes). */
  readonly onStep?: (step: 'decision:persisted' | 'payment:answered', jobId: string) => void;
  /** Clock (unix ms) for escrow locktimes (tests move it with the mint's). */
  readonly now?: () => number;
}

type AttemptResult = 'paid' | 'verified' | 'disputed' | 'refused' | 'failed' | 'cancelled' | 'offline' | 'payment-pending';
interface AttemptOutcome {
  readonly result: AttemptResult;
  readonly jobId?: string;
  readonly provider: string;
  readonly reason?: string;
}

interface DriveContext {
  /** Unix ms: give up (cancel) after this. */
  readonly deadline: number;
  readonly ackDeadline?: number;
  readonly signal?: AbortSignal;
  readonly rerun?: boolean;
  /** Race: true when this job may be paid (the first verified); false when another won. */
  readonly claimWin?: (jobId: string) => boolean;
  readonly onProgress?: (e: ProgressEvent) => void;
}

const isPayer = (w: Wallet | Payer): w is Payer => typeof (w as Payer).payInvoice === 'function';
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export class MarketClient {
  readonly directory: Directory;
  readonly store: BuyerStore;
  readonly settings: BuyerSettings;
  readonly #o: MarketClientOptions;
  readonly #log: Logger;
  readonly #payer: Payer;
  readonly #relays: string[];
  readonly #pool: RelayPool;

  constructor(o: MarketClientOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.store = o.store;
    this.#pool = o.pool;
    this.settings = { ...DEFAULT_SETTINGS, ...o.settings };
    this.#payer = isPayer(o.wallet) ? o.wallet : walletPayer(o.wallet);
    this.#relays = [...(o.relays ?? o.pool.urls)];
    this.directory = new Directory({
      pool: o.pool,
      logger: o.logger.child({ part: 'discovery' }),
      trustedReputationKeys: this.settings.trustedReputationKeys,
      ...(this.settings.trustRelayReputation ? { trustRelayReputation: this.#relays } : {}),
      queryTimeoutMs: this.settings.queryTimeoutMs,
    });
  }

  get pubkey(): string {
    return this.#o.identity.pubkey;
  }

  #sign(t: EventTemplate): NostrEvent {
    return finalizeEvent(t, this.#o.identity.secretKey) as NostrEvent;
  }

  /** The directory for `kind`, ranked as a run with `policy` would rank it. */
  async providers(opts: { kind?: number; budgetMsats?: number; maxPriceMsats?: number; preference?: Preference; pay?: PayChoice; include?: readonly string[]; units?: number; signal?: AbortSignal } = {}): Promise<{ views: ProviderView[]; ranking?: Ranking }> {
    const views = await this.directory.providers({ ...(opts.kind !== undefined ? { kind: opts.kind } : {}), ...(opts.include ? { include: opts.include } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (opts.kind === undefined) return { views };
    const ranking = rankProviders(views, { kind: opts.kind, units: opts.units ?? 1 }, this.#policy({ budgetMsats: opts.budgetMsats ?? Number.MAX_SAFE_INTEGER, ...opts }));
    return { views, ranking };
  }

  #policy(o: { budgetMsats: number; maxPriceMsats?: number; preference?: Preference; pay?: PayChoice; providers?: readonly string[]; include?: readonly string[]; minSuccessRate?: number; minIsolation?: Isolation; racing?: boolean }) {
    const s = this.settings;
    const minSuccessRate = o.minSuccessRate ?? s.minSuccessRate;
    const minIsolation = o.minIsolation ?? s.minIsolation;
    const pinned = o.providers ?? o.include;
    return {
      budgetMsats: o.budgetMsats,
      canPay: this.#payer.canPay,
      ...(s.weights ? { weights: s.weights } : {}),
      ...(s.region ? { region: s.region } : {}),
      ...(o.maxPriceMsats !== undefined ? { maxPriceMsats: o.maxPriceMsats } : {}),
      ...(o.preference ? { preference: o.preference } : {}),
      ...(o.pay ? { pay: o.pay } : {}),
      ...(pinned ? { pinned } : {}),
      ...(minSuccessRate !== undefined ? { minSuccessRate } : {}),
      ...(minIsolation ? { minIsolation } : {}),
      ...(o.racing ? { racing: true } : {}),
    };
  }

  // ---------------------------------------------------------------- run

  /** Works on one task until a verified result is paid, or the strategy gives up. */
  async run(task: TaskSpec, o: RunOptions): Promise<RunReport> {
    const started = Date.now();
    const kind = KIND_OF[task.type];
    const strategy = o.strategy ?? (o.providers?.length ? { type: 'prefer' as const } : DEFAULT_STRATEGY);
    if (strategy.type === 'pinned' && !o.providers?.length) throw new Error('the pinned strategy needs a provider (--provider)');
    if (!Number.isSafeInteger(o.budgetMsats) || o.budgetMsats <= 0) throw new Error('the budget must be a positive amount');
    const runId = o.runId ?? bytesToHex(randomBytes(16));
    const existing = this.store.getRun(runId);
    if (existing && existing.outcome !== 'running') return this.report(runId, started);
    if (existing) {
      // Resumed (the autopilot after a restart): finish what its attempts left, start nothing new.
      await this.resume({ waitForResults: true, runId, ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
      this.#finishRun(runId, []);
      return this.report(runId, started);
    }
    this.store.putRun({ id: runId, kind, task: { ...task } as Record<string, unknown>, budgetMsats: o.budgetMsats, strategy: formatStrategy(strategy), outcome: 'running', jobIds: [], createdAt: started, updatedAt: started });
    const log = this.#log.child({ runId, kind });
    log.info({ task: describeTask(task), budgetMsats: o.budgetMsats, strategy: formatStrategy(strategy) }, 'run started');
    let ranking: Ranking;
    try {
      const views = await this.directory.providers({ kind, ...(o.providers ? { include: o.providers } : {}), ...(o.signal ? { signal: o.signal } : {}) });
      ranking = rankProviders(views, { kind, units: maxUnits(task) }, this.#policy({ ...o, racing: strategy.type === 'race' }));
    } catch (err) {
      this.store.updateRun(runId, { outcome: 'failed', reason: `discovery failed: ${(err as Error).message}` });
      return this.report(runId, started);
    }
    let candidates = ranking.ranked;
    if (strategy.type === 'pinned') candidates = candidates.filter((c) => c.pinned);
    o.onProgress?.({ type: 'discovered', candidates: candidates.length, excluded: ranking.excluded.map((x) => ({ pubkey: x.pubkey, reason: x.reason })) });
    if (!candidates.length) {
      const priced = ranking.excluded.length > 0 && ranking.excluded.every((x) => x.code === 'price' || x.code === 'offline') && ranking.excluded.some((x) => x.code === 'price');
      const reason = ranking.excluded.length ? ranking.excluded.map((x) => `${x.pubkey.slice(0, 12)}…: ${x.reason}`).join('; ') : `no provider announces kind ${kind}`;
      this.store.updateRun(runId, { outcome: priced ? 'budget-refused' : 'no-provider', reason });
      log.info({ reason }, priced ? 'refused: every provider is over the budget' : 'no provider');
      return this.report(runId, started);
    }
    const outcomes = strategy.type === 'race' ? await this.#race(runId, task, candidates, strategy.n, o) : await this.#sequential(runId, task, candidates, strategy, o);
    this.#finishRun(runId, outcomes);
    const report = this.report(runId, started);
    log.info({ outcome: report.outcome, spentMsats: report.spentMsats, reason: report.reason }, 'run finished');
    return report;
  }

  async #sequential(runId: string, task: TaskSpec, candidates: readonly Candidate[], strategy: Strategy, o: RunOptions): Promise<AttemptOutcome[]> {
    const maxAttempts = strategy.type === 'retry' ? strategy.n : strategy.type === 'prefer' ? candidates.length : 1;
    const outcomes: AttemptOutcome[] = [];
    const unusable = new Set<string>();
    let attempts = 0;
    for (let i = 0; attempts < maxAttempts && !o.signal?.aborted; i++) {
      // retry:N cycles through the ranking (the same provider again when it is the only one);
      // a provider that is offline, delivered a bad result or is over the budget is not asked again.
      const usable = candidates.filter((c) => !unusable.has(c.pubkey));
      if (!usable.length) break;
      if (strategy.type !== 'retry' && i >= candidates.length) break;
      const c = strategy.type === 'retry' ? usable[attempts % usable.length] : candidates[i];
      if (unusable.has(c.pubkey)) continue;
      if (!(await this.#alive(c, o))) {
        unusable.add(c.pubkey);
        outcomes.push({ result: 'offline', provider: c.pubkey, reason: 'did not answer a ping' });
        continue;
      }
      if (attempts > 0 && strategy.type === 'retry') await sleep(retryBackoffMs(attempts, this.settings.retryBaseMs), o.signal);
      attempts++;
      const out = await this.#attempt(runId, task, c, attempts, o, {});
      outcomes.push(out);
      if (out.result === 'paid' || out.result === 'verified' || out.result === 'payment-pending') break;
      // Not asked again: a provider that delivered a bad result, asked too much, or took a prepayment and then failed.
      if (out.result === 'disputed' || out.result === 'refused' || (out.jobId && this.store.get(out.jobId)?.payment)) unusable.add(c.pubkey);
      if (this.#remaining(runId) <= 0) break;
    }
    return outcomes;
  }

  async #race(runId: string, task: TaskSpec, candidates: readonly Candidate[], n: number, o: RunOptions): Promise<AttemptOutcome[]> {
    const alive = await Promise.all(candidates.map(async (c) => ((await this.#alive(c, o)) ? c : undefined)));
    const racers = alive.filter((c): c is Candidate => c !== undefined).slice(0, n);
    const outcomes: AttemptOutcome[] = candidates.filter((c) => !alive.includes(c)).map((c) => ({ result: 'offline' as const, provider: c.pubkey, reason: 'did not answer a ping' }));
    let winner: string | undefined;
    const controllers = new Map<string, AbortController>();
    const claimWin = (jobId: string): boolean => {
      if (winner !== undefined) return winner === jobId;
      winner = jobId;
      this.store.updateRun(runId, { winner: jobId });
      // The others are told at once (kind 5) and never paid.
      for (const [id, ac] of controllers) if (id !== jobId) ac.abort();
      return true;
    };
    const results = await Promise.all(
      racers.map((c, i) => {
        const ac = new AbortController();
        const signal = o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal;
        const register = (jobId: string) => {
          controllers.set(jobId, ac);
          if (winner !== undefined && winner !== jobId) ac.abort();
        };
        return this.#attempt(runId, task, c, i + 1, { ...o, signal }, { claimWin, register });
      }),
    );
    return [...outcomes, ...results];
  }

  async #alive(c: Candidate, o: RunOptions): Promise<boolean> {
    if (c.view.announcement?.heartbeatSecs === undefined) return true; // plain NIP-90: liveness unknowable
    const ok = await this.directory.ping(c.pubkey, (t) => this.#sign(t), { timeoutMs: this.settings.pingTimeoutMs, ...(o.signal ? { signal: o.signal } : {}) });
    if (!ok) {
      this.#log.info({ provider: c.pubkey }, 'provider did not answer a ping: skipped');
      o.onProgress?.({ type: 'skipped', provider: c.pubkey, reason: 'did not answer a ping (offline)' });
    }
    return ok;
  }

  #remaining(runId: string): number {
    const run = this.store.getRun(runId);
    return run ? run.budgetMsats - this.store.spentMsats(runId) : 0;
  }

  // ---------------------------------------------------------------- one attempt

  async #attempt(runId: string, task: TaskSpec, c: Candidate, n: number, o: RunOptions, race: { claimWin?: (jobId: string) => boolean; register?: (jobId: string) => void }): Promise<AttemptOutcome> {
    const kind = KIND_OF[task.type];
    const log = this.#log.child({ runId, provider: c.pubkey });
    const timeoutSecs = o.timeoutSecs ?? DEFAULT_TIMEOUT_SECS[task.type];
    const now = Math.floor(Date.now() / 1000);
    const budget = Math.min(this.#remaining(runId), o.maxPriceMsats ?? Number.MAX_SAFE_INTEGER);
    if (budget <= 0) return { result: 'refused', provider: c.pubkey, reason: 'the budget is spent' };
    const expiration = now + timeoutSecs;
    let template = buildTaskRequest(task, { bidMsats: budget, providers: [c.pubkey], relays: this.#relays, expiration }, budget);
    let escrow: EscrowHold | undefined;
    if (c.pay === 'escrow') {
      try {
        escrow = await this.#lockEscrow(runId, c, task, budget, expiration, n, o.signal);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'escrow not possible with this provider');
        // Too little ecash to lock is a refusal for the budget, like a spending limit.
        const refused = classifyPaymentError(err);
        return { result: (err as { refused?: boolean }).refused || refused?.reason === 'budget' ? 'refused' : 'failed', provider: c.pubkey, reason: `escrow: ${refused?.message ?? (err as Error).message}` };
      }
      template = { ...template, tags: [...template.tags, buildEscrowTag(escrow.token)] };
    }
    const clearTags = template.tags.map((t) => [...t]);
    if (o.encrypt) {
      const sealed = sealJobRequest(template, this.#o.identity.secretKey, c.pubkey);
      if (!sealed.ok) throw new Error(formatProblems(sealed.errors));
      template = sealed.value;
    }
    // The same task asked twice within one second (a script, or `--rerun` right after a run) is
    // the same event — same author, second, tags and content — so the same id: the later
    // request is dated a second later instead (NIP-01 ids are content hashes; no nonce tag).
    let request = this.#sign(template);
    while (this.store.get(request.id)) request = this.#sign({ ...template, created_at: request.created_at + 1 });
    const job: BuyerJob = {
      id: request.id,
      runId,
      kind,
      provider: c.pubkey,
      pay: c.pay,
      state: 'posting',
      request,
      ...(o.encrypt ? { clearTags } : {}),
      encrypted: Boolean(o.encrypt),
      budgetMsats: budget,
      ...(c.view.announcement?.lightningNode ? { payee: c.view.announcement.lightningNode } : {}),
      relays: this.#relays,
      expiration,
      createdAt: Date.now(),
      updatedAt: Date.now(),
      feedback: [],
      ...(escrow ? { escrow } : {}),
    };
    this.store.insert(job);
    race.register?.(job.id);
    log.info({ jobId: job.id, quoteMsats: c.quoteMsats, pay: c.pay, attempt: n }, 'request posted');
    o.onProgress?.({ type: 'posted', jobId: job.id, provider: c.pubkey, ...(c.quoteMsats !== undefined ? { quoteMsats: c.quoteMsats } : {}), pay: c.pay, attempt: n });
    const ack = this.settings.ackTimeoutMs > 0 && c.view.announcement?.heartbeatSecs !== undefined ? Date.now() + this.settings.ackTimeoutMs : undefined;
    return this.#drive(job.id, {
      deadline: expiration * 1000,
      ...(ack ? { ackDeadline: ack } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.rerun ? { rerun: true } : {}),
      ...(race.claimWin ? { claimWin: race.claimWin } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  }

  /** Locks the price in a Cashu escrow the provider accepts (its payment key and mint, a common arbiter, a locktime past its dispute window). */
  async #lockEscrow(runId: string, c: Candidate, task: TaskSpec, budget: number, expiration: number, n: number, signal?: AbortSignal): Promise<EscrowHold> {
    const refuse = (msg: string, refused = false) => Object.assign(new Error(msg), { refused });
    const cashu = this.#payer.cashu();
    const info = c.view.paymentInfo ?? (await this.directory.paymentInfo(c.pubkey, signal));
    if (!info) throw refuse('the provider publishes no payment info (kind 10019)');
    const mint = cashu.mintUrl.replace(/\/+$/, '');
    if (!info.mints.some((m) => m.url.replace(/\/+$/, '') === mint)) throw refuse(`the provider does not take ecash from ${mint}`);
    const accepted = new Set((c.view.announcement?.arbiters ?? []).map(xOnlyKey));
    let arbiter: { pubkey: string; key: string } | undefined;
    for (const a of this.settings.arbiters) {
      const pi = await this.directory.paymentInfo(a, signal);
      if (pi && accepted.has(xOnlyKey(pi.p2pkPubkey))) {
        arbiter = { pubkey: a, key: '02' + xOnlyKey(pi.p2pkPubkey) };
        break;
      }
    }
    if (!arbiter) throw refuse(this.settings.arbiters.length ? 'none of our arbiters is one the provider accepts' : 'no arbiter configured (escrow needs one both sides trust)');
    if (c.quoteMsats === undefined) throw refuse('the provider announces no price for the kind, so the escrow cannot be sized');
    const priceSats = Math.ceil(c.quoteMsats / 1000);
    const timeLimit = task.type === 'sandbox' || task.type === 'patch' ? task.timeLimitSecs : 0;
    const window = Math.max(this.settings.disputeWindowSecs, c.view.announcement?.disputeWindowSecs ?? 0);
    // The provider checks locktime ≥ its now + time limit + window; the job may start as late as the expiration.
    const locktime = expiration + timeLimit + window + 300;
    const buyerKey = '02' + xOnlyKey(this.#o.identity.paymentPubkey);
    const locked = await lockEscrow(cashu, { price: priceSats, provider: '02' + xOnlyKey(info.p2pkPubkey), buyer: buyerKey, arbiter: arbiter.key, locktime, id: `${runId.slice(0, 16)}-${n}` });
    if (locked.amount * 1000 > budget) {
      // Locked but over budget (the claim fee): take it back at once (the lock is ours until spent).
      this.#log.warn({ amount: locked.amount, budget }, 'escrow with its fee exceeds the budget');
      throw refuse(`the escrow (${locked.amount} sats with the claim fee) exceeds the budget of ${Math.floor(budget / 1000)} sats`, true);
    }
    return { token: locked.token, mint, amountSats: locked.amount, proofs: locked.proofs as unknown as Record<string, unknown>[], locktime, arbiter: arbiter.pubkey, arbiterPaymentKey: arbiter.key, providerPaymentKey: '02' + xOnlyKey(info.p2pkPubkey), buyerPaymentKey: buyerKey };
  }

  // ---------------------------------------------------------------- driving a job

  async #drive(id: string, ctx: DriveContext): Promise<AttemptOutcome> {
    let job = this.store.get(id)!;
    if (PAYMENT_IN_FLIGHT.has(job.state)) {
      await this.#completePayment(job, ctx);
      job = this.store.get(id)!;
    }
    if (job.state === 'delivered') return this.#afterResult(job, ctx);
    if (job.state === 'verified') return this.#settle(job, ctx);
    if (FINAL_STATES.has(job.state) || PAYMENT_IN_FLIGHT.has(job.state)) return this.#conclude(job);
    const queue = new EventQueue();
    const sub = this.#pool.subscribe([{ kinds: [FEEDBACK_KIND, job.kind + 1000], '#e': [id], authors: [job.provider] }], (e) => queue.push(e));
    try {
      if (job.state === 'posting') {
        const res = await this.#pool.publish(job.request, { timeoutMs: 10_000, ...(ctx.signal ? { signal: ctx.signal } : {}) });
        if (!res.some((r) => r.ok || r.message.startsWith('duplicate:'))) {
          const reason = `no relay accepted the request: ${res.map((r) => `${r.url} ${r.message}`).join('; ')}`;
          this.store.step(id, 'fail', { error: reason });
          ctx.onProgress?.({ type: 'failed', jobId: id, reason });
          return { result: 'failed', jobId: id, provider: job.provider, reason };
        }
        job = this.store.step(id, 'posted');
      }
      let acked = job.feedback.length > 0;
      for (;;) {
        job = this.store.get(id)!;
        if (job.state !== 'posted' && job.state !== 'awaiting-payment' && job.state !== 'running') break;
        const until = acked || ctx.ackDeadline === undefined ? ctx.deadline : Math.min(ctx.deadline, ctx.ackDeadline);
        const e = await queue.next(until, ctx.signal);
        if (!e) {
          if (ctx.signal?.aborted) return this.#cancel(job, ctx.claimWin ? 'another provider won the race' : 'aborted', 'cancel', ctx);
          const reason = !acked && ctx.ackDeadline !== undefined && Date.now() < ctx.deadline ? `the provider sent nothing within ${Math.round(this.settings.ackTimeoutMs / 1000)} s` : 'timed out waiting for the result';
          return this.#cancel(job, reason, 'fail', ctx);
        }
        acked = true;
        const out = e.kind === FEEDBACK_KIND ? await this.#onFeedback(job, e, ctx) : await this.#onResult(job, e, ctx);
        if (out) return out;
      }
      return this.#conclude(this.store.get(id)!);
    } finally {
      sub.close();
    }
  }

  async #onFeedback(job: BuyerJob, e: NostrEvent, ctx: DriveContext): Promise<AttemptOutcome | undefined> {
    const opened = job.encrypted && e.tags.some((t) => t[0] === 'encrypted') ? openJobResult(e, this.#o.identity.secretKey) : ({ ok: true, value: e } as const);
    if (!opened.ok) return undefined;
    const parsed = parseFeedback(opened.value);
    if (!parsed.ok || parsed.value.requestId !== job.id) {
      this.#log.debug({ jobId: job.id, eventId: e.id }, 'ignoring unreadable feedback');
      return undefined;
    }
    const f = parsed.value;
    const note = { status: f.status, ...(f.message ? { message: f.message } : {}), ...(f.amount ? { amountMsats: f.amount.msats } : {}), at: Date.now() };
    job = this.store.update(job.id, { feedback: [...job.feedback, note].slice(-30) });
    ctx.onProgress?.({ type: 'feedback', jobId: job.id, status: f.status, ...(f.message ? { message: f.message } : {}), ...(f.amount ? { amountMsats: f.amount.msats } : {}) });
    if (f.status === 'error') {
      const reason = `the provider failed the job: ${f.errorCode ? `${f.errorCode} ` : ''}${f.message ?? ''}`.trim();
      this.store.step(job.id, 'fail', { error: reason });
      ctx.onProgress?.({ type: 'failed', jobId: job.id, reason });
      return { result: 'failed', jobId: job.id, provider: job.provider, reason };
    }
    if (f.status === 'processing' || f.status === 'partial') {
      this.store.tryStep(job.id, 'processing');
      return undefined;
    }
    if (f.status === 'payment-required') return this.#prepay(this.store.tryStep(job.id, 'payment-required') ?? job, f, ctx);
    return undefined;
  }

  /** The provider asks to be paid up front: pay within the budget, then wait for the result. */
  async #prepay(job: BuyerJob, f: Feedback, ctx: DriveContext): Promise<AttemptOutcome | undefined> {
    if (job.payment || job.escrow) return undefined; // decided already (a repeated request), or escrowed
    if (!f.amount?.bolt11) return this.#cancel(job, `the provider asks ${f.amount?.msats ?? '?'} msats up front without a bolt11 invoice`, 'fail', ctx);
    if (ctx.claimWin) return this.#refuse(job, 'asks payment up front: a race pays only the winner', 'budget', ctx);
    const check = this.#checkInvoice(job, f.amount.msats, f.amount.bolt11);
    if (!check.ok) return this.#refuse(job, check.reason, check.refusal, ctx);
    job = this.store.decidePayment(job.id, { method: job.pay === 'cashu' ? 'cashu' : 'lightning', when: 'prepay', amountMsats: f.amount.msats, bolt11: f.amount.bolt11, paymentHash: check.paymentHash, decidedAt: Date.now() });
    this.#o.onStep?.('decision:persisted', job.id);
    ctx.onProgress?.({ type: 'paying', jobId: job.id, amountMsats: f.amount.msats, method: job.pay, when: 'prepay' });
    await this.#completePayment(job, ctx);
    const after = this.store.get(job.id)!;
    if (after.state === 'payment-failed') return { result: after.refusal === 'budget' ? 'refused' : 'failed', jobId: job.id, provider: job.provider, reason: after.error ?? 'payment failed' };
    if (after.state === 'prepaying') return { result: 'payment-pending', jobId: job.id, provider: job.provider, reason: 'prepayment outcome unknown; resumed on the next start' };
    return undefined;
  }

  #checkInvoice(job: BuyerJob, msats: number, bolt11: string): { ok: true; paymentHash: string } | { ok: false; reason: string; refusal: 'budget' | 'invoice' } {
    let inv;
    try {
      inv = decodeInvoice(bolt11);
    } catch (err) {
      return { ok: false, reason: `the invoice does not decode: ${(err as Error).message}`, refusal: 'invoice' };
    }
    if (inv.amountMsat !== msats) return { ok: false, reason: `the invoice is for ${inv.amountMsat} msats, the provider asked ${msats}`, refusal: 'invoice' };
    // Paid to someone else's node, the money would not reach the provider we verified.
    if (job.payee && inv.payee !== job.payee) return { ok: false, reason: `the invoice pays node ${inv.payee?.slice(0, 16) ?? '(none)'}…, not the node ${job.payee.slice(0, 16)}… the provider announced`, refusal: 'invoice' };
    if (inv.expiresAt <= Math.floor(Date.now() / 1000) + 5) return { ok: false, reason: 'the invoice has expired', refusal: 'invoice' };
    const remaining = this.#remaining(job.runId) + (job.payment?.amountMsats ?? 0);
    const allowed = Math.min(job.budgetMsats, remaining);
    if (msats > allowed) return { ok: false, reason: `the provider asks ${Math.ceil(msats / 1000)} sats, more than the ${Math.floor(allowed / 1000)} sats allowed for this job`, refusal: 'budget' };
    return { ok: true, paymentHash: inv.paymentHash };
  }

  async #onResult(job: BuyerJob, e: NostrEvent, ctx: DriveContext): Promise<AttemptOutcome | undefined> {
    const opened = job.encrypted && e.tags.some((t) => t[0] === 'encrypted') ? openJobResult(e, this.#o.identity.secretKey) : ({ ok: true, value: e } as const);
    if (!opened.ok) {
      this.#log.warn({ jobId: job.id, eventId: e.id }, 'a result we cannot open: ignored');
      return undefined;
    }
    const env = parseJobResult(opened.value, job.kind + 1000);
    if (!env.ok || env.value.requestId !== job.id || !e.tags.some((t) => t[0] === 'p' && t[1] === this.pubkey)) {
      this.#log.warn({ jobId: job.id, eventId: e.id, problems: env.ok ? 'answers another job' : formatProblems(env.errors) }, 'a result that is not for this job: ignored');
      return undefined;
    }
    job = this.store.step(job.id, 'result', { result: opened.value as NostrEvent });
    ctx.onProgress?.({ type: 'result', jobId: job.id });
    return this.#afterResult(job, ctx);
  }

  /** The request as we wrote it (clear tags for a sealed one), for the verifiers. */
  #clearRequest(job: BuyerJob): NostrEvent {
    return job.clearTags ? { ...job.request, content: '', tags: job.clearTags } : job.request;
  }

  async #afterResult(job: BuyerJob, ctx: DriveContext): Promise<AttemptOutcome> {
    ctx.onProgress?.({ type: 'verifying', jobId: job.id });
    const dir = this.#o.dataDir;
    let verdict: Verdict;
    try {
      verdict = await verifyResult(this.#clearRequest(job), job.result!, { runner: this.#o.runner, logger: this.#log.child({ jobId: job.id, part: 'verify' }), workDir: join(dir, 'work'), repoCacheDir: join(dir, 'repos'), evidenceDir: join(dir, 'evidence'), ...(ctx.rerun ? { rerun: true } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) });
    } catch (err) {
      if (ctx.signal?.aborted) return this.#cancel(job, ctx.claimWin ? 'another provider won the race' : 'aborted', 'cancel', ctx);
      // We could not check it (our checkout, our sandbox): no payment, and no accusation either.
      const reason = `could not verify the result: ${(err as Error).message}`;
      this.#log.error({ jobId: job.id, err: (err as Error).message }, 'verification could not run');
      this.store.step(job.id, 'fail', { error: reason });
      ctx.onProgress?.({ type: 'failed', jobId: job.id, reason });
      return { result: 'failed', jobId: job.id, provider: job.provider, reason };
    }
    ctx.onProgress?.({ type: 'verified', jobId: job.id, ok: verdict.ok, failed: verdict.checks.filter((c) => !c.passed).map((c) => c.name) });
    if (!verdict.ok) return this.#dispute(job, verdict, ctx);
    job = this.store.step(job.id, 'verified', { verdict });
    if (ctx.claimWin && !ctx.claimWin(job.id)) return this.#cancel(job, 'another provider won the race', 'cancel', ctx);
    return this.#settle(job, ctx);
  }

  /** Verified: pay what the result asks (within budget), release the escrow, or record a prepaid job as done. */
  async #settle(job: BuyerJob, ctx: DriveContext): Promise<AttemptOutcome> {
    const base = { jobId: job.id, provider: job.provider };
    if (job.payment?.when === 'prepay') {
      job = this.store.step(job.id, 'nothing-to-pay');
      await this.#publishReceipt(job, ctx);
      return { result: 'paid', ...base };
    }
    if (job.escrow) return this.#releaseEscrow(job, ctx);
    const env = parseJobResult(job.result!, job.kind + 1000);
    const amount = env.ok ? env.value.amount : undefined;
    if (!amount || amount.msats === 0) {
      this.store.step(job.id, 'nothing-to-pay');
      return { result: 'verified', ...base, reason: 'the provider asked for nothing' };
    }
    if (!amount.bolt11) return this.#refuse(job, `verified, but the result asks ${amount.msats} msats without an invoice`, 'invoice', ctx, 'verified');
    const check = this.#checkInvoice(job, amount.msats, amount.bolt11);
    if (!check.ok) return this.#refuse(job, check.reason, check.refusal, ctx, check.refusal === 'budget' ? 'refused' : 'verified');
    job = this.store.decidePayment(job.id, { method: job.pay === 'cashu' ? 'cashu' : 'lightning', when: 'after-verify', amountMsats: amount.msats, bolt11: amount.bolt11, paymentHash: check.paymentHash, decidedAt: Date.now() });
    this.#o.onStep?.('decision:persisted', job.id);
    ctx.onProgress?.({ type: 'paying', jobId: job.id, amountMsats: amount.msats, method: job.pay, when: 'after-verify' });
    await this.#completePayment(job, ctx);
    return this.#conclude(this.store.get(job.id)!, ctx);
  }

  /** Escrowed: the provider's claim must spend exactly our escrow and carry its signature; we co-sign it. */
  async #releaseEscrow(job: BuyerJob, ctx: DriveContext): Promise<AttemptOutcome> {
    const esc = job.escrow!;
    const claim = parseEscrowClaim(job.result!);
    const token = readEscrowToken(esc.token);
    if (!claim.ok || !claim.value || !token.ok) return this.#refuse(job, 'verified, but the result carries no usable escrow claim (the escrow goes back to us after its locktime)', 'invoice', ctx, 'verified');
    const v = verifyEscrowPackage(claim.value, token.value, [esc.providerPaymentKey]);
    if (!v.ok) return this.#refuse(job, `verified, but the escrow claim is wrong: ${formatProblems(v.problems)}`, 'invoice', ctx, 'verified');
    const env = parseJobResult(job.result!, job.kind + 1000);
    const amountMsats = Math.min(env.ok && env.value.amount ? env.value.amount.msats : esc.amountSats * 1000, esc.amountSats * 1000);
    if (job.state === 'verified') {
      job = this.store.decidePayment(job.id, { method: 'escrow', when: 'after-verify', amountMsats, decidedAt: Date.now() });
      this.#o.onStep?.('decision:persisted', job.id);
    }
    ctx.onProgress?.({ type: 'paying', jobId: job.id, amountMsats, method: 'escrow', when: 'after-verify' });
    await this.#completePayment(job, ctx);
    return this.#conclude(this.store.get(job.id)!, ctx);
  }

  /** Carries out a persisted payment decision. Safe to call again after a crash (the wallet finds an earlier payment of the invoice). */
  async #completePayment(job: BuyerJob, ctx: DriveContext): Promise<void> {
    const d = job.payment!;
    const log = this.#log.child({ jobId: job.id, method: d.method });
    if (d.method === 'escrow') {
      const esc = job.escrow!;
      const claim = parseEscrowClaim(job.result!);
      if (!claim.ok || !claim.value) throw new Error('escrow claim vanished from the stored result');
      const release = signClaim(claim.value.raw, bytesToHex(this.#o.identity.paymentSecretKey), esc.proofs as unknown as ProofJson[]);
      this.#o.onStep?.('payment:answered', job.id);
      this.store.step(job.id, 'paid', { paid: { escrowRelease: release, feesPaidMsats: 0, paidAt: Date.now() } });
      ctx.onProgress?.({ type: 'paid', jobId: job.id, amountMsats: d.amountMsats, feesMsats: 0 });
      log.info({ amountMsats: d.amountMsats }, 'escrow released');
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const p = await this.#payer.payInvoice(d.bolt11!, { via: d.method, maxAmountMsat: d.amountMsats, jobId: job.id, timeoutMs: this.settings.payTimeoutMs });
        this.#o.onStep?.('payment:answered', job.id);
        this.store.step(job.id, 'paid', { paid: { ...(p.preimage ? { preimage: p.preimage } : {}), feesPaidMsats: p.feesPaidMsat, paidAt: Date.now() } });
        ctx.onProgress?.({ type: 'paid', jobId: job.id, amountMsats: p.amountMsat, feesMsats: p.feesPaidMsat });
        log.info({ amountMsats: p.amountMsat, feesMsats: p.feesPaidMsat, when: d.when }, 'paid');
        return;
      } catch (err) {
        const refused = classifyPaymentError(err);
        if (refused) {
          const reason = `payment refused: ${refused.message}`;
          this.store.step(job.id, 'payment-failed', { error: reason, ...(refused.reason === 'budget' ? { refusal: 'budget' as const } : {}) });
          ctx.onProgress?.({ type: refused.reason === 'budget' ? 'refused' : 'failed', jobId: job.id, reason });
          log.warn({ reason }, 'payment refused: nothing paid');
          return;
        }
        log.warn({ err: (err as Error).message, attempt }, 'payment outcome unknown');
        if (attempt >= 3) {
          this.store.update(job.id, { error: `payment outcome unknown (${(err as Error).message}); it is resumed on the next start` });
          return;
        }
        await sleep(retryBackoffMs(attempt, this.settings.retryBaseMs));
      }
    }
  }

  async #dispute(job: BuyerJob, verdict: Verdict, ctx: DriveContext): Promise<AttemptOutcome> {
    const failedChecks = [...new Set(verdict.problems.map((p) => p.path))];
    // Escrowed: our own claim (to fresh outputs of ours, durable in the wallet) goes with the
    // dispute, so an arbiter that rules for us co-signs exactly it. Without one we still get the
    // escrow back after its locktime.
    let claim: { claimId: string; signed: string } | undefined;
    if (job.escrow) {
      try {
        const c = await prepareClaim(this.#payer.cashu(), job.escrow.token);
        claim = { claimId: c.claimId, signed: signClaim(c.package, bytesToHex(this.#o.identity.paymentSecretKey)) };
      } catch (err) {
        this.#log.warn({ jobId: job.id, err: (err as Error).message }, 'no escrow claim with the dispute (the escrow comes back after its locktime)');
      }
    }
    const dispute = this.#sign(buildDispute({ requestId: job.id, resultId: job.result!.id, provider: job.provider, ...(job.escrow ? { arbiter: job.escrow.arbiter } : {}), failedChecks: failedChecks.length ? failedChecks : ['verification'], evidenceSha256: verdict.evidenceSha256, message: formatProblems(verdict.problems, 5).slice(0, 2000), ...(claim ? { escrowClaim: claim.signed } : {}) }));
    job = this.store.step(job.id, 'verification-failed', { verdict, dispute, error: `verification failed: ${formatProblems(verdict.problems, 3)}`, ...(claim ? { escrowClaimId: claim.claimId } : {}) });
    await this.#publishStored(job, 'dispute');
    ctx.onProgress?.({ type: 'disputed', jobId: job.id, disputeId: dispute.id });
    this.#log.info({ jobId: job.id, failedChecks }, 'verification failed: nothing paid, dispute opened');
    return { result: 'disputed', jobId: job.id, provider: job.provider, reason: job.error! };
  }

  async #refuse(job: BuyerJob, reason: string, refusal: 'budget' | 'invoice', ctx: DriveContext, result: AttemptResult = 'refused'): Promise<AttemptOutcome> {
    const cancellation = job.state === 'verified' ? undefined : this.#cancellation(job, reason);
    this.store.step(job.id, 'refuse', { error: reason, refusal, ...(cancellation ? { cancellation } : {}) });
    if (cancellation) await this.#pool.publish(cancellation, { timeoutMs: 10_000 });
    ctx.onProgress?.({ type: 'refused', jobId: job.id, reason });
    this.#log.info({ jobId: job.id, reason }, 'not paid');
    return { result, jobId: job.id, provider: job.provider, reason };
  }

  #cancellation(job: BuyerJob, reason: string): NostrEvent {
    // NIP-09 deletion of our own request: NIP-90's way to tell providers we no longer want it.
    return this.#sign({ kind: DELETION_KIND, created_at: Math.floor(Date.now() / 1000), content: reason, tags: [['e', job.id], ['k', String(job.kind)]] });
  }

  async #cancel(job: BuyerJob, reason: string, as: 'cancel' | 'fail', ctx: DriveContext): Promise<AttemptOutcome> {
    const cancellation = this.#cancellation(job, reason);
    const next = this.store.tryStep(job.id, as, { cancellation, error: reason });
    if (next) await this.#pool.publish(cancellation, { timeoutMs: 10_000 });
    ctx.onProgress?.({ type: as === 'cancel' ? 'cancelled' : 'failed', jobId: job.id, reason });
    this.#log.info({ jobId: job.id, reason }, as === 'cancel' ? 'job cancelled' : 'job given up');
    return { result: as === 'cancel' ? 'cancelled' : 'failed', jobId: job.id, provider: job.provider, reason };
  }

  /** The attempt's outcome from its stored state; publishes a receipt or dispute still unpublished. */
  async #conclude(job: BuyerJob, ctx: DriveContext = { deadline: 0 }): Promise<AttemptOutcome> {
    const base = { jobId: job.id, provider: job.provider, ...(job.error ? { reason: job.error } : {}) };
    switch (job.state) {
      case 'paid':
        if (job.payment) await this.#publishReceipt(job, ctx);
        return { result: job.payment ? 'paid' : 'verified', ...base };
      case 'disputed':
        await this.#publishStored(job, 'dispute');
        return { result: 'disputed', ...base };
      case 'refused':
        return { result: job.refusal === 'budget' ? 'refused' : job.verdict?.ok ? 'verified' : 'failed', ...base };
      case 'payment-failed':
        return { result: job.refusal === 'budget' ? 'refused' : 'failed', ...base };
      case 'cancelled':
        return { result: 'cancelled', ...base };
      case 'paying':
      case 'prepaying':
        return { result: 'payment-pending', ...base };
      default:
        return { result: 'failed', ...base };
    }
  }

  async #publishReceipt(job: BuyerJob, ctx: DriveContext): Promise<void> {
    let j = this.store.get(job.id)!;
    if (!j.receipt) {
      const d = j.payment!;
      let payment: Payment | undefined;
      if (d.method === 'escrow') payment = { method: 'cashu', mint: j.escrow!.mint, proofs: j.escrow!.proofs.map((p) => ({ secret: String(p.secret), y: hashToCurve(String(p.secret)) })) };
      else if (j.paid?.preimage && d.bolt11) payment = { method: 'lightning', bolt11: d.bolt11, preimage: j.paid.preimage };
      if (!payment) {
        this.#log.info({ jobId: j.id }, 'paid without a preimage (the mint did not tell it): no receipt');
        return;
      }
      const passed = j.verdict?.checks.filter((c) => c.passed).map((c) => c.name) ?? [];
      const receipt = this.#sign(buildReceipt({ requestId: j.id, resultId: j.result!.id, provider: j.provider, amountMsats: d.amountMsats, payment, rating: this.settings.rating, comment: passed.length ? `verified: ${passed.join('; ')}` : 'verified', ...(j.paid?.escrowRelease ? { escrowRelease: j.paid.escrowRelease } : {}) }));
      j = this.store.update(j.id, { receipt });
    }
    await this.#publishStored(j, 'receipt');
    if (this.store.get(j.id)?.receiptPublished) ctx.onProgress?.({ type: 'receipt', jobId: j.id, receiptId: j.receipt!.id });
  }

  /** Publishes a stored receipt/dispute until some relay has it (the same event id on every retry). */
  async #publishStored(job: BuyerJob, what: 'receipt' | 'dispute'): Promise<void> {
    const ev = what === 'receipt' ? job.receipt : job.dispute;
    const done = what === 'receipt' ? job.receiptPublished : job.disputePublished;
    if (!ev || done) return;
    const res = await this.#pool.publish(ev, { timeoutMs: 10_000 });
    if (res.some((r) => r.ok || r.message.startsWith('duplicate:'))) this.store.update(job.id, what === 'receipt' ? { receiptPublished: true } : { disputePublished: true });
    else this.#log.warn({ jobId: job.id, what, relays: res.map((r) => `${r.url}: ${r.message}`) }, 'not published yet; retried on the next start');
  }

  // ---------------------------------------------------------------- runs, resume, refunds

  #finishRun(runId: string, outcomes: readonly AttemptOutcome[]): void {
    const run = this.store.getRun(runId)!;
    const jobs = run.jobIds.map((id) => this.store.get(id)!).filter(Boolean);
    const by = (s: string) => jobs.find((j) => j.state === s);
    const paid = jobs.find((j) => j.state === 'paid' && j.payment);
    // Verified but nothing paid: the provider asked nothing, or gave no usable invoice / escrow claim.
    const verified = jobs.find((j) => j.verdict?.ok && ((j.state === 'paid' && !j.payment) || (j.state === 'refused' && j.refusal === 'invoice')));
    let outcome: RunOutcome;
    let reason: string | undefined;
    if (paid) outcome = 'paid';
    else if (verified) {
      outcome = 'verified';
      reason = verified.error;
    } else if (jobs.some((j) => PAYMENT_IN_FLIGHT.has(j.state))) {
      outcome = 'running';
      reason = 'a payment is in flight; it completes on the next start';
    } else if (by('disputed')) {
      outcome = 'disputed';
      reason = by('disputed')!.error;
    } else if (jobs.some((j) => j.refusal === 'budget') || outcomes.some((x) => x.result === 'refused')) {
      outcome = 'budget-refused';
      reason = jobs.find((j) => j.refusal === 'budget')?.error ?? outcomes.find((x) => x.result === 'refused')?.reason;
    } else if (jobs.some((j) => !FINAL_STATES.has(j.state))) {
      outcome = 'running';
      reason = 'waiting for a result';
    } else {
      outcome = 'no-provider';
      reason = outcomes.length ? outcomes.map((x) => `${x.provider.slice(0, 12)}…: ${x.result}${x.reason ? ` (${x.reason})` : ''}`).join('; ') : 'no attempt could be made';
    }
    const winner = paid?.id ?? verified?.id ?? run.winner;
    this.store.updateRun(runId, { outcome, ...(reason ? { reason } : {}), ...(winner ? { winner } : {}) });
  }

  /** A run as stored: for the CLI's JSON and for programs embedding the client. */
  report(runId: string, started = Date.now()): RunReport {
    const run = this.store.getRun(runId)!;
    const jobs = run.jobIds.map((id) => this.store.get(id)).filter((j): j is BuyerJob => j !== undefined);
    // The accepted attempt, or else the last one that delivered (a disputed result is worth showing).
    const win = (run.winner ? this.store.get(run.winner) : undefined) ?? [...jobs].reverse().find((j) => j.result) ?? jobs[jobs.length - 1];
    const task = run.task as unknown as TaskSpec;
    return {
      runId,
      kind: run.kind,
      task: describeTask(task),
      outcome: run.outcome,
      ...(run.reason ? { reason: run.reason } : {}),
      strategy: run.strategy,
      budgetMsats: run.budgetMsats,
      spentMsats: this.store.spentMsats(runId),
      ...(win ? { jobId: win.id, provider: win.provider } : {}),
      ...(win?.result ? { result: { id: win.result.id, content: win.result.content, tags: win.result.tags } } : {}),
      ...(win?.verdict ? { verification: win.verdict } : {}),
      ...(win?.payment ? { payment: { method: win.payment.method, when: win.payment.when, amountMsats: win.payment.amountMsats, feesMsats: win.paid?.feesPaidMsats ?? 0, ...(win.paid?.preimage ? { preimage: win.paid.preimage } : {}) } } : {}),
      ...(win?.receipt ? { receiptId: win.receipt.id } : {}),
      disputeIds: jobs.filter((j) => j.dispute).map((j) => j.dispute!.id),
      ...arbitrationOf(jobs),
      attempts: jobs.map((j) => ({ jobId: j.id, provider: j.provider, state: j.state, ...(j.error ? { error: j.error } : {}) })),
      elapsedMs: Date.now() - Math.min(started, run.createdAt),
    };
  }

  /**
   * Finishes what a previous process left: payments decided but not confirmed, results
   * received but not verified, verified results not paid, receipts and disputes not published,
   * escrows past their locktime refunded. With `waitForResults`, also waits (until each job's
   * expiration) for results of jobs still out. `refundedSats` is all escrow taken back;
   * `arbitratedSats` the part of it an arbiter's verdict released to us.
   */
  async resume(o: { waitForResults?: boolean; runId?: string; signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void } = {}): Promise<{ resumed: number; refundedSats: number; arbitratedSats: number }> {
    const open = [...this.store.jobs()].filter((j) => (o.runId === undefined || j.runId === o.runId) && (!FINAL_STATES.has(j.state) || (j.receipt && !j.receiptPublished) || (j.dispute && !j.disputePublished) || (j.state === 'paid' && j.payment && !j.receipt)));
    const runs = new Set<string>();
    let resumed = 0;
    await Promise.all(
      open.map(async (j) => {
        const waiting = j.state === 'posting' || j.state === 'posted' || j.state === 'awaiting-payment' || j.state === 'running';
        if (waiting && !o.waitForResults) return;
        resumed++;
        runs.add(j.runId);
        this.#log.info({ jobId: j.id, state: j.state }, 'resuming job');
        try {
          await this.#drive(j.id, { deadline: (j.expiration ?? 0) * 1000, ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
        } catch (err) {
          this.#log.error({ jobId: j.id, err: (err as Error).message }, 'resuming the job failed');
        }
      }),
    );
    for (const r of runs) this.#finishRun(r, []);
    const arbitrated = await this.collectVerdicts();
    const refundedSats = arbitrated.redeemedSats + (await this.refundExpiredEscrows());
    return { resumed, refundedSats, arbitratedSats: arbitrated.redeemedSats };
  }

  /**
   * Verdicts on our disputes of escrowed jobs, from the arbiter we named: a ruling for us comes
   * with our claim co-signed and sealed to us — redeemed now, the job `refunded`; a ruling for
   * the provider is recorded (the escrow is theirs: no refund is attempted).
   */
  async collectVerdicts(o: { signal?: AbortSignal } = {}): Promise<{ decided: number; redeemedSats: number }> {
    const open = [...this.store.jobs()].filter((j) => j.state === 'disputed' && j.escrow && j.dispute && !j.arbitration);
    let decided = 0;
    let redeemedSats = 0;
    for (const j of open) {
      const arbiter = j.escrow!.arbiter;
      const events = await this.#pool.query([{ kinds: [VERDICT_KIND], authors: [arbiter], '#d': [j.id] }], { timeoutMs: this.settings.queryTimeoutMs, ...(o.signal ? { signal: o.signal } : {}) });
      const newest = events.filter((e) => e.pubkey === arbiter).sort((a, b) => b.created_at - a.created_at)[0];
      const v = newest ? parseVerdict(newest) : undefined;
      if (!newest || !v?.ok || v.value.requestId !== j.id || v.value.buyer !== this.pubkey || v.value.provider !== j.provider) continue;
      const log = this.#log.child({ jobId: j.id, arbiter, ruling: v.value.ruling });
      const arbitration: Arbitration = { verdictId: newest.id, arbiter, ruling: v.value.ruling, ...(v.value.providerShare !== undefined ? { providerShare: v.value.providerShare } : {}), reason: v.value.reason, at: this.#now() };
      const release = openEscrowRelease(newest, this.#o.identity.secretKey);
      if (release.ok && release.value && j.escrowClaimId) {
        try {
          const sats = await redeemClaim(this.#payer.cashu(), j.escrowClaimId, [release.value.raw], bytesToHex(this.#o.identity.paymentSecretKey));
          this.store.step(j.id, 'refund', { refundedSats: sats, arbitration: { ...arbitration, redeemedSats: sats } });
          redeemedSats += sats;
          decided++;
          log.info({ sats }, 'the arbiter ruled for us: escrow redeemed with its signature');
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'the arbiter released the escrow to us, but redeeming failed (retried on the next resume)');
        }
        continue;
      }
      // A verdict against us may ask the arbiter's fee: checked against its announcement, then paid once.
      const ask = checkArbiterFee(v.value, 'buyer', v.value.fee ? newestArbiterAnnouncement(await this.#pool.query([arbiterAnnouncementFilter(arbiter)], { timeoutMs: this.settings.queryTimeoutMs, ...(o.signal ? { signal: o.signal } : {}) }), arbiter) : undefined);
      const fee: FeeRecord | undefined = !ask.owed ? undefined : ask.ok ? { msats: ask.msats, paymentHash: ask.paymentHash, state: 'due' } : { msats: ask.msats, ...(ask.paymentHash ? { paymentHash: ask.paymentHash } : {}), state: 'refused', reason: ask.reason };
      this.store.update(j.id, { arbitration: { ...arbitration, ...(fee ? { fee } : {}), ...(ask.owed && ask.ok ? { feeInvoice: ask.bolt11 } : {}) } });
      decided++;
      log.info({}, v.value.ruling === 'buyer' ? 'the arbiter ruled for us without a release: the escrow comes back after its locktime' : 'the arbiter ruled; the escrow is released to the provider');
      if (fee?.state === 'refused') log.warn({ feeMsats: fee.msats, reason: fee.reason }, 'the arbiter\'s fee is not paid: its invoice does not match what it announced');
    }
    await this.payArbiterFees(o);
    return { decided, redeemedSats };
  }

  /** Arbiter fees we owe (verdicts against us), paid once each through the wallet (its limits apply; idempotent per invoice). */
  async payArbiterFees(o: { signal?: AbortSignal } = {}): Promise<number> {
    let paid = 0;
    for (const j of this.store.jobs()) {
      const a = j.arbitration;
      if (a?.fee?.state !== 'due' || !a.feeInvoice) continue;
      const log = this.#log.child({ jobId: j.id, arbiter: a.arbiter });
      const via = this.#payer.canPay.includes('lightning') ? 'lightning' : 'cashu';
      try {
        const p = await this.#payer.payInvoice(a.feeInvoice, { via, maxAmountMsat: a.fee.msats, jobId: j.id, timeoutMs: this.settings.payTimeoutMs, ...(o.signal ? { signal: o.signal } : {}) });
        this.store.update(j.id, { arbitration: { ...a, fee: { ...a.fee, state: 'paid', feesPaidMsat: p.feesPaidMsat, paidAt: this.#now() } } });
        paid++;
        log.info({ feeMsats: a.fee.msats, via, paymentHash: a.fee.paymentHash }, 'the arbiter ruled against us: its fee paid');
      } catch (err) {
        const refused = classifyPaymentError(err);
        // A definite refusal (a spending limit, the wallet said no) ends it; an unknown outcome is retried (the wallet never pays an invoice twice).
        if (refused) this.store.update(j.id, { arbitration: { ...a, fee: { ...a.fee, state: 'refused', reason: refused.message } } });
        log.warn({ feeMsats: a.fee.msats, err: (err as Error).message, retried: !refused }, refused ? 'the arbiter\'s fee was refused by our wallet' : 'paying the arbiter\'s fee: outcome unknown, retried on the next resume');
      }
    }
    return paid;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** Escrows of jobs that were not paid, past their locktime: taken back with our refund key. */
  async refundExpiredEscrows(): Promise<number> {
    let total = 0;
    const now = Math.floor(this.#now() / 1000);
    for (const j of this.store.jobs()) {
      if (!j.escrow || !FINAL_STATES.has(j.state) || j.state === 'paid' || j.state === 'refunded' || j.escrow.locktime > now) continue;
      // An arbiter released the escrow to the provider: it is not ours to take back.
      if (j.arbitration && j.arbitration.ruling !== 'buyer') continue;
      try {
        const sats = await refundAfterLocktime(this.#payer.cashu(), j.escrow.token, bytesToHex(this.#o.identity.paymentSecretKey));
        this.store.step(j.id, 'refund', { refundedSats: sats });
        total += sats;
        this.#log.info({ jobId: j.id, sats }, 'escrow refunded after its locktime');
      } catch (err) {
        this.#log.warn({ jobId: j.id, err: (err as Error).message }, 'escrow refund not possible yet');
      }
    }
    return total;
  }
}

function arbitrationOf(jobs: readonly BuyerJob[]): Pick<RunReport, 'arbitration'> {
  const j = [...jobs].reverse().find((x) => x.arbitration);
  const a = j?.arbitration;
  if (!j || !a) return {};
  const fee = a.fee ? { msats: a.fee.msats, state: a.fee.state, ...(a.fee.reason ? { reason: a.fee.reason } : {}), ...(a.fee.paidAt ? { paidAt: a.fee.paidAt } : {}) } : undefined;
  return { arbitration: { jobId: j.id, verdictId: a.verdictId, ruling: a.ruling, ...(a.redeemedSats !== undefined ? { redeemedSats: a.redeemedSats } : {}), ...(fee ? { fee } : {}) } };
}
