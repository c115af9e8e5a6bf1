// The Cashu mint's logic, independent of HTTP: keysets (NUT-01/02), swap (NUT-03),
// bolt11 mint and melt quotes (NUT-04/05/08/23), proof state (NUT-07), restore (NUT-09),
// spending conditions (NUT-10/11/14) and DLEQ (NUT-12). Blind-signature primitives come
// from @cashu/cashu-ts; state lives in MintStore (LMDB).
import { EventEmitter } from 'node:events';
import { createHmac, randomBytes } from 'node:crypto';
import { createNewMintKeys, hashToCurve, pointFromHex } from '@cashu/cashu-ts';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import type { LightningBackend } from '../lightning-backend.ts';
import { MintError, MintErrorCode as E, fail } from './errors.ts';
import type { KeysetRecord, MeltQuoteRecord, MintQuoteRecord, MintStore, PendingMelt, SignatureRecord } from './mint-store.ts';
import { blindSign, verifiesUnblinded } from './blind-sign.ts';
import { verifyQuoteSignature } from './quote-signature.ts';
import { verifyTransactionConditions } from './spending-conditions.ts';

export const UNIT = 'sat';
/** Keys for amounts 2^0 … 2^(KEYSET_ORDER-1). */
export const KEYSET_ORDER = 32;
export const MAX_INPUTS = 1000;
export const MAX_OUTPUTS = 1000;
const MAX_SECRET_LENGTH = 1024;
const MAX_WITNESS_LENGTH = 16_384;

export interface Proof {
  amount: number;
  id: string;
  secret: string;
  C: string;
  witness?: string;
}
export interface BlindedMessage {
  amount: number;
  id: string;
  /** Lowercase hex (the storage key). */
  B_: string;
  /** B_ exactly as the client sent it: SIG_ALL signs the request's own strings. */
  raw?: string;
}
export interface BlindSignatureJson {
  amount: number;
  id: string;
  C_: string;
  dleq: { e: string; s: string };
}

interface LoadedKeyset {
  readonly record: KeysetRecord;
  readonly priv: ReadonlyMap<number, Uint8Array>;
  readonly pub: Record<string, string>;
}

export interface MintOptions {
  readonly store: MintStore;
  readonly lightning: LightningBackend;
  readonly inputFeePpk: number;
  readonly logger: Logger;
  /** Mint clock in unix seconds (injectable for locktime and expiry tests). */
  readonly now?: () => number;
  readonly name?: string;
  readonly quoteExpirySecs?: number;
  readonly maxAmount?: number;
  /** Test instrumentation: called at 'melt:reserved' and 'melt:paid' (crash tests kill the process there). */
  readonly onStep?: (step: string) => void;
}

export interface MintEvents {
  mintQuote: [MintQuoteRecord];
  meltQuote: [MeltQuoteRecord];
  proofState: [{ Y: string; state: 'UNSPENT' | 'PENDING' | 'SPENT'; witness: string | null }];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHex = (v: unknown, len: number): v is string => typeof v === 'string' && v.length === len && /^[0-9a-fA-F]+$/.test(v);
const isPow2 = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** (KEYSET_ORDER - 1);
const bad = (detail: string): never => fail(E.generic, detail);

export const proofY = (secret: string): string => hashToCurve(new TextEncoder().encode(secret)).toHex(true);

/** Splits an amount into powers of two, largest first. */
export function splitPow2(amount: number): number[] {
  const out: number[] = [];
  for (let bit = KEYSET_ORDER - 1; bit >= 0; bit--) {
    const v = 2 ** bit;
    if (amount >= v) {
      out.push(v);
      amount -= v;
    }
  }
  return out;
}

export class CashuMint extends EventEmitter<MintEvents> {
  readonly store: MintStore;
  readonly lightning: LightningBackend;
  readonly log: Logger;
  readonly now: () => number;
  readonly name: string;
  readonly quoteExpirySecs: number;
  readonly maxAmount: number;
  readonly pubkey: string;
  private readonly keysets = new Map<string, LoadedKeyset>();
  private readonly shortIds = new Map<string, string>();
  private readonly watchers = new Map<string, () => void>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * B_ of the NUT-08 blank outputs of melts in flight (PENDING): signed only when the melt
   * settles, so until then no other request may use them (11004). Rebuilt on start from the
   * PENDING melt quotes; checked and changed only inside write transactions.
   */
  private readonly pendingOutputs = new Set<string>();
  private readonly onStep: (step: string) => void;
  /** Resolves once melts left PENDING by a crash are settled or released (startMint waits for it). */
  resumed: Promise<void> = Promise.resolve();

  constructor(opts: MintOptions) {
    super();
    this.store = opts.store;
    this.lightning = opts.lightning;
    this.log = opts.logger;
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.name = opts.name ?? 'Bazaar devnet mint';
    this.quoteExpirySecs = opts.quoteExpirySecs ?? 3600;
    this.maxAmount = opts.maxAmount ?? 10_000_000;
    this.onStep = opts.onStep ?? (() => {});
    const seed = this.seed();
    this.pubkey = bytesToHex(createNewMintKeys(1, hmac(seed, 'bazaar-mint/identity')).pubKeys['1']);
    this.loadKeysets(seed, opts.inputFeePpk);
    this.resumeQuotes();
  }

