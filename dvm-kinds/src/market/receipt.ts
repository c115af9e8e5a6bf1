// Receipt (kind 39302, addressable, d = job request id): the buyer's proof of payment, with an optional rating.
import { decode as decodeBolt11 } from 'light-bolt11-decoder';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { EventTemplate } from '../nostr.ts';
import { isHex, isHex64, sha256Hex } from '../hash.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, isHttpUrl, nowSecs, parseDecimal, readAmount, readSingleTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { readMarked, readJobRef } from './dispute.ts';
import { verification, type Verification } from '../verify.ts';
import { buildEscrowReleaseTag, parseEscrowRelease, type EscrowPackage } from './escrow.ts';

export const RECEIPT_KIND = 39302;

export type Payment =
  | { readonly method: 'lightning'; readonly bolt11: string; readonly preimage: string }
  /** Spent Cashu proofs: each proof's secret and its Y = hash_to_curve(secret) (NUT-00). */
  | { readonly method: 'cashu'; readonly mint: string; readonly proofs: readonly { readonly secret: string; readonly y: string }[] };

export interface Receipt {
  readonly id?: string;
  /** The buyer. */
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly requestId: string;
  readonly resultId: string;
  readonly provider: string;
  readonly amountMsats: number;
  readonly payment: Payment;
  /** 0 (worst) .. 1 (best). */
  readonly rating?: number;
  readonly comment: string;
  /** Escrowed jobs: the provider's claim co-signed by the buyer (`escrow_release`), which pays the provider. */
  readonly escrowRelease?: EscrowPackage;
}

export interface ReceiptInput {
  readonly requestId: string;
  readonly resultId: string;
  readonly provider: string;
  readonly amountMsats: number;
  readonly payment: Payment;
  readonly rating?: number;
  readonly comment?: string;
  readonly createdAt?: number;
  /** Serialized co-signed claim package (escrowed jobs). */
  readonly escrowRelease?: string;
}

export function buildReceipt(r: ReceiptInput): EventTemplate {
  const tags: string[][] = [['d', r.requestId], ['e', r.requestId, '', 'request'], ['e', r.resultId, '', 'result'], ['p', r.provider, '', 'provider'], ['amount', String(r.amountMsats)]];
  if (r.payment.method === 'lightning') tags.push(['payment', 'lightning', r.payment.bolt11, r.payment.preimage]);
  else {
    tags.push(['payment', 'cashu', r.payment.mint]);
    for (const p of r.payment.proofs) tags.push(['proof', p.secret, p.y]);
  }
  if (r.rating !== undefined) tags.push(['rating', String(r.rating)]);
  if (r.escrowRelease !== undefined) tags.push(buildEscrowReleaseTag(r.escrowRelease));
  return { kind: RECEIPT_KIND, created_at: r.createdAt ?? nowSecs(), content: r.comment ?? '', tags };
}

