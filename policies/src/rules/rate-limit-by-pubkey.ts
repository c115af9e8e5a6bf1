import { systemClock, type Clock } from '../clock.ts';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { TokenBuckets } from './token-bucket.ts';

/** Token bucket per event author; only events from live connections (`ws`) are limited. */
export function rateLimitByPubkey(opts: { perSecond: number; burst: number; maxKeys?: number; clock?: Clock }): Policy {
  const buckets = new TokenBuckets({ ...opts, clock: opts.clock ?? systemClock });
  return (event, ctx) => {
    if (ctx.source.type !== 'ws') return ACCEPT;
    return buckets.take(event.pubkey) ? ACCEPT : reject(`rate-limited: slow down, at most ${opts.perSecond} events/s per author`);
  };
}
