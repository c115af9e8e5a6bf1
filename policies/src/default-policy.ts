// The one default write policy, for the Bazaar relay (without --policies) and the strfry plugin
// (without --policies) alike.
import { type Clock, systemClock } from './clock.ts';
import { seq, when, type Predicate } from './combinators.ts';
import { DEFAULT_LIMITS, eventLimits, type PolicyLimits } from './limits.ts';
import type { Policy } from './policy.ts';
import { isLoopback, rateLimitByIp } from './rules/rate-limit-by-ip.ts';
import { rateLimitByPubkey } from './rules/rate-limit-by-pubkey.ts';
import { validJobRequest } from './market/valid-job-request.ts';

export interface DefaultPolicyOptions {
  readonly clock?: Clock;
  /**
   * Include eventLimits() (default true). The Bazaar relay passes false: it always runs
   * eventLimits itself, with the numbers it advertises in NIP-11, in front of any policy.
   */
  readonly eventLimits?: boolean;
}

/** Client connections from somewhere other than this machine. */
const fromElsewhere: Predicate = (_e, ctx) => ctx.source.type === 'ws' && !isLoopback(ctx.source.ip);

/**
 * What a relay runs when no policy file says otherwise: the per-event limits, per-address and
 * per-author rate limits for clients that are not on this machine, and well-formed job requests.
 * Loopback clients are this machine's own agents, tools and benchmarks: they are not throttled.
 * (Behind a reverse proxy on the same host every client looks like loopback unless the relay is
 * told the real address: `--trust-proxy` for the Bazaar relay, `realIpHeader` for strfry.)
 * Market rules that need history (results answer known requests, ...) are opt-in: a relay that
 * is not the market's home relay sees results for requests posted elsewhere.
 */
export function defaultPolicy(limits: Partial<PolicyLimits> = {}, opts: DefaultPolicyOptions = {}): Policy {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const clock = opts.clock ?? systemClock;
  return seq(
    ...(opts.eventLimits === false ? [] : [eventLimits(l)]),
    when(fromElsewhere, seq(
      rateLimitByIp({ perSecond: l.ipPerSecond, burst: l.ipBurst, clock }),
      rateLimitByPubkey({ perSecond: l.pubkeyPerSecond, burst: l.pubkeyBurst, clock }),
    )),
    validJobRequest(),
  );
}
