// Seeded randomness for the differential and fuzz tests, so a failing run replays from its seed.
import { rng } from '@bazaar/testkit/rng';

/** mulberry32 (one implementation for tests and benchmarks: @bazaar/testkit/rng). */
export const prng = rng;

/** The draws the tests need, from one seeded stream. */
export function seeded(seed: number) {
  const rand = prng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return {
    rand,
    int,
    pick,
    chance: (p: number): boolean => rand() < p,
    /** `bytes` random bytes as lowercase hex. */
    hex: (bytes: number): string => Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join(''),
    /** Between `min` and `min + max` picks (repeats possible). */
    some: <T>(xs: readonly T[], max: number, min = 1): T[] => Array.from({ length: min + int(max + 1 - min) }, () => pick(xs)),
  };
}
