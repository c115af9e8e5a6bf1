// Every limit the relay enforces. All are configurable and all are published in NIP-11
// `limitation`, so clients can see them before they hit them. The per-event ones (tags, content,
// created_at window) and their defaults belong to the policies package (`DEFAULT_LIMITS`,
// `eventLimits()`): the relay runs those rules with these numbers in front of every policy.
import { DEFAULT_LIMITS, type EventLimits } from '@bazaar/policies/limits';

export interface RelayLimits extends Omit<EventLimits, 'maxEventBytes'> {
  /** Largest client message (bytes) the relay processes; larger ones get a NOTICE / OK false. Also the largest event. */
  maxMessageBytes: number;
  maxSubscriptions: number;
  maxFilters: number;
  /** Largest `limit` honoured; also the number of stored events returned when a filter has none. */
  maxLimit: number;
  maxSubIdLength: number;
  /** REQ and COUNT queries one connection may have in progress; more get CLOSED rate-limited:. */
  maxQueries: number;
  /** Disconnect a client once this many bytes are queued for it. */
  maxBackpressureBytes: number;
  idleTimeoutSecs: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxMessageBytes: DEFAULT_LIMITS.maxEventBytes,
  maxSubscriptions: 50,
  maxFilters: 20,
  maxLimit: 500,
  maxTags: DEFAULT_LIMITS.maxTags,
  maxContentLength: DEFAULT_LIMITS.maxContentLength,
  maxSubIdLength: 64,
  maxQueries: 32,
  createdAtPastSecs: DEFAULT_LIMITS.createdAtPastSecs,
  createdAtFutureSecs: DEFAULT_LIMITS.createdAtFutureSecs,
  maxBackpressureBytes: 8 * 1024 * 1024,
  idleTimeoutSecs: 120,
});
