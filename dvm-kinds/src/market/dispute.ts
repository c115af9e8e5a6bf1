// Dispute (kind 39300, addressable, d = job request id): the buyer contests a result before an arbiter.
import type { EventTemplate } from '../nostr.ts';
import { isHex64 } from '../hash.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema } from '../schema.ts';
import { checkKind, nowSecs, readSingleTag, tagsNamed, type EventLike, type Tag, shapeProblems } from '../tags.ts';
import { parseJsonContent } from '../job.ts';
import { buildEscrowClaimTag, parseEscrowClaim, type EscrowPackage } from './escrow.ts';

export const DISPUTE_KIND = 39300;

export interface Dispute {
  readonly id?: string;
  /** The buyer who opened it. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly resultId: string;
  readonly provider: string;
  /** The arbiter asked to rule (escrowed jobs); absent when no money is held (pay-after-verify: the buyer simply did not pay). */
  readonly arbiter?: string;
  /** Names of the verification checks that failed (paths from verifyX problems). */
  readonly failedChecks: readonly string[];
  /** SHA-256 of the evidence bundle the buyer can hand the arbiter. */
  readonly evidenceSha256: string;
  readonly message?: string;
  /** Escrowed jobs: the buyer's own claim (`escrow_claim`: a SIG_ALL swap of the escrow to the
   *  buyer's fresh outputs, signed by its payment key), for the arbiter to co-sign if it rules for the buyer. */
  readonly escrowClaim?: EscrowPackage;
}

/** Reads `["e", id, relay, marker]` with the given marker. */
export const markedTag = (tags: readonly Tag[], name: string, marker: string): Tag | undefined => tags.find((t) => t[0] === name && t[3] === marker);

export function buildDispute(d: { requestId: string; resultId: string; provider: string; arbiter?: string; failedChecks: readonly string[]; evidenceSha256: string; message?: string; escrowClaim?: string; createdAt?: number }): EventTemplate {
  return {
    kind: DISPUTE_KIND,
    created_at: d.createdAt ?? nowSecs(),
    content: JSON.stringify({ failed_checks: d.failedChecks, evidence_sha256: d.evidenceSha256, ...(d.message ? { message: d.message } : {}) }),
    tags: [['d', d.requestId], ['e', d.requestId, '', 'request'], ['e', d.resultId, '', 'result'], ['p', d.provider, '', 'provider'], ...(d.arbiter ? [['p', d.arbiter, '', 'arbiter']] : []), ...(d.escrowClaim ? [buildEscrowClaimTag(d.escrowClaim)] : [])],
  };
}

const contentSchema = {
  type: 'object',
  required: ['failed_checks', 'evidence_sha256'],
  properties: { failed_checks: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }, evidence_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, message: { type: 'string' } },
} as const;

export function readMarked(tags: readonly Tag[], name: string, marker: string, out: Problem[]): string | undefined {
  const t = markedTag(tags, name, marker);
  if (!t) out.push(problem(`tags.${name}[${marker}]`, 'missing', `a ["${name}", "<hex>", "", "${marker}"] tag is required`));
  else if (!isHex64(t[1])) out.push(problem(`tags.${name}[${marker}]`, 'invalid', 'must be 64-char lowercase hex'));
  return t?.[1];
}

/**
 * The job reference every job-scoped addressable market event carries (dispute, verdict,
 * receipt): `d` = the request id, repeated in a `["e", id, "", "request"]` tag. Returns the id.
 */
export function readJobRef(tags: readonly Tag[], out: Problem[]): string | undefined {
  const d = readSingleTag(tags, 'd', out, true)?.[1];
  const requestId = readMarked(tags, 'e', 'request', out);
  if (d !== undefined && requestId !== undefined && d !== requestId) out.push(problem('tags.d', 'mismatch', 'd must be the job request id'));
  return requestId;
}

export function parseDispute(e: EventLike): Parsed<Dispute> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, DISPUTE_KIND, out, 'dispute');
  const requestId = readJobRef(e.tags, out);
  const resultId = readMarked(e.tags, 'e', 'result', out);
  const provider = readMarked(e.tags, 'p', 'provider', out);
  const arbiter = markedTag(e.tags, 'p', 'arbiter') ? readMarked(e.tags, 'p', 'arbiter', out) : undefined;
  if (tagsNamed(e.tags, 'p').length !== (arbiter === undefined ? 1 : 2)) out.push(problem('tags.p', 'unexpected', 'a provider and at most one arbiter'));
  const json = parseJsonContent(e.content, out) as { failed_checks: string[]; evidence_sha256: string; message?: string } | undefined;
  if (json !== undefined) out.push(...validateSchema(contentSchema, json, 'content'));
  const claim = parseEscrowClaim(e);
  if (!claim.ok) out.push(...claim.errors);
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: requestId!,
    resultId: resultId!,
    provider: provider!,
    ...(arbiter !== undefined ? { arbiter } : {}),
    failedChecks: json!.failed_checks,
    evidenceSha256: json!.evidence_sha256,
    ...(json!.message ? { message: json!.message } : {}),
    ...(claim.ok && claim.value ? { escrowClaim: claim.value } : {}),
  }));
}
