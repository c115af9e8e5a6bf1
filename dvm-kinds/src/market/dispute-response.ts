// Dispute response (kind 39303, addressable, d = job request id): the provider's answer to a
// buyer's dispute, read by the arbiter within its response window. The provider stands by its
// result (with what it checked) or concedes; it may restate its escrow claim.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema } from '../schema.ts';
import { checkKind, nowSecs, readSingleTag, tagValue, type EventLike, shapeProblems } from '../tags.ts';
import { isHex64 } from '../hash.ts';
import { parseJsonContent } from '../job.ts';
import { DISPUTE_KIND, markedTag, readJobRef, readMarked } from './dispute.ts';
import { buildEscrowClaimTag, parseEscrowClaim, type EscrowPackage } from './escrow.ts';

export const DISPUTE_RESPONSE_KIND = 39303;
export const POSITIONS = ['stand', 'concede'] as const;
export type Position = (typeof POSITIONS)[number];

export interface DisputeResponse {
  readonly id?: string;
  /** The provider. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly resultId: string;
  readonly buyer: string;
  readonly arbiter?: string;
  /** `39300:<buyer>:<request id>`. */
  readonly dispute: string;
  /** `stand`: the result is right; `concede`: the buyer is right (the arbiter may rule without a replay). */
  readonly position: Position;
  readonly message: string;
  /** What the provider checked on its own result before offering it. */
  readonly checks: readonly { readonly name: string; readonly passed: boolean }[];
  /** The result's trajectory hash, restated (the arbiter asks for the log with a 39304). */
  readonly trajectorySha256?: string;
  readonly escrowClaim?: EscrowPackage;
}

export function buildDisputeResponse(r: { requestId: string; resultId: string; buyer: string; arbiter?: string; position: Position; message: string; checks?: readonly { name: string; passed: boolean }[]; trajectorySha256?: string; escrowClaim?: string; createdAt?: number }): EventTemplate {
  return {
    kind: DISPUTE_RESPONSE_KIND,
    created_at: r.createdAt ?? nowSecs(),
    content: JSON.stringify({ position: r.position, message: r.message, checks: r.checks ?? [] }),
    tags: [
      ['d', r.requestId],
      ['e', r.requestId, '', 'request'],
      ['e', r.resultId, '', 'result'],
      ['a', `${DISPUTE_KIND}:${r.buyer}:${r.requestId}`],
      ['p', r.buyer, '', 'buyer'],
      ...(r.arbiter ? [['p', r.arbiter, '', 'arbiter']] : []),
      ...(r.trajectorySha256 ? [['trajectory_sha256', r.trajectorySha256]] : []),
      ...(r.escrowClaim ? [buildEscrowClaimTag(r.escrowClaim)] : []),
    ],
  };
}

const contentSchema = {
  type: 'object',
  required: ['position', 'message'],
  properties: {
    position: { type: 'string', enum: POSITIONS },
    message: { type: 'string', maxLength: 4000 },
    checks: { type: 'array', items: { type: 'object', required: ['name', 'passed'], properties: { name: { type: 'string' }, passed: { type: 'boolean' } } } },
  },
} as const;

export function parseDisputeResponse(e: EventLike): Parsed<DisputeResponse> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, DISPUTE_RESPONSE_KIND, out, 'dispute response');
  const requestId = readJobRef(e.tags, out);
  const resultId = readMarked(e.tags, 'e', 'result', out);
  const buyer = readMarked(e.tags, 'p', 'buyer', out);
  const arbiter = markedTag(e.tags, 'p', 'arbiter') ? readMarked(e.tags, 'p', 'arbiter', out) : undefined;
  const a = readSingleTag(e.tags, 'a', out, true)?.[1];
  if (a !== undefined && buyer !== undefined && requestId !== undefined && a !== `${DISPUTE_KIND}:${buyer}:${requestId}`) out.push(problem('tags.a', 'mismatch', `must be ${DISPUTE_KIND}:<buyer>:<request id>`));
  const traj = tagValue(e.tags, 'trajectory_sha256');
  if (traj !== undefined && !isHex64(traj)) out.push(problem('tags.trajectory_sha256', 'invalid', 'must be 64-char lowercase hex'));
  const json = parseJsonContent(e.content, out) as { position: Position; message: string; checks?: { name: string; passed: boolean }[] } | undefined;
  if (json !== undefined) out.push(...validateSchema(contentSchema, json, 'content'));
  const claim = parseEscrowClaim(e);
  if (!claim.ok) out.push(...claim.errors);
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: requestId!,
    resultId: resultId!,
    buyer: buyer!,
    ...(arbiter !== undefined ? { arbiter } : {}),
    dispute: a!,
    position: json!.position,
    message: json!.message,
    checks: json!.checks ?? [],
    ...(traj ? { trajectorySha256: traj } : {}),
    ...(claim.ok && claim.value ? { escrowClaim: claim.value } : {}),
  }));
}
