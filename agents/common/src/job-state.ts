// The one job state machine every role shares (provider, buyer, arbiter): pure, no I/O.
// A role feeds it what it decided or observed; it answers with the next state or says why
// the step is not allowed. Persisting the state, publishing events and paying are the
// caller's effects. Each event has one meaning wherever it applies.
//
//   received ─accept→ queued ─start→ running ─finish→ delivered ─paid→ settled
//      │                 │  ╲                  │  ╲        ╲─unpaid→ unpaid ─paid→ settled
//      │                 │   ╲                 │   ─finish-prepaid→ settled
//      │                 │    ─request-payment→ awaiting-payment ─prepaid→ queued
//      ├─reject→ rejected├─cancel→ cancelled   ├─fail→ failed
//      └─expire→ expired └─expire→ expired     └─(restart)→ queued, once
//
//   prepaid          the price arrived before the work (awaiting-payment → queued)
//   finish           the result is out and its payment is due (→ delivered)
//   finish-prepaid   the result is out and was paid for up front (→ settled)
//   paid             the payment for a delivered result arrived (→ settled)
//
// Terms decide where payment happens: `prepay` passes through awaiting-payment before the
// job runs and finishes with `finish-prepaid`; `after-verify` and `escrow` finish with
// `finish` and settle with `paid`.

export const JOB_STATES = ['received', 'rejected', 'queued', 'awaiting-payment', 'running', 'delivered', 'settled', 'unpaid', 'failed', 'cancelled', 'expired'] as const;
export type JobState = (typeof JOB_STATES)[number];

// Payment terms are part of the protocol (a provider announces them per kind): dvm-kinds owns the list.
export { PAYMENT_TERMS, type PaymentTerms } from '@bazaar/dvm-kinds/market/announcement';

export type JobEvent =
  | { readonly type: 'accept' }
  | { readonly type: 'reject'; readonly reason: string }
  | { readonly type: 'request-payment' }
  | { readonly type: 'prepaid' }
  | { readonly type: 'paid' }
  | { readonly type: 'start' }
  | { readonly type: 'finish' }
  | { readonly type: 'finish-prepaid' }
  | { readonly type: 'fail'; readonly reason: string }
  | { readonly type: 'cancel' }
  | { readonly type: 'expire' }
  | { readonly type: 'unpaid' }
  | { readonly type: 'restart' };

export type Transition = { readonly ok: true; readonly state: JobState } | { readonly ok: false; readonly reason: string };

/** States nothing more happens to. `delivered` is not final: the payment is still watched. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['rejected', 'settled', 'unpaid', 'failed', 'cancelled', 'expired']);
export const isTerminal = (s: JobState): boolean => TERMINAL_STATES.has(s);

const table: Readonly<Record<JobState, Partial<Record<JobEvent['type'], JobState>>>> = {
  received: { accept: 'queued', reject: 'rejected', expire: 'expired', cancel: 'cancelled' },
  queued: { start: 'running', 'request-payment': 'awaiting-payment', cancel: 'cancelled', expire: 'expired', fail: 'failed', restart: 'queued' },
  'awaiting-payment': { prepaid: 'queued', cancel: 'cancelled', expire: 'expired', fail: 'failed', restart: 'awaiting-payment' },
  running: { finish: 'delivered', 'finish-prepaid': 'settled', fail: 'failed', restart: 'queued' },
  // A result already published stays published; a restart only resumes watching the payment.
  delivered: { paid: 'settled', unpaid: 'unpaid', restart: 'delivered' },
  settled: {},
  unpaid: { paid: 'settled' },
  rejected: {},
  failed: {},
  cancelled: {},
  expired: {},
};

export function nextJobState(state: JobState, event: JobEvent): Transition {
  const to = table[state]?.[event.type];
  if (to === undefined) return { ok: false, reason: `a ${state} job cannot ${event.type}` };
  return { ok: true, state: to };
}

/** Where a job starts after a restart with the given attempts already made (at most `maxAttempts` runs). */
export function recoverJobState(state: JobState, attempts: number, maxAttempts = 2): Transition {
  if (state === 'running' && attempts >= maxAttempts) return { ok: true, state: 'failed' };
  if (state === 'received') return { ok: true, state: 'received' };
  if (isTerminal(state)) return { ok: true, state };
  return nextJobState(state, { type: 'restart' });
}
