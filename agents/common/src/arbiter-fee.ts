// The arbiter's loser-pays fee, seen from the side that lost (dvm-kinds "Arbitration"): a verdict
// against us may carry `["fee", msats, bolt11]`. We pay it only when the arbiter announced that
// very fee (its 31990 `["fee", msats, "loser"]`), the invoice asks exactly that amount, and the
// invoice is signed by the node the arbiter announced (`lightning_node`) — anything else is
// refused with the reason, never paid. Paying goes through the agent's wallet (its spending
// limits apply; a payment is idempotent per invoice), so a retry after a restart never pays twice.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { ANNOUNCEMENT_KIND } from '@bazaar/dvm-kinds/market/announcement';
import { ARBITER_D_TAG, parseArbiterAnnouncement, type ArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import type { DisputeVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { decodeInvoice } from './wallet/lightning.ts';

export type FeeSide = 'buyer' | 'provider';

/** What a verdict asks of `side`: nothing, a fee we may pay, or a fee we refuse (with why). */
export type FeeAsk =
  | { readonly owed: false }
  | { readonly owed: true; readonly ok: true; readonly msats: number; readonly bolt11: string; readonly paymentHash: string }
  | { readonly owed: true; readonly ok: false; readonly msats: number; readonly reason: string; readonly paymentHash?: string };

/** The side a ruling goes against; a split has no loser (and asks no fee). */
export function loserOf(ruling: DisputeVerdict['ruling']): FeeSide | undefined {
  return ruling === 'provider' ? 'buyer' : ruling === 'buyer' ? 'provider' : undefined;
}

/** The arbiter's newest 31990 from the answers of a relay query (undefined: none that parses). */
export function newestArbiterAnnouncement(events: readonly NostrEvent[], arbiter: string): ArbiterAnnouncement | undefined {
  const mine = events.filter((e) => e.pubkey === arbiter && e.kind === ANNOUNCEMENT_KIND && e.tags.some((t) => t[0] === 'd' && t[1] === ARBITER_D_TAG)).sort((a, b) => b.created_at - a.created_at);
  for (const e of mine) {
    const a = parseArbiterAnnouncement(e);
    if (a.ok) return a.value;
  }
  return undefined;
}

/** The filter that finds an arbiter's announcement. */
export const arbiterAnnouncementFilter = (arbiter: string) => ({ kinds: [ANNOUNCEMENT_KIND], authors: [arbiter], '#d': [ARBITER_D_TAG] });

/** Checks the fee a verdict asks of `side` against the arbiter's announcement (pure). */
export function checkArbiterFee(v: DisputeVerdict, side: FeeSide, ann: ArbiterAnnouncement | undefined): FeeAsk {
  if (!v.fee || loserOf(v.ruling) !== side) return { owed: false };
  const msats = v.fee.msats;
  const refuse = (reason: string, paymentHash?: string): FeeAsk => ({ owed: true, ok: false, msats, reason, ...(paymentHash ? { paymentHash } : {}) });
  if (!v.fee.bolt11) return refuse('the verdict asks a fee but carries no invoice');
  let inv;
  try {
    inv = decodeInvoice(v.fee.bolt11);
  } catch (err) {
    return refuse(`the fee invoice does not decode: ${(err as Error).message}`);
  }
  if (!ann) return refuse('the arbiter has no announcement on our relays: its fee and Lightning node are unknown', inv.paymentHash);
  if (!ann.fee || ann.fee.payer !== 'loser') return refuse('the arbiter did not announce a loser-pays fee', inv.paymentHash);
  if (ann.fee.msats !== msats) return refuse(`the verdict asks ${msats} msat, the arbiter announced ${ann.fee.msats} msat`, inv.paymentHash);
  if (inv.amountMsat !== msats) return refuse(`the fee invoice asks ${inv.amountMsat} msat, the verdict's fee is ${msats} msat`, inv.paymentHash);
  if (!ann.lightningNode) return refuse('the arbiter announced no lightning_node: the payee of its invoice cannot be checked', inv.paymentHash);
  if (inv.payee !== ann.lightningNode) return refuse(`the fee invoice pays node ${inv.payee?.slice(0, 16) ?? '(none)'}…, not the node ${ann.lightningNode.slice(0, 16)}… the arbiter announced`, inv.paymentHash);
  return { owed: true, ok: true, msats, bolt11: inv.bolt11, paymentHash: inv.paymentHash };
}

/** What a loser records about the fee (buyer's job, provider's job). */
export interface FeeRecord {
  readonly msats: number;
  readonly paymentHash?: string;
  /** `due`: to pay (retried until paid); `paid`; `refused`: not paid, and why. */
  readonly state: 'due' | 'paid' | 'refused';
  readonly reason?: string;
  readonly feesPaidMsat?: number;
  readonly paidAt?: number;
}
