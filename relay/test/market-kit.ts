// A scripted market for the index's tests: real keys, real BIP-340 signatures, real BOLT11
// invoices (signed by a node key, preimages hashed into them) built with the dvm-kinds
// builders. Every flow a job can take is one call; `events` keeps the publish order.
import { randomBytes } from 'node:crypto';
import bolt11 from 'bolt11';
import { initNostrWasm } from 'nostr-wasm';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { buildFeedback, type FeedbackStatus } from '@bazaar/dvm-kinds/feedback';
import { buildTextGenRequest, buildTextGenResult } from '@bazaar/dvm-kinds/kinds/text-gen';
import { buildSandboxRunRequest, buildSandboxRunResult } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildHeartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import { buildReceipt } from '@bazaar/dvm-kinds/market/receipt';
import { buildDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildVerdict, type Ruling } from '@bazaar/dvm-kinds/market/verdict';

export interface Key {
  readonly sk: Uint8Array;
  readonly pk: string;
}

// libsecp256k1 (WASM) signs ~20× faster than the pure-JS signer: tests build thousands of events.
const nw = await initNostrWasm();

export const newKey = (): Key => {
  const sk = nw.generateSecretKey();
  return { sk, pk: bytesToHex(nw.getPublicKey(sk)) };
};

export function sign(t: EventTemplate, k: Key): NostrEvent {
  const e = { kind: t.kind, created_at: t.created_at, tags: t.tags.map((x) => [...x]), content: t.content } as NostrEvent;
  nw.finalizeEvent(e, k.sk);
  return e;
}

const REGTEST = { bech32: 'bcrt', pubKeyHash: 111, scriptHash: 196, validWitnessVersions: [0, 1] };

/** A real signed regtest BOLT11 invoice for `msats`, and its preimage. */
export function makeInvoice(msats: number, at: number): { bolt11: string; preimage: string } {
  const preimage = bytesToHex(randomBytes(32));
  const encoded = bolt11.encode({
    network: REGTEST, millisatoshis: String(msats), timestamp: at,
    tags: [{ tagName: 'payment_hash', data: sha256Hex(Buffer.from(preimage, 'hex')) }, { tagName: 'payment_secret', data: bytesToHex(randomBytes(32)) }, { tagName: 'description', data: 'bazaar job' }],
  });
  return { bolt11: bolt11.sign(encoded, bytesToHex(randomBytes(32))).paymentRequest!, preimage };
}

/** How a job goes. */
export type Flow =
  | 'paid' // processing → result with invoice → receipt with the real preimage
  | 'prepaid' // payment-required with invoice → receipt → processing → result
  | 'delivered' // result, never paid
  | 'processing' // accepted, no result yet
  | 'declined' // an error straight away (not accepted)
  | 'failed' // processing → error
  | 'bad-preimage' // receipt with a preimage that does not match
  | 'foreign-invoice' // receipt paying an invoice the provider never issued
  | 'requested'; // nobody answered

export interface JobOptions {
  readonly buyer: Key;
  readonly provider: Key;
  readonly flow: Flow;
  readonly at: number;
  readonly kind?: 5050 | 5930;
  /** Seconds from request to result. */
  readonly latency?: number;
  readonly msats?: number;
  readonly rating?: number;
  /** Name the provider in the request (default true). */
  readonly named?: boolean;
  readonly expiration?: number;
  /** Pays an invoice and returns the preimage (default: the kit knows it; the e2e test pays on the devnet). */
  readonly pay?: (bolt11: string) => Promise<string> | string;
  readonly invoice?: (msats: number, at: number) => Promise<{ bolt11: string; preimage?: string }> | { bolt11: string; preimage?: string };
}

export interface ScriptedJob {
  readonly request: NostrEvent;
  readonly events: NostrEvent[];
  readonly result?: NostrEvent;
  readonly receipt?: NostrEvent;
}

export class MarketScript {
  readonly events: NostrEvent[] = [];