  private seed(): Uint8Array {
    const existing = this.store.meta.get('seed');
    if (typeof existing === 'string') return hexToBytes(existing);
    const seed = randomBytes(64);
    this.store.root.transactionSync(() => {
      if (this.store.meta.get('seed') === undefined) this.store.meta.putSync('seed', bytesToHex(seed));
    });
    return hexToBytes(this.store.meta.get('seed') as string);
  }

  private loadKeysets(seed: Uint8Array, inputFeePpk: number): void {
    const records = [...this.store.keysets.getRange()].map((e) => e.value);
    let active = records.find((r) => r.active && r.unit === UNIT && r.inputFeePpk === inputFeePpk);
    if (!active) {
      // A fee change rotates the keyset (its id commits to the fee); old keysets stay
      // valid for redemption but no longer sign.
      const index = records.length;
      const derived = createNewMintKeys(KEYSET_ORDER, hmac(seed, `bazaar-mint/keyset/${index}`), { input_fee_ppk: inputFeePpk, unit: UNIT });
      active = { id: derived.keysetId, unit: UNIT, index, inputFeePpk, active: true, createdAt: this.now() };
      const rec = active;
      this.store.root.transactionSync(() => {
        for (const r of records) if (r.active) this.store.keysets.putSync(r.id, { ...r, active: false });
        this.store.keysets.putSync(rec.id, rec);
      });
      this.log.info({ keysetId: rec.id, inputFeePpk }, 'new active keyset');
    }
    for (const { value: r } of this.store.keysets.getRange()) {
      const derived = createNewMintKeys(KEYSET_ORDER, hmac(seed, `bazaar-mint/keyset/${r.index}`), { input_fee_ppk: r.inputFeePpk, unit: r.unit });
      if (derived.keysetId !== r.id) throw new Error(`keyset ${r.id} does not re-derive from the mint seed (got ${derived.keysetId})`);
      const priv = new Map<number, Uint8Array>();
      const pub: Record<string, string> = {};
      for (const [amount, key] of Object.entries(derived.privKeys)) priv.set(Number(amount), key);
      for (const [amount, key] of Object.entries(derived.pubKeys)) pub[amount] = bytesToHex(key);
      this.keysets.set(r.id, { record: r, priv, pub });
      this.shortIds.set(r.id.slice(0, 16), r.id);
    }
  }

  activeKeyset(): KeysetRecord {
    for (const k of this.keysets.values()) if (k.record.active) return k.record;
    throw new Error('no active keyset');
  }

  // ---------- NUT-01 / NUT-02 ----------

  keysResponse(id?: string): { keysets: { id: string; unit: string; active: boolean; input_fee_ppk: number; keys: Record<string, string> }[] } {
    const list = id === undefined ? [...this.keysets.values()].filter((k) => k.record.active) : [this.keyset(id)];
    return { keysets: list.map((k) => ({ id: k.record.id, unit: k.record.unit, active: k.record.active, input_fee_ppk: k.record.inputFeePpk, keys: k.pub })) };
  }

  keysetsResponse(): { keysets: { id: string; unit: string; active: boolean; input_fee_ppk: number }[] } {
    return { keysets: [...this.keysets.values()].map((k) => ({ id: k.record.id, unit: k.record.unit, active: k.record.active, input_fee_ppk: k.record.inputFeePpk })) };
  }

  private keyset(id: unknown): LoadedKeyset {
    if (typeof id !== 'string' || id.length > 66) return fail(E.keysetUnknown, 'keyset id must be a string of at most 66 characters');
    const full = this.keysets.get(id) ?? this.keysets.get(this.shortIds.get(id) ?? '');
    if (!full) return fail(E.keysetUnknown, `keyset ${id.slice(0, 66)} is not known`);
    return full;
  }

  // ---------- NUT-06 ----------

  info(): Record<string, unknown> {
    const method = { method: 'bolt11', unit: UNIT, min_amount: 1, max_amount: this.maxAmount };
    return {
      name: this.name,
      pubkey: this.pubkey,
      version: 'bazaar-mint/0.1.0',
      description: this.lightning.paysExpiredInvoices ? 'Bazaar devnet Cashu mint (Lightning side: a FakeWallet, no real payments)' : 'Bazaar devnet Cashu mint (Lightning side: the dev network)',
      time: this.now(),
      nuts: {
        '4': { methods: [{ ...method, options: { description: true } }], disabled: false },
        '5': { methods: [method], disabled: false },
        '7': { supported: true },
        '8': { supported: true },
        '9': { supported: true },
        '10': { supported: true },
        '11': { supported: true },
        '12': { supported: true },
        '14': { supported: true },
        '17': { supported: [{ method: 'bolt11', unit: UNIT, commands: ['bolt11_mint_quote', 'bolt11_melt_quote', 'proof_state'] }] },
        '20': { supported: true },
      },
      contact: [],
    };
  }

