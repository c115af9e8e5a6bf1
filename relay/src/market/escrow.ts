// The escrow lock a job request carries, as far as the index needs it: which mint, which
// proofs (by secret) and how much. The tags are provisional (dvm-kinds README, "Escrow
// messages"): the provider uses `["escrow", "<cashuB token>"]` on the request. When
// dvm-kinds specifies them, swap this one function for its parser; nothing else reads tags.
import { getTokenMetadata } from '@cashu/cashu-ts';

export interface EscrowLock {
  readonly mint: string;
  readonly unit: string;
  /** Sum of the proofs, in the token's unit. */
  readonly amount: number;
  /** The locked proofs' secrets (NUT-10 well-known secrets, JSON), in token order. */
  readonly secrets: readonly string[];
}

export function readEscrow(tags: readonly (readonly string[])[]): EscrowLock | undefined {
  const tag = tags.find((t) => t[0] === 'escrow' && typeof t[1] === 'string');
  if (!tag) return undefined;
  try {
    const meta = getTokenMetadata(tag[1].trim());
    const secrets = meta.incompleteProofs.map((p) => p.secret).filter((s): s is string => typeof s === 'string');
    if (!secrets.length || typeof meta.mint !== 'string') return undefined;
    const amount = Number(String(meta.amount));
    return { mint: meta.mint.trim().replace(/\/+$/, ''), unit: meta.unit ?? 'sat', amount: Number.isSafeInteger(amount) ? amount : 0, secrets };
  } catch {
    return undefined; // not a token we can read: no escrow the index can check
  }
}
