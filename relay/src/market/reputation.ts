// Provider reputation: a pure reducer over the provider's jobs and the market's payment graph.
// Anti-gaming rules (relay README, "Reputation"): only independent buyers' jobs count, only
// verified payments count as success and earnings, ratings come only from the buyer who paid,
// and no single buyer can carry a provider up the tier table.
import { tierFor, type Tier } from '@bazaar/dvm-kinds/pricing';
import { rankFor, type KindStats, type ReputationStats } from '@bazaar/dvm-kinds/market/reputation';
import type { ProviderPart } from './job.ts';

export interface ReputationParams {
  /**
   * A buyer the provider's own money reaches in at most this many verified payments
   * (provider → x → … → buyer) is part of its cluster: that buyer's jobs do not count.
   */
  readonly washHops: number;
  /** The most jobs one buyer contributes to the tier's job count and weighs in the success rate. */
  readonly maxJobsPerBuyer: number;
}

export const DEFAULT_REPUTATION_PARAMS: ReputationParams = { washHops: 3, maxJobsPerBuyer: 25 };

/** What reputation reads of a job (a `JobView` is one; the market state keeps only this much per job). */
export interface ReputationJob {
  readonly buyer?: string | undefined;
  readonly kind?: number | undefined;
  readonly parts: readonly ReputationPart[];
}

export type ReputationPart = Pick<ProviderPart, 'provider' | 'named' | 'accepted' | 'payment' | 'paidMsats' | 'disputed' | 'disputeLost'> & {
  readonly result?: { readonly at: number } | undefined;
  readonly latencySecs?: number | undefined;
  readonly rating?: number | undefined;
};

/** Verified payments between keys: buyer → providers it paid. */
export interface PaymentGraph {
  paidBy(buyer: string): Iterable<string>;
}

export interface ProviderReputation extends ReputationStats {
  readonly provider: string;
  readonly rank: number;
  readonly tier: Tier;
  /** Jobs the provider took on that do not count, and why. */
  readonly excluded: { readonly self: number; readonly cluster: number; readonly unknownBuyer: number };
  /** Independent buyers with at least one accepted job. */
  readonly buyers: number;
  /** Verified sats received per hour, for charts: [hour start (unix s), jobs delivered, sats]. */
  readonly hourly: readonly (readonly [number, number, number])[];
  /** Latencies of delivered jobs (seconds), for the distribution chart. */
  readonly latencies: readonly number[];
}

/** The keys a provider's money reaches within `hops` verified payments (its possible cluster). */
export function clusterOf(provider: string, graph: PaymentGraph, hops: number): Set<string> {
  const seen = new Set<string>([provider]);
  let frontier = [provider];
  for (let h = 0; h < hops && frontier.length; h++) {
    const next: string[] = [];
    for (const k of frontier) for (const to of graph.paidBy(k)) if (!seen.has(to)) { seen.add(to); next.push(to); }
    frontier = next;
  }
  return seen;
}

function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return 0;
  // Nearest-rank: the smallest value with at least p of the data at or below it.
  const i = Math.max(0, Math.ceil(p * sorted.length) - 1);
  return Math.round(sorted[Math.min(i, sorted.length - 1)]);
}

interface Acc {
  accepted: number;
  delivered: number;
  paid: number;
  disputesOpened: number;
  disputesLost: number;
  paidMsats: number;
  latencies: number[];
  /** Per buyer: accepted and successful jobs. */
  byBuyer: Map<string, { accepted: number; success: number }>;
}

const newAcc = (): Acc => ({ accepted: 0, delivered: 0, paid: 0, disputesOpened: 0, disputesLost: 0, paidMsats: 0, latencies: [], byBuyer: new Map() });

function weighted(acc: Acc, cap: number): { jobs: number; successRate: number } {
  let jobs = 0;
  let num = 0;
  let den = 0;
  for (const b of acc.byBuyer.values()) {
    const w = b.accepted > cap ? cap / b.accepted : 1;
    jobs += Math.min(b.accepted, cap);
    num += w * b.success;
    den += w * b.accepted;
  }
  return { jobs, successRate: den > 0 ? num / den : 0 };
}

/**
 * Reputation of `provider` from the jobs it took part in. `lastSeen` is the newest event
 * the provider authored (any kind), kept by the caller.
 */
