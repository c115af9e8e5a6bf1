// @bazaar/policies public API. Each module is also importable on its own path
// (`@bazaar/policies/rules/require-pow`, `@bazaar/policies/load`, ...); prefer those in libraries.
export * from './policy.ts';
export * from './combinators.ts';
export * from './clock.ts';
export * from './load.ts';
export * from './rules/max-event-size.ts';
export * from './rules/max-tags.ts';
export * from './rules/created-at-window.ts';
export * from './rules/restrict-to-kinds.ts';
export * from './rules/rate-limit-by-ip.ts';
export * from './rules/rate-limit-by-pubkey.ts';
export * from './rules/token-bucket.ts';
export * from './rules/require-pow.ts';
export * from './rules/require-auth-for-kinds.ts';
export * from './rules/protected-events.ts';
export * from './rules/reject-expired.ts';
export * from './market/valid-job-request.ts';
export * from './market/valid-job-result.ts';
export * from './market/result-answers-known-request.ts';
export * from './market/feedback-from-tagged-provider.ts';
export * from './market/min-bid.ts';
export * from './market/verdict-from-named-arbiter.ts';
export * from './market/reputation-floor.ts';
export * from './strfry.ts';
export * from './relay-store.ts';
