// The Cashu side of an agent's wallet, over @cashu/cashu-ts v4, with every proof kept in
// LMDB. The "couch" pattern: before any mint call that could lose value (swap, melt,
// mint), the inputs are marked reserved and the blinded outputs (secrets and blinding
// factors) are written durably, in one transaction. A crash at any point is repaired by
// reconcile(): inputs still unspent go back to the purse; inputs spent by the call get
// their outputs back through NUT-09 restore with the stored blinded messages.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  Amount,
  Mint,
  MintOperationError,
  OutputData,
  SigAll,
  Wallet,
  getEncodedToken,
  hasValidDleq,
  hashToCurve,
  injectWebSocketImpl,
  signP2PKProofs,
  type SigAllSigningPackage,
  type MeltQuoteBolt11Response,
  type OutputDataLike,
  type OutputType,
  type CounterRange,
  type CounterSource,
  type P2PKOptions,
  type Proof,
  type SerializedBlindedSignature,
  type SwapPreview,
} from '@cashu/cashu-ts';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '../lmdb.ts';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { timedRequest } from './cashu-request.ts';
import { decodeInvoice } from './lightning.ts';
import { SpendingLimitError, type SpendingLedger } from './spending.ts';

export const CASHU_STORE_VERSION = 1;
export const DEFAULT_TIMEOUT_MS = 15_000;

let webSocketReady = false;
/**
 * cashu-ts needs a WebSocket for NUT-17 subscriptions and Node 20 has none. Given to it the
 * first time a wallet waits on a subscription — not at import, and only when the runtime
 * has no WebSocket of its own (cashu-ts keeps one implementation for the process).
 */
function ensureWebSocket(): void {
  if (webSocketReady) return;
  webSocketReady = true;
  if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) injectWebSocketImpl(WebSocket as unknown as Parameters<typeof injectWebSocketImpl>[0]);
}

/** A proof as stored and as sent on the wire (amount as a plain number). */
export interface ProofJson {
  id: string;
  amount: number;
  secret: string;
  C: string;
  dleq?: { e: string; s: string; r?: string };
  witness?: string;
}

export type ProofState = 'ready' | 'reserved' | 'sent';
export interface StoredProof {
  readonly proof: ProofJson;
  readonly state: ProofState;
  /** Operation holding a reserved proof. */
  readonly op?: string;
  /** Free-form label: 'escrow:<id>' for locked sends. */
  readonly tag?: string;
  readonly at: number;
}

interface StoredOutput {
  blindedMessage: { amount: number; B_: string; id: string };
  blindingFactor: string;
  secret: string;
  /** Where the resulting proof goes: back to the purse, or out as a send. */
  role: 'keep' | 'send';
}

export type OperationKind = 'swap' | 'melt' | 'mint' | 'claim';
export interface Operation {
  readonly id: string;
  readonly kind: OperationKind;
  /** Inputs handed to the mint; for claims they are not ours until redeemed. */
  readonly inputs: ProofJson[];
  readonly outputs: StoredOutput[];
  readonly keysetId: string;
  readonly quote?: string;
  readonly amount?: number;
  readonly fees?: number;
  readonly tag?: string;
  /** A receive: if the mint never saw it, reconcile completes it instead of releasing. */
  readonly receive?: boolean;
  readonly createdAt: number;
}

export interface CashuWalletOptions {
  readonly mintUrl: string;
  /** Directory for this wallet's LMDB (created if missing). */
  readonly dataDir: string;
  readonly logger: Logger;
  /** Wallet clock in unix seconds (injectable for locktime logic). */
  readonly now?: () => number;
  /**
   * BIP39 seed (64 bytes). With it, outputs are deterministic (NUT-13, counters kept in
   * LMDB) and restoreFromSeed() can rebuild the purse from the mint after losing the store.
   */
  readonly seed?: Uint8Array;
  /**
   * Test instrumentation: called after each durable step, named like 'swap:persisted'
   * (outputs written, mint not yet called) or 'swap:answered' (mint answered, not yet
   * committed locally). The crash tests kill the process from here.
   */
  readonly onStep?: (step: string) => void;
  /** Spending limits every send and melt is reserved against before the mint is called (see spending.ts). */
  readonly spending?: SpendingLedger;
  /** Deadline of each HTTP call to the mint (default 15 s). */
  readonly requestTimeoutMs?: number;
}

export interface ReconcileReport {
  readonly restored: number;
  readonly released: number;
  readonly pending: number;
}

export class CashuWalletError extends Error {
  override name = 'CashuWalletError';
  /** The mint's NUT error code, when the mint refused. */
  readonly code?: number;
  /** OVER_LIMIT: a spending limit refused the operation before the mint was called; INSUFFICIENT_FUNDS: the purse holds too little (nothing was sent to the mint). */
  readonly reason?: 'OVER_LIMIT' | 'INSUFFICIENT_FUNDS';
  constructor(message: string, code?: number, reason?: 'OVER_LIMIT' | 'INSUFFICIENT_FUNDS') {
    super(message);
    this.code = code;
    if (reason) this.reason = reason;
  }
}