export function parseReceipt(e: EventLike): Parsed<Receipt> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, RECEIPT_KIND, out, 'receipt');
  const requestId = readJobRef(e.tags, out);
  const resultId = readMarked(e.tags, 'e', 'result', out);
  const provider = readMarked(e.tags, 'p', 'provider', out);
  const amount = readAmount(e.tags, out, true);
  const pay = readSingleTag(e.tags, 'payment', out, true);
  let payment: Payment | undefined;
  if (pay?.[1] === 'lightning') {
    const [, , bolt11, preimage] = pay;
    if (!bolt11 || !/^ln/i.test(bolt11)) out.push(problem('tags.payment', 'invalid', 'lightning payment is ["payment", "lightning", "<bolt11>", "<preimage hex>"]'));
    if (!isHex(preimage, 32)) out.push(problem('tags.payment', 'invalid', 'the preimage is 32 bytes of lowercase hex'));
    if (bolt11 && preimage) payment = { method: 'lightning', bolt11, preimage };
  } else if (pay?.[1] === 'cashu') {
    const mint = pay[2];
    if (!isHttpUrl(mint)) out.push(problem('tags.payment', 'invalid', 'cashu payment is ["payment", "cashu", "<mint url>"]'));
    const proofs: { secret: string; y: string }[] = [];
    tagsNamed(e.tags, 'proof').forEach((t, n) => {
      if (!t[1] || !isHex(t[2], 33)) out.push(problem(`tags.proof[${n}]`, 'invalid', 'a proof is ["proof", "<secret>", "<Y: 33-byte compressed point hex>"]'));
      else proofs.push({ secret: t[1], y: t[2] });
    });
    if (!proofs.length) out.push(problem('tags.proof', 'missing', 'a cashu receipt lists the spent proofs'));
    if (mint) payment = { method: 'cashu', mint, proofs };
  } else if (pay) out.push(problem('tags.payment', 'invalid', `payment method must be lightning or cashu, got ${JSON.stringify(pay[1] ?? null)}`));
  let rating: number | undefined;
  const rt = readSingleTag(e.tags, 'rating', out, false);
  if (rt) {
    rating = parseDecimal(rt[1]);
    if (rating === undefined || rating < 0 || rating > 1) out.push(problem('tags.rating', 'invalid', 'rating is a number between 0 and 1'));
  }
  const release = parseEscrowRelease(e);
  if (!release.ok) out.push(...release.errors);
  else if (release.value && payment?.method !== 'cashu') out.push(problem('tags.escrow_release', 'unexpected', 'an escrow release goes with a cashu payment'));
  return result(out, () => ({
    ...(e.id !== undefined ? { id: e.id } : {}),
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    requestId: requestId!,
    resultId: resultId!,
    provider: provider!,
    amountMsats: amount!.msats,
    payment: payment!,
    ...(rating !== undefined ? { rating } : {}),
    comment: e.content,
    ...(release.ok && release.value ? { escrowRelease: release.value } : {}),
  }));
}

const DOMAIN_SEPARATOR = utf8ToBytes('Secp256k1_HashToCurve_Cashu_');

/** NUT-00 hash_to_curve: the point Y for a proof secret, as 33-byte compressed hex. */
export function hashToCurve(secret: string | Uint8Array): string {
  const msgHash = sha256(concatBytes(DOMAIN_SEPARATOR, typeof secret === 'string' ? utf8ToBytes(secret) : secret));
  for (let counter = 0; counter < 2 ** 16; counter++) {
    const c = new Uint8Array(4);
    new DataView(c.buffer).setUint32(0, counter, true);
    const candidate = '02' + bytesToHex(sha256(concatBytes(msgHash, c)));
    try {
      secp256k1.Point.fromHex(candidate).assertValidity();
      return candidate;
    } catch {
      // not on the curve: try the next counter
    }
  }
  throw new Error('hash_to_curve: no point found');
}

/**
 * Pure checks of the proof of payment: a Lightning preimage hashes to the invoice's payment hash
 * and the invoice amount covers the receipt; Cashu Y values are hash_to_curve of the secrets.
 * (Whether the Cashu proofs are spent is asked of the mint by the caller: NUT-07.)
 */
export function verifyReceipt(r: Receipt): Verification {
  const out: Problem[] = [];
  if (r.payment.method === 'lightning') {
    let sections: { name: string; value?: unknown }[] = [];
    try {
      sections = decodeBolt11(r.payment.bolt11).sections as { name: string; value?: unknown }[];
    } catch (err) {
      out.push(problem('tags.payment', 'invalid', `bolt11 does not decode: ${(err as Error).message}`));
    }
    const hash = sections.find((s) => s.name === 'payment_hash')?.value;
    const amount = sections.find((s) => s.name === 'amount')?.value;
    if (sections.length && (typeof hash !== 'string' || sha256Hex(hexToBytes(r.payment.preimage)) !== hash)) out.push(problem('tags.payment', 'mismatch', 'the preimage does not hash to the invoice payment hash'));
    if (typeof amount === 'string' && Number(amount) !== r.amountMsats) out.push(problem('tags.amount', 'mismatch', `the invoice is for ${amount} msats, the receipt says ${r.amountMsats}`));
  } else {
    r.payment.proofs.forEach((p, i) => {
      let y: string | undefined;
      try {
        y = hashToCurve(p.secret);
      } catch {
        y = undefined;
      }
      if (y !== p.y) out.push(problem(`tags.proof[${i}]`, 'mismatch', 'Y is not hash_to_curve(secret)'));
    });
  }
  if (!isHex64(r.requestId)) out.push(problem('tags.e', 'invalid', 'bad request id'));
  return verification(out);
}
