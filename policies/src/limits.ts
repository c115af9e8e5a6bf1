// The one set of default limits, and the rules that enforce the per-event ones. A relay
// advertises the event limits in NIP-11 `limitation`; the Bazaar relay runs eventLimits() with
// its own numbers in front of every policy, so what it advertises is what it enforces.
import { seq } from './combinators.ts';
import type { Policy } from './policy.ts';
import { createdAtWindow } from './rules/created-at-window.ts';
import { maxContentLength } from './rules/max-content-length.ts';
import { maxEventSize } from './rules/max-event-size.ts';
import { maxTags } from './rules/max-tags.ts';
import { protectedEvents } from './rules/protected-events.ts';
import { rejectExpired } from './rules/reject-expired.ts';

/** Limits on one event. */
export interface EventLimits {
  /** Largest event in bytes (the EVENT message as received, else the serialized event); 0 = no limit. */
  readonly maxEventBytes: number;
  readonly maxTags: number;
  /** Characters (code points) of `content`, as NIP-11 counts them. */
  readonly maxContentLength: number;
  /** Refuse events dated more than this many seconds before their arrival; 0 = no lower bound. */
  readonly createdAtPastSecs: number;
  /** Refuse events dated more than this many seconds after their arrival. */
  readonly createdAtFutureSecs: number;
}

/** The default policy's rate limits (token buckets: `burst` events at once, refilled at `perSecond`). */
export interface RateLimits {
  readonly ipPerSecond: number;
  readonly ipBurst: number;
  readonly pubkeyPerSecond: number;
  readonly pubkeyBurst: number;
}

export type PolicyLimits = EventLimits & RateLimits;

export const DEFAULT_LIMITS: Readonly<PolicyLimits> = Object.freeze({
  maxEventBytes: 512 * 1024,
  maxTags: 2500,
  maxContentLength: 256 * 1024,
  createdAtPastSecs: 0,
  createdAtFutureSecs: 15 * 60,
  ipPerSecond: 20,
  ipBurst: 200,
  pubkeyPerSecond: 10,
  pubkeyBurst: 100,
});

/**
 * The per-event rules every relay should run: size, tag count, content length, created_at
 * window (against the receive time), NIP-40 (no already-expired events) and NIP-70 (protected
 * events only from their authenticated author). All synchronous and cheap.
 */
export function eventLimits(limits: Partial<EventLimits> = {}): Policy {
  const l = { ...DEFAULT_LIMITS, ...limits };
  return seq(
    ...(l.maxEventBytes > 0 ? [maxEventSize(l.maxEventBytes)] : []),
    maxTags(l.maxTags),
    maxContentLength(l.maxContentLength),
    createdAtWindow({ futureSecs: l.createdAtFutureSecs, ...(l.createdAtPastSecs > 0 ? { pastSecs: l.createdAtPastSecs } : {}) }),
    rejectExpired(),
    protectedEvents(),
  );
}