export const toProofJson = (p: Proof | ProofJson): ProofJson => ({
  id: p.id,
  amount: typeof p.amount === 'number' ? p.amount : (p.amount as Amount).toNumber(),
  secret: p.secret,
  C: p.C,
  ...(p.dleq ? { dleq: { e: p.dleq.e, s: p.dleq.s, ...(p.dleq.r ? { r: p.dleq.r } : {}) } } : {}),
  ...(p.witness ? { witness: typeof p.witness === 'string' ? p.witness : JSON.stringify(p.witness) } : {}),
});

export const fromProofJson = (p: ProofJson): Proof => ({ ...p, amount: Amount.from(p.amount) }) as unknown as Proof;

export const sumJson = (ps: readonly ProofJson[]): number => ps.reduce((s, p) => s + p.amount, 0);

/**
 * Proofs that cover `amount` plus their own input fee, or undefined when all of them do not:
 * the smallest single proof that covers it, else the largest first until covered.
 */
export function coverWithFees(proofs: readonly ProofJson[], amount: number, feeOf: (ps: readonly ProofJson[]) => number): ProofJson[] | undefined {
  const asc = [...proofs].sort((a, b) => a.amount - b.amount);
  const single = asc.find((p) => p.amount >= amount + feeOf([p]));
  if (single) return [single];
  const chosen: ProofJson[] = [];
  for (const p of asc.reverse()) {
    chosen.push(p);
    if (sumJson(chosen) >= amount + feeOf(chosen)) return chosen;
  }
  return undefined;
}

export const proofY = (secret: string): string => hashToCurve(new TextEncoder().encode(secret)).toHex(true);

function serializeOutput(o: OutputDataLike, role: 'keep' | 'send'): StoredOutput {
  return {
    blindedMessage: { amount: Number(o.blindedMessage.amount), B_: o.blindedMessage.B_, id: o.blindedMessage.id },
    blindingFactor: o.blindingFactor.toString(16),
    secret: bytesToHex(o.secret),
    role,
  };
}

function deserializeOutput(o: StoredOutput): OutputData {
  return new OutputData({ amount: Amount.from(o.blindedMessage.amount), B_: o.blindedMessage.B_, id: o.blindedMessage.id } as never, BigInt('0x' + o.blindingFactor), hexToBytes(o.secret));
}

/** NUT-13 counters in LMDB: a counter is durably reserved before its outputs reach the mint. */
function lmdbCounterSource(root: RootDatabase, db: Database<number, string>): CounterSource {
  const get = (k: string): number => db.get(k) ?? 0;
  return {
    async reserve(keysetId: string, n: number): Promise<CounterRange> {
      return root.transactionSync(() => {
        const start = get(keysetId);
        db.putSync(keysetId, start + n);
        return { start, count: n };
      });
    },
    async advanceToAtLeast(keysetId: string, minNext: number): Promise<void> {
      root.transactionSync(() => {
        if (get(keysetId) < minNext) db.putSync(keysetId, minNext);
      });
    },
    async snapshot(): Promise<Record<string, number>> {
      return Object.fromEntries([...db.getRange()].map((e) => [e.key, e.value]));
    },
    async setNext(keysetId: string, next: number): Promise<void> {
      db.putSync(keysetId, next);
    },
  };
}

export class CashuWallet {
  readonly mintUrl: string;
  /** cashu-ts's wallet: an implementation detail, never handed out. */
  private readonly ts: Wallet;
  private readonly root: RootDatabase;
  private readonly proofsDb: Database<StoredProof, string>;
  private readonly ops: Database<Operation, string>;
  private readonly log: Logger;
  readonly now: () => number;
  private readonly onStep: (step: string) => void;
  private readonly spending: SpendingLedger | undefined;

  private constructor(opts: CashuWalletOptions, wallet: Wallet, root: RootDatabase) {
    this.mintUrl = opts.mintUrl.replace(/\/+$/, '');
    this.ts = wallet;
    this.root = root;
    this.proofsDb = root.openDB({ name: 'proofs' });
    this.ops = root.openDB({ name: 'ops' });
    this.log = opts.logger;
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.onStep = opts.onStep ?? (() => {});
    this.spending = opts.spending;
  }

  /** Reserves a spend against the limits; a limit breach is a CashuWalletError with code OVER_LIMIT, before any mint call. */
  private reserveSpend(key: string, amountSat: number, jobId?: string): boolean {
    if (!this.spending) return false;
    try {
      return this.spending.reserve({ key, amountMsat: amountSat * 1000, rail: 'cashu', ...(jobId !== undefined ? { jobId } : {}) }).created;
    } catch (err) {
      if (err instanceof SpendingLimitError) throw new CashuWalletError(err.message, undefined, 'OVER_LIMIT');
      throw err;
    }
  }

