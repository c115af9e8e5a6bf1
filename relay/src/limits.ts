// Every limit the relay enforces. All are configurable and all are published in
// NIP-11 `limitation`, so clients can see them before they hit them.

export interface RelayLimits {
  /** Largest client message (bytes) the relay processes; larger ones get a NOTICE / OK false. */
  maxMessageBytes: number;
  maxSubscriptions: number;
  maxFilters: number;
  /** Largest `limit` honoured; also the number of stored events returned when a filter has none. */
  maxLimit: number;
  maxEventTags: number;
  /** Unicode characters (code points) in `content`, as NIP-11 defines it. */
  maxContentLength: number;
  maxSubIdLength: number;
  /** REQ and COUNT queries one connection may have in progress; more get CLOSED rate-limited:. */
  maxQueries: number;
  /** Reject events with created_at more than this many seconds in the past (0 = no lower bound). */
  createdAtPastSecs: number;
  /** Reject events with created_at more than this many seconds in the future. */
  createdAtFutureSecs: number;
  /** Disconnect a client once this many bytes are queued for it. */
  maxBackpressureBytes: number;
  idleTimeoutSecs: number;
}

export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxMessageBytes: 512 * 1024,
  maxSubscriptions: 50,
  maxFilters: 20,
  maxLimit: 500,
  maxEventTags: 2500,
  maxContentLength: 256 * 1024,
  maxSubIdLength: 64,
  maxQueries: 32,
  createdAtPastSecs: 0,
  createdAtFutureSecs: 15 * 60,
  maxBackpressureBytes: 8 * 1024 * 1024,
  idleTimeoutSecs: 120,
});
