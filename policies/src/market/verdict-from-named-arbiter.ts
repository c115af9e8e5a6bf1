import { DISPUTE_KIND, markedTag } from '@bazaar/dvm-kinds/market/dispute';
import { VERDICT_KIND } from '@bazaar/dvm-kinds/market/verdict';
import { dTag } from '@bazaar/dvm-kinds/nostr';
import { ACCEPT, reject, type Policy } from '../policy.ts';

/** A verdict (39301) must come from the arbiter named in the buyer's dispute (39300) of the same job. */
export function verdictFromNamedArbiter(): Policy {
  return async (event, ctx, signal) => {
    if (event.kind !== VERDICT_KIND) return ACCEPT;
    const requestId = dTag(event);
    const buyer = markedTag(event.tags, 'p', 'buyer')?.[1];
    if (!requestId || !buyer) return reject('invalid: a verdict names the job (d) and the buyer (["p", <buyer>, "", "buyer"])');
    const disputes = await ctx.store.query([{ kinds: [DISPUTE_KIND], authors: [buyer], '#d': [requestId], limit: 1 }], { signal });
    if (!disputes.length) return reject('invalid: no dispute for this job on this relay');
    const arbiter = markedTag(disputes[0].tags, 'p', 'arbiter')?.[1];
    if (arbiter !== event.pubkey) return reject('restricted: only the arbiter named in the dispute may rule on it');
    return ACCEPT;
  };
}
