// One job, reduced from its facts: request → feedback → result → receipt / dispute → verdict.
// Pure and order-independent: the facts are sorted before anything is read, and every
// "which one wins" rule is the NIP-01 one (newest created_at, then lowest id).
import type { DisputeFact, FeedbackFact, JobFact, ReceiptFact, RequestFact, ResultFact, VerdictFact } from './facts.ts';

/** A mint's answer about a Cashu receipt's proofs (NUT-07), kept by the index as an observation. */
export interface CashuCheck {
  /** `spent`: every proof is spent at the mint; `unspent`: not (yet) redeemed; `error`: the mint could not say. */
  readonly state: 'spent' | 'unspent' | 'error';
  readonly at: number;
}

/**
 * How the relay judges a provider's payment for a job:
 * `verified` — counted (proof checked, bound to this provider and this job, from the buyer who posted it);
 * `unverified` — a receipt the relay cannot check (Cashu without a trusted mint, or not yet redeemed);
 * `invalid` — a receipt that does not prove payment to this provider for this job.
 */
export type PaymentStatus = 'none' | 'verified' | 'unverified' | 'invalid';

export const JOB_STATES = ['requested', 'payment-required', 'processing', 'partial', 'error', 'delivered', 'receipt', 'paid', 'disputed', 'resolved', 'expired'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface ProviderPart {
  readonly provider: string;
  /** Named in the request's `p` tags. */
  readonly named: boolean;
  /** Took the job on: processing / payment-required / partial / success feedback, or a result. */
  readonly accepted: boolean;
  readonly feedback: readonly { readonly id: string; readonly at: number; readonly status: FeedbackFact['status']; readonly amountMsats?: number }[];
  /** The provider's first result (by created_at, then id). */
  readonly result?: { readonly id: string; readonly at: number; readonly amountMsats?: number };
  /** Seconds from request to first result (≥ 0), when both are known. */
  readonly latencySecs?: number;
  readonly payment: PaymentStatus;
  /** Why a receipt for this provider did not count. */
  readonly paymentProblem?: string;
  readonly paidMsats: number;
  /** The paying buyer's rating, only when the payment is verified. */
  readonly rating?: number;
  readonly disputed: boolean;
  readonly disputeLost: boolean;
  /** Split ruling: the provider's share. */
  readonly verdict?: VerdictFact['ruling'];
}

export interface TimelineEntry {
  readonly at: number;
  readonly what: string;
  readonly by: string;
  readonly id: string;
}

export interface JobView {
  readonly id: string;
  readonly kind?: number;
  readonly buyer?: string;
  readonly requestedAt?: number;
  /** Where the request facts came from: the stored request, or a provider's result embedding it. */
  readonly requestSource?: 'request' | 'embedded';
  readonly providersNamed: readonly string[];
  readonly bidMsats?: number;
  readonly expiration?: number;
  readonly escrow?: RequestFact['escrow'];
  readonly state: JobState;
  readonly parts: readonly ProviderPart[];
  readonly receipt?: ReceiptFact;
  readonly dispute?: DisputeFact;
  readonly verdict?: VerdictFact;
  readonly timeline: readonly TimelineEntry[];
  readonly lastAt: number;
}

const byTimeThenId = (a: { at: number; id: string }, b: { at: number; id: string }): number => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
/** NIP-01 replaceable rule: the newest wins, equal timestamps → lowest id. */
const newest = <T extends { at: number; id: string }>(list: readonly T[]): T | undefined =>
  list.reduce<T | undefined>((best, x) => (best === undefined || x.at > best.at || (x.at === best.at && x.id < best.id) ? x : best), undefined);

const ACCEPTING: ReadonlySet<string> = new Set(['processing', 'payment-required', 'partial', 'success']);

export interface ReduceOptions {
  /** Mint answers by receipt id (Cashu receipts). */
  readonly cashuCheck?: (receiptId: string) => CashuCheck | undefined;
  /** Mints whose answers count; a Cashu receipt from any other mint stays unverified. */
  readonly trustedMints?: ReadonlySet<string>;
  /** Unix seconds, for `expired`. */
  readonly now?: number;
}

/** Reduce every fact known about one job request. */
export function reduceJob(requestId: string, facts: readonly JobFact[], o: ReduceOptions = {}): JobView {
  const sorted = [...facts].sort(byTimeThenId);
  const direct = sorted.find((f): f is RequestFact => f.t === 'request' && f.id === requestId);
  const embedded = direct ? undefined : sorted.find((f): f is ResultFact => f.t === 'result' && f.request?.id === requestId)?.request;
  const request = direct ?? embedded;
  const buyer = request?.buyer;
  const timeline: TimelineEntry[] = [];
  if (request) timeline.push({ at: request.at, what: 'requested', by: request.buyer, id: request.id });

  // Per provider: its feedback and results. Only the provider's own events speak for it.
  const partsBy = new Map<string, { feedback: FeedbackFact[]; results: ResultFact[] }>();
  const part = (p: string) => {
    let x = partsBy.get(p);
    if (!x) partsBy.set(p, (x = { feedback: [], results: [] }));
    return x;
  };
  for (const f of sorted) {
    // A provider answering someone else's request (buyer mismatch) is not part of this job.
    if ((f.t === 'feedback' || f.t === 'result') && (buyer === undefined || f.buyer === buyer)) {
      if (f.t === 'feedback') part(f.provider).feedback.push(f);
      else if (request === undefined || f.kind === request.kind) part(f.provider).results.push(f);
    }
  }
  for (const p of request?.providers ?? []) part(p);

  // Receipts, disputes and verdicts count only from the buyer who posted the request (and for
  // verdicts, the arbiter the buyer named). Addressable: the newest version wins.
  const receipt = buyer === undefined ? undefined : newest(sorted.filter((f): f is ReceiptFact => f.t === 'receipt' && f.buyer === buyer));
  const dispute = buyer === undefined ? undefined : newest(sorted.filter((f): f is DisputeFact => f.t === 'dispute' && f.buyer === buyer));
  const verdict = dispute?.arbiter === undefined ? undefined
    : newest(sorted.filter((f): f is VerdictFact => f.t === 'verdict' && f.arbiter === dispute.arbiter && f.buyer === dispute.buyer && f.provider === dispute.provider));

  const parts: ProviderPart[] = [];
  for (const [provider, x] of [...partsBy].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const result = x.results[0];
    const accepted = result !== undefined || x.feedback.some((f) => ACCEPTING.has(f.status));
    for (const f of x.feedback) timeline.push({ at: f.at, what: f.status, by: provider, id: f.id });
    if (result) timeline.push({ at: result.at, what: 'result', by: provider, id: result.id });
    const bolt11s = new Map<string, number | undefined>();
    for (const f of [...x.feedback, ...x.results]) if (f.bolt11) bolt11s.set(f.bolt11, f.amountMsats);
    let payment: PaymentStatus = 'none';
    let paymentProblem: string | undefined;
    let paidMsats = 0;
    if (receipt && receipt.provider === provider) {
      const judged = judgePayment(receipt, { request, bolt11s, delivered: result !== undefined }, o);
      payment = judged.status;
      paymentProblem = judged.problem;
      if (payment === 'verified') paidMsats = receipt.amountMsats;
    }
    const disputed = dispute !== undefined && dispute.provider === provider;
    const v = disputed ? verdict : undefined;
    parts.push({
      provider,
      named: request?.providers.includes(provider) ?? false,
      accepted,
      feedback: x.feedback.map((f) => ({ id: f.id, at: f.at, status: f.status, ...(f.amountMsats !== undefined ? { amountMsats: f.amountMsats } : {}) })),
      ...(result ? { result: { id: result.id, at: result.at, ...(result.amountMsats !== undefined ? { amountMsats: result.amountMsats } : {}) } } : {}),
      ...(result && request ? { latencySecs: Math.max(0, result.at - request.at) } : {}),
      payment,
      ...(paymentProblem ? { paymentProblem } : {}),
      paidMsats,
      ...(payment === 'verified' && receipt?.rating !== undefined ? { rating: receipt.rating } : {}),
      disputed,
      disputeLost: v?.ruling === 'buyer',
      ...(v ? { verdict: v.ruling } : {}),
    });
  }
  if (receipt) timeline.push({ at: receipt.at, what: 'receipt', by: receipt.buyer, id: receipt.id });
  if (dispute) timeline.push({ at: dispute.at, what: 'dispute', by: dispute.buyer, id: dispute.id });
  if (verdict) timeline.push({ at: verdict.at, what: `verdict: ${verdict.ruling}`, by: verdict.arbiter, id: verdict.id });
  timeline.sort(byTimeThenId);

  return {
    id: requestId,
    ...(request ? { kind: request.kind, buyer: request.buyer, requestedAt: request.at, requestSource: direct ? 'request' as const : 'embedded' as const } : {}),
    providersNamed: request?.providers ?? [],
    ...(request?.bidMsats !== undefined ? { bidMsats: request.bidMsats } : {}),
    ...(request?.expiration !== undefined ? { expiration: request.expiration } : {}),
    ...(request?.escrow ? { escrow: request.escrow } : {}),
    state: jobState(parts, { receipt, dispute, verdict, expiration: request?.expiration, now: o.now }),
    parts,
    ...(receipt ? { receipt } : {}),
    ...(dispute ? { dispute } : {}),
    ...(verdict ? { verdict } : {}),
    timeline,
    lastAt: sorted.reduce((m, f) => Math.max(m, f.at), 0),
  };
}

function judgePayment(
  r: ReceiptFact,
  job: { request: RequestFact | undefined; bolt11s: ReadonlyMap<string, number | undefined>; delivered: boolean },
  o: ReduceOptions,
): { status: PaymentStatus; problem?: string } {
  if (!r.proofOk) return { status: 'invalid', problem: r.method === 'lightning' ? 'the preimage does not hash to the invoice payment hash, or the invoice amount differs' : 'a Y is not hash_to_curve(secret)' };
  if (r.method === 'lightning') {
    // The invoice must be one this provider issued for this job, in its own signed events:
    // otherwise a buyer could "pay" an invoice of its own and claim it paid the provider.
    if (!job.bolt11s.has(r.bolt11!)) return { status: 'invalid', problem: 'the invoice is not one the provider asked for in this job' };
    const asked = job.bolt11s.get(r.bolt11!);
    if (asked !== undefined && asked !== r.amountMsats) return { status: 'invalid', problem: `the provider asked for ${asked} msats, the receipt says ${r.amountMsats}` };
    return { status: 'verified' };
  }
  const escrow = job.request?.escrow;
  if (!escrow) return { status: 'invalid', problem: 'a Cashu receipt counts only for an escrowed job (the request carries no escrow)' };
  if (r.mint !== escrow.mint) return { status: 'invalid', problem: 'the receipt names another mint than the escrow' };
  const locked = new Set(escrow.secrets);
  if (!r.proofs?.length || !r.proofs.every((p) => locked.has(p.secret))) return { status: 'invalid', problem: 'the proofs are not the escrowed ones' };
  if (escrow.unit === 'sat' && r.amountMsats > escrow.amount * 1000) return { status: 'invalid', problem: 'the receipt claims more than the escrow holds' };
  if (!job.delivered) return { status: 'invalid', problem: 'no result from this provider' };
  if (!o.trustedMints?.has(r.mint!)) return { status: 'unverified', problem: 'the mint is not one this indexer trusts' };
  const check = o.cashuCheck?.(r.id);
  if (check?.state === 'spent') return { status: 'verified' };
  return { status: 'unverified', problem: check === undefined ? 'not checked at the mint yet' : check.state === 'unspent' ? 'the escrow is not redeemed yet' : 'the mint could not be asked' };
}

function jobState(
  parts: readonly ProviderPart[],
  j: { receipt?: ReceiptFact; dispute?: DisputeFact; verdict?: VerdictFact; expiration?: number; now?: number },
): JobState {
  if (j.verdict) return 'resolved';
  if (j.dispute) return 'disputed';
  if (parts.some((p) => p.payment === 'verified')) return 'paid';
  if (j.receipt) return 'receipt';
  if (parts.some((p) => p.result)) return 'delivered';
  // Otherwise the newest feedback status across providers.
  const last = newest(parts.flatMap((p) => p.feedback)) as { status: JobState } | undefined;
  if (last && last.status !== ('success' as JobState)) return last.status;
  if (last) return 'processing';
  if (j.expiration !== undefined && j.now !== undefined && j.expiration <= j.now) return 'expired';
  return 'requested';
}
