// NUT-10 well-known secrets and their spending conditions: NUT-11 (P2PK, multisig,
// locktime, refund, SIG_INPUTS / SIG_ALL) and NUT-14 (HTLC). Written here rather than
// borrowed from cashu-ts because the mint's clock must be injectable (locktime tests
// never sleep) and because a mint must fail closed on every malformed secret.
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { MintError, MintErrorCode } from './errors.ts';

export type SecretKind = 'P2PK' | 'HTLC';
export type SigFlag = 'SIG_INPUTS' | 'SIG_ALL';

export interface WellKnownSecret {
  readonly kind: SecretKind;
  readonly nonce: string;
  readonly data: string;
  readonly tags: readonly (readonly string[])[];
}

export interface SpendingConditions {
  readonly kind: SecretKind;
  readonly sigflag: SigFlag;
  /** Main pathway keys as x-only lowercase hex (P2PK: data + pubkeys; HTLC: pubkeys). */
  readonly mainKeys: readonly string[];
  readonly nSigs: number;
  /** Unix seconds, or undefined for a permanent lock. */
  readonly locktime?: number;
  readonly refundKeys: readonly string[];
  readonly nSigsRefund: number;
  /** HTLC hash lock (hex sha256). */
  readonly hashlock?: string;
}

export interface InputLike {
  readonly secret: string;
  readonly C: string;
  readonly witness?: unknown;
}
export interface OutputLike {
  readonly amount: number;
  readonly B_: string;
}

const KNOWN_TAGS = new Set(['sigflag', 'pubkeys', 'n_sigs', 'locktime', 'refund', 'n_sigs_refund']);
const MAX_KEYS = 20;

const malformed = (why: string): never => {
  throw new MintError(MintErrorCode.proofVerificationFailed, `malformed spending condition: ${why}`);
};
const unauthorised = (why: string): never => {
  throw new MintError(MintErrorCode.proofVerificationFailed, why);
};

/**
 * Parses a proof secret. Returns undefined for a plain (anyone-can-spend) secret, the
 * well-known secret for P2PK/HTLC; throws for a NUT-10 structure of another kind or a
 * malformed one (fail closed: never treat a lock we do not understand as no lock).
 */