  #push(e: NostrEvent): NostrEvent {
    this.events.push(e);
    return e;
  }

  announce(provider: Key, at: number, o: { kinds?: number[]; name?: string; capacity?: number; isolation?: 'bwrap' | 'container'; base?: number } = {}): NostrEvent {
    const kinds = o.kinds ?? [5050, 5930];
    const t = buildAnnouncement({
      d: 'bazaar-provider', kinds, capacity: o.capacity ?? 4, isolation: o.isolation ?? 'bwrap', name: o.name ?? 'provider', about: 'scripted provider', createdAt: at,
      prices: Object.fromEntries(kinds.map((k) => [k, { baseMsats: o.base ?? 21_000, perUnitMsats: 0, unit: 'job' }])),
    });
    t.tags.push(...kinds.map((k) => ['terms', String(k), 'after-verify']));
    return this.#push(sign(t, provider));
  }

  heartbeat(provider: Key, at: number, o: { active?: number; capacity?: number; ttl?: number } = {}): NostrEvent {
    return this.#push(sign(buildHeartbeat({ active: o.active ?? 0, capacity: o.capacity ?? 4, kinds: [5050, 5930], createdAt: at, ttlSecs: o.ttl ?? 120 }), provider));
  }

  request(buyer: Key, at: number, o: { provider?: Key; kind?: 5050 | 5930; expiration?: number; bid?: number } = {}): NostrEvent {
    const common = { createdAt: at, ...(o.provider ? { providers: [o.provider.pk] } : {}), ...(o.expiration ? { expiration: o.expiration } : {}), bidMsats: o.bid ?? 50_000 };
    const t = (o.kind ?? 5050) === 5930
      ? buildSandboxRunRequest({ params: { cmd: ['echo hi'], time_limit_secs: 30 }, ...common })
      : buildTextGenRequest({ prompt: `job ${bytesToHex(randomBytes(4))}`, ...common });
    return this.#push(sign(t, buyer));
  }

  feedback(provider: Key, request: NostrEvent, status: FeedbackStatus, at: number, amount?: { msats: number; bolt11?: string }): NostrEvent {
    return this.#push(sign(buildFeedback({ request, status, createdAt: at, ...(amount ? { amount } : {}), ...(status === 'error' ? { message: 'cannot' } : {}) }), provider));
  }

  result(provider: Key, request: NostrEvent, at: number, amount?: { msats: number; bolt11?: string }): NostrEvent {
    const common = { createdAt: at, ...(amount ? { amount } : {}) };
    const t = request.kind === 5930
      ? buildSandboxRunResult(request, { commands: [], totals: { exit_code: 0, commands_run: 1, wall_ms: 5, cpu_ms: 2, timed_out: false } }, common)
      : buildTextGenResult(request, 'an answer', common);
    return this.#push(sign(t, provider));
  }

  receipt(buyer: Key, request: NostrEvent, result: NostrEvent, provider: Key, at: number, pay: { msats: number; bolt11: string; preimage: string }, rating?: number): NostrEvent {
    return this.#push(sign(buildReceipt({
      requestId: request.id, resultId: result.id, provider: provider.pk, amountMsats: pay.msats,
      payment: { method: 'lightning', bolt11: pay.bolt11, preimage: pay.preimage }, createdAt: at, ...(rating !== undefined ? { rating } : {}),
    }), buyer));
  }

  dispute(buyer: Key, request: NostrEvent, result: NostrEvent, provider: Key, arbiter: Key, at: number): NostrEvent {
    return this.#push(sign(buildDispute({ requestId: request.id, resultId: result.id, provider: provider.pk, arbiter: arbiter.pk, failedChecks: ['content.exit_code'], evidenceSha256: sha256Hex('evidence'), createdAt: at }), buyer));
  }

  verdict(arbiter: Key, request: NostrEvent, buyer: Key, provider: Key, ruling: Ruling, at: number): NostrEvent {
    return this.#push(sign(buildVerdict({ requestId: request.id, buyer: buyer.pk, provider: provider.pk, ruling, reason: 'replayed', checks: [{ name: 'tests', passed: ruling !== 'buyer' }], createdAt: at }), arbiter));
  }

  /** One whole job following `flow`. */
  async job(o: JobOptions): Promise<ScriptedJob> {
    const at = o.at;
    const lat = o.latency ?? 10;
    const msats = o.msats ?? 21_000;
    const request = this.request(o.buyer, at, { ...(o.named === false ? {} : { provider: o.provider }), ...(o.kind ? { kind: o.kind } : {}), ...(o.expiration ? { expiration: o.expiration } : {}) });
    const events: NostrEvent[] = [request];
    const invoice = async (when: number): Promise<{ bolt11: string; preimage?: string }> => (o.invoice ? o.invoice(msats, when) : makeInvoice(msats, when));
    // The buyer pays only when it publishes a receipt.
    const pay = async (inv: { bolt11: string; preimage?: string }): Promise<{ msats: number; bolt11: string; preimage: string }> =>
      ({ msats, bolt11: inv.bolt11, preimage: o.pay ? await o.pay(inv.bolt11) : inv.preimage! });
    if (o.flow === 'requested') return { request, events };
    if (o.flow === 'declined') return { request, events: [...events, this.feedback(o.provider, request, 'error', at + 1)] };
    if (o.flow === 'prepaid') {
      const inv = await invoice(at + 1);
      events.push(this.feedback(o.provider, request, 'payment-required', at + 1, { msats, bolt11: inv.bolt11 }));
      events.push(this.feedback(o.provider, request, 'processing', at + 2));
      const result = this.result(o.provider, request, at + lat);
      const receipt = this.receipt(o.buyer, request, result, o.provider, at + lat + 1, await pay(inv), o.rating);
      events.push(result, receipt);
      return { request, events, result, receipt };
    }
    events.push(this.feedback(o.provider, request, 'processing', at + 1));
    if (o.flow === 'processing') return { request, events };
    if (o.flow === 'failed') return { request, events: [...events, this.feedback(o.provider, request, 'error', at + lat)] };
    const inv = await invoice(at + lat);
    const result = this.result(o.provider, request, at + lat, { msats, bolt11: inv.bolt11 });
    events.push(result);
    if (o.flow === 'delivered') return { request, events, result };
    let paid: { msats: number; bolt11: string; preimage: string };
    if (o.flow === 'bad-preimage') paid = { msats, bolt11: inv.bolt11, preimage: bytesToHex(randomBytes(32)) };
    else if (o.flow === 'foreign-invoice') paid = { msats, ...makeInvoice(msats, at + lat) };
    else paid = await pay(inv);
    const receipt = this.receipt(o.buyer, request, result, o.provider, at + lat + 1, paid, o.rating);
    events.push(receipt);
    return { request, events, result, receipt };
  }
}