export function computeReputation(
  provider: string,
  jobs: Iterable<ReputationJob>,
  graph: PaymentGraph,
  o: { readonly params?: ReputationParams; readonly lastSeen?: number } = {},
): ProviderReputation {
  const params = o.params ?? DEFAULT_REPUTATION_PARAMS;
  const cluster = clusterOf(provider, graph, params.washHops);
  const all = newAcc();
  const perKind = new Map<number, Acc>();
  const excluded = { self: 0, cluster: 0, unknownBuyer: 0 };
  const ratings: number[] = [];
  const hourly = new Map<number, [number, number]>();
  let requests = 0;
  for (const job of jobs) {
    const part = job.parts.find((p) => p.provider === provider);
    if (!part) continue;
    const buyer = job.buyer;
    if (part.named && buyer !== undefined && buyer !== provider && !cluster.has(buyer)) requests++;
    if (!part.accepted) continue;
    if (buyer === undefined) { excluded.unknownBuyer++; continue; }
    if (buyer === provider) { excluded.self++; continue; }
    if (cluster.has(buyer)) { excluded.cluster++; continue; }
    const kindAcc = job.kind === undefined ? undefined : (perKind.get(job.kind) ?? perKind.set(job.kind, newAcc()).get(job.kind)!);
    const success = part.payment === 'verified' && !part.disputeLost;
    for (const acc of kindAcc ? [all, kindAcc] : [all]) {
      acc.accepted++;
      if (part.result) acc.delivered++;
      if (part.payment === 'verified') { acc.paid++; acc.paidMsats += part.paidMsats; }
      if (part.disputed) acc.disputesOpened++;
      if (part.disputeLost) acc.disputesLost++;
      if (part.latencySecs !== undefined) acc.latencies.push(part.latencySecs);
      const b = acc.byBuyer.get(buyer) ?? acc.byBuyer.set(buyer, { accepted: 0, success: 0 }).get(buyer)!;
      b.accepted++;
      if (success) b.success++;
    }
    if (part.rating !== undefined) ratings.push(part.rating);
    if (part.result) {
      const h = Math.floor(part.result.at / 3600) * 3600;
      const cell = hourly.get(h) ?? hourly.set(h, [0, 0]).get(h)!;
      cell[0]++;
      cell[1] += Math.floor(part.paidMsats / 1000);
    }
  }
  const { jobs: tierJobs, successRate } = weighted(all, params.maxJobsPerBuyer);
  const lat = [...all.latencies].sort((a, b) => a - b);
  const kinds: KindStats[] = [...perKind].sort((a, b) => a[0] - b[0]).map(([kind, acc]) => {
    const l = [...acc.latencies].sort((a, b) => a - b);
    return {
      kind, jobs: weighted(acc, params.maxJobsPerBuyer).jobs, delivered: acc.delivered, paid: acc.paid, disputesLost: acc.disputesLost,
      medianLatencySecs: percentile(l, 0.5), p90LatencySecs: percentile(l, 0.9), satsEarned: Math.floor(acc.paidMsats / 1000),
    };
  });
  const rounded = Math.round(successRate * 10_000) / 10_000;
  const tier = tierFor({ jobs: tierJobs, successRate: rounded });
  const stats: ReputationStats = {
    jobsSeen: tierJobs,
    requests,
    accepted: all.accepted,
    resultsDelivered: all.delivered,
    paidJobs: all.paid,
    disputesOpened: all.disputesOpened,
    disputesLost: all.disputesLost,
    medianLatencySecs: percentile(lat, 0.5),
    p90LatencySecs: percentile(lat, 0.9),
    satsEarned: Math.floor(all.paidMsats / 1000),
    successRate: rounded,
    tier,
    ...(ratings.length ? { rating: Math.round((ratings.reduce((a, b) => a + b, 0) / ratings.length) * 10_000) / 10_000 } : {}),
    ...(o.lastSeen !== undefined ? { lastSeen: o.lastSeen } : {}),
    perKind: kinds,
  };
  return {
    ...stats,
    provider,
    rank: rankFor(stats),
    tier,
    excluded,
    buyers: all.byBuyer.size,
    hourly: [...hourly].sort((a, b) => a[0] - b[0]).map(([h, [n, sats]]) => [h, n, sats] as const),
    latencies: lat,
  };
}