  // ---------- input / output validation ----------

  private parseProofs(raw: unknown): Proof[] {
    if (!Array.isArray(raw) || raw.length === 0) return bad('inputs must be a non-empty array of proofs');
    if (raw.length > MAX_INPUTS) fail(E.maxInputsExceeded, `at most ${MAX_INPUTS} inputs per request`);
    return raw.map((p, i) => {
      if (!isObj(p)) return bad(`inputs[${i}] is not an object`);
      if (typeof p.amount !== 'number' || !Number.isSafeInteger(p.amount) || p.amount <= 0) return bad(`inputs[${i}].amount must be a positive integer`);
      if (typeof p.secret !== 'string' || p.secret.length === 0 || p.secret.length > MAX_SECRET_LENGTH) return bad(`inputs[${i}].secret must be a string of 1..${MAX_SECRET_LENGTH} characters`);
      if (!isHex(p.C, 66)) return bad(`inputs[${i}].C must be a 33-byte compressed point in hex`);
      if (typeof p.id !== 'string') return bad(`inputs[${i}].id must be a keyset id`);
      let witness: string | undefined;
      if (p.witness !== undefined && p.witness !== null) {
        witness = typeof p.witness === 'string' ? p.witness : JSON.stringify(p.witness);
        if (witness.length > MAX_WITNESS_LENGTH) bad(`inputs[${i}].witness is too large`);
      }
      return { amount: p.amount, id: p.id, secret: p.secret, C: p.C, ...(witness !== undefined ? { witness } : {}) };
    });
  }

  private parseOutputs(raw: unknown, opts: { allowEmpty?: boolean; blank?: boolean } = {}): BlindedMessage[] {
    if (raw === undefined && opts.allowEmpty) return [];
    if (!Array.isArray(raw) || (raw.length === 0 && !opts.allowEmpty)) return bad('outputs must be a non-empty array of blinded messages');
    if (raw.length > MAX_OUTPUTS) fail(E.maxOutputsExceeded, `at most ${MAX_OUTPUTS} outputs per request`);
    const out = raw.map((o, i) => {
      if (!isObj(o)) return bad(`outputs[${i}] is not an object`);
      if (typeof o.amount !== 'number' || !Number.isSafeInteger(o.amount) || o.amount < 0) return bad(`outputs[${i}].amount must be a non-negative integer`);
      if (!opts.blank && !isPow2(o.amount)) bad(`outputs[${i}].amount ${o.amount} is not a power of two the keyset signs`);
      if (!isHex(o.B_, 66)) return bad(`outputs[${i}].B_ must be a 33-byte compressed point in hex`);
      try {
        pointFromHex(o.B_);
      } catch {
        bad(`outputs[${i}].B_ is not a point on secp256k1`);
      }
      const ks = this.keyset(o.id);
      if (!ks.record.active) fail(E.keysetInactive, `keyset ${ks.record.id} is inactive and cannot sign`);
      if (ks.record.unit !== UNIT) fail(E.unitNotSupported, `unit ${ks.record.unit} is not supported`);
      return { amount: o.amount, id: ks.record.id, B_: o.B_.toLowerCase(), raw: o.B_ };
    });
    if (new Set(out.map((o) => o.B_)).size !== out.length) fail(E.duplicateOutputs, 'duplicate outputs provided');
    this.assertOutputsFresh(out);
    return out;
  }

  /** Verifies every input's mint signature and spending conditions; returns Ys and the input fee. */
  private verifyInputs(inputs: Proof[], outputs: BlindedMessage[], quoteId?: string): { ys: string[]; fee: number; total: number } {
    const ys: string[] = [];
    let feePpk = 0;
    let total = 0;
    for (const [i, p] of inputs.entries()) {
      const ks = this.keyset(p.id);
      if (ks.record.unit !== UNIT) fail(E.unitNotSupported, `unit ${ks.record.unit} is not supported`);
      const k = ks.priv.get(p.amount);
      if (!k) fail(E.proofVerificationFailed, `inputs[${i}].amount ${p.amount} has no key in keyset ${ks.record.id}`);
      let ok = false;
      let Y: string;
      try {
        const Yb = hashToCurve(new TextEncoder().encode(p.secret)).toBytes(true);
        Y = bytesToHex(Yb);
        ok = verifiesUnblinded(Yb, k!, p.C);
      } catch {
        ok = false;
        Y = '';
      }
      if (!ok) fail(E.proofVerificationFailed, `inputs[${i}] signature C does not verify`);
      ys.push(Y);
      feePpk += ks.record.inputFeePpk;
      total += p.amount;
      p.id = ks.record.id;
    }
    if (new Set(ys).size !== ys.length) fail(E.duplicateInputs, 'duplicate inputs provided');
    verifyTransactionConditions(inputs, outputs.map((o) => ({ amount: o.amount, B_: o.raw ?? o.B_ })), this.now(), quoteId);
    return { ys, fee: Math.floor((feePpk + 999) / 1000), total };
  }