  /** Opens the store, loads the mint's keysets and repairs anything a crash left behind. */
  static async open(opts: CashuWalletOptions): Promise<CashuWallet> {
    mkdirSync(opts.dataDir, { recursive: true });
    const root = openLmdb({ path: join(opts.dataDir, 'cashu.lmdb'), maxDbs: 8 });
    const meta = root.openDB<unknown, string>({ name: 'meta' });
    const version = meta.get('version');
    if (version === undefined) {
      root.transactionSync(() => {
        meta.putSync('version', CASHU_STORE_VERSION);
      });
    } else if (version !== CASHU_STORE_VERSION) {
      await root.close();
      throw new CashuWalletError(`cashu wallet store ${opts.dataDir} has version ${String(version)}, this build reads ${CASHU_STORE_VERSION}`);
    }
    const counters = root.openDB<number, string>({ name: 'counters' });
    const mint = new Mint(opts.mintUrl, { customRequest: timedRequest(opts.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS) });
    const wallet = new Wallet(mint, { unit: 'sat', ...(opts.seed ? { bip39seed: opts.seed, counterSource: lmdbCounterSource(root, counters) } : {}) });
    try {
      await wallet.loadMint();
    } catch (err) {
      await root.close();
      throw new CashuWalletError(`cannot reach mint ${opts.mintUrl}: ${(err as Error).message}`);
    }
    const w = new CashuWallet(opts, wallet, root);
    await w.reconcile();
    return w;
  }

  // ---------- purse ----------

  list(state: ProofState = 'ready', tag?: string): ProofJson[] {
    const out: ProofJson[] = [];
    for (const { value } of this.proofsDb.getRange()) if (value.state === state && (tag === undefined || value.tag === tag)) out.push(value.proof);
    return out;
  }

  /** Spendable sats. */
  balance(): number {
    return sumJson(this.list('ready'));
  }

  /** Everything the wallet accounts for: ready, reserved by an operation, and sent but not known spent. */
  totals(): { ready: number; reserved: number; sent: number } {
    return { ready: sumJson(this.list('ready')), reserved: sumJson(this.list('reserved')), sent: sumJson(this.list('sent')) };
  }

  fee(proofs: readonly ProofJson[]): number {
    return this.ts.getFeesForProofs(proofs.map(fromProofJson)).toNumber();
  }

  /** The input fee (NUT-02 `input_fee_ppk`) of the keyset new outputs are made in. */
  inputFeePpk(): number {
    return this.ts.getKeyset().fee;
  }

  /** Decodes a cashuA/cashuB token without trusting it; throws CashuWalletError on garbage. */
  decodeToken(token: string): { mint: string; unit?: string; proofs: ProofJson[] } {
    let decoded;
    try {
      decoded = this.ts.decodeToken(token.trim());
    } catch (err) {
      throw new CashuWalletError(`not a valid Cashu token: ${(err as Error).message}`);
    }
    return { mint: decoded.mint.replace(/\/+$/, ''), ...(decoded.unit ? { unit: decoded.unit } : {}), proofs: decoded.proofs.map(toProofJson) };
  }

  /** True when the proof carries a NUT-12 DLEQ proof that checks out against its keyset (the mint really signed it). */
  verifyDleq(proof: ProofJson): boolean {
    if (!proof.dleq) return false;
    try {
      return hasValidDleq(fromProofJson(proof), this.ts.getKeyset(proof.id));
    } catch {
      return false;
    }
  }

  /**
   * Chooses ready proofs and claims them in memory until `release` is called, so concurrent
   * operations of this process never pick the same proofs (the durable reservation follows
   * in persist()).
   */
  private select(amount: number, includeFees: boolean): { chosen: ProofJson[]; release: () => void } {
    const ready = this.list('ready').filter((p) => !this.claimed.has(p.secret));
    const { send } = this.ts.selectProofsToSend(ready.map(fromProofJson), amount, includeFees);
    let chosen = send.map(toProofJson);
    const feeOf = (ps: readonly ProofJson[]) => (includeFees ? this.fee(ps) : 0);
    // cashu-ts 4.8's selector can come back empty when fees make the exact denomination fall
    // short (2 sat + fee from 16+8+4+2 yields nothing, though the 4 covers it): fall back to a
    // plain cover before calling the purse insufficient.
    if (sumJson(chosen) < amount + feeOf(chosen)) chosen = coverWithFees(ready, amount, feeOf) ?? chosen;
    const needed = amount + feeOf(chosen);
    if (sumJson(chosen) < needed) throw new CashuWalletError(`insufficient ecash: need ${needed} sat, have ${sumJson(ready)} sat ready and unclaimed`, undefined, 'INSUFFICIENT_FUNDS');
    for (const p of chosen) this.claimed.add(p.secret);
    return { chosen, release: () => chosen.forEach((p) => this.claimed.delete(p.secret)) };
  }

  private readonly claimed = new Set<string>();

  // ---------- the couch: persist, call, commit ----------

  private persist(op: Operation, reserve: readonly ProofJson[]): void {
    const at = this.now();
    this.root.transactionSync(() => {
      for (const p of reserve) {
        const cur = this.proofsDb.get(p.secret);
        if (cur && cur.state !== 'ready') throw new CashuWalletError('proof is already reserved by another operation');
        this.proofsDb.putSync(p.secret, { proof: p, state: 'reserved', op: op.id, at });
      }
      this.ops.putSync(op.id, op);
    });
  }

