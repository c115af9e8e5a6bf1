import { ANNOUNCEMENT_KIND } from '@bazaar/dvm-kinds/market/announcement';
import { REPUTATION_KIND, parseReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { FEEDBACK_KIND } from '@bazaar/dvm-kinds/feedback';
import { isJobResultKind } from '@bazaar/dvm-kinds/job';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { kindMatcher, type KindSpec } from '../rules/restrict-to-kinds.ts';

const PROVIDER_KINDS = (k: number): boolean => isJobResultKind(k) || k === FEEDBACK_KIND || k === ANNOUNCEMENT_KIND;

/**
 * Providers below a NIP-85 rank (or tier) floor, according to the assertions signed by
 * `reputationPubkey` (the relay's reputation key), may not post results, feedback or
 * announcements. Providers without an assertion pass unless `allowUnknown` is false:
 * everyone starts at tier 0.
 */
export function reputationFloor(opts: { reputationPubkey: string; minRank?: number; minTier?: number; allowUnknown?: boolean; kinds?: readonly KindSpec[] }): Policy {
  const applies = opts.kinds ? kindMatcher(opts.kinds) : PROVIDER_KINDS;
  return async (event, ctx, signal) => {
    if (!applies(event.kind)) return ACCEPT;
    const [assertion] = await ctx.store.query([{ kinds: [REPUTATION_KIND], authors: [opts.reputationPubkey], '#d': [event.pubkey], limit: 1 }], { signal });
    const parsed = assertion ? parseReputationAssertion(assertion) : undefined;
    if (!parsed || !parsed.ok) return opts.allowUnknown === false ? reject('blocked: no reputation on record for this provider') : ACCEPT;
    if (opts.minRank !== undefined && parsed.value.rank < opts.minRank) return reject(`blocked: provider rank ${parsed.value.rank} is below ${opts.minRank}`);
    if (opts.minTier !== undefined && parsed.value.tier < opts.minTier) return reject(`blocked: provider tier ${parsed.value.tier} is below ${opts.minTier}`);
    return ACCEPT;
  };
}