  private sign(outputs: readonly BlindedMessage[]): SignatureRecord[] {
    return outputs.map((o) => {
      const ks = this.keysets.get(o.id)!;
      const k = ks.priv.get(o.amount);
      if (!k) return fail(E.generic, `no key for amount ${o.amount}`);
      const sig = blindSign(o.B_, k, hexToBytes(ks.pub[String(o.amount)]));
      return { amount: o.amount, id: o.id, C_: sig.C_, dleq: { e: sig.dleq.e, s: sig.dleq.s } };
    });
  }

  /** Inside a transaction: throws unless every Y is unspent and every B_ unsigned. */
  private assertFresh(ys: readonly string[], outputs: readonly BlindedMessage[]): void {
    for (const y of ys) {
      const rec = this.store.proofs.get(y);
      if (rec?.state === 'SPENT') fail(E.proofsAlreadySpent, 'proofs already spent');
      if (rec?.state === 'PENDING') fail(E.proofsPending, 'proofs are pending');
    }
    this.assertOutputsFresh(outputs);
  }

  private assertOutputsFresh(outputs: readonly BlindedMessage[]): void {
    for (const o of outputs) {
      if (this.store.signatures.get(o.B_)) fail(E.outputsAlreadySigned, 'outputs have already been signed before');
      if (this.pendingOutputs.has(o.B_)) fail(E.outputsPending, 'outputs are pending (blank outputs of a melt in flight)');
    }
  }

  // ---------- NUT-03 swap ----------

  swap(body: unknown): { signatures: BlindSignatureJson[] } {
    if (!isObj(body)) return bad('request body must be a JSON object');
    const inputs = this.parseProofs(body.inputs);
    // No outputs is legal when the inputs only cover their own fee.
    const outputs = this.parseOutputs(body.outputs, { allowEmpty: Array.isArray(body.outputs) });
    const { ys, fee, total } = this.verifyInputs(inputs, outputs);
    const outTotal = outputs.reduce((s, o) => s + o.amount, 0);
    if (total - fee !== outTotal) fail(E.transactionNotBalanced, `inputs (${total}) - fee (${fee}) must equal outputs (${outTotal})`);
    const sigs = this.sign(outputs);
    const now = this.now();
    this.store.root.transactionSync(() => {
      this.assertFresh(ys, outputs);
      inputs.forEach((p, i) => this.store.proofs.putSync(ys[i], { state: 'SPENT', amount: p.amount, keysetId: p.id, witness: p.witness ?? null, at: now }));
      sigs.forEach((s, i) => this.store.signatures.putSync(outputs[i].B_, s));
      this.store.bumpLedger({ spent: total, signed: outTotal, feesCollected: fee });
    });
    inputs.forEach((p, i) => this.emit('proofState', { Y: ys[i], state: 'SPENT', witness: p.witness ?? null }));
    this.log.info({ inputs: inputs.length, outputs: outputs.length, amount: outTotal, fee }, 'swap');
    return { signatures: sigs.map(toJson) };
  }

  // ---------- NUT-07 / NUT-09 ----------

  checkState(body: unknown): { states: { Y: string; state: string; witness: string | null }[] } {
    if (!isObj(body) || !Array.isArray(body.Ys)) return bad('body must be { "Ys": [hex] }');
    if (body.Ys.length > MAX_INPUTS) fail(E.maxInputsExceeded, `at most ${MAX_INPUTS} Ys per request`);
    return {
      states: body.Ys.map((y, i) => {
        if (!isHex(y, 66)) return bad(`Ys[${i}] must be a 33-byte compressed point in hex`);
        const rec = this.store.proofs.get(y.toLowerCase());
        return { Y: y, state: rec?.state ?? 'UNSPENT', witness: rec?.witness ?? null };
      }),
    };
  }

  restore(body: unknown): { outputs: BlindedMessage[]; signatures: BlindSignatureJson[]; promises: BlindSignatureJson[] } {
    if (!isObj(body) || !Array.isArray(body.outputs)) return bad('body must be { "outputs": [BlindedMessage] }');
    if (body.outputs.length > MAX_OUTPUTS) fail(E.maxOutputsExceeded, `at most ${MAX_OUTPUTS} outputs per request`);
    const outputs: BlindedMessage[] = [];
    const signatures: BlindSignatureJson[] = [];
    body.outputs.forEach((o, i) => {
      if (!isObj(o) || !isHex(o.B_, 66)) bad(`outputs[${i}].B_ must be a 33-byte compressed point in hex`);
      const rec = this.store.signatures.get((o as { B_: string }).B_.toLowerCase());
      if (rec) {
        outputs.push({ amount: rec.amount, id: rec.id, B_: (o as { B_: string }).B_ });
        signatures.push(toJson(rec));
      }
    });
    return { outputs, signatures, promises: signatures };
  }

