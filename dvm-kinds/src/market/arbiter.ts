// An arbiter's NIP-89 handler information (kind 31990): it handles disputes (k = 39300) for the
// job kinds whose verification it replays, answers within a response window, and may charge a
// fee. Its payment key (the one buyers name in escrow locks) is in its NIP-61 kind 10019.
// A provider announcement always names job request kinds in `k`; this one never does, so a
// buyer looking for providers of a kind never mistakes an arbiter for one.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema } from '../schema.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, readUintTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { isJobRequestKind, parseJsonContent } from '../job.ts';
import { ANNOUNCEMENT_KIND, ISOLATION_LEVELS, type Isolation } from './announcement.ts';
import { DISPUTE_KIND } from './dispute.ts';

export const ARBITER_D_TAG = 'bazaar-arbiter';
/** Who pays the fee: `loser` — the side the verdict goes against; a split has no loser and asks no fee. */
export const FEE_PAYERS = ['loser'] as const;
export type FeePayer = (typeof FEE_PAYERS)[number];

export interface ArbiterAnnouncement {
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly d: string;
  /** Job kinds whose verification this arbiter replays (`["arbitrates", kind]`). */
  readonly kinds: readonly number[];
  /** Seconds the arbiter waits for the provider's answer to a dispute before ruling (`["response_window", secs]`). */
  readonly responseWindowSecs: number;
  /** Takes any dispute (`["public", "true"]`), not only those naming it. */
  readonly public: boolean;
  readonly isolation?: Isolation;
  /** `["fee", msats, payer]`: absent = no fee. */
  readonly fee?: { readonly msats: number; readonly payer: FeePayer };
  /** The Lightning node its fee invoices come from (`["lightning_node", "02…"]`): a payer refuses a fee invoice to another payee. */
  readonly lightningNode?: string;
  readonly name?: string;
  readonly about?: string;
}

export function buildArbiterAnnouncement(a: { kinds: readonly number[]; responseWindowSecs: number; public?: boolean; isolation?: Isolation; fee?: { msats: number; payer: FeePayer }; lightningNode?: string; name?: string; about?: string; d?: string; createdAt?: number }): EventTemplate {
  const tags: string[][] = [['d', a.d ?? ARBITER_D_TAG], ['k', String(DISPUTE_KIND)], ...a.kinds.map((k) => ['arbitrates', String(k)]), ['response_window', String(a.responseWindowSecs)]];
  if (a.public) tags.push(['public', 'true']);
  if (a.isolation) tags.push(['isolation', a.isolation]);
  if (a.fee && a.fee.msats > 0) tags.push(['fee', String(a.fee.msats), a.fee.payer]);
  if (a.lightningNode) tags.push(['lightning_node', a.lightningNode]);
  return { kind: ANNOUNCEMENT_KIND, created_at: a.createdAt ?? nowSecs(), content: JSON.stringify({ ...(a.name ? { name: a.name } : {}), ...(a.about ? { about: a.about } : {}) }), tags };
}

/** True when a 31990 handles disputes: an arbiter's, not a provider's. */
export const isArbiterAnnouncement = (e: EventLike): boolean => e.kind === ANNOUNCEMENT_KIND && e.tags.some((t) => t[0] === 'k' && t[1] === String(DISPUTE_KIND));

export function parseArbiterAnnouncement(e: EventLike): Parsed<ArbiterAnnouncement> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, ANNOUNCEMENT_KIND, out, 'arbiter announcement');
  const d = readSingleTag(e.tags, 'd', out, true)?.[1];
  const k = tagsNamed(e.tags, 'k').map((t) => t[1]);
  if (!k.includes(String(DISPUTE_KIND))) out.push(problem('tags.k', 'missing', `an arbiter handles disputes: ["k", "${DISPUTE_KIND}"]`));
  if (k.some((x) => x !== String(DISPUTE_KIND))) out.push(problem('tags.k', 'unexpected', 'an arbiter announcement names only the dispute kind in k (job kinds go in "arbitrates")'));
  const kinds: number[] = [];
  for (const t of tagsNamed(e.tags, 'arbitrates')) {
    const n = parseUint(t[1]);
    if (n === undefined || !isJobRequestKind(n)) out.push(problem('tags.arbitrates', 'invalid', `a job request kind (5000-5999), got ${JSON.stringify(t[1] ?? null)}`));
    else kinds.push(n);
  }
  if (!kinds.length) out.push(problem('tags.arbitrates', 'missing', 'at least one ["arbitrates", "<job kind>"] tag'));
  const responseWindowSecs = readUintTag(e.tags, 'response_window', out, true);
  const pub = readSingleTag(e.tags, 'public', out, false)?.[1];
  if (pub !== undefined && pub !== 'true' && pub !== 'false') out.push(problem('tags.public', 'invalid', 'true or false'));
  const iso = readSingleTag(e.tags, 'isolation', out, false)?.[1];
  if (iso !== undefined && !(ISOLATION_LEVELS as readonly string[]).includes(iso)) out.push(problem('tags.isolation', 'invalid', `isolation must be one of ${ISOLATION_LEVELS.join(', ')}`));
  const feeTag = readSingleTag(e.tags, 'fee', out, false);
  let fee: { msats: number; payer: FeePayer } | undefined;
  if (feeTag) {
    const msats = parseUint(feeTag[1]);
    if (msats === undefined) out.push(problem('tags.fee', 'invalid', 'the fee is integer millisats'));
    else if (!(FEE_PAYERS as readonly string[]).includes(feeTag[2] ?? '')) out.push(problem('tags.fee', 'invalid', `the payer is one of ${FEE_PAYERS.join(', ')}`));
    else fee = { msats, payer: feeTag[2] as FeePayer };
  }
  const lightningNode = readSingleTag(e.tags, 'lightning_node', out, false)?.[1];
  if (lightningNode !== undefined && !/^0[23][0-9a-f]{64}$/.test(lightningNode)) out.push(problem('tags.lightning_node', 'invalid', 'a Lightning node is named by its compressed public key: 02/03 + 64 hex'));
  let meta: { name?: string; about?: string } = {};
  if (e.content !== '') {
    const json = parseJsonContent(e.content, out);
    if (json !== undefined) {
      out.push(...validateSchema({ type: 'object', properties: { name: { type: 'string' }, about: { type: 'string' } } }, json, 'content'));
      meta = json as typeof meta;
    }
  }
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    d: d!,
    kinds,
    responseWindowSecs: responseWindowSecs!,
    public: pub === 'true',
    ...(iso ? { isolation: iso as Isolation } : {}),
    ...(fee ? { fee } : {}),
    ...(lightningNode ? { lightningNode } : {}),
    ...(meta.name ? { name: meta.name } : {}),
    ...(meta.about ? { about: meta.about } : {}),
  }));
}