  /** Commits an answered operation: inputs leave, new proofs land, the op record goes. */
  private commit(op: Operation, produced: { proof: ProofJson; role: 'keep' | 'send' }[], spentInputs = true): void {
    const at = this.now();
    this.root.transactionSync(() => {
      if (spentInputs) for (const p of op.inputs) this.proofsDb.removeSync(p.secret);
      for (const { proof, role } of produced) {
        this.proofsDb.putSync(proof.secret, { proof, state: role === 'keep' ? 'ready' : 'sent', ...(op.tag && role === 'send' ? { tag: op.tag } : {}), at });
      }
      this.ops.removeSync(op.id);
    });
  }

  /** Definite failure (the mint refused): reserved inputs return to the purse. */
  private release(op: Operation): void {
    const at = this.now();
    this.root.transactionSync(() => {
      for (const p of op.inputs) {
        const cur = this.proofsDb.get(p.secret);
        if (cur?.op === op.id) this.proofsDb.putSync(p.secret, { proof: cur.proof, state: 'ready', at });
      }
      this.ops.removeSync(op.id);
    });
  }

  /** A refused receive or claim: its inputs were never ours to keep (the caller still has the token). */
  private forget(op: Operation): void {
    this.root.transactionSync(() => {
      for (const p of op.inputs) if (this.proofsDb.get(p.secret)?.op === op.id) this.proofsDb.removeSync(p.secret);
      this.ops.removeSync(op.id);
    });
  }

  private async run<T>(op: Operation, call: () => Promise<T>): Promise<T> {
    this.onStep(`${op.kind}:persisted`);
    let res: T;
    try {
      res = await call();
    } catch (err) {
      if (err instanceof MintOperationError || (err as { status?: number }).status === 400) {
        // The mint answered with a refusal: nothing was spent (or, for 11001, the inputs
        // were already gone — reconcile decides from their real state).
        const code = (err as MintOperationError).code;
        if (code === 11001 || code === 11002) await this.reconcileOne(op);
        else if (op.kind === 'claim' || op.receive) this.forget(op);
        else this.release(op);
        throw new CashuWalletError(`mint refused ${op.kind}: ${(err as Error).message}`, code);
      }
      this.log.warn({ op: op.id, kind: op.kind, err: (err as Error).message }, 'mint call failed ambiguously; operation kept for reconcile');
      throw new CashuWalletError(`${op.kind} outcome unknown (kept for reconcile): ${(err as Error).message}`);
    }
    this.onStep(`${op.kind}:answered`);
    return res;
  }

  private newOp(kind: OperationKind, fields: Omit<Operation, 'id' | 'kind' | 'createdAt'>): Operation {
    return { id: `${kind}-${randomBytes(8).toString('hex')}`, kind, createdAt: this.now(), ...fields };
  }

  // ---------- swap-based operations ----------

  private opFromSwap(kind: OperationKind, preview: SwapPreview, tag?: string): Operation {
    return this.newOp(kind, {
      inputs: preview.inputs.map(toProofJson),
      outputs: [...(preview.keepOutputs ?? []).map((o) => serializeOutput(o, 'keep')), ...(preview.sendOutputs ?? []).map((o) => serializeOutput(o, 'send'))],
      keysetId: preview.keysetId,
      amount: preview.amount.toNumber(),
      fees: preview.fees.toNumber(),
      ...(tag ? { tag } : {}),
    });
  }

  /** Rebuilds the cashu-ts SwapPreview of a stored operation (e.g. to complete a claim). */
  private previewOf(op: Operation): SwapPreview {
    return {
      amount: Amount.from(op.amount ?? 0),
      fees: Amount.from(op.fees ?? 0),
      keysetId: op.keysetId,
      inputs: op.inputs.map(fromProofJson),
      keepOutputs: op.outputs.filter((o) => o.role === 'keep').map(deserializeOutput),
      sendOutputs: op.outputs.filter((o) => o.role === 'send').map(deserializeOutput),
    };
  }

  private async completeSwapOp(op: Operation, preview: SwapPreview, privkey?: string): Promise<{ keep: ProofJson[]; send: ProofJson[] }> {
    const res = await this.run(op, () => this.ts.completeSwap(preview, privkey));
    const keep = res.keep.map(toProofJson);
    const send = res.send.map(toProofJson);
    this.commit(op, [...keep.map((proof) => ({ proof, role: 'keep' as const })), ...send.map((proof) => ({ proof, role: 'send' as const }))]);
    return { keep, send };
  }

  /**
   * Receives a token (cashuB or cashuA) into the purse. `privkey` signs P2PK inputs locked
   * to this wallet's payment key. Returns the sats received (after the mint's input fee).
   */
  async receive(token: string, opts: { privkey?: string } = {}): Promise<number> {
    const decoded = this.decodeToken(token);
    if (decoded.mint !== this.mintUrl) throw new CashuWalletError(`token is for mint ${decoded.mint}, this wallet uses ${this.mintUrl}`);
    if (decoded.unit && decoded.unit !== 'sat') throw new CashuWalletError(`token unit ${decoded.unit} is not sat`);
    return this.receiveProofs(decoded.proofs.map(fromProofJson), opts.privkey);
  }