  proofStates(ys: readonly string[]): { Y: string; state: 'UNSPENT' | 'PENDING' | 'SPENT'; witness: string | null }[] {
    return ys.map((y) => {
      const rec = this.store.proofs.get(y.toLowerCase());
      return { Y: y, state: rec?.state ?? 'UNSPENT', witness: rec?.witness ?? null };
    });
  }

  // ---------- NUT-04 mint (bolt11) ----------

  async createMintQuote(body: unknown): Promise<Record<string, unknown>> {
    if (!isObj(body)) return bad('request body must be a JSON object');
    if (body.unit !== UNIT) fail(E.unitNotSupported, `unit ${JSON.stringify(body.unit)} is not supported (only "sat")`);
    const amount = body.amount;
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) return bad('amount must be a positive integer');
    if (amount > this.maxAmount) fail(E.amountOutOfLimits, `amount must be at most ${this.maxAmount}`);
    if (body.description !== undefined && typeof body.description !== 'string') bad('description must be a string');
    const description = typeof body.description === 'string' ? body.description.slice(0, 500) : `${this.name}: mint ${amount} sat`;
    let pubkey: string | undefined;
    if (body.pubkey !== undefined && body.pubkey !== null) {
      if (typeof body.pubkey !== 'string' || !/^0[23][0-9a-fA-F]{64}$/.test(body.pubkey)) return fail(E.quotePubkeyInvalid, 'pubkey must be a 33-byte compressed public key in hex');
      try {
        pointFromHex(body.pubkey);
      } catch {
        return fail(E.quotePubkeyInvalid, 'pubkey is not a point on secp256k1');
      }
      pubkey = body.pubkey.toLowerCase();
    }
    const inv = await this.lightning.createInvoice({ amountMsat: amount * 1000, description, expirySecs: this.quoteExpirySecs });
    const q: MintQuoteRecord = {
      quote: randomBytes(16).toString('hex'),
      request: inv.bolt11,
      paymentHash: inv.paymentHash,
      amount,
      unit: UNIT,
      state: 'UNPAID',
      expiry: inv.expiresAt,
      createdAt: this.now(),
      ...(pubkey ? { pubkey } : {}),
    };
    this.store.mintQuotes.putSync(q.quote, q);
    this.watchInvoice(q);
    this.log.info({ quote: q.quote, amount }, 'mint quote created');
    return mintQuoteJson(q);
  }

  private watchInvoice(q: MintQuoteRecord): void {
    const stop = this.lightning.onInvoicePaid(q.paymentHash, () => {
      this.watchers.delete(q.quote);
      this.markMintQuotePaid(q.quote);
    });
    this.watchers.set(q.quote, stop);
  }

  private markMintQuotePaid(id: string, lnIn = true): void {
    let updated: MintQuoteRecord | undefined;
    this.store.root.transactionSync(() => {
      const cur = this.store.mintQuotes.get(id);
      if (!cur || cur.state !== 'UNPAID') return;
      updated = { ...cur, state: 'PAID', updatedAt: this.now(), ...(lnIn ? {} : { internal: true }) };
      this.store.mintQuotes.putSync(id, updated);
      if (lnIn) this.store.bumpLedger({ lnIn: cur.amount });
    });
    if (updated) {
      this.log.info({ quote: id, amount: updated.amount, internal: !lnIn }, 'mint quote paid');
      this.emit('mintQuote', updated);
    }
  }

  async getMintQuote(id: string): Promise<Record<string, unknown>> {
    let q = this.store.mintQuotes.get(id);
    if (!q) return bad(`mint quote ${id.slice(0, 80)} not found`);
    if (q.state === 'UNPAID' && (await this.lightning.invoiceState(q.paymentHash)) === 'paid') {
      this.markMintQuotePaid(id);
      q = this.store.mintQuotes.get(id)!;
    }
    return mintQuoteJson(q);
  }

