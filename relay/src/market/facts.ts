// Market facts: what one stored event says about the market, extracted once, purely.
// The index keeps facts (not events) so that its state is a fold over facts that does not
// depend on their order: the relay feeds them in store order, the sidecar in arrival order,
// and both end in the same state. Parsing goes through dvm-kinds; nothing here does I/O.
import { decode as decodeBolt11 } from 'light-bolt11-decoder';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { isJobRequestKind, isJobResultKind, parseJobResult, readJobRequest } from '@bazaar/dvm-kinds/job';
import { FEEDBACK_KIND, parseFeedback, type FeedbackStatus } from '@bazaar/dvm-kinds/feedback';
import { ANNOUNCEMENT_KIND, parseAnnouncement, type Isolation } from '@bazaar/dvm-kinds/market/announcement';
import { HEARTBEAT_KIND, parseHeartbeat, type HeartbeatStatus } from '@bazaar/dvm-kinds/market/heartbeat';
import { DISPUTE_KIND, parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { VERDICT_KIND, parseVerdict, type Ruling } from '@bazaar/dvm-kinds/market/verdict';
import { RECEIPT_KIND, parseReceipt, verifyReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { isPong } from '@bazaar/dvm-kinds/market/ping';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import type { PriceEntry } from '@bazaar/dvm-kinds/pricing';
import { verifyEventSync } from '../ingest/verify.ts';
import { readEscrow, type EscrowLock } from './escrow.ts';

/** Bump when extraction changes: `bazaar relay reindex` re-extracts every stored event. */
export const FACTS_VERSION = 1;

/** Kinds the index reads; everything else is skipped without decoding. */
export function isMarketKind(k: number): boolean {
  return isJobRequestKind(k) || isJobResultKind(k) || k === FEEDBACK_KIND || k === ANNOUNCEMENT_KIND || k === HEARTBEAT_KIND
    || k === DISPUTE_KIND || k === VERDICT_KIND || k === RECEIPT_KIND;
}

export interface RequestFact {
  readonly t: 'request';
  readonly id: string;
  readonly at: number;
  readonly buyer: string;
  readonly kind: number;
  /** Providers the request names (`p`); empty = open to any provider. */
  readonly providers: readonly string[];
  readonly bidMsats?: number;
  readonly expiration?: number;
  readonly encrypted: boolean;
  /** A Cashu escrow lock carried by the request (provisional `escrow` tag). */
  readonly escrow?: EscrowLock;
}

export interface FeedbackFact {
  readonly t: 'feedback';
  readonly id: string;
  readonly at: number;
  readonly provider: string;
  readonly requestId: string;
  readonly buyer: string;
  readonly status: FeedbackStatus;
  readonly amountMsats?: number;
  readonly bolt11?: string;
}

export interface ResultFact {
  readonly t: 'result';
  readonly id: string;
  readonly at: number;
  readonly provider: string;
  readonly requestId: string;
  readonly buyer: string;
  /** The request kind (result kind − 1000). */
  readonly kind: number;
  readonly amountMsats?: number;
  readonly bolt11?: string;
  /** The request embedded in the result (NIP-90 `request` tag), kept only when its signature verifies. */
  readonly request?: RequestFact;
}

export interface ReceiptFact {
  readonly t: 'receipt';
  readonly id: string;
  readonly at: number;
  readonly buyer: string;
  readonly requestId: string;
  readonly resultId: string;
  readonly provider: string;
  readonly amountMsats: number;
  readonly method: 'lightning' | 'cashu';
  /** The pure proof checks passed: sha256(preimage) = the invoice's payment hash and the invoice amount = the receipt amount; or every Cashu Y = hash_to_curve(secret). */
  readonly proofOk: boolean;
  readonly bolt11?: string;
  readonly mint?: string;
  /** Cashu proof secrets and their Y (NUT-00), as the receipt lists them. */
  readonly proofs?: readonly { readonly secret: string; readonly y: string }[];
  readonly rating?: number;
}

export interface DisputeFact {
  readonly t: 'dispute';
  readonly id: string;
  readonly at: number;
  readonly buyer: string;
  readonly requestId: string;
  readonly resultId: string;
  readonly provider: string;
  /** Only escrowed jobs name an arbiter; a pay-after-verify dispute records the failed checks and ends there. */
  readonly arbiter?: string;
}

export interface VerdictFact {
  readonly t: 'verdict';
  readonly id: string;
  readonly at: number;
  readonly arbiter: string;
  readonly requestId: string;
  readonly buyer: string;
  readonly provider: string;
  readonly ruling: Ruling;
  readonly providerShare?: number;
}

export interface AnnouncementFact {
  readonly t: 'announcement';
  readonly id: string;
  readonly at: number;
  readonly provider: string;
  readonly d: string;
  readonly kinds: readonly number[];
  readonly prices: Readonly<Record<string, PriceEntry>>;
  readonly capacity?: number;
  readonly isolation?: Isolation;
  readonly models: readonly string[];
  readonly region?: string;
  readonly name?: string;
  readonly about?: string;
  /** Payment terms per kind (`["terms", kind, prepay|after-verify|escrow]`, the provider's convention). */
  readonly terms: Readonly<Record<string, string>>;
}

export interface HeartbeatFact {
  readonly t: 'heartbeat';
  readonly id: string;
  readonly at: number;
  readonly provider: string;
  readonly expiration: number;
  readonly status: HeartbeatStatus;
  readonly active: number;
  readonly capacity: number;
  readonly kinds: readonly number[];
}

export type JobFact = RequestFact | FeedbackFact | ResultFact | ReceiptFact | DisputeFact | VerdictFact;
export type Fact = JobFact | AnnouncementFact | HeartbeatFact;

/** The job a fact belongs to (undefined for directory facts). */
export const jobIdOf = (f: Fact): string | undefined => (f.t === 'announcement' || f.t === 'heartbeat' ? undefined : f.t === 'request' ? f.id : f.requestId);

/** Who authored the fact's event. */
export function authorOf(f: Fact): string {
  switch (f.t) {
    case 'request': case 'receipt': case 'dispute': return f.buyer;
    case 'verdict': return f.arbiter;
    default: return f.provider;
  }
}

export interface Invoice {
  readonly paymentHash: string;
  readonly amountMsats?: number;
}

/** Payment hash and amount of a BOLT11 invoice, or undefined when it does not decode. */
export function decodeInvoice(bolt11: string): Invoice | undefined {
  try {
    const sections = decodeBolt11(bolt11).sections as { name: string; value?: unknown }[];
    const hash = sections.find((s) => s.name === 'payment_hash')?.value;
    const amount = sections.find((s) => s.name === 'amount')?.value;
    if (typeof hash !== 'string') return undefined;
    return { paymentHash: hash, ...(typeof amount === 'string' && /^\d+$/.test(amount) ? { amountMsats: Number(amount) } : {}) };
  } catch {
    return undefined;
  }
}

function requestFact(e: NostrEvent): RequestFact | undefined {
  const { envelope } = readJobRequest(e);
  if (!isJobRequestKind(e.kind)) return undefined;
  const escrow = readEscrow(e.tags);
  return {
    t: 'request', id: e.id, at: e.created_at, buyer: e.pubkey, kind: e.kind,
    // Even a request whose params do not parse is a request the provider may have answered;
    // only the addressing is needed here, taken from well-formed p tags.
    providers: [...new Set(e.tags.filter((t) => t[0] === 'p' && /^[0-9a-f]{64}$/.test(t[1] ?? '')).map((t) => t[1]))].sort(),
    ...(envelope.bidMsats !== undefined ? { bidMsats: envelope.bidMsats } : {}),
    ...(envelope.expiration !== undefined ? { expiration: envelope.expiration } : {}),
    encrypted: envelope.encrypted,
    ...(escrow ? { escrow } : {}),
  };
}

/**
 * The fact an event states, or undefined when it is not a market event or does not parse
 * (a malformed event says nothing we can rely on). Pure; the event's signature is assumed
 * verified (it comes from a store, or a relay whose events the caller verified).
 */
export function extractFact(e: NostrEvent): Fact | undefined {
  const k = e.kind;
  if (isJobRequestKind(k)) return requestFact(e);
  if (isJobResultKind(k)) {
    const r = parseJobResult(e);
    if (!r.ok) return undefined;
    const v = r.value;
    let request: RequestFact | undefined;
    // The embedded request stands in for one this index never saw (posted elsewhere, or
    // expired and purged) — but only if it is really the buyer's signed request.
    if (v.request && v.request.id === v.requestId && v.request.pubkey === v.customer && verifyEventSync(v.request)) request = requestFact(v.request);
    return {
      t: 'result', id: e.id, at: e.created_at, provider: e.pubkey, requestId: v.requestId, buyer: v.customer, kind: k - 1000,
      ...(v.amount ? { amountMsats: v.amount.msats, ...(v.amount.bolt11 ? { bolt11: v.amount.bolt11 } : {}) } : {}),
      ...(request ? { request } : {}),
    };
  }
  if (k === FEEDBACK_KIND) {
    if (isPong(e)) return undefined;
    const f = parseFeedback(e);
    if (!f.ok) return undefined;
    const v = f.value;
    return {
      t: 'feedback', id: e.id, at: e.created_at, provider: e.pubkey, requestId: v.requestId, buyer: v.customer, status: v.status,
      ...(v.amount ? { amountMsats: v.amount.msats, ...(v.amount.bolt11 ? { bolt11: v.amount.bolt11 } : {}) } : {}),
    };
  }
  if (k === RECEIPT_KIND) {
    const r = parseReceipt(e);
    if (!r.ok) return undefined;
    const v = r.value;
    const proofOk = verifyReceipt(v).ok;
    const base = {
      t: 'receipt' as const, id: e.id, at: e.created_at, buyer: e.pubkey, requestId: v.requestId, resultId: v.resultId, provider: v.provider,
      amountMsats: v.amountMsats, proofOk, ...(v.rating !== undefined ? { rating: v.rating } : {}),
    };
    if (v.payment.method === 'lightning') {
      // verifyReceipt lets an amountless invoice pass; a receipt proves an amount only when the invoice states it.
      const inv = decodeInvoice(v.payment.bolt11);
      const ok = proofOk && inv !== undefined && inv.amountMsats === v.amountMsats && sha256Hex(hexToBytes(v.payment.preimage)) === inv.paymentHash;
      return { ...base, method: 'lightning', proofOk: ok, bolt11: v.payment.bolt11 };
    }
    return { ...base, method: 'cashu', mint: normaliseMint(v.payment.mint), proofs: v.payment.proofs.map((p) => ({ secret: p.secret, y: p.y })) };
  }
  if (k === DISPUTE_KIND) {
    const d = parseDispute(e);
    if (!d.ok) return undefined;
    const v = d.value;
    return { t: 'dispute', id: e.id, at: e.created_at, buyer: e.pubkey, requestId: v.requestId, resultId: v.resultId, provider: v.provider, ...(v.arbiter ? { arbiter: v.arbiter } : {}) };
  }
  if (k === VERDICT_KIND) {
    const d = parseVerdict(e);
    if (!d.ok) return undefined;
    const v = d.value;
    return {
      t: 'verdict', id: e.id, at: e.created_at, arbiter: e.pubkey, requestId: v.requestId, buyer: v.buyer, provider: v.provider, ruling: v.ruling,
      ...(v.providerShare !== undefined ? { providerShare: v.providerShare } : {}),
    };
  }
  if (k === ANNOUNCEMENT_KIND) {
    const a = parseAnnouncement(e);
    if (!a.ok) return undefined;
    const v = a.value;
    const terms: Record<string, string> = {};
    for (const t of e.tags) if (t[0] === 'terms' && t[1] && t[2] && v.kinds.includes(Number(t[1]))) terms[t[1]] = t[2];
    return {
      t: 'announcement', id: e.id, at: e.created_at, provider: e.pubkey, d: v.d, kinds: [...v.kinds].sort((x, y) => x - y),
      prices: Object.fromEntries(Object.entries(v.prices).map(([kind, p]) => [kind, p])), terms,
      ...(v.capacity !== undefined ? { capacity: v.capacity } : {}), ...(v.isolation ? { isolation: v.isolation } : {}), models: v.models,
      ...(v.region ? { region: v.region } : {}), ...(v.name ? { name: v.name } : {}), ...(v.about ? { about: v.about } : {}),
    };
  }
  if (k === HEARTBEAT_KIND) {
    const h = parseHeartbeat(e);
    if (!h.ok) return undefined;
    const v = h.value;
    return { t: 'heartbeat', id: e.id, at: e.created_at, provider: e.pubkey, expiration: v.expiration, status: v.status, active: v.active, capacity: v.capacity, kinds: v.kinds };
  }
  return undefined;
}

/** Mint URLs compare without trailing slashes. */
export const normaliseMint = (url: string): string => url.trim().replace(/\/+$/, '');