  private async receiveProofs(proofs: Proof[], privkey?: string): Promise<number> {
    let preview: SwapPreview;
    try {
      preview = await this.ts.prepareSwapToReceive(proofs);
    } catch (err) {
      throw new CashuWalletError(`cannot receive token: ${(err as Error).message}`);
    }
    // Witnesses already on the proofs (pre-signed P2PK) must reach the mint.
    const witnesses = new Map(proofs.filter((p) => p.witness).map((p) => [p.secret, p.witness]));
    if (witnesses.size) preview = { ...preview, inputs: preview.inputs.map((p) => (witnesses.has(p.secret) && !p.witness ? { ...p, witness: witnesses.get(p.secret) } : p)) };
    const op: Operation = { ...this.opFromSwap('swap', preview), receive: true };
    // The token's proofs are bearer value: store them (reserved) before the swap.
    this.persist(op, op.inputs);
    const { keep, send } = await this.completeSwapOp(op, preview, privkey);
    const got = sumJson(keep) + sumJson(send);
    this.log.info({ amount: got, fee: op.fees }, 'cashu received');
    return got;
  }

  /** Redeems loose proofs (e.g. P2PK-locked ones taken from an event) into the purse. */
  async redeem(proofs: readonly ProofJson[], opts: { privkey?: string } = {}): Promise<number> {
    if (!proofs.length) throw new CashuWalletError('no proofs to redeem');
    return this.receiveProofs(proofs.map(fromProofJson), opts.privkey);
  }

  /**
   * Adds SIG_INPUTS witness signatures by `privkey` to the P2PK proofs it may sign (e.g. to
   * hand signed proofs to someone else); other proofs are returned unchanged.
   */
  sign(proofs: readonly ProofJson[], privkey: string): ProofJson[] {
    try {
      return signP2PKProofs(proofs.map(fromProofJson), privkey).map(toProofJson);
    } catch (err) {
      throw new CashuWalletError(`cannot sign proofs: ${(err as Error).message}`);
    }
  }

  /**
   * Sends `amount` sat as a token; the receiver's fee is included by default. With `p2pk`,
   * the sent proofs are locked (NUT-11). The sent proofs stay recorded as 'sent' (tagged)
   * until confirmSent() sees them spent.
   */
  async send(amount: number, opts: { p2pk?: P2PKOptions; includeFees?: boolean; tag?: string; jobId?: string } = {}): Promise<{ token: string; proofs: ProofJson[] }> {
    if (!Number.isSafeInteger(amount) || amount <= 0) throw new CashuWalletError('amount must be a positive integer of sats');
    const includeFees = opts.includeFees ?? true;
    const { chosen: inputs, release } = this.select(amount, includeFees);
    const outputConfig = opts.p2pk ? { send: { type: 'p2pk', options: opts.p2pk } as OutputType, keep: { type: 'random' } as OutputType } : undefined;
    let send: ProofJson[];
    try {
      let preview: SwapPreview;
      try {
        preview = await this.ts.prepareSwapToSend(amount, inputs.map(fromProofJson), { includeFees }, outputConfig);
      } catch (err) {
        throw new CashuWalletError(`cannot prepare send: ${(err as Error).message}`);
      }
      const op = this.opFromSwap('swap', preview, opts.tag);
      // What leaves the purse: the inputs minus the change we keep (fees included).
      const cost = sumJson(op.inputs) - op.outputs.filter((o) => o.role === 'keep').reduce((x, o) => x + o.blindedMessage.amount, 0);
      const key = `cashu:${op.id}`;
      const reserved = this.reserveSpend(key, cost, opts.jobId);
      this.persist(op, op.inputs);
      try {
        ({ send } = await this.completeSwapOp(op, preview));
      } catch (err) {
        if (reserved && err instanceof CashuWalletError && err.code !== undefined) this.spending?.release(key);
        throw err;
      }
      this.spending?.settle(key);
    } finally {
      release();
    }
    // Any unselected inputs of cashu-ts's selection were not part of the swap.
    const token = getEncodedToken({ mint: this.mintUrl, proofs: send.map(fromProofJson), unit: 'sat' });
    this.log.info({ amount, locked: Boolean(opts.p2pk), tag: opts.tag }, 'cashu sent');
    return { token, proofs: send };
  }

  /** Marks 'sent' proofs that the mint reports spent as gone; returns the sats confirmed. */
  async confirmSent(tag?: string): Promise<number> {
    const sent = this.list('sent', tag);
    if (!sent.length) return 0;
    const states = await this.ts.checkProofsStates(sent.map(fromProofJson));
    const spent = sent.filter((_, i) => states[i].state === 'SPENT');
    this.root.transactionSync(() => {
      for (const p of spent) this.proofsDb.removeSync(p.secret);
    });
    return sumJson(spent);
  }