  async mintTokens(body: unknown): Promise<{ signatures: BlindSignatureJson[] }> {
    if (!isObj(body) || typeof body.quote !== 'string') return bad('body must be { "quote": string, "outputs": [BlindedMessage] }');
    const quoteId = body.quote;
    const outputs = this.parseOutputs(body.outputs);
    let q = this.store.mintQuotes.get(quoteId);
    if (!q) return bad(`mint quote ${quoteId.slice(0, 80)} not found`);
    if (q.state === 'UNPAID' && (await this.lightning.invoiceState(q.paymentHash)) === 'paid') {
      this.markMintQuotePaid(quoteId);
      q = this.store.mintQuotes.get(quoteId)!;
    }
    if (q.state === 'ISSUED') fail(E.quoteAlreadyIssued, 'quote has already been issued');
    if (q.state === 'UNPAID') fail(q.expiry <= this.now() ? E.quoteExpired : E.quoteNotPaid, q.expiry <= this.now() ? 'quote is expired' : 'quote request is not paid');
    const total = outputs.reduce((s, o) => s + o.amount, 0);
    if (total !== q.amount) fail(E.transactionNotBalanced, `outputs (${total}) must equal the quote amount (${q.amount})`);
    if (q.pubkey && !verifyQuoteSignature(q.pubkey, quoteId, outputs.map((o) => ({ amount: o.amount, B_: o.raw ?? o.B_ })), body.signature)) {
      fail(E.quoteSignatureInvalid, 'this quote is locked to a pubkey: a valid signature on the mint request is required (NUT-20)');
    }
    const sigs = this.sign(outputs);
    let issued: MintQuoteRecord | undefined;
    this.store.root.transactionSync(() => {
      const cur = this.store.mintQuotes.get(quoteId)!;
      if (cur.state === 'ISSUED') fail(E.quoteAlreadyIssued, 'quote has already been issued');
      if (cur.state !== 'PAID') fail(E.quoteNotPaid, 'quote request is not paid');
      this.assertFresh([], outputs);
      sigs.forEach((s, i) => this.store.signatures.putSync(outputs[i].B_, s));
      issued = { ...cur, state: 'ISSUED', updatedAt: this.now() };
      this.store.mintQuotes.putSync(quoteId, issued);
      this.store.bumpLedger({ signed: total });
    });
    this.emit('mintQuote', issued!);
    this.log.info({ quote: quoteId, amount: total }, 'minted');
    return { signatures: sigs.map(toJson) };
  }

  // ---------- NUT-05 melt (bolt11) ----------

  createMeltQuote(body: unknown): Record<string, unknown> {
    if (!isObj(body)) return bad('request body must be a JSON object');
    if (body.unit !== UNIT) fail(E.unitNotSupported, `unit ${JSON.stringify(body.unit)} is not supported (only "sat")`);
    if (typeof body.request !== 'string' || body.request.length > 4000) return bad('request must be a bolt11 invoice');
    const request = body.request.trim();
    let inv: { amountMsat: number; paymentHash: string; expiresAt: number };
    try {
      inv = this.lightning.decode(request);
    } catch (err) {
      return bad(`invalid bolt11 invoice: ${(err as Error).message}`);
    }
    if (!inv.amountMsat) fail(E.amountlessInvoice, 'amountless invoices are not supported');
    // A real Lightning backend cannot pay an expired invoice; a FakeWallet pays anything.
    const expired = inv.expiresAt <= this.now();
    if (expired && !this.lightning.paysExpiredInvoices) fail(E.quoteExpired, 'invoice is expired');
    const amount = Math.ceil(inv.amountMsat / 1000);
    if (amount > this.maxAmount) fail(E.amountOutOfLimits, `amount must be at most ${this.maxAmount}`);
    const internal = [...this.store.mintQuotes.getRange()].find((e) => e.value.paymentHash === inv.paymentHash)?.value;
    if (internal && internal.state !== 'UNPAID') fail(E.invoiceAlreadyPaid, 'invoice already paid');
    for (const { value: m } of this.store.meltQuotes.getRange()) {
      if (m.paymentHash === inv.paymentHash && m.state === 'PAID') fail(E.invoiceAlreadyPaid, 'invoice already paid (by an earlier melt)');
    }
    const feeReserve = internal ? 0 : Math.ceil(this.lightning.feeReserveMsat(inv.amountMsat) / 1000);
    const q: MeltQuoteRecord = {
      quote: randomBytes(16).toString('hex'),
      request,
      paymentHash: inv.paymentHash,
      amount,
      unit: UNIT,
      feeReserve,
      state: 'UNPAID',
      expiry: expired ? this.now() + this.quoteExpirySecs : Math.min(inv.expiresAt, this.now() + this.quoteExpirySecs),
      createdAt: this.now(),
      paymentPreimage: null,
      ...(internal ? { internalMintQuote: internal.quote } : {}),
    };
    this.store.meltQuotes.putSync(q.quote, q);
    this.log.info({ quote: q.quote, amount, feeReserve, internal: Boolean(internal) }, 'melt quote created');
    return meltQuoteJson(q);
  }

  getMeltQuote(id: string): Record<string, unknown> {
    const q = this.store.meltQuotes.get(id);
    if (!q) return bad(`melt quote ${id.slice(0, 80)} not found`);
    return meltQuoteJson(q);
  }

