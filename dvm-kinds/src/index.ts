// @bazaar/dvm-kinds public API. Each module is also importable on its own path
// (`@bazaar/dvm-kinds/kinds/sandbox-run`, `@bazaar/dvm-kinds/feedback`, ...); prefer those in libraries.
export * from './nostr.ts';
export * from './problem.ts';
export * from './schema.ts';
export * from './hash.ts';
export * from './job.ts';
export * from './feedback.ts';
export * from './verify.ts';
export * from './diff.ts';
export * from './pricing.ts';
export * from './private.ts';
export * from './registry.ts';
export * from './kinds/text-gen.ts';
export * from './kinds/sandbox-run.ts';
export * from './kinds/repo-index.ts';
export * from './kinds/patch-gen.ts';
export * from './kinds/code-review.ts';
export * from './market/announcement.ts';
export * from './market/heartbeat.ts';
export * from './market/ping.ts';
export * from './market/dispute.ts';
export * from './market/verdict.ts';
export * from './market/receipt.ts';
export * from './market/reputation.ts';
export * from './market/payment-info.ts';
export type { Amount, EventLike, Tag } from './tags.ts';
