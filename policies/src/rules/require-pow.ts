import { ACCEPT, reject, type Policy } from '../policy.ts';

/** NIP-13 difficulty: leading zero bits of the event id. */
export function powOf(id: string): number {
  let bits = 0;
  for (const c of id) {
    const nibble = parseInt(c, 16);
    if (Number.isNaN(nibble)) return bits;
    if (nibble === 0) {
      bits += 4;
      continue;
    }
    return bits + Math.clz32(nibble) - 28;
  }
  return bits;
}

/**
 * NIP-13: the id must have at least `difficulty` leading zero bits, and the nonce tag must commit
 * to a target of at least `difficulty` (so a lucky low-target miner does not pass a higher bar).
 */
export function requirePow(difficulty: number): Policy {
  return (event) => {
    const nonce = event.tags.find((t) => t[0] === 'nonce');
    if (!nonce) return reject(`pow: a nonce tag committing to difficulty ${difficulty} is required`);
    const target = /^\d+$/.test(nonce[2] ?? '') ? Number(nonce[2]) : undefined;
    if (target === undefined) return reject('pow: the nonce tag has no target difficulty');
    if (target < difficulty) return reject(`pow: committed target ${target} is less than ${difficulty}`);
    const actual = powOf(event.id);
    if (actual < difficulty) return reject(`pow: difficulty ${actual} is less than ${difficulty}`);
    if (actual < target) return reject(`pow: difficulty ${actual} is less than the committed target ${target}`);
    return ACCEPT;
  };
}