  async melt(body: unknown): Promise<Record<string, unknown>> {
    if (!isObj(body) || typeof body.quote !== 'string') return bad('body must be { "quote": string, "inputs": [Proof], "outputs"?: [BlindedMessage] }');
    const quoteId = body.quote;
    const q = this.store.meltQuotes.get(quoteId);
    if (!q) return bad(`melt quote ${quoteId.slice(0, 80)} not found`);
    if (q.state === 'PAID') fail(E.invoiceAlreadyPaid, 'invoice already paid');
    if (q.state === 'PENDING') fail(E.quotePending, 'quote is pending');
    if (q.expiry <= this.now()) fail(E.quoteExpired, 'quote is expired');
    const inputs = this.parseProofs(body.inputs);
    const blanks = this.parseOutputs(body.outputs, { allowEmpty: true, blank: true });
    const { ys, fee, total } = this.verifyInputs(inputs, blanks, quoteId);
    const needed = q.amount + q.feeReserve + fee;
    if (total < needed) fail(E.transactionNotBalanced, `inputs (${total}) must cover amount (${q.amount}) + fee reserve (${q.feeReserve}) + input fee (${fee})`);
    const now = this.now();
    const pending: PendingMelt = {
      ys,
      inputs: inputs.map((p) => ({ amount: p.amount, keysetId: p.id, witness: p.witness ?? null })),
      total,
      inputFee: fee,
      blanks,
    };
    // Reserve: inputs PENDING and the quote PENDING (with what settling needs), atomically,
    // before any payment.
    this.store.root.transactionSync(() => {
      const cur = this.store.meltQuotes.get(quoteId)!;
      if (cur.state !== 'UNPAID') fail(cur.state === 'PAID' ? E.invoiceAlreadyPaid : E.quotePending, cur.state === 'PAID' ? 'invoice already paid' : 'quote is pending');
      this.assertFresh(ys, blanks);
      inputs.forEach((p, i) => this.store.proofs.putSync(ys[i], { state: 'PENDING', amount: p.amount, keysetId: p.id, witness: p.witness ?? null, quote: quoteId, at: now }));
      this.store.meltQuotes.putSync(quoteId, { ...cur, state: 'PENDING', pending });
    });
    for (const b of blanks) this.pendingOutputs.add(b.B_);
    ys.forEach((y, i) => this.emit('proofState', { Y: y, state: 'PENDING', witness: inputs[i].witness ?? null }));
    this.emit('meltQuote', this.store.meltQuotes.get(quoteId)!);
    const settle = this.payMelt(quoteId);
    this.inFlight.add(settle);
    try {
      return await settle;
    } finally {
      this.inFlight.delete(settle);
    }
  }

