// NIP-90 job feedback (kind 7000): status, optional amount (millisats + bolt11), error codes, progress.
import type { EventTemplate, NostrEvent } from './nostr.ts';
import { isHex64 } from './hash.ts';
import { fail, problem, type Parsed, type Problem, result } from './problem.ts';
import { amountTag, checkKind, nowSecs, parseDecimal, readAmount, shapeProblems, tagsNamed, type Amount, type EventLike } from './tags.ts';

export const FEEDBACK_KIND = 7000;

export const FEEDBACK_STATUSES = ['payment-required', 'processing', 'error', 'success', 'partial'] as const;
export type FeedbackStatus = (typeof FEEDBACK_STATUSES)[number];

/** Spellings seen in the wild that we accept on input and never emit. */
const STATUS_ALIASES: Readonly<Record<string, FeedbackStatus>> = { payment_required: 'payment-required' };

export const ERROR_CODES = [
  'BAD_REQUEST', 'INVALID_PARAMETER', 'MISSING_PARAMETER', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE',
  'UNAUTHORIZED', 'PAYMENT_FAILED', 'PAYMENT_TIMEOUT', 'POLICY_VIOLATION', 'EXPIRED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface Feedback {
  readonly id?: string;
  readonly pubkey?: string;
  readonly createdAt: number;
  /** The job request this feedback is about (`e`). */
  readonly requestId: string;
  readonly requestRelay?: string;
  /** The customer (`p`). */
  readonly customer: string;
  readonly status: FeedbackStatus;
  /** Human-readable extra info (third element of the status tag). */
  readonly message?: string;
  /** Only on `error`: a machine-readable code (`["error", CODE]`). */
  readonly errorCode?: ErrorCode;
  /** Only on `partial` / `processing`: fraction done, 0..1 (`["progress", "0.4"]`). */
  readonly progress?: number;
  readonly amount?: Amount;
  /** Partial result or extra payload. */
  readonly content: string;
  readonly encrypted: boolean;
}

export interface FeedbackInput {
  readonly request: Pick<NostrEvent, 'id' | 'pubkey'>;
  readonly status: FeedbackStatus;
  readonly message?: string;
  readonly errorCode?: ErrorCode;
  readonly progress?: number;
  readonly amount?: Amount;
  readonly content?: string;
  readonly relay?: string;
  readonly createdAt?: number;
}

export function buildFeedback(f: FeedbackInput): EventTemplate {
  const tags: string[][] = [f.message !== undefined ? ['status', f.status, f.message] : ['status', f.status]];
  if (f.errorCode !== undefined) tags.push(['error', f.errorCode]);
  if (f.progress !== undefined) tags.push(['progress', String(f.progress)]);
  if (f.amount) tags.push(amountTag(f.amount));
  tags.push(f.relay ? ['e', f.request.id, f.relay] : ['e', f.request.id]);
  tags.push(['p', f.request.pubkey]);
  return { kind: FEEDBACK_KIND, created_at: f.createdAt ?? nowSecs(), content: f.content ?? '', tags };
}

export function normalizeStatus(s: string | undefined): FeedbackStatus | undefined {
  if (s === undefined) return undefined;
  if ((FEEDBACK_STATUSES as readonly string[]).includes(s)) return s as FeedbackStatus;
  return STATUS_ALIASES[s];
}

export function parseFeedback(e: EventLike): Parsed<Feedback> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, FEEDBACK_KIND, out, 'job feedback');
  const statusTags = tagsNamed(e.tags, 'status');
  if (statusTags.length === 0) out.push(problem('tags.status', 'missing', 'a ["status", "<status>"] tag is required'));
  if (statusTags.length > 1) out.push(problem('tags.status', 'unexpected', 'only one "status" tag is allowed'));
  const status = normalizeStatus(statusTags[0]?.[1]);
  if (statusTags[0] && !status) out.push(problem('tags.status', 'invalid', `status must be one of ${FEEDBACK_STATUSES.join(', ')}, got ${JSON.stringify(statusTags[0][1] ?? null)}`));
  const eTag = tagsNamed(e.tags, 'e')[0];
  if (!eTag) out.push(problem('tags.e', 'missing', 'feedback references its job request with an "e" tag'));
  else if (!isHex64(eTag[1])) out.push(problem('tags.e', 'invalid', 'request id must be a 64-char lowercase hex event id'));
  const pTag = tagsNamed(e.tags, 'p')[0];
  if (!pTag) out.push(problem('tags.p', 'missing', 'feedback names the customer with a "p" tag'));
  else if (!isHex64(pTag[1])) out.push(problem('tags.p', 'invalid', 'customer must be a 64-char lowercase hex pubkey'));
  let errorCode: ErrorCode | undefined;
  const errTag = tagsNamed(e.tags, 'error')[0];
  if (errTag) {
    if ((ERROR_CODES as readonly string[]).includes(errTag[1] ?? '')) errorCode = errTag[1] as ErrorCode;
    else out.push(problem('tags.error', 'invalid', `error code must be one of ${ERROR_CODES.join(', ')}, got ${JSON.stringify(errTag[1] ?? null)}`));
    if (status && status !== 'error') out.push(problem('tags.error', 'unexpected', 'an error code only goes with status "error"'));
  }
  let progress: number | undefined;
  const progTag = tagsNamed(e.tags, 'progress')[0];
  if (progTag) {
    progress = parseDecimal(progTag[1]);
    if (progress === undefined || progress < 0 || progress > 1) {
      out.push(problem('tags.progress', 'invalid', `progress is a fraction between 0 and 1, got ${JSON.stringify(progTag[1] ?? null)}`));
      progress = undefined;
    }
  }
  const amount = readAmount(e.tags, out);
  if (status === 'payment-required' && !e.tags.some((t) => t[0] === 'amount')) out.push(problem('tags.amount', 'missing', 'payment-required feedback says how much (["amount", "<msats>", "<bolt11>?"])'));
  const message = statusTags[0]?.[2];
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: eTag![1],
    ...(eTag![2] ? { requestRelay: eTag![2] } : {}),
    customer: pTag![1],
    status: status!,
    ...(message ? { message } : {}),
    ...(errorCode ? { errorCode } : {}),
    ...(progress !== undefined ? { progress } : {}),
    ...(amount ? { amount } : {}),
    content: e.content,
    encrypted: e.tags.some((t) => t[0] === 'encrypted'),
  }));
}
