// The escrow lock a job request carries, as far as the index needs it: which mint, which
// proofs (by secret) and how much. One swappable function over dvm-kinds' escrow spec
// (`market/escrow.ts`: `["escrow", "<cashuB token>"]` on the request), so the index reads the
// tag exactly as buyer, provider and arbiter do.
import { parseEscrow } from '@bazaar/dvm-kinds/market/escrow';

export interface EscrowLock {
  readonly mint: string;
  readonly unit: string;
  /** Sum of the proofs, in the token's unit. */
  readonly amount: number;
  /** The locked proofs' secrets (NUT-10 well-known secrets, JSON), in token order. */
  readonly secrets: readonly string[];
  /** The lock's `data`: the provider's payment key (NUT-11). */
  readonly data?: string;
}

/** The request's escrow, or undefined when it has none or it does not parse (then there is nothing the index can check). */
export function readEscrow(tags: readonly (readonly string[])[]): EscrowLock | undefined {
  const p = parseEscrow({ kind: 5000, created_at: 0, content: '', tags });
  if (!p.ok || !p.value) return undefined;
  const v = p.value;
  return { mint: v.mint, unit: v.unit, amount: v.amount, secrets: v.secrets, data: v.lock.data };
}
