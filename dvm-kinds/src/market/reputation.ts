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
}

export interface ReputationStats {
  readonly jobsSeen: number;
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
    ['delivered', String(s.resultsDelivered)],
    ['paid', String(s.paidJobs)],
    ['disputes_opened', String(s.disputesOpened)],
    ['disputes_lost', String(s.disputesLost)],
    ['median_latency_secs', String(s.medianLatencySecs)],
    ['sats_earned', String(s.satsEarned)],
    ['success_rate', s.successRate.toFixed(4)],
  ];
  if (s.rating !== undefined) tags.push(['rating', s.rating.toFixed(4)]);
  for (const k of s.perKind) tags.push(['kind_stats', String(k.kind), String(k.jobs), String(k.delivered), String(k.paid), String(k.disputesLost), String(k.medianLatencySecs)]);
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
    if ([kind, jobs, delivered, paid, lost, lat].some((x) => x === undefined) || !isJobRequestKind(kind!)) out.push(problem(`tags.kind_stats[${n}]`, 'invalid', '["kind_stats", kind, jobs, delivered, paid, disputes_lost, median_latency_secs]'));
    else perKind.push({ kind: kind!, jobs: jobs!, delivered: delivered!, paid: paid!, disputesLost: lost!, medianLatencySecs: lat! });
  });
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    provider: provider!,
    rank: rank!,
    tier: tier as 0 | 1 | 2 | 3,
    jobsSeen: jobsSeen!,
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
