// The buyer's side of a job, as a pure state machine. The provider's machine (agents-common
// job-state) describes work it does; this one describes what the buyer observed and decided,
// and it has the two states the provider never needs: a payment *decided and persisted* but
// not yet confirmed (`prepaying`, `paying`), which is what makes a restart resume a payment
// instead of repeating or forgetting it.
//
//   posting ─posted→ posted ─payment-required→ awaiting-payment ─decide-pay→ prepaying ─paid→ running
//                      │  ╲─processing→ running ─result→ delivered ─verified→ verified ─decide-pay→ paying ─paid→ paid
//                      │                                     │                 ╰─nothing-to-pay→ paid
//                      │                                     ╰─verification-failed→ disputed
//   any open state ─fail→ failed | ─cancel→ cancelled | ─refuse→ refused;   paying/prepaying ─payment-failed→ payment-failed
//   failed | cancelled | disputed | refused | payment-failed ─refund→ refunded   (escrow taken back after its locktime)

export const BUYER_JOB_STATES = ['posting', 'posted', 'awaiting-payment', 'prepaying', 'running', 'delivered', 'verified', 'paying', 'paid', 'disputed', 'refused', 'payment-failed', 'failed', 'cancelled', 'refunded'] as const;
export type BuyerJobState = (typeof BUYER_JOB_STATES)[number];

export type BuyerJobEvent =
  | 'posted'
  | 'payment-required'
  | 'decide-pay'
  | 'paid'
  | 'processing'
  | 'result'
  | 'verified'
  | 'verification-failed'
  | 'nothing-to-pay'
  | 'payment-failed'
  | 'refuse'
  | 'fail'
  | 'cancel'
  | 'refund';

const OPEN_EXITS = { fail: 'failed', cancel: 'cancelled', refuse: 'refused' } as const;

const table: Readonly<Record<BuyerJobState, Partial<Record<BuyerJobEvent, BuyerJobState>>>> = {
  posting: { posted: 'posted', ...OPEN_EXITS },
  posted: { 'payment-required': 'awaiting-payment', processing: 'running', result: 'delivered', posted: 'posted', ...OPEN_EXITS },
  'awaiting-payment': { 'decide-pay': 'prepaying', 'payment-required': 'awaiting-payment', processing: 'awaiting-payment', result: 'delivered', ...OPEN_EXITS },
  // A prepayment whose outcome is unknown is never abandoned silently: it is paid, or it definitely failed.
  prepaying: { paid: 'running', 'payment-failed': 'payment-failed' },
  // Some providers ask for payment only after saying they started (NIP-90 leaves the order open).
  running: { processing: 'running', 'payment-required': 'running', 'decide-pay': 'prepaying', result: 'delivered', ...OPEN_EXITS },
  delivered: { verified: 'verified', 'verification-failed': 'disputed', cancel: 'cancelled', fail: 'failed' },
  verified: { 'decide-pay': 'paying', 'nothing-to-pay': 'paid', refuse: 'refused', cancel: 'cancelled' },
  paying: { paid: 'paid', 'payment-failed': 'payment-failed' },
  paid: {},
  disputed: { refund: 'refunded' },
  refused: { refund: 'refunded' },
  'payment-failed': { refund: 'refunded' },
  failed: { refund: 'refunded' },
  cancelled: { refund: 'refunded' },
  refunded: {},
};

export type Step = { readonly ok: true; readonly state: BuyerJobState } | { readonly ok: false; readonly reason: string };

export function nextBuyerState(state: BuyerJobState, event: BuyerJobEvent): Step {
  const to = table[state]?.[event];
  return to === undefined ? { ok: false, reason: `a ${state} job cannot take "${event}"` } : { ok: true, state: to };
}

/** Nothing more will happen to the job (apart from an escrow refund). */
export const FINAL_STATES: ReadonlySet<BuyerJobState> = new Set(['paid', 'disputed', 'refused', 'payment-failed', 'failed', 'cancelled', 'refunded']);
/** A payment was decided and persisted but its outcome is not recorded: resume it, never repeat a different one. */
export const PAYMENT_IN_FLIGHT: ReadonlySet<BuyerJobState> = new Set(['prepaying', 'paying']);
