import { ACCEPT, reject, type Policy } from '../policy.ts';

/** A kind or an inclusive range `[from, to]`. */
export type KindSpec = number | readonly [number, number];

export function kindMatcher(kinds: readonly KindSpec[]): (k: number) => boolean {
  const single = new Set(kinds.filter((k): k is number => typeof k === 'number'));
  const ranges = kinds.filter((k): k is readonly [number, number] => typeof k !== 'number');
  return (k) => single.has(k) || ranges.some(([a, b]) => k >= a && k <= b);
}

/** Accepts only the listed kinds (and ranges). */
export function restrictToKinds(kinds: readonly KindSpec[]): Policy {
  const match = kindMatcher(kinds);
  return (event) => (match(event.kind) ? ACCEPT : reject(`blocked: kind ${event.kind} is not accepted here`));
}

/** Rejects the listed kinds (and ranges). */
export function rejectKinds(kinds: readonly KindSpec[]): Policy {
  const match = kindMatcher(kinds);
  return (event) => (match(event.kind) ? reject(`blocked: kind ${event.kind} is not accepted here`) : ACCEPT);
}
