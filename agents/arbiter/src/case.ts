// One dispute as the arbiter works on it, and the pure state machine it moves through.
//
//   open ─replay-unavailable→ unavailable ─retry→ open          (no verdict while it cannot replay)
//   open ─decide→ decided ─published→ published                  (decided = persisted + signed, before it leaves)
//   (intake) ─reject→ rejected                                    (not ours, malformed, unreadable)
//
// `decided` is the durable promise: the ruling, the co-signed release (if any) and the signed
// verdict event are written in one transaction before anything is published, and never replaced.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { Problem } from '@bazaar/dvm-kinds/problem';
import type { Ruling } from '@bazaar/dvm-kinds/market/verdict';
import type { Check } from '@bazaar/agents-common/verify/verify-result';

export const CASE_STATES = ['open', 'unavailable', 'decided', 'published', 'rejected'] as const;
export type CaseState = (typeof CASE_STATES)[number];
export type CaseEvent = 'replay-unavailable' | 'retry' | 'decide' | 'published' | 'reject';

const table: Readonly<Record<CaseState, Partial<Record<CaseEvent, CaseState>>>> = {
  open: { 'replay-unavailable': 'unavailable', decide: 'decided', reject: 'rejected' },
  unavailable: { retry: 'open', 'replay-unavailable': 'unavailable', decide: 'decided', reject: 'rejected' },
  decided: { published: 'published' },
  published: {},
  rejected: {},
};

export function nextCaseState(state: CaseState, event: CaseEvent): CaseState | undefined {
  return table[state][event];
}

/** Cases still waiting for a ruling. */
export const OPEN_STATES: ReadonlySet<CaseState> = new Set(['open', 'unavailable']);

export interface EscrowFacts {
  readonly mint: string;
  readonly amount: number;
  readonly locktime?: number;
  /** Payment keys as locked. */
  readonly providerKey: string;
  readonly buyerKey: string;
}

export interface ReplayRecord {
  readonly ok: boolean;
  readonly checks: readonly Check[];
  readonly problems: readonly Problem[];
  readonly replay: Record<string, unknown>;
  readonly at: number;
}

export interface ResponseRecord {
  readonly id: string;
  readonly position: 'stand' | 'concede';
  readonly message: string;
  readonly at: number;
  /** The provider restated its claim (a package for the escrow) with the response. */
  readonly escrowClaim?: string;
}

export interface TrajectoryRecord {
  /** requested: asked, nothing complete yet; matched / mismatch: served and hash-checked; refused: the provider said no. */
  readonly status: 'requested' | 'matched' | 'mismatch' | 'refused';
  readonly committed: string;
  readonly requestedAt: number;
  readonly served?: string;
  readonly bytes?: number;
  readonly detail?: string;
}

export interface Decision {
  readonly ruling: Ruling;
  readonly providerShare?: number;
  readonly reasons: readonly string[];
  readonly checks: readonly { readonly name: string; readonly passed: boolean }[];
  readonly evidenceSha256: string;
  /** Who receives the escrow, and the SIG_ALL digest we signed for it (one per job, ever). */
  readonly release?: { readonly to: 'buyer' | 'provider'; readonly digest: string };
  readonly fee?: { readonly msats: number; readonly bolt11: string; readonly paymentHash: string; readonly payer: string };
  readonly decidedAt: number;
}

export interface Case {
  /** The job request id (the dispute's `d`). */
  readonly id: string;
  readonly state: CaseState;
  readonly kind: number;
  readonly buyer: string;
  readonly provider: string;
  readonly dispute: NostrEvent;
  readonly request?: NostrEvent;
  readonly result?: NostrEvent;
  readonly failedChecks: readonly string[];
  readonly buyerEvidenceSha256: string;
  readonly escrow?: EscrowFacts;
  /** Unix ms. */
  readonly openedAt: number;
  readonly windowEndsAt: number;
  readonly updatedAt: number;
  readonly response?: ResponseRecord;
  readonly trajectory?: TrajectoryRecord;
  readonly replay?: ReplayRecord;
  /** The fee's invoice settled in our wallet (NIP-47 lookup_invoice or payment_received), unix ms. */
  readonly feePaidAt?: number;
  readonly unavailable?: { readonly reason: string; readonly message: string; readonly attempts: number; readonly nextAttemptAt: number };
  readonly decision?: Decision;
  /** The signed verdict, stored with the decision, published as is (same id on every retry). */
  readonly verdict?: NostrEvent;
  readonly publishedAt?: number;
  readonly rejected?: string;
}
