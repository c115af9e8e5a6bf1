// The write policy a relay runs when no --policies file is given. The relay core
// already enforces sizes, tag counts, created_at windows, NIP-40 and NIP-70, so the
// default adds what the core does not: rate limits per address and per author, and
// well-formed job requests for the kinds of our microstandard (dvm-kinds).
import { seq, when } from '@bazaar/policies/combinators';
import { DEFAULT_LIMITS } from '@bazaar/policies/load';
import type { Policy, PolicyContext } from '@bazaar/policies/policy';
import { rateLimitByIp } from '@bazaar/policies/rules/rate-limit-by-ip';
import { rateLimitByPubkey } from '@bazaar/policies/rules/rate-limit-by-pubkey';
import { validJobRequest } from '@bazaar/policies/market/valid-job-request';

/** Loopback clients are this machine's own agents and tools; the default policy does not throttle them. */
export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}

export function relayDefaultPolicy(): Policy {
  const fromElsewhere = (_e: unknown, ctx: PolicyContext) => !isLoopback(ctx.source.ip);
  return seq(
    when(
      fromElsewhere,
      seq(
        rateLimitByIp({ perSecond: DEFAULT_LIMITS.ipPerSecond, burst: DEFAULT_LIMITS.ipBurst }),
        rateLimitByPubkey({ perSecond: DEFAULT_LIMITS.pubkeyPerSecond, burst: DEFAULT_LIMITS.pubkeyBurst }),
      ),
    ),
    validJobRequest(),
  );
}