  /** Takes back unredeemed bearer 'sent' proofs (not locked ones) into the purse. */
  async reclaimSent(tag?: string): Promise<number> {
    await this.confirmSent(tag);
    const sent = this.list('sent', tag).filter((p) => !p.secret.startsWith('['));
    if (!sent.length) return 0;
    const preview = await this.ts.prepareSwapToReceive(sent.map(fromProofJson));
    const op = this.opFromSwap('swap', preview);
    this.root.transactionSync(() => {
      for (const p of sent) this.proofsDb.putSync(p.secret, { proof: p, state: 'reserved', op: op.id, at: this.now() });
      this.ops.putSync(op.id, op);
    });
    const { keep, send } = await this.completeSwapOp(op, preview);
    return sumJson(keep) + sumJson(send);
  }

  // ---------- Lightning in and out ----------

  /** Asks the mint for a bolt11 to top up `amount` sat; the quote is stored durably. */
  async requestMint(amount: number): Promise<{ quote: string; bolt11: string; expiry: number }> {
    if (!Number.isSafeInteger(amount) || amount <= 0) throw new CashuWalletError('amount must be a positive integer of sats');
    const q = await this.ts.createMintQuoteBolt11(amount);
    const op = this.newOp('mint', { inputs: [], outputs: [], keysetId: this.ts.getKeyset().id, quote: q.quote, amount });
    this.root.transactionSync(() => {
      this.ops.putSync(op.id, op);
    });
    return { quote: q.quote, bolt11: q.request, expiry: q.expiry ?? 0 };
  }

