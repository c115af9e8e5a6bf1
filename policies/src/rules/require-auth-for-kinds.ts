import { ACCEPT, authedPubkeysOf, reject, type Policy } from '../policy.ts';
import { kindMatcher, type KindSpec } from './restrict-to-kinds.ts';

/**
 * Events of these kinds need a NIP-42 authenticated connection; with `matchAuthor`,
 * the authenticated pubkey must also be the event's author.
 */
export function requireAuthForKinds(kinds: readonly KindSpec[], opts: { matchAuthor?: boolean } = {}): Policy {
  const match = kindMatcher(kinds);
  return (event, ctx) => {
    if (!match(event.kind)) return ACCEPT;
    const authed = authedPubkeysOf(ctx);
    if (authed.length === 0) return reject(`auth-required: kind ${event.kind} needs an authenticated connection`);
    if (opts.matchAuthor && !authed.includes(event.pubkey)) return reject(`restricted: kind ${event.kind} must be published by its author`);
    return ACCEPT;
  };
}
