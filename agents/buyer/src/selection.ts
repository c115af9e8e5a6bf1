// Choosing providers (DESIGN §5): hard filters (offline, price, success rate, isolation,
// payment terms), then a weighted score, then a strategy that says how many to try and how.
// Pure: discovery hands in what it saw, the client acts on the ranking.
import { priceFor, type Tier } from '@bazaar/dvm-kinds/pricing';
import { ISOLATION_LEVELS, type Announcement, type Isolation, type PaymentTerms } from '@bazaar/dvm-kinds/market/announcement';
import type { Heartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import type { ReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import type { PaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';

/** Millisats as sats for messages a person reads (1100 → 1.1). */
const satsOf = (msats: number): string => String(msats / 1000);

/** What discovery knows about one provider. */
export interface ProviderView {
  readonly pubkey: string;
  /** The latest NIP-89 handler for the kind (absent for a pinned plain NIP-90 provider without one). */
  readonly announcement?: Announcement;
  /** True when the handler is not a Bazaar announcement (no price book / terms parsed): plain NIP-90. */
  readonly plain: boolean;
  /** A heartbeat that has not expired (NIP-40). */
  readonly heartbeat?: Heartbeat;
  /** The freshest assertion from a trusted reputation key. */
  readonly reputation?: ReputationAssertion;
  readonly paymentInfo?: PaymentInfo;
  /**
   * live/busy/draining: from a fresh heartbeat; stale: the provider promised heartbeats and has
   * none fresh (offline); unknown: a plain NIP-90 provider (no promise, liveness not knowable).
   */
  readonly liveness: 'live' | 'busy' | 'draining' | 'stale' | 'unknown';
}

export interface Weights {
  readonly price: number;
  readonly reputation: number;
  readonly capacity: number;
  readonly isolation: number;
  readonly region: number;
  /** Median request→result latency from reputation (0 in the default weights; `fastest` uses it). */
  readonly latency: number;
}

/** DESIGN §5: 0.25·price + 0.35·reputation + 0.15·capacity + 0.15·isolation + 0.10·region. */
export const DEFAULT_WEIGHTS: Weights = { price: 0.25, reputation: 0.35, capacity: 0.15, isolation: 0.15, region: 0.1, latency: 0 };

export const PREFERENCES = ['cheapest', 'fastest', 'verified-only'] as const;
export type Preference = (typeof PREFERENCES)[number];

/** How each resource preference reweights the score (and, for verified-only, filters). */
export const PRESET_WEIGHTS: Readonly<Record<Preference, Weights>> = {
  cheapest: { price: 0.7, reputation: 0.15, capacity: 0.05, isolation: 0.05, region: 0.05, latency: 0 },
  fastest: { price: 0.05, reputation: 0.15, capacity: 0.35, isolation: 0.05, region: 0.05, latency: 0.35 },
  'verified-only': { price: 0.15, reputation: 0.6, capacity: 0.1, isolation: 0.1, region: 0.05, latency: 0 },
};

export type PayChoice = 'lightning' | 'cashu' | 'escrow';

export interface SelectionPolicy {
  readonly weights?: Partial<Weights>;
  readonly preference?: Preference;
  /** The most one job may cost (msats), for the filter on announced prices. */
  readonly maxPriceMsats?: number;
  /** What the buyer can spend on this job (msats). */
  readonly budgetMsats: number;
  /** 0..1, from trusted reputation assertions; providers without one are filtered out when > 0. */
  readonly minSuccessRate?: number;
  readonly minIsolation?: Isolation;
  readonly region?: string;
  /** Forced payment method; undefined = whatever the provider's terms need. */
  readonly pay?: PayChoice;
  /** Payment methods this buyer can use at all (configured rails). */
  readonly canPay: readonly PayChoice[];
  /** Providers named by the user (tried first, in this order, and allowed without an announcement). */
  readonly pinned?: readonly string[];
  /** Race strategies pay only the winner: providers that want payment up front cannot race. */
  readonly racing?: boolean;
}

export interface Candidate {
  readonly pubkey: string;
  readonly view: ProviderView;
  /** The most the job costs at this provider (its price book and tier), when announced. */
  readonly quoteMsats?: number;
  /** Payment terms for the kind, as announced (after-verify when a plain provider says nothing). */
  readonly terms: PaymentTerms;
  /** How the buyer would pay this provider. */
  readonly pay: PayChoice;
  readonly score: number;
  readonly parts: Readonly<Record<keyof Weights, number>>;
  readonly pinned: boolean;
}

export interface Exclusion {
  readonly pubkey: string;
  readonly reason: string;
  /** `price` when the only obstacle is the budget / max price. */
  readonly code: 'offline' | 'price' | 'reputation' | 'isolation' | 'terms' | 'kind';
  readonly quoteMsats?: number;
}

export interface Ranking {
  readonly ranked: readonly Candidate[];
  readonly excluded: readonly Exclusion[];
}

const ISOLATION_SCORE: Readonly<Record<Isolation, number>> = { none: 0, process: 0.2, bwrap: 0.6, container: 0.8, gvisor: 0.9, vm: 1 };
export const isolationRank = (i: Isolation): number => ISOLATION_LEVELS.indexOf(i);

/** Effective weights: defaults, then the preference preset, then explicit weights. */
export function effectiveWeights(p: Pick<SelectionPolicy, 'weights' | 'preference'>): Weights {
  return { ...DEFAULT_WEIGHTS, ...(p.preference ? PRESET_WEIGHTS[p.preference] : {}), ...p.weights };
}

/** A provider passes `verified-only` with a trusted track record: paid, verified jobs and few lost disputes. */
export function isVerifiedProvider(r: ReputationAssertion | undefined, kind: number): boolean {
  if (!r || r.paidJobs < 1 || r.successRate < 0.9) return false;
  const k = r.perKind.find((x) => x.kind === kind);
  return k === undefined || k.paid >= 1;
}

/** Rank providers for one job of `kind` whose price depends on `units` (seconds, files, 1k tokens…). */
export function rankProviders(views: readonly ProviderView[], job: { kind: number; units: number }, policy: SelectionPolicy): Ranking {
  const weights = effectiveWeights(policy);
  const pinned = policy.pinned ?? [];
  const excluded: Exclusion[] = [];
  const kept: Omit<Candidate, 'score' | 'parts'>[] = [];
  for (const v of views) {
    const isPinned = pinned.includes(v.pubkey);
    const a = v.announcement;
    if (a && !a.kinds.includes(job.kind)) {
      excluded.push({ pubkey: v.pubkey, code: 'kind', reason: `does not serve kind ${job.kind}` });
      continue;
    }
    if (!a && !isPinned) {
      excluded.push({ pubkey: v.pubkey, code: 'kind', reason: 'no announcement for the kind' });
      continue;
    }
    if (v.liveness === 'stale' || v.liveness === 'draining') {
      excluded.push({ pubkey: v.pubkey, code: 'offline', reason: v.liveness === 'stale' ? 'no fresh heartbeat (offline)' : 'draining: takes no new jobs' });
      continue;
    }
    const tier = (v.reputation?.tier ?? 0) as Tier;
    const price = a && a.prices[job.kind] ? priceFor(job.kind, a.prices, job.units, { tier }) : undefined;
    const quoteMsats = price?.ok ? price.value.msats : undefined;
    if (quoteMsats !== undefined && policy.maxPriceMsats !== undefined && quoteMsats > policy.maxPriceMsats) {
      excluded.push({ pubkey: v.pubkey, code: 'price', quoteMsats, reason: `charges up to ${satsOf(quoteMsats)} sats, more than the max price of ${satsOf(policy.maxPriceMsats)} sats` });
      continue;
    }
    if (quoteMsats !== undefined && quoteMsats > policy.budgetMsats) {
      excluded.push({ pubkey: v.pubkey, code: 'price', quoteMsats, reason: `charges up to ${satsOf(quoteMsats)} sats, more than the budget of ${satsOf(policy.budgetMsats)} sats` });
      continue;
    }
    if ((policy.minSuccessRate ?? 0) > 0 && (v.reputation?.successRate ?? -1) < policy.minSuccessRate!) {
      excluded.push({ pubkey: v.pubkey, code: 'reputation', reason: v.reputation ? `success rate ${v.reputation.successRate} below ${policy.minSuccessRate}` : 'no trusted reputation assertion' });
      continue;
    }
    if (policy.preference === 'verified-only' && !isVerifiedProvider(v.reputation, job.kind)) {
      excluded.push({ pubkey: v.pubkey, code: 'reputation', reason: 'verified-only: no trusted record of paid, verified jobs' });
      continue;
    }
    if (policy.minIsolation && (!a?.isolation || isolationRank(a.isolation) < isolationRank(policy.minIsolation))) {
      excluded.push({ pubkey: v.pubkey, code: 'isolation', reason: `isolation ${a?.isolation ?? 'unknown'} is weaker than ${policy.minIsolation}` });
      continue;
    }
    const terms: PaymentTerms = a?.terms[job.kind] ?? 'after-verify';
    const pay = payFor(terms, policy);
    if (typeof pay !== 'string') {
      excluded.push({ pubkey: v.pubkey, code: 'terms', reason: pay.reason });
      continue;
    }
    kept.push({ pubkey: v.pubkey, view: v, ...(quoteMsats !== undefined ? { quoteMsats } : {}), terms, pay, pinned: isPinned });
  }
  const quotes = kept.map((c) => c.quoteMsats).filter((q): q is number => q !== undefined);
  const minQuote = quotes.length ? Math.min(...quotes) : undefined;
  const lats = kept.map((c) => latencyOf(c.view, job.kind)).filter((l): l is number => l !== undefined);
  const minLat = lats.length ? Math.max(1, Math.min(...lats)) : undefined;
  const ranked = kept.map((c) => {
    const parts = scoreParts(c, { minQuote, minLat, region: policy.region, kind: job.kind });
    const score = (Object.keys(weights) as (keyof Weights)[]).reduce((s, k) => s + weights[k] * parts[k], 0);
    return { ...c, parts, score: Math.round(score * 10_000) / 10_000 };
  });
  ranked.sort((x, y) => Number(y.pinned) - Number(x.pinned) || (x.pinned && y.pinned ? pinned.indexOf(x.pubkey) - pinned.indexOf(y.pubkey) : 0) || y.score - x.score || (x.quoteMsats ?? Infinity) - (y.quoteMsats ?? Infinity) || (x.pubkey < y.pubkey ? -1 : 1));
  return { ranked, excluded };
}

function payFor(terms: PaymentTerms, policy: SelectionPolicy): PayChoice | { reason: string } {
  if (terms === 'escrow') {
    if (policy.pay && policy.pay !== 'escrow') return { reason: `requires a Cashu escrow; --pay ${policy.pay} was asked` };
    if (!policy.canPay.includes('escrow')) return { reason: 'requires a Cashu escrow and this buyer has no mint configured' };
    return 'escrow';
  }
  if (terms === 'prepay' && policy.racing) return { reason: 'asks payment up front: a race pays only the winner' };
  if (policy.pay === 'escrow') return { reason: `terms are ${terms}, not escrow` };
  const pay = policy.pay ?? (policy.canPay.includes('lightning') ? 'lightning' : 'cashu');
  if (!policy.canPay.includes(pay)) return { reason: `payment by ${pay} is not configured` };
  return pay;
}

function latencyOf(v: ProviderView, kind: number): number | undefined {
  const r = v.reputation;
  if (!r) return undefined;
  const k = r.perKind.find((x) => x.kind === kind);
  const lat = k?.medianLatencySecs ?? r.medianLatencySecs;
  return r.resultsDelivered > 0 ? lat : undefined;
}

function scoreParts(c: Omit<Candidate, 'score' | 'parts'>, ctx: { minQuote?: number; minLat?: number; region?: string; kind: number }): Record<keyof Weights, number> {
  const v = c.view;
  const price = c.quoteMsats === undefined ? 0 : c.quoteMsats === 0 || ctx.minQuote === undefined ? 1 : ctx.minQuote / c.quoteMsats;
  const reputation = v.reputation ? v.reputation.rank / 100 : 0;
  let capacity = 0;
  if (v.heartbeat && v.heartbeat.capacity > 0) capacity = Math.max(0, v.heartbeat.capacity - v.heartbeat.active) / v.heartbeat.capacity;
  const isolation = v.announcement?.isolation ? ISOLATION_SCORE[v.announcement.isolation] : 0;
  const region = ctx.region === undefined ? 1 : v.announcement?.region === ctx.region ? 1 : 0;
  const lat = latencyOf(v, ctx.kind);
  const latency = lat === undefined || ctx.minLat === undefined ? 0 : ctx.minLat / Math.max(1, lat);
  return { price, reputation, capacity, isolation, region, latency };
}

// ---- strategies ----

export type Strategy =
  | { readonly type: 'first' }
  | { readonly type: 'prefer' }
  | { readonly type: 'race'; readonly n: number }
  | { readonly type: 'retry'; readonly n: number }
  | { readonly type: 'pinned' };

export const DEFAULT_STRATEGY: Strategy = { type: 'retry', n: 3 };

/** `first | prefer | race:N | retry:N | pinned` (retry alone means retry:3). */
export function parseStrategy(s: string): Strategy | { error: string } {
  const m = /^(first|prefer|pinned|race|retry)(?::(\d{1,2}))?$/.exec(s.trim());
  if (!m) return { error: `strategy must be first, prefer, race:N, retry:N or pinned, got ${JSON.stringify(s)}` };
  const [, type, n] = m;
  if (type === 'race' || type === 'retry') {
    const count = n === undefined ? (type === 'retry' ? 3 : 2) : Number(n);
    if (count < 1 || count > 10) return { error: `${type}:N takes N from 1 to 10` };
    return { type, n: count };
  }
  if (n !== undefined) return { error: `${type} takes no count` };
  return { type } as Strategy;
}

export const formatStrategy = (s: Strategy): string => (s.type === 'race' || s.type === 'retry' ? `${s.type}:${s.n}` : s.type);

/** Backoff before sequential retry `attempt` (1-based): base × 2^(attempt-1), capped. */
export const retryBackoffMs = (attempt: number, baseMs: number, capMs = 30_000): number => Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
