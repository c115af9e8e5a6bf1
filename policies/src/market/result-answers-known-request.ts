import { isJobResultKind } from '@bazaar/dvm-kinds/job';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { referencedEvent, taggedPubkeys } from './lookup.ts';

/**
 * A job result (6000-6999) must answer a request this relay has: of kind result - 1000, its
 * `p` naming the request's author, and from a provider the request named (when it named any).
 */
export function resultAnswersKnownRequest(): Policy {
  return async (event, ctx, signal) => {
    if (!isJobResultKind(event.kind)) return ACCEPT;
    const request = await referencedEvent(event, ctx, signal);
    if (!request) return reject('invalid: result does not answer a job request known to this relay');
    if (request.kind + 1000 !== event.kind) return reject(`invalid: a kind ${event.kind} result cannot answer a kind ${request.kind} request`);
    if (!taggedPubkeys(event).includes(request.pubkey)) return reject('invalid: result must tag the customer ("p" = request author)');
    const providers = taggedPubkeys(request);
    if (providers.length && !providers.includes(event.pubkey)) return reject('restricted: the request names other providers');
    return ACCEPT;
  };
}
