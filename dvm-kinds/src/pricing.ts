// Prices (DESIGN §5): base + per-unit, capped, plus the tier premium a proven provider may charge.
import { problem, type Parsed, fail, ok } from './problem.ts';

export interface PriceEntry {
  readonly baseMsats: number;
  readonly perUnitMsats: number;
  /** What a unit is for this kind: `job`, `second`, `1k-tokens`, `file`, ... */
  readonly unit: string;
  /** The most one job costs before the tier premium. */
  readonly capMsats?: number;
}

/** Prices by job request kind. */
export type Pricebook = Readonly<Record<number, PriceEntry>>;

export type Tier = 0 | 1 | 2 | 3;

export const TIERS = [
  { tier: 0, minJobs: 0, minSuccessRate: 0, premium: 0, concurrency: 5 },
  { tier: 1, minJobs: 100, minSuccessRate: 0.9, premium: 0, concurrency: 10 },
  { tier: 2, minJobs: 500, minSuccessRate: 0.95, premium: 0.1, concurrency: 25 },
  { tier: 3, minJobs: 1000, minSuccessRate: 0.99, premium: 0.2, concurrency: 100 },
] as const;

/** Tier from track record: the highest tier whose job count is reached and success rate exceeded. */
export function tierFor(s: { jobs: number; successRate: number }): Tier {
  for (let i = TIERS.length - 1; i > 0; i--) {
    const t = TIERS[i];
    if (s.jobs >= t.minJobs && s.successRate > t.minSuccessRate) return t.tier;
  }
  return 0;
}

export interface Price {
  /** What the buyer pays. */
  readonly msats: number;
  /** base + per-unit × units, before cap and premium. */
  readonly listMsats: number;
  readonly capped: boolean;
  readonly premiumMsats: number;
}

/**
 * Price of one job: min(base + perUnit × units, cap), then the tier premium on top, rounded up
 * to a whole millisat. The cap bounds the list price; the premium is shown separately so a
 * buyer can see what reputation costs.
 */
export function priceFor(kind: number, pricebook: Pricebook, units: number, opts: { tier?: Tier } = {}): Parsed<Price> {
  const entry = pricebook[kind];
  if (!entry) return fail([problem('kind', 'missing', `no price for kind ${kind}`)]);
  if (!Number.isFinite(units) || units < 0) return fail([problem('units', 'invalid', `units must be a non-negative number, got ${units}`)]);
  const listMsats = Math.ceil(entry.baseMsats + entry.perUnitMsats * units);
  const capped = entry.capMsats !== undefined && listMsats > entry.capMsats;
  const base = capped ? entry.capMsats! : listMsats;
  const premium = TIERS[opts.tier ?? 0].premium;
  const premiumMsats = Math.ceil(base * premium);
  return ok({ msats: base + premiumMsats, listMsats, capped, premiumMsats });
}