  /** Waits (NUT-17 websocket, with a timeout) for a mint quote to be paid, then mints it. */
  async completeMint(quote: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    const op = [...this.ops.getRange()].map((e) => e.value).find((o) => o.kind === 'mint' && o.quote === quote);
    if (!op) throw new CashuWalletError(`no pending mint for quote ${quote}`);
    const state = await this.ts.checkMintQuoteBolt11(quote);
    if (state.state === 'UNPAID') {
      ensureWebSocket();
      await this.ts.on.onceMintPaid(quote, { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    }
    return this.mintPaid(op);
  }

  private async mintPaid(op: Operation): Promise<number> {
    let current = op;
    let preview;
    if (!current.outputs.length) {
      preview = await this.ts.prepareMint('bolt11', op.amount!, { quote: op.quote! });
      current = { ...op, keysetId: preview.keysetId, outputs: preview.outputData.map((o) => serializeOutput(o, 'keep')) };
      this.root.transactionSync(() => {
        this.ops.putSync(op.id, current);
      });
    } else {
      const outputs = current.outputs.map(deserializeOutput);
      preview = await this.ts.prepareMint('bolt11', op.amount!, { quote: op.quote! }, undefined, { type: 'custom', data: outputs });
    }
    const proofs = await this.run(current, () => this.ts.completeMint(preview!));
    const got = proofs.map(toProofJson);
    this.commit(current, got.map((proof) => ({ proof, role: 'keep' as const })), false);
    this.log.info({ amount: sumJson(got) }, 'cashu minted');
    return sumJson(got);
  }

  /** Pays a bolt11 by melting; the unused fee reserve comes back as change. */
  async payInvoice(bolt11: string, opts: { maxFeeSat?: number; maxAmountSat?: number; jobId?: string } = {}): Promise<{ preimage: string | null; amount: number; feePaid: number }> {
    // The limits see the invoice's own amount before the mint is asked for a quote.
    let paymentHash: string | undefined;
    if (this.spending) {
      let inv;
      try {
        inv = decodeInvoice(bolt11);
      } catch (err) {
        throw new CashuWalletError((err as Error).message);
      }
      paymentHash = inv.paymentHash;
      try {
        this.spending.check(inv.amountMsat, opts.jobId);
      } catch (err) {
        if (err instanceof SpendingLimitError) throw new CashuWalletError(err.message, undefined, 'OVER_LIMIT');
        throw err;
      }
    }
    let quote: MeltQuoteBolt11Response;
    try {
      quote = await this.ts.createMeltQuoteBolt11(bolt11);
    } catch (err) {
      throw new CashuWalletError(`mint will not pay this invoice: ${(err as Error).message}`, (err as MintOperationError).code);
    }
    const amount = quote.amount.toNumber();
    const reserve = quote.fee_reserve.toNumber();
    if (opts.maxAmountSat !== undefined && amount > opts.maxAmountSat) throw new CashuWalletError(`invoice asks ${amount} sat, over the budget of ${opts.maxAmountSat} sat`);
    if (opts.maxFeeSat !== undefined && reserve > opts.maxFeeSat) throw new CashuWalletError(`fee reserve ${reserve} sat exceeds the budget of ${opts.maxFeeSat} sat`);
    const key = `cashu:melt:${paymentHash ?? quote.quote}`;
    const reserved = this.reserveSpend(key, amount + reserve, opts.jobId);
    const { chosen: inputs, release } = this.select(amount + reserve, true);
    let persisted: Operation | undefined;
    const melt = async () => {
      const preview = await this.ts.prepareMelt('bolt11', quote, inputs.map(fromProofJson));
      const op = this.newOp('melt', {
        inputs: preview.inputs.map(toProofJson),
        outputs: preview.outputData.map((o) => serializeOutput(o, 'keep')),
        keysetId: preview.keysetId,
        quote: quote.quote,
        amount,
      });
      this.persist(op, op.inputs);
      persisted = op;
      return { op, res: await this.run(op, () => this.ts.completeMelt(preview)) };
    };
    let op: Operation;
    let res: Awaited<ReturnType<typeof melt>>['res'];
    try {
      ({ op, res } = await melt());
    } catch (err) {
      // An operation still stored is ambiguous (reconcile settles it) and keeps counting;
      // otherwise the mint refused it or it never reached the mint: nothing was spent.
      if (reserved && !(persisted && this.ops.get(persisted.id))) this.spending?.release(key);
      throw err;
    } finally {
      release();
    }
    if (res.quote.state !== 'PAID') {
      // Not paid (yet): keep the op; reconcile() settles it from the proofs' state.
      throw new CashuWalletError(`melt ${quote.quote} is ${res.quote.state}; kept for reconcile`);
    }
    const change = res.change.map(toProofJson);
    this.commit(op, change.map((proof) => ({ proof, role: 'keep' as const })));
    const spent = sumJson(op.inputs) - sumJson(change);
    this.spending?.settle(key, spent * 1000);
    this.log.info({ amount, feePaid: spent - amount }, 'cashu melted');
    return { preimage: res.quote.payment_preimage ?? null, amount, feePaid: spent - amount };
  }

  // ---------- claims of inputs we do not own yet (escrow) ----------

  /**
   * Stores (durably) a swap of foreign inputs — e.g. P2PK escrow proofs — to fresh outputs
   * of ours, and returns its id and the NUT-11 SIG_ALL signing package for it.
   */
  async prepareClaim(inputs: readonly ProofJson[], tag?: string): Promise<{ claimId: string; package: SigAllSigningPackage }> {
    let preview: SwapPreview;
    try {
      preview = await this.ts.prepareSwapToReceive(inputs.map(fromProofJson));
    } catch (err) {
      throw new CashuWalletError(`cannot prepare the claim: ${(err as Error).message}`);
    }
    const op = this.opFromSwap('claim', preview, tag);
    this.root.transactionSync(() => {
      this.ops.putSync(op.id, op);
    });
    return { claimId: op.id, package: SigAll.extractSwapPackage(preview) };
  }

  /** The unsigned SIG_ALL package of a stored claim, or undefined if there is no such pending claim. */
  claimPackage(claimId: string): SigAllSigningPackage | undefined {
    const op = this.ops.get(claimId);
    return op?.kind === 'claim' ? SigAll.extractSwapPackage(this.previewOf(op)) : undefined;
  }

  /** Completes a stored claim with its package carrying enough signatures; the outputs land in the purse. Returns sats received. */
  async completeClaim(claimId: string, signed: SigAllSigningPackage): Promise<number> {
    const op = this.ops.get(claimId);
    if (op?.kind !== 'claim') throw new CashuWalletError(`no pending claim ${claimId}`);
    const preview = this.previewOf(op);
    let merged: SwapPreview;
    try {
      merged = SigAll.mergeSwapPackage(signed, preview);
    } catch (err) {
      throw new CashuWalletError(`the signed package does not fit the claim: ${(err as Error).message}`);
    }
    const { keep, send } = await this.completeSwapOp(op, merged);
    return sumJson(keep) + sumJson(send);
  }

  // ---------- recovery ----------

  /** Settles every operation a crash or an ambiguous failure left behind. */
  async reconcile(): Promise<ReconcileReport> {
    let restored = 0;
    let released = 0;
    let pending = 0;
    for (const { value: op } of [...this.ops.getRange()]) {
      const r = await this.reconcileOne(op);
      restored += r.restored;
      released += r.released;
      pending += r.pending;
    }
    if (restored || released || pending) this.log.info({ restored, released, pending }, 'cashu wallet reconciled');
    return { restored, released, pending };
  }

  private async reconcileOne(op: Operation): Promise<ReconcileReport> {
    if (op.kind === 'mint') {
      if (!op.outputs.length) {
        const q = await this.ts.checkMintQuoteBolt11(op.quote!).catch(() => undefined);
        if (q?.state === 'PAID') return { restored: await this.mintPaid(op), released: 0, pending: 0 };
        if (q && (q.state === 'ISSUED' || (q.expiry && q.expiry < this.now()))) this.ops.remove(op.id);
        return { restored: 0, released: 0, pending: q?.state === 'UNPAID' ? 1 : 0 };
      }
      const got = await this.restoreOutputs(op);
      if (got.length) {
        this.commit(op, got, false);
        return { restored: sumJson(got.map((x) => x.proof)), released: 0, pending: 0 };
      }
      const q = await this.ts.checkMintQuoteBolt11(op.quote!).catch(() => undefined);
      if (q?.state === 'PAID') return { restored: await this.mintPaid(op), released: 0, pending: 0 };
      return { restored: 0, released: 0, pending: 1 };
    }
    const states = await this.ts.checkProofsStates(op.inputs.map(fromProofJson));
    if (states.some((s) => s.state === 'PENDING')) return { restored: 0, released: 0, pending: 1 };
    if (states.every((s) => s.state === 'UNSPENT')) {
      if (op.receive) {
        // Finish the interrupted receive with the outputs stored for it (the sender can
        // still double-spend a bearer token until it is swapped).
        try {
          const { keep, send } = await this.completeSwapOp(op, this.previewOf(op));
          return { restored: sumJson(keep) + sumJson(send), released: 0, pending: 0 };
        } catch (err) {
          this.log.warn({ op: op.id, err: (err as Error).message }, 'could not finish an interrupted receive');
          return { restored: 0, released: 0, pending: this.ops.get(op.id) ? 1 : 0 };
        }
      }
      // A claim whose inputs are unspent is still waiting for its co-signatures (a buyer's claim
      // sent with a dispute is redeemed when the verdict comes, often in a later process): kept.
      if (op.kind === 'claim') return { restored: 0, released: 0, pending: 0 };
      this.release(op);
      return { restored: 0, released: sumJson(op.inputs), pending: 0 };
    }
    // Spent: the mint executed the call (or, for a claim, someone else did and nothing
    // of ours was signed). Our outputs come back through NUT-09 restore.
    const produced = await this.restoreOutputs(op);
    if (!produced.length && op.kind !== 'claim' && states.some((s) => s.state === 'UNSPENT')) {
      // Not our call that spent them (e.g. a sender double-spent part of a received
      // token): keep what is still unspent, drop what is gone.
      const at = this.now();
      this.root.transactionSync(() => {
        op.inputs.forEach((p, i) => {
          if (states[i].state === 'UNSPENT') this.proofsDb.putSync(p.secret, { proof: p, state: 'ready', at });
          else this.proofsDb.removeSync(p.secret);
        });
        this.ops.removeSync(op.id);
      });
      const kept = sumJson(op.inputs.filter((_, i) => states[i].state === 'UNSPENT'));
      this.log.warn({ op: op.id, kept }, 'inputs partly spent elsewhere; the unspent ones are back in the purse');
      return { restored: 0, released: kept, pending: 0 };
    }
    this.commit(op, produced, op.kind !== 'claim');
    const got = produced.map((x) => x.proof);
    if (got.length) this.log.info({ op: op.id, amount: sumJson(got) }, 'outputs restored after an interrupted operation');
    return { restored: sumJson(got), released: 0, pending: 0 };
  }

  private async restoreOutputs(op: Operation): Promise<{ proof: ProofJson; role: 'keep' | 'send' }[]> {
    if (!op.outputs.length) return [];
    const res = await this.ts.mint.restore({ outputs: op.outputs.map((o) => ({ amount: o.blindedMessage.amount, id: o.blindedMessage.id, B_: o.blindedMessage.B_ })) as never });
    const out: { proof: ProofJson; role: 'keep' | 'send' }[] = [];
    res.outputs.forEach((bm, i) => {
      const stored = op.outputs.find((o) => o.blindedMessage.B_ === bm.B_);
      if (!stored) return;
      const sig = res.signatures[i] as SerializedBlindedSignature;
      const keyset = this.ts.getKeyset(sig.id);
      const proof = deserializeOutput({ ...stored, blindedMessage: { ...stored.blindedMessage, amount: Number(sig.amount) } }).toProof(sig, keyset);
      out.push({ proof: toProofJson(proof), role: stored.role });
    });
    return out;
  }

  /**
   * Rebuilds the purse from the mint with the wallet's seed (NUT-09 + NUT-13): every keyset
   * is scanned, unspent proofs not already held are added as ready, counters move past the
   * last used one. Returns the sats recovered.
   */
  async restoreFromSeed(opts: { gapLimit?: number; batchSize?: number } = {}): Promise<number> {
    const { keysets } = await this.ts.mint.getKeySets();
    let recovered = 0;
    for (const ks of keysets) {
      if (ks.unit !== 'sat') continue;
      let res;
      try {
        res = await this.ts.batchRestore(opts.gapLimit ?? 100, opts.batchSize ?? 100, 0, ks.id);
      } catch (err) {
        throw new CashuWalletError(`restore from seed failed on keyset ${ks.id}: ${(err as Error).message}`);
      }
      if (res.lastCounterWithSignature !== undefined) await this.ts.counters.advanceToAtLeast(ks.id, res.lastCounterWithSignature + 1);
      if (!res.proofs.length) continue;
      const states = await this.ts.checkProofsStates(res.proofs);
      const fresh = res.proofs.map(toProofJson).filter((p, i) => states[i].state === 'UNSPENT' && !this.proofsDb.get(p.secret));
      const at = this.now();
      this.root.transactionSync(() => {
        for (const p of fresh) this.proofsDb.putSync(p.secret, { proof: p, state: 'ready', at });
      });
      recovered += sumJson(fresh);
    }
    this.log.info({ recovered }, 'cashu wallet restored from seed');
    return recovered;
  }

  async checkStates(proofs: readonly ProofJson[]): Promise<('UNSPENT' | 'PENDING' | 'SPENT')[]> {
    const states = await this.ts.checkProofsStates(proofs.map(fromProofJson));
    return states.map((s) => s.state as 'UNSPENT' | 'PENDING' | 'SPENT');
  }

  async close(): Promise<void> {
    this.ts.mint.disconnectWebSocket();
    await this.root.close();
  }
}