  private async payMelt(quoteId: string): Promise<Record<string, unknown>> {
    const q = this.store.meltQuotes.get(quoteId)!;
    this.onStep('melt:reserved');
    if (q.internalMintQuote) {
      const mq = this.store.mintQuotes.get(q.internalMintQuote);
      if (!mq || mq.state !== 'UNPAID') {
        this.releaseMelt(quoteId);
        return fail(E.invoiceAlreadyPaid, 'invoice already paid');
      }
      return this.finishMelt(quoteId, null, 0);
    }
    let res;
    try {
      res = await this.lightning.pay(q.request, { maxFeeMsat: q.feeReserve * 1000, signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      this.releaseMelt(quoteId);
      this.log.warn({ quote: quoteId, err: (err as Error).message }, 'melt payment failed');
      return fail(E.lightningPaymentFailed, `Lightning payment failed: ${(err as Error).message}`);
    }
    this.onStep('melt:paid');
    return this.finishMelt(quoteId, res.preimage, Math.ceil(res.feeMsat / 1000));
  }

  /** The payment happened: inputs SPENT, quote PAID, NUT-08 change on the blank outputs. */
  private finishMelt(quoteId: string, preimage: string | null, lnFeeSat: number): Record<string, unknown> {
    const q = this.store.meltQuotes.get(quoteId)!;
    const pm = q.pending!;
    const overpaid = pm.total - pm.inputFee - q.amount - lnFeeSat;
    const amounts = splitPow2(Math.max(0, overpaid)).slice(0, pm.blanks.length);
    const changeOutputs = amounts.map((amount, i) => ({ ...pm.blanks[i], amount }));
    const change = this.sign(changeOutputs);
    const changeTotal = amounts.reduce((s, a) => s + a, 0);
    const now = this.now();
    let paid: MeltQuoteRecord | undefined;
    this.store.root.transactionSync(() => {
      const cur = this.store.meltQuotes.get(quoteId)!;
      if (cur.state !== 'PENDING') fail(E.generic, `melt ${quoteId} is ${cur.state}, not PENDING`);
      pm.ys.forEach((y, i) => this.store.proofs.putSync(y, { state: 'SPENT', amount: pm.inputs[i].amount, keysetId: pm.inputs[i].keysetId, witness: pm.inputs[i].witness, at: now }));
      change.forEach((s, i) => this.store.signatures.putSync(changeOutputs[i].B_, s));
      const { pending: _done, ...rest } = cur;
      paid = { ...rest, state: 'PAID', paymentPreimage: preimage, feePaid: lnFeeSat, change };
      this.store.meltQuotes.putSync(quoteId, paid);
      this.store.bumpLedger({
        spent: pm.total,
        signed: changeTotal,
        feesCollected: pm.total - q.amount - lnFeeSat - changeTotal,
        ...(q.internalMintQuote ? {} : { lnOut: q.amount + lnFeeSat }),
      });
    });
    for (const b of pm.blanks) this.pendingOutputs.delete(b.B_);
    if (q.internalMintQuote) this.markMintQuotePaid(q.internalMintQuote, false);
    pm.ys.forEach((y, i) => this.emit('proofState', { Y: y, state: 'SPENT', witness: pm.inputs[i].witness }));
    this.emit('meltQuote', paid!);
    this.log.info({ quote: quoteId, amount: q.amount, lnFeeSat, change: changeTotal, internal: Boolean(q.internalMintQuote) }, 'melt paid');
    return meltQuoteJson(paid!);
  }

  private releaseMelt(quoteId: string): void {
    const pending = this.store.meltQuotes.get(quoteId)?.pending;
    const ys = pending?.ys ?? [];
    this.store.root.transactionSync(() => {
      for (const y of ys) if (this.store.proofs.get(y)?.state === 'PENDING') this.store.proofs.removeSync(y);
      const cur = this.store.meltQuotes.get(quoteId);
      if (cur?.state === 'PENDING') {
        const { pending: _released, ...rest } = cur;
        this.store.meltQuotes.putSync(quoteId, { ...rest, state: 'UNPAID' });
      }
    });
    for (const b of pending?.blanks ?? []) this.pendingOutputs.delete(b.B_);
    for (const y of ys) this.emit('proofState', { Y: y, state: 'UNSPENT', witness: null });
    const q = this.store.meltQuotes.get(quoteId);
    if (q) this.emit('meltQuote', q);
  }

  /** After a restart: re-watch unpaid mint quotes; settle or release melts left PENDING by a crash. */
  private resumeQuotes(): void {
    const now = this.now();
    for (const { value: q } of this.store.mintQuotes.getRange()) {
      if (q.state === 'UNPAID' && q.expiry > now) this.watchInvoice(q);
    }
    const resolving: Promise<void>[] = [];
    for (const { value: q } of this.store.meltQuotes.getRange()) {
      if (q.state !== 'PENDING') continue;
      for (const b of q.pending?.blanks ?? []) this.pendingOutputs.add(b.B_);
      resolving.push(
        withTimeout(this.resolvePendingMelt(q), 15_000, 'backend did not answer').catch((err: unknown) =>
          this.log.warn({ quote: q.quote, err: (err as Error).message }, 'cannot resolve pending melt; inputs stay reserved'),
        ),
      );
    }
    this.resumed = Promise.all(resolving).then(() => undefined);
  }

  /**
   * A melt left PENDING by a crash: ask the backend whether our payment of the invoice
   * happened. Paid → finish it (change included; the routing fee is unknown and counted as
   * 0, exact on the dev network); not paid → release the inputs; unknown → keep them
   * reserved (never risk paying twice or un-spending paid inputs).
   */
  private async resolvePendingMelt(q: MeltQuoteRecord): Promise<void> {
    if (!q.pending) {
      this.log.warn({ quote: q.quote }, 'pending melt without settlement data; inputs stay reserved');
      return;
    }
    if (q.internalMintQuote) {
      const mq = this.store.mintQuotes.get(q.internalMintQuote);
      if (mq?.state === 'UNPAID') this.finishMelt(q.quote, null, 0);
      else this.releaseMelt(q.quote);
      return;
    }
    const state = await this.lightning.invoiceState(q.paymentHash);
    if (state === 'paid') {
      this.finishMelt(q.quote, null, 0);
      this.log.warn({ quote: q.quote }, 'melt left pending by a crash had been paid; settled');
    } else {
      this.releaseMelt(q.quote);
      this.log.warn({ quote: q.quote, state }, 'melt left pending by a crash was not paid; inputs released');
    }
  }

  async close(): Promise<void> {
    for (const stop of this.watchers.values()) stop();
    this.watchers.clear();
    await Promise.allSettled([...this.inFlight]);
    this.removeAllListeners();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function hmac(seed: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', seed).update(label).digest());
}

function toJson(s: SignatureRecord): BlindSignatureJson {
  return { amount: s.amount, id: s.id, C_: s.C_, dleq: { e: s.dleq.e, s: s.dleq.s } };
}

export function mintQuoteJson(q: MintQuoteRecord): Record<string, unknown> {
  return {
    quote: q.quote,
    request: q.request,
    amount: q.amount,
    unit: q.unit,
    state: q.state,
    expiry: q.expiry,
    paid: q.state !== 'UNPAID',
    amount_paid: q.state === 'UNPAID' ? 0 : q.amount,
    amount_issued: q.state === 'ISSUED' ? q.amount : 0,
    updated_at: q.updatedAt ?? q.createdAt,
    pubkey: q.pubkey ?? null,
  };
}

export function meltQuoteJson(q: MeltQuoteRecord): Record<string, unknown> {
  return {
    quote: q.quote,
    request: q.request,
    amount: q.amount,
    unit: q.unit,
    fee_reserve: q.feeReserve,
    state: q.state,
    expiry: q.expiry,
    paid: q.state === 'PAID',
    payment_preimage: q.paymentPreimage ?? null,
    ...(q.change && q.change.length ? { change: q.change.map(toJson) } : {}),
  };
}

export { MintError };