export function parseWellKnownSecret(secret: string): WellKnownSecret | undefined {
  if (!secret.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string') return undefined;
  const [kind, body] = parsed as [string, unknown];
  if (kind !== 'P2PK' && kind !== 'HTLC') malformed(`unsupported secret kind ${JSON.stringify(kind).slice(0, 40)}`);
  if (typeof body !== 'object' || body === null) return malformed('secret body is not an object');
  const b = body as Record<string, unknown>;
  if (typeof b.nonce !== 'string' || typeof b.data !== 'string') malformed('nonce and data must be strings');
  const tags = b.tags ?? [];
  if (!Array.isArray(tags) || tags.some((t) => !Array.isArray(t) || t.length < 1 || t.some((x: unknown) => typeof x !== 'string'))) {
    malformed('tags must be arrays of strings');
  }
  return { kind: kind as SecretKind, nonce: b.nonce as string, data: b.data as string, tags: tags as string[][] };
}

function xOnly(pubkey: string, what: string): string {
  if (!/^0[23][0-9a-fA-F]{64}$/.test(pubkey)) malformed(`${what} is not a compressed public key`);
  try {
    secp256k1.Point.fromHex(pubkey.toLowerCase());
  } catch {
    malformed(`${what} is not a point on secp256k1`);
  }
  return pubkey.slice(2).toLowerCase();
}

function positiveInt(raw: string, what: string): number {
  if (!/^[0-9]+$/.test(raw)) return malformed(`${what} must be a positive integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) malformed(`${what} must be a positive integer`);
  return n;
}

/** Validates a well-known secret's tags exactly as NUT-11 requires and returns its conditions. */
export function spendingConditions(s: WellKnownSecret): SpendingConditions {
  const seen = new Set<string>();
  const tag = new Map<string, readonly string[]>();
  for (const t of s.tags) {
    const key = t[0];
    if (!KNOWN_TAGS.has(key)) continue;
    if (seen.has(key)) malformed(`tag ${key} appears more than once`);
    seen.add(key);
    tag.set(key, t.slice(1));
  }
  const sigflagRaw = tag.get('sigflag')?.[0] ?? 'SIG_INPUTS';
  if (sigflagRaw !== 'SIG_INPUTS' && sigflagRaw !== 'SIG_ALL') malformed(`unknown sigflag ${JSON.stringify(sigflagRaw).slice(0, 40)}`);
  const extra = tag.get('pubkeys') ?? [];
  const refundRaw = tag.get('refund') ?? [];
  if (extra.length > MAX_KEYS || refundRaw.length > MAX_KEYS) malformed('too many public keys');
  let hashlock: string | undefined;
  const main: string[] = [];
  if (s.kind === 'P2PK') main.push(xOnly(s.data, 'data'));
  else {
    if (!/^[0-9a-fA-F]{64}$/.test(s.data)) malformed('HTLC data must be a 32-byte hex hash');
    hashlock = s.data.toLowerCase();
  }
  extra.forEach((k, i) => main.push(xOnly(k, `pubkeys[${i}]`)));
  if (new Set(main).size !== main.length) malformed('duplicate key in the main pathway');
  const refundKeys = refundRaw.map((k, i) => xOnly(k, `refund[${i}]`));
  if (new Set(refundKeys).size !== refundKeys.length) malformed('duplicate key in the refund pathway');
  const nSigsRaw = tag.get('n_sigs')?.[0];
  const nSigs = nSigsRaw === undefined ? 1 : positiveInt(nSigsRaw, 'n_sigs');
  if (nSigsRaw !== undefined && nSigs > Math.max(main.length, 1)) malformed('n_sigs exceeds the number of keys');
  const nSigsRefundRaw = tag.get('n_sigs_refund')?.[0];
  const nSigsRefund = nSigsRefundRaw === undefined ? 1 : positiveInt(nSigsRefundRaw, 'n_sigs_refund');
  if (nSigsRefundRaw !== undefined && nSigsRefund > refundKeys.length) malformed('n_sigs_refund exceeds the number of refund keys');
  // NUT-11: a locktime that is not a valid unix time makes the lock permanent.
  const ltRaw = tag.get('locktime')?.[0];
  const lt = ltRaw !== undefined && /^[0-9]+$/.test(ltRaw) ? Number(ltRaw) : undefined;
  const locktime = lt !== undefined && Number.isSafeInteger(lt) && lt > 0 ? lt : undefined;
  return { kind: s.kind, sigflag: sigflagRaw as SigFlag, mainKeys: main, nSigs, locktime, refundKeys, nSigsRefund, hashlock };
}

interface Witness {
  /** No witness at all on the proof (absent, null or empty). */
  readonly absent: boolean;
  readonly signatures: readonly string[];
  readonly preimage?: string;
}

function parseWitness(w: unknown): Witness {
  if (w === undefined || w === null || w === '') return { absent: true, signatures: [] };
  let obj: unknown = w;
  if (typeof w === 'string') {
    try {
      obj = JSON.parse(w);
    } catch {
      return unauthorised('invalid witness: not valid JSON');
    }
  }
  if (typeof obj !== 'object' || obj === null) return unauthorised('invalid witness: not an object');
  const o = obj as Record<string, unknown>;
  const sigs = o.signatures ?? [];
  if (!Array.isArray(sigs) || sigs.some((s) => typeof s !== 'string')) unauthorised('invalid witness: signatures must be strings');
  if (o.preimage !== undefined && typeof o.preimage !== 'string') unauthorised('invalid witness: preimage must be a string');
  return { absent: false, signatures: sigs as string[], preimage: o.preimage as string | undefined };
}

// Failure details. Clients and their test suites recognise a refusal by the wording of
// nutshell or of CDK (and others), so each detail carries the phrases of both for its case
// (e.g. cashu-ts matches /witness.*p2pk.*signature/, CDK-based suites "no witness in proof",
// "signatures not provided", "signature threshold not met"). The code is always 10001.
const WHY = {
  p2pkNoWitness: 'Witness is missing for p2pk signature: no witness in proof (signatures not provided)',
  p2pkNoSignatures: 'Witness is missing for p2pk signature: no signatures in proof (Witness did not provide signatures)',
  threshold: (valid: number, needed: number, which: string): string =>
    `Signature missing or invalid: signature threshold not met (${valid} of ${needed} required valid signature(s) from the ${which} keys)`,
  htlc: 'HTLC spend conditions are not met',
  htlcNoPreimage: 'no HTLC preimage provided (Witness is missing for htlc preimage)',
  htlcBadPreimage: 'HTLC preimage must be 64 characters hex. (Preimage must be valid hex encoding)',
  htlcWrongPreimage: 'Preimage does not match the hash lock',
  htlcNoSignatures: 'Witness did not provide signatures (no signatures in proof)',
  sigAllMismatch: 'Spend conditions are not met: not all secrets are equal. (SIG_ALL inputs must all have the same kind, data and tags)',
} as const;

/** Number of distinct keys in `keys` with a valid BIP-340 signature on sha256(msg). */
export function countValidSigners(keys: readonly string[], signatures: readonly string[], msg: string): number {
  const digest = sha256(utf8ToBytes(msg));
  let n = 0;
  for (const k of keys) {
    const pk = hexToBytes(k);
    if (signatures.some((sig) => /^[0-9a-fA-F]{128}$/.test(sig) && safeVerify(sig, digest, pk))) n++;
  }
  return n;
}

function safeVerify(sig: string, digest: Uint8Array, pk: Uint8Array): boolean {
  try {
    return schnorr.verify(hexToBytes(sig), digest, pk);
  } catch {
    return false;
  }
}

/** Why the main (locking) pathway is not satisfied, or undefined when it is. */
function mainPathwayFailure(c: SpendingConditions, w: Witness, msg: string): string | undefined {
  if (c.kind === 'HTLC') {
    const pre = w.preimage;
    if (pre === undefined || pre === '') return `${WHY.htlc}: ${WHY.htlcNoPreimage}`;
    if (!/^[0-9a-fA-F]{64}$/.test(pre)) return `${WHY.htlc}: ${WHY.htlcBadPreimage}`;
    if (bytesToHex(sha256(hexToBytes(pre))) !== c.hashlock) return `${WHY.htlc}: ${WHY.htlcWrongPreimage}`;
    if (c.mainKeys.length === 0) return undefined;
    if (w.signatures.length === 0) return `${WHY.htlc}: ${WHY.htlcNoSignatures}`;
    const valid = countValidSigners(c.mainKeys, w.signatures, msg);
    return valid >= c.nSigs ? undefined : `${WHY.htlc}: ${WHY.threshold(valid, c.nSigs, 'locking')}`;
  }
  if (w.absent) return WHY.p2pkNoWitness;
  if (w.signatures.length === 0) return WHY.p2pkNoSignatures;
  const valid = countValidSigners(c.mainKeys, w.signatures, msg);
  return valid >= c.nSigs ? undefined : WHY.threshold(valid, c.nSigs, 'locking');
}

/** Checks one witness against conditions, for message `msg`, at mint time `now` (unix s). */
export function checkWitness(c: SpendingConditions, witness: unknown, msg: string, now: number): void {
  const w = parseWitness(witness);
  const expired = c.locktime !== undefined && now >= c.locktime;
  if (expired && c.refundKeys.length === 0) return; // NUT-11: expired lock without refund keys is unlocked
  const main = mainPathwayFailure(c, w, msg);
  if (main === undefined) return;
  if (!expired) unauthorised(main);
  // After the locktime the refund keys may spend instead (NUT-11; for HTLC, NUT-14 without the preimage).
  const refund = countValidSigners(c.refundKeys, w.signatures, msg);
  if (refund >= c.nSigsRefund) return;
  unauthorised(`${main}; refund pathway: ${WHY.threshold(refund, c.nSigsRefund, 'refund').replace('Signature missing or invalid: ', '')}`);
}

/** The NUT-11 SIG_ALL message: inputs' secret||C, outputs' amount||B_, then the melt quote id. */
export function sigAllMessage(inputs: readonly InputLike[], outputs: readonly OutputLike[], quoteId?: string): string {
  let msg = '';
  for (const p of inputs) msg += p.secret + p.C;
  for (const o of outputs) msg += String(o.amount) + o.B_;
  if (quoteId !== undefined) msg += quoteId;
  return msg;
}

/**
 * Verifies the spending conditions of a whole transaction (swap or melt) — call after
 * each input's signature C has been verified. Throws MintError(10001) when unmet.
 */
export function verifyTransactionConditions(inputs: readonly InputLike[], outputs: readonly OutputLike[], now: number, quoteId?: string): void {
  const parsed = inputs.map((p) => {
    const s = parseWellKnownSecret(p.secret);
    return s ? { secret: s, cond: spendingConditions(s) } : undefined;
  });
  const sigAll = parsed.some((x) => x?.cond.sigflag === 'SIG_ALL');
  if (sigAll) {
    const first = parsed[0];
    if (!first) return unauthorised(WHY.sigAllMismatch);
    const tagsJson = JSON.stringify(first.secret.tags);
    for (const x of parsed) {
      if (!x || x.secret.kind !== first.secret.kind || x.secret.data !== first.secret.data || JSON.stringify(x.secret.tags) !== tagsJson) {
        unauthorised(WHY.sigAllMismatch);
      }
    }
    checkWitness(first.cond, inputs[0].witness, sigAllMessage(inputs, outputs, quoteId), now);
    return;
  }
  parsed.forEach((x, i) => {
    if (x) checkWitness(x.cond, inputs[i].witness, inputs[i].secret, now);
  });
}
