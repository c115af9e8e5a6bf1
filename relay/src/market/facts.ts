// Market facts: what one stored event says about the market, extracted once, purely.
// The index keeps facts (not events) so that its state is a fold over facts that does not
// depend on their order: the relay feeds them in store order, the sidecar in arrival order,
// and both end in the same state. Parsing goes through dvm-kinds; nothing here does I/O.
import { decode as decodeBolt11 } from 'light-bolt11-decoder';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { isJobRequestKind, isJobResultKind } from '@bazaar/dvm-kinds/job';
import { FEEDBACK_KIND, normalizeStatus, type FeedbackStatus } from '@bazaar/dvm-kinds/feedback';
import { ANNOUNCEMENT_KIND, ISOLATION_LEVELS, type Isolation } from '@bazaar/dvm-kinds/market/announcement';
import { HEARTBEAT_KIND, parseHeartbeat, type HeartbeatStatus } from '@bazaar/dvm-kinds/market/heartbeat';
import { DISPUTE_KIND, parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { VERDICT_KIND, parseVerdict, type Ruling } from '@bazaar/dvm-kinds/market/verdict';
import { RECEIPT_KIND, parseReceipt, verifyReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { PING_KIND } from '@bazaar/dvm-kinds/market/ping';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { parseUint } from '@bazaar/dvm-kinds/tags';
import type { PriceEntry } from '@bazaar/dvm-kinds/pricing';
import { verifyEventSync } from '../ingest/verify.ts';
import { readEscrow, type EscrowLock } from './escrow.ts';

/** Bump when extraction changes: `bazaar relay reindex` re-extracts every stored event. */
export const FACTS_VERSION = 2;

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

const HEX64 = /^[0-9a-f]{64}$/;
const firstTag = (e: NostrEvent, name: string): string[] | undefined => {
  for (const t of e.tags) if (t[0] === name) return t;
  return undefined;
};
/** `["amount", msats, bolt11?]` the way dvm-kinds' readAmount reads it (at most one tag; integer msats); null when malformed. */
function amountOf(e: NostrEvent): { amountMsats?: number; bolt11?: string } | null {
  let t: string[] | undefined;
  for (const x of e.tags) {
    if (x[0] !== 'amount') continue;
    if (t) return null;
    t = x;
  }
  if (!t) return {};
  const msats = parseUint(t[1]);
  if (msats === undefined) return null;
  return { amountMsats: msats, ...(t[2] ? { bolt11: t[2] } : {}) };
}

// The job kinds are read lean, with dvm-kinds' own tag readers and only the tags the index
// needs: they are the bulk of market traffic and the follower runs on the relay's event loop
// (a full schema parse of every request and result cost 10× more, see README). A request whose
// params a full parse would refuse is still a request: the provider may have answered it.
function requestFact(e: NostrEvent): RequestFact | undefined {
  if (!isJobRequestKind(e.kind)) return undefined;
  const providers = new Set<string>();
  let bid: number | undefined;
  let expiration: number | undefined;
  let encrypted = false;
  let hasEscrow = false;
  for (const t of e.tags) {
    const n = t[0];
    if (n === 'p') { if (HEX64.test(t[1] ?? '')) providers.add(t[1]); }
    else if (n === 'bid') { if (bid === undefined) bid = parseUint(t[1]); }
    else if (n === 'expiration') { if (expiration === undefined) expiration = parseUint(t[1]); }
    else if (n === 'encrypted') encrypted = true;
    else if (n === 'escrow') hasEscrow = true;
  }
  const escrow = hasEscrow ? readEscrow(e.tags) : undefined;
  return {
    t: 'request', id: e.id, at: e.created_at, buyer: e.pubkey, kind: e.kind, providers: [...providers].sort(),
    ...(bid !== undefined ? { bidMsats: bid } : {}),
    ...(expiration !== undefined ? { expiration } : {}),
    encrypted,
    ...(escrow ? { escrow } : {}),
  };
}

function looksLikeEvent(v: unknown): v is NostrEvent {
  const e = v as NostrEvent;
  return typeof e === 'object' && e !== null && typeof e.id === 'string' && typeof e.pubkey === 'string' && typeof e.kind === 'number' && Array.isArray(e.tags) && typeof e.content === 'string' && typeof e.created_at === 'number' && typeof e.sig === 'string';
}

export interface ExtractOptions {
  /**
   * Whether a job request is already known to the index. A result's embedded request (the
   * NIP-90 `request` tag) is only read, and its signature checked, when it is not: the stored
   * request says the same for a fraction of the cost.
   */
  readonly knownRequest?: (id: string) => boolean;
}

/**
 * The fact an event states, or undefined when it is not a market event or does not parse
 * (a malformed event says nothing we can rely on). Pure; the event's signature is assumed
 * verified (it comes from a store, or a relay whose events the caller verified).
 */
export function extractFact(e: NostrEvent, o: ExtractOptions = {}): Fact | undefined {
  const k = e.kind;
  if (isJobRequestKind(k)) return requestFact(e);
  if (isJobResultKind(k)) {
    const et = firstTag(e, 'e');
    const pt = firstTag(e, 'p');
    const amount = amountOf(e);
    if (!et || !HEX64.test(et[1] ?? '') || !pt || !HEX64.test(pt[1] ?? '') || amount === null) return undefined;
    const requestId = et[1];
    let request: RequestFact | undefined;
    const rt = o.knownRequest?.(requestId) ? undefined : firstTag(e, 'request');
    if (rt) {
      // The embedded request stands in for one this index never saw (posted elsewhere, or
      // expired and purged), but only if it is really the buyer's signed request.
      let v: unknown;
      try {
        v = JSON.parse(rt[1] ?? '');
      } catch {
        v = undefined;
      }
      if (looksLikeEvent(v) && v.id === requestId && v.pubkey === pt[1] && v.kind + 1000 === k && verifyEventSync(v)) request = requestFact(v);
    }
    return { t: 'result', id: e.id, at: e.created_at, provider: e.pubkey, requestId, buyer: pt[1], kind: k - 1000, ...amount, ...(request ? { request } : {}) };
  }
  if (k === FEEDBACK_KIND) {
    let status: FeedbackStatus | undefined;
    let statusTags = 0;
    let et: string[] | undefined;
    let pt: string[] | undefined;
    for (const t of e.tags) {
      if (t[0] === 'status') { statusTags++; status ??= normalizeStatus(t[1]); }
      else if (t[0] === 'e') et ??= t;
      else if (t[0] === 'p') pt ??= t;
      else if (t[0] === 'k' && t[1] === String(PING_KIND)) return undefined; // a pong (dvm-kinds isPong)
    }
    const amount = amountOf(e);
    if (statusTags !== 1 || !status || !et || !HEX64.test(et[1] ?? '') || !pt || !HEX64.test(pt[1] ?? '') || amount === null) return undefined;
    return { t: 'feedback', id: e.id, at: e.created_at, provider: e.pubkey, requestId: et[1], buyer: pt[1], status, ...amount };
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
  if (k === ANNOUNCEMENT_KIND) return announcementFact(e);
  if (k === HEARTBEAT_KIND) {
    const h = parseHeartbeat(e);
    if (!h.ok) return undefined;
    const v = h.value;
    return { t: 'heartbeat', id: e.id, at: e.created_at, provider: e.pubkey, expiration: v.expiration, status: v.status, active: v.active, capacity: v.capacity, kinds: v.kinds };
  }
  return undefined;
}

/**
 * A NIP-89 announcement, read with the rules of dvm-kinds' parseAnnouncement for the tags the
 * directory shows (d; k = job request kinds, all valid, at least one; price per announced kind;
 * capacity; isolation) without validating the param schemas in the content.
 */
function announcementFact(e: NostrEvent): AnnouncementFact | undefined {
  let d: string | undefined;
  let dTags = 0;
  const kinds: number[] = [];
  const prices: Record<string, PriceEntry> = {};
  const terms: Record<string, string> = {};
  const models: string[] = [];
  let capacity: number | undefined;
  let isolation: Isolation | undefined;
  let region: string | undefined;
  const priceTags: string[][] = [];
  for (const t of e.tags) {
    switch (t[0]) {
      case 'd': dTags++; d ??= t[1]; break;
      case 'k': {
        const kk = parseUint(t[1]);
        if (kk === undefined || !isJobRequestKind(kk)) return undefined;
        if (!kinds.includes(kk)) kinds.push(kk);
        break;
      }
      case 'price': priceTags.push(t); break;
      case 'terms': if (t[1] && t[2]) terms[t[1]] = t[2]; break;
      case 'model': if (t[1]) models.push(t[1]); break;
      case 'capacity': if (capacity !== undefined || (capacity = parseUint(t[1])) === undefined) return undefined; break;
      case 'isolation': if (!(ISOLATION_LEVELS as readonly string[]).includes(t[1] ?? '')) return undefined; isolation = t[1] as Isolation; break;
      case 'region': region ??= t[1]; break;
    }
  }
  if (dTags !== 1 || d === undefined || !kinds.length) return undefined;
  for (const [, kk, base, per, unit, cap] of priceTags) {
    const kind = parseUint(kk);
    const baseMsats = parseUint(base);
    const perUnitMsats = parseUint(per ?? '0');
    const capMsats = cap === undefined || cap === '' ? undefined : parseUint(cap);
    if (kind === undefined || !kinds.includes(kind) || baseMsats === undefined || perUnitMsats === undefined || (cap !== undefined && cap !== '' && capMsats === undefined)) return undefined;
    prices[String(kind)] = { baseMsats, perUnitMsats, unit: unit || 'job', ...(capMsats !== undefined ? { capMsats } : {}) };
  }
  for (const kk of Object.keys(terms)) if (!kinds.includes(Number(kk))) delete terms[kk];
  let meta: { name?: unknown; about?: unknown } = {};
  if (e.content !== '') {
    try {
      const v = JSON.parse(e.content) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      meta = v as typeof meta;
    } catch {
      return undefined;
    }
  }
  return {
    t: 'announcement', id: e.id, at: e.created_at, provider: e.pubkey, d, kinds: kinds.sort((x, y) => x - y), prices, terms,
    ...(capacity !== undefined ? { capacity } : {}), ...(isolation ? { isolation } : {}), models,
    ...(region ? { region } : {}), ...(typeof meta.name === 'string' && meta.name ? { name: meta.name } : {}), ...(typeof meta.about === 'string' && meta.about ? { about: meta.about } : {}),
  };
}

/** Mint URLs compare without trailing slashes. */
export const normaliseMint = (url: string): string => url.trim().replace(/\/+$/, '');
