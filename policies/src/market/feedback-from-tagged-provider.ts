import { FEEDBACK_KIND } from '@bazaar/dvm-kinds/feedback';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { referencedEvent, taggedPubkeys } from './lookup.ts';

/**
 * Feedback (7000) must be about an event this relay has (a job request, or a ping for a pong),
 * and when that event names providers (`p`), come from one of them.
 */
export function feedbackFromTaggedProvider(): Policy {
  return async (event, ctx, signal) => {
    if (event.kind !== FEEDBACK_KIND) return ACCEPT;
    const about = await referencedEvent(event, ctx, signal);
    if (!about) return reject('invalid: feedback about a job request unknown to this relay');
    const providers = taggedPubkeys(about);
    if (providers.length && !providers.includes(event.pubkey)) return reject('restricted: feedback must come from a provider the request names');
    return ACCEPT;
  };
}
