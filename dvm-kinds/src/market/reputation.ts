// NIP-85 trusted assertion about a provider (kind 30382, d = provider pubkey), signed by a relay's reputation key.
import type { EventTemplate } from '../nostr.ts';
import { isHex64 } from '../hash.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, readUintTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { isJobRequestKind } from '../job.ts';

export const REPUTATION_KIND = 30382;

export interface KindStats {
  readonly kind: number;
  readonly jobs: number;
  readonly delivered: number;
  readonly paid: number;
  readonly disputesLost: number;
  readonly medianLatencySecs: number;
  /** Appended after the six figures above when known (older assertions end there). */
  readonly p90LatencySecs?: number;
  readonly satsEarned?: number;
}

export interface ReputationStats {
  /** Jobs that count toward the tier (see the relay README: anti-gaming rules). */
  readonly jobsSeen: number;
  /** Job requests that named this provider in a `p` tag. */
  readonly requests?: number;
  /** Jobs the provider took on (processing / payment-required / partial / success feedback, or a result). */
  readonly accepted?: number;
  /** 90th percentile request→result latency. */
  readonly p90LatencySecs?: number;
  /** Unix seconds of the provider's latest event the indexer saw. */
  readonly lastSeen?: number;
  readonly resultsDelivered: number;
  /** Receipts with a verified proof of payment. */
  readonly paidJobs: number;
  readonly disputesOpened: number;
  readonly disputesLost: number;
  readonly medianLatencySecs: number;
  readonly satsEarned: number;
  /** 0..1: paid, verified jobs not lost in dispute over jobs seen. */
  readonly successRate: number;
  readonly tier: 0 | 1 | 2 | 3;
  /** Average buyer rating (0..1), only from paying buyers. */
  readonly rating?: number;
  readonly perKind: readonly KindStats[];
}

export interface ReputationAssertion extends ReputationStats {
  /** The relay's reputation key. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly provider: string;
  /** NIP-85 `rank`: 0..100. */
  readonly rank: number;
}

/** NIP-85 rank for a provider: success rate scaled to 0..100, damped until 100 jobs. */
export const rankFor = (s: Pick<ReputationStats, 'successRate' | 'jobsSeen'>): number => Math.round(100 * s.successRate * Math.min(1, s.jobsSeen / 100));

export function buildReputationAssertion(provider: string, s: ReputationStats, createdAt?: number): EventTemplate {
  const tags: string[][] = [
    ['d', provider],
    ['p', provider],
    ['rank', String(rankFor(s))],
    ['tier', String(s.tier)],
    ['jobs', String(s.jobsSeen)],
    ...(s.requests !== undefined ? [['requests', String(s.requests)]] : []),
    ...(s.accepted !== undefined ? [['accepted', String(s.accepted)]] : []),
    ['delivered', String(s.resultsDelivered)],
    ['paid', String(s.paidJobs)],
    ['disputes_opened', String(s.disputesOpened)],
    ['disputes_lost', String(s.disputesLost)],
    ['median_latency_secs', String(s.medianLatencySecs)],
    ...(s.p90LatencySecs !== undefined ? [['p90_latency_secs', String(s.p90LatencySecs)]] : []),
    ['sats_earned', String(s.satsEarned)],
    ['success_rate', s.successRate.toFixed(4)],
  ];
  if (s.rating !== undefined) tags.push(['rating', s.rating.toFixed(4)]);
  if (s.lastSeen !== undefined) tags.push(['last_seen', String(s.lastSeen)]);
  for (const k of s.perKind) {
    const t = ['kind_stats', String(k.kind), String(k.jobs), String(k.delivered), String(k.paid), String(k.disputesLost), String(k.medianLatencySecs)];
    if (k.p90LatencySecs !== undefined && k.satsEarned !== undefined) t.push(String(k.p90LatencySecs), String(k.satsEarned));
    tags.push(t);
  }
  return { kind: REPUTATION_KIND, created_at: createdAt ?? nowSecs(), content: '', tags };
}

export function parseReputationAssertion(e: EventLike): Parsed<ReputationAssertion> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, REPUTATION_KIND, out, 'reputation assertion');
  const provider = readSingleTag(e.tags, 'd', out, true)?.[1];
  if (provider !== undefined && !isHex64(provider)) out.push(problem('tags.d', 'invalid', 'd is the provider pubkey (64-char hex)'));
  const num = (name: string) => readUintTag(e.tags, name, out, true);
  const rank = num('rank');
  if (rank !== undefined && rank > 100) out.push(problem('tags.rank', 'invalid', 'rank is 0..100'));
  const tier = num('tier');
  if (tier !== undefined && tier > 3) out.push(problem('tags.tier', 'invalid', 'tier is 0..3'));
  const jobsSeen = num('jobs');
  const resultsDelivered = num('delivered');
  const paidJobs = num('paid');
  const disputesOpened = num('disputes_opened');
  const disputesLost = num('disputes_lost');
  const medianLatencySecs = num('median_latency_secs');
  const satsEarned = num('sats_earned');
  const requests = readUintTag(e.tags, 'requests', out, false);
  const accepted = readUintTag(e.tags, 'accepted', out, false);
  const p90LatencySecs = readUintTag(e.tags, 'p90_latency_secs', out, false);
  const lastSeen = readUintTag(e.tags, 'last_seen', out, false);
  const frac = (name: string, required: boolean): number | undefined => {
    const t = readSingleTag(e.tags, name, out, required);
    if (!t) return undefined;
    const v = Number(t[1]);
    if (!/^\d+(\.\d+)?$/.test(t[1] ?? '') || v > 1) {
      out.push(problem(`tags.${name}`, 'invalid', 'a fraction between 0 and 1'));
      return undefined;
    }
    return v;
  };
  const successRate = frac('success_rate', true);
  const rating = frac('rating', false);
  const perKind: KindStats[] = [];
  tagsNamed(e.tags, 'kind_stats').forEach((t, n) => {
    const [kind, jobs, delivered, paid, lost, lat] = t.slice(1, 7).map(parseUint);
    const [p90, sats] = t.slice(7, 9).map(parseUint);
    const extraBad = t.length > 7 && (p90 === undefined || sats === undefined);
    if ([kind, jobs, delivered, paid, lost, lat].some((x) => x === undefined) || !isJobRequestKind(kind!) || extraBad) out.push(problem(`tags.kind_stats[${n}]`, 'invalid', '["kind_stats", kind, jobs, delivered, paid, disputes_lost, median_latency_secs, p90_latency_secs?, sats_earned?]'));
    else perKind.push({ kind: kind!, jobs: jobs!, delivered: delivered!, paid: paid!, disputesLost: lost!, medianLatencySecs: lat!, ...(p90 !== undefined && sats !== undefined ? { p90LatencySecs: p90, satsEarned: sats } : {}) });
  });
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    provider: provider!,
    rank: rank!,
    tier: tier as 0 | 1 | 2 | 3,
    jobsSeen: jobsSeen!,
    ...(requests !== undefined ? { requests } : {}),
    ...(accepted !== undefined ? { accepted } : {}),
    ...(p90LatencySecs !== undefined ? { p90LatencySecs } : {}),
    ...(lastSeen !== undefined ? { lastSeen } : {}),
    resultsDelivered: resultsDelivered!,
    paidJobs: paidJobs!,
    disputesOpened: disputesOpened!,
    disputesLost: disputesLost!,
    medianLatencySecs: medianLatencySecs!,
    satsEarned: satsEarned!,
    successRate: successRate!,
    ...(rating !== undefined ? { rating } : {}),
    perKind,
  }));
}
