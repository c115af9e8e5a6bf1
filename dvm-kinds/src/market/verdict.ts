// Verdict (kind 39301, addressable, d = job request id): an arbiter's ruling on a dispute.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema } from '../schema.ts';
import { checkKind, nowSecs, parseDecimal, readAmount, readSingleTag, type EventLike, shapeProblems } from '../tags.ts';
import { parseJsonContent } from '../job.ts';
import { DISPUTE_KIND, readMarked, readJobRef } from './dispute.ts';
import { buildEscrowReleaseTag, parseEscrowRelease, parseSealedEscrowRelease, type EscrowPackage, type SealedEscrowRelease } from './escrow.ts';

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
  /** Escrowed jobs: the winner's claim co-signed by the arbiter (`escrow_release`), in clear… */
  readonly escrowRelease?: EscrowPackage;
  /** …or sealed (NIP-44) to the winner, as our arbiters publish it: open with `openEscrowRelease`. */
  readonly sealedRelease?: SealedEscrowRelease;
  /** SHA-256 of the arbiter's own evidence bundle (its replay, the provider's answer, the trajectory check). */
  readonly evidenceSha256?: string;
  /** What the ruling means for each side's record, −1..0: the loser of a dispute −1, a split by shares. */
  readonly reputationDelta?: { readonly provider: number; readonly buyer: number };
  /** The arbiter's fee, asked of the losing side (`["fee", msats, bolt11?]`); a split asks none. */
  readonly fee?: { readonly msats: number; readonly bolt11?: string };
}

/** Reputation deltas of a ruling: the loser −1; a split moves each side by the share it lost. */
export function reputationDeltaFor(ruling: Ruling, providerShare = 0.5): { provider: number; buyer: number } {
  if (ruling === 'buyer') return { provider: -1, buyer: 0 };
  if (ruling === 'provider') return { provider: 0, buyer: -1 };
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { provider: round(-(1 - providerShare)), buyer: round(-providerShare) };
}

export function buildVerdict(v: {
  requestId: string;
  buyer: string;
  provider: string;
  ruling: Ruling;
  providerShare?: number;
  reason: string;
  checks?: readonly { name: string; passed: boolean }[];
  /** A release in clear… */
  escrowRelease?: string;
  /** …or a ready tag, e.g. `buildSealedEscrowReleaseTag(pkg, arbiterKey, winner)`. */
  releaseTag?: readonly string[];
  evidenceSha256?: string;
  reputationDelta?: { provider: number; buyer: number };
  fee?: { msats: number; bolt11?: string };
  createdAt?: number;
}): EventTemplate {
  const ruling = v.ruling === 'split' ? ['ruling', 'split', String(v.providerShare ?? 0.5)] : ['ruling', v.ruling];
  const release = v.releaseTag ? [[...v.releaseTag]] : v.escrowRelease !== undefined ? [buildEscrowReleaseTag(v.escrowRelease)] : [];
  const fee = v.fee ? [v.fee.bolt11 ? ['fee', String(v.fee.msats), v.fee.bolt11] : ['fee', String(v.fee.msats)]] : [];
  const content = { reason: v.reason, checks: v.checks ?? [], ...(v.evidenceSha256 ? { evidence_sha256: v.evidenceSha256 } : {}), ...(v.reputationDelta ? { reputation_delta: v.reputationDelta } : {}) };
  return {
    kind: VERDICT_KIND,
    created_at: v.createdAt ?? nowSecs(),
    content: JSON.stringify(content),
    tags: [['d', v.requestId], ['e', v.requestId, '', 'request'], ['a', `${DISPUTE_KIND}:${v.buyer}:${v.requestId}`], ['p', v.buyer, '', 'buyer'], ['p', v.provider, '', 'provider'], ruling, ...release, ...fee],
  };
}

const contentSchema = {
  type: 'object',
  required: ['reason', 'checks'],
  properties: {
    reason: { type: 'string' },
    checks: { type: 'array', items: { type: 'object', required: ['name', 'passed'], properties: { name: { type: 'string' }, passed: { type: 'boolean' } } } },
    evidence_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    reputation_delta: { type: 'object', required: ['provider', 'buyer'], properties: { provider: { type: 'number', minimum: -1, maximum: 0 }, buyer: { type: 'number', minimum: -1, maximum: 0 } } },
  },
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
  const json = parseJsonContent(e.content, out) as { reason: string; checks: { name: string; passed: boolean }[]; evidence_sha256?: string; reputation_delta?: { provider: number; buyer: number } } | undefined;
  if (json !== undefined) out.push(...validateSchema(contentSchema, json, 'content'));
  const release = parseEscrowRelease(e);
  if (!release.ok) out.push(...release.errors);
  const sealed = parseSealedEscrowRelease(e);
  if (!sealed.ok) out.push(...sealed.errors);
  if (sealed.ok && sealed.value && buyer !== undefined && provider !== undefined && sealed.value.recipient !== buyer && sealed.value.recipient !== provider) out.push(problem('tags.escrow_release', 'mismatch', 'a sealed release goes to the buyer or the provider'));
  const feeTag = readSingleTag(e.tags, 'fee', out, false);
  const fee = feeTag ? readAmount([['amount', ...feeTag.slice(1)]], out) : undefined;
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
    ...(sealed.ok && sealed.value ? { sealedRelease: sealed.value } : {}),
    ...(json!.evidence_sha256 ? { evidenceSha256: json!.evidence_sha256 } : {}),
    ...(json!.reputation_delta ? { reputationDelta: { provider: json!.reputation_delta.provider, buyer: json!.reputation_delta.buyer } } : {}),
    ...(fee ? { fee } : {}),
  }));
}
