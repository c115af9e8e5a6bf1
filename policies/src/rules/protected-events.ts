import { ACCEPT, authedPubkeysOf, reject, type Policy } from '../policy.ts';

/**
 * NIP-70: an event carrying the `["-"]` tag is accepted only from a connection authenticated
 * (NIP-42) as its author. Events that did not come from a client connection (import, sync,
 * stream) pass: they were accepted under this rule somewhere already.
 */
export function protectedEvents(): Policy {
  return (event, ctx) => {
    if (!event.tags.some((t) => t.length === 1 && t[0] === '-')) return ACCEPT;
    if (ctx.source.type !== 'ws') return ACCEPT;
    const authed = authedPubkeysOf(ctx);
    if (authed.length === 0) return reject('auth-required: this event may only be published by its author');
    if (!authed.includes(event.pubkey)) return reject('restricted: this event may only be published by its author');
    return ACCEPT;
  };
}
