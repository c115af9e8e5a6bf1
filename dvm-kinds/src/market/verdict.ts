// Verdict (kind 39301, addressable, d = job request id): an arbiter's ruling on a dispute.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema } from '../schema.ts';
import { checkKind, nowSecs, parseDecimal, readSingleTag, type EventLike, shapeProblems } from '../tags.ts';
import { parseJsonContent } from '../job.ts';
import { DISPUTE_KIND, readMarked, readJobRef } from './dispute.ts';
import { buildEscrowReleaseTag, parseEscrowRelease, type EscrowPackage } from './escrow.ts';

export const VERDICT_KIND = 39301;
export const RULINGS = ['buyer', 'provider', 'split'] as const;
export type Ruling = (typeof RULINGS)[number];

export interface DisputeVerdict {
  readonly id?: string;
  /** The arbiter. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly buyer: string;
  readonly provider: string;
  /** `a` coordinate of the dispute: `39300:<buyer>:<request id>`. */
  readonly dispute: string;
  readonly ruling: Ruling;
  /** For `split`: the provider's share, 0..1. */
  readonly providerShare?: number;
  readonly reason: string;
  readonly checks: readonly { readonly name: string; readonly passed: boolean }[];
  /** Escrowed jobs: the winner's claim co-signed by the arbiter (`escrow_release`). */
  readonly escrowRelease?: EscrowPackage;
}

export function buildVerdict(v: { requestId: string; buyer: string; provider: string; ruling: Ruling; providerShare?: number; reason: string; checks?: readonly { name: string; passed: boolean }[]; escrowRelease?: string; createdAt?: number }): EventTemplate {
  const ruling = v.ruling === 'split' ? ['ruling', 'split', String(v.providerShare ?? 0.5)] : ['ruling', v.ruling];
  return {
    kind: VERDICT_KIND,
    created_at: v.createdAt ?? nowSecs(),
    content: JSON.stringify({ reason: v.reason, checks: v.checks ?? [] }),
    tags: [['d', v.requestId], ['e', v.requestId, '', 'request'], ['a', `${DISPUTE_KIND}:${v.buyer}:${v.requestId}`], ['p', v.buyer, '', 'buyer'], ['p', v.provider, '', 'provider'], ruling, ...(v.escrowRelease !== undefined ? [buildEscrowReleaseTag(v.escrowRelease)] : [])],
  };
}

const contentSchema = {
  type: 'object',
  required: ['reason', 'checks'],
  properties: { reason: { type: 'string' }, checks: { type: 'array', items: { type: 'object', required: ['name', 'passed'], properties: { name: { type: 'string' }, passed: { type: 'boolean' } } } } },
} as const;

export function parseVerdict(e: EventLike): Parsed<DisputeVerdict> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, VERDICT_KIND, out, 'verdict');
  const requestId = readJobRef(e.tags, out);
  const buyer = readMarked(e.tags, 'p', 'buyer', out);
  const provider = readMarked(e.tags, 'p', 'provider', out);
  const a = readSingleTag(e.tags, 'a', out, true)?.[1];
  if (a !== undefined && buyer !== undefined && requestId !== undefined && a !== `${DISPUTE_KIND}:${buyer}:${requestId}`) out.push(problem('tags.a', 'mismatch', `must be ${DISPUTE_KIND}:<buyer>:<request id>`));
  const rt = readSingleTag(e.tags, 'ruling', out, true);
  const ruling = rt?.[1];
  if (rt && !(RULINGS as readonly string[]).includes(ruling ?? '')) out.push(problem('tags.ruling', 'invalid', `ruling must be one of ${RULINGS.join(', ')}`));
  let providerShare: number | undefined;
  if (ruling === 'split') {
    providerShare = parseDecimal(rt?.[2]);
    if (providerShare === undefined || providerShare < 0 || providerShare > 1) out.push(problem('tags.ruling', 'invalid', 'a split names the provider share between 0 and 1'));
  }
  const json = parseJsonContent(e.content, out) as { reason: string; checks: { name: string; passed: boolean }[] } | undefined;
  if (json !== undefined) out.push(...validateSchema(contentSchema, json, 'content'));
  const release = parseEscrowRelease(e);
  if (!release.ok) out.push(...release.errors);
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: requestId!,
    buyer: buyer!,
    provider: provider!,
    dispute: a!,
    ruling: ruling as Ruling,
    ...(providerShare !== undefined ? { providerShare } : {}),
    reason: json!.reason,
    checks: json!.checks,
    ...(release.ok && release.value ? { escrowRelease: release.value } : {}),
  }));
}
