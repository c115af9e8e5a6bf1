import { expirationOf } from '@bazaar/dvm-kinds/nostr';
import { ACCEPT, reject, type Policy } from '../policy.ts';

/** NIP-40: relays should not accept events that are already expired (compared with the receive time). */
export function rejectExpired(): Policy {
  return (event, ctx) => {
    const exp = expirationOf(event);
    return exp !== undefined && exp <= ctx.receivedAt ? reject('invalid: event has expired') : ACCEPT;
  };
}
