// Store lookups shared by the market rules.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { PolicyContext } from '../policy.ts';

/** The first `e` tag's event, if the relay has it. */
export async function referencedEvent(event: NostrEvent, ctx: PolicyContext, signal?: AbortSignal): Promise<NostrEvent | undefined> {
  const id = event.tags.find((t) => t[0] === 'e')?.[1];
  if (!id || !/^[0-9a-f]{64}$/.test(id)) return undefined;
  const [found] = await ctx.store.query([{ ids: [id], limit: 1 }], { signal });
  return found;
}

export const taggedPubkeys = (e: NostrEvent): string[] => e.tags.filter((t) => t[0] === 'p' && t[1]).map((t) => t[1]);
