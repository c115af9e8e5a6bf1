// Small summary statistics for the benchmarks.

/** Nearest-rank percentile of an ascending-sorted array (p in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function summarise(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN;
  return { count: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : Number.NaN, mean };
}

/** Rounds for display/JSON: integers above 100, else 2 decimals; null for NaN/undefined. */
export function round(n: number | undefined | null): number | null {
  if (n === undefined || n === null || !Number.isFinite(n)) return null;
  return Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100;
}
