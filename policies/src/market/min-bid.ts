import { isJobRequestKind } from '@bazaar/dvm-kinds/job';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { kindMatcher, type KindSpec } from '../rules/restrict-to-kinds.ts';

/**
 * Job requests must bid at least `msats`. A request without a bid is rejected unless
 * `allowMissing` (a provider may still quote with `payment-required`).
 */
export function minBid(msats: number, opts: { kinds?: readonly KindSpec[]; allowMissing?: boolean } = {}): Policy {
  const applies = opts.kinds ? kindMatcher(opts.kinds) : isJobRequestKind;
  return (event) => {
    if (!applies(event.kind) || !isJobRequestKind(event.kind)) return ACCEPT;
    if (event.tags.some((t) => t[0] === 'encrypted')) return ACCEPT; // the bid may be inside the payload
    const raw = event.tags.find((t) => t[0] === 'bid')?.[1];
    if (raw === undefined) return opts.allowMissing ? ACCEPT : reject(`blocked: job requests here must bid at least ${msats} msats`);
    const bid = /^\d{1,16}$/.test(raw) ? Number(raw) : undefined;
    if (bid === undefined) return reject('invalid: bid must be an integer number of millisats');
    return bid < msats ? reject(`blocked: bid ${bid} msats is below the minimum of ${msats}`) : ACCEPT;
  };
}
