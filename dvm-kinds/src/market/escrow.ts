// Cashu escrow messages (DESIGN §4): how a job's escrow travels in Nostr events.
//
//   request   ["escrow", "<cashuB token>"]            the price, P2PK-locked by the buyer (NUT-11):
//                                                     data = provider payment key, pubkeys = [buyer,
//                                                     arbiter], n_sigs 2, SIG_ALL, locktime, refund [buyer]
//   result    ["escrow_claim", "<sigallA package>"]   a swap of exactly those proofs to the provider's own
//                                                     outputs, signed by the provider's payment key
//   receipt   ["escrow_release", "<sigallA package>"] the same package co-signed: by the buyer (39302) after
//   verdict                                           verification, or by the arbiter (39301) for the winner
//
// Packages are cashu-ts' SIG_ALL signing packages ("sigallA" + base64url JSON: inputs {secret, C},
// outputs {amount, id, B_}, witness.signatures). SIG_ALL signs the claimant's outputs, so a
// release is good only for the claim it answers. Everything here is pure: lock terms, package
// inputs and signatures are checked without a mint; DLEQ proofs and spent state need the mint
// (agents-common's checkEscrow).
import { SigAll, getTokenMetadata } from '@cashu/cashu-ts';
import * as nip44 from 'nostr-tools/nip44';
import { getPublicKey } from 'nostr-tools/pure';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { isHex, isHex64 } from '../hash.ts';
import { fail, ok, problem, type Parsed, type Problem } from '../problem.ts';
import { tagsNamed, type EventLike, type Tag } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const ESCROW_TAG = 'escrow';
export const ESCROW_CLAIM_TAG = 'escrow_claim';
export const ESCROW_RELEASE_TAG = 'escrow_release';

/** The NUT-11 lock every proof of an escrow carries (identical on all proofs: SIG_ALL requires it). */
export interface EscrowLock {
  /** `data`: the provider's payment key as written in the secret. */
  readonly data: string;
  /** `pubkeys` tag, in order (the buyer's and the arbiter's payment keys). */
  readonly pubkeys: readonly string[];
  readonly nSigs: number;
  readonly sigflag: string;
  /** Unix seconds after which the refund keys alone may spend. */
  readonly locktime?: number;
  readonly refund: readonly string[];
  readonly nSigsRefund?: number;
}

export interface EscrowToken {
  readonly token: string;
  /** Mint URL without trailing slashes. */
  readonly mint: string;
  readonly unit: string;
  /** Sum of the proofs, in `unit`. */
  readonly amount: number;
  /** The locked proofs (NUT-10 secrets, JSON strings), in token order. */
  readonly secrets: readonly string[];
  readonly lock: EscrowLock;
}

/** A SIG_ALL signing package as carried by `escrow_claim` / `escrow_release`. */
export interface EscrowPackage {
  readonly raw: string;
  readonly inputs: readonly { readonly secret: string; readonly C: string }[];
  readonly outputs: readonly { readonly amount: number; readonly id: string; readonly B_: string }[];
  readonly signatures: readonly string[];
}

/** Payment keys are compared as x-only keys: "02…", "03…" and bare x name the same NUT-11 key. */
export const xOnlyKey = (k: string): string => k.slice(-64).toLowerCase();
const PAYMENT_KEY = /^(0[23])?[0-9a-f]{64}$/;

export const buildEscrowTag = (token: string): string[] => [ESCROW_TAG, token];
export const buildEscrowClaimTag = (pkg: string): string[] => [ESCROW_CLAIM_TAG, pkg];
export const buildEscrowReleaseTag = (pkg: string): string[] => [ESCROW_RELEASE_TAG, pkg];

function readLock(secret: string): Parsed<EscrowLock> {
  let s: unknown;
  try {
    s = JSON.parse(secret);
  } catch {
    return fail([problem('secret', 'invalid', 'a proof secret is not a NUT-10 lock (plain secret: a bearer token)')]);
  }
  if (!Array.isArray(s) || s[0] !== 'P2PK' || typeof s[1] !== 'object' || s[1] === null) return fail([problem('secret', 'invalid', 'a proof is not P2PK-locked (NUT-11)')]);
  const body = s[1] as { data?: unknown; tags?: unknown };
  const out: Problem[] = [];
  const tags = new Map<string, string[]>();
  for (const t of Array.isArray(body.tags) ? (body.tags as unknown[]) : []) {
    if (!Array.isArray(t) || !t.every((x) => typeof x === 'string') || t.length === 0) return fail([problem('secret.tags', 'invalid', 'malformed NUT-10 tags')]);
    if (tags.has(t[0] as string)) out.push(problem(`secret.tags.${t[0] as string}`, 'unexpected', 'tag repeated'));
    tags.set(t[0] as string, (t as string[]).slice(1));
  }
  if (typeof body.data !== 'string' || !PAYMENT_KEY.test(body.data)) out.push(problem('secret.data', 'invalid', 'data must be a public key (the provider payment key)'));
  const int = (name: string): number | undefined => {
    const v = tags.get(name)?.[0];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(n)) out.push(problem(`secret.tags.${name}`, 'invalid', 'must be a non-negative integer'));
    return n;
  };
  const nSigs = int('n_sigs') ?? 1;
  const locktime = int('locktime');
  const nSigsRefund = int('n_sigs_refund');
  if (out.length) return fail(out);
  return ok({
    data: body.data as string,
    pubkeys: tags.get('pubkeys') ?? [],
    nSigs,
    sigflag: tags.get('sigflag')?.[0] ?? 'SIG_INPUTS',
    ...(locktime !== undefined ? { locktime } : {}),
    refund: tags.get('refund') ?? [],
    ...(nSigsRefund !== undefined ? { nSigsRefund } : {}),
  });
}

/** Decodes an escrow token (cashuA or cashuB) and reads its lock. Every proof must carry the same P2PK lock. */
export function readEscrowToken(token: string): Parsed<EscrowToken> {
  if (typeof token !== 'string' || !/^cashu[AB][A-Za-z0-9_\-+/=]+$/.test(token.trim())) return fail([problem('tags.escrow', 'invalid', 'the escrow is a Cashu token ("cashuB…")')]);
  let meta: ReturnType<typeof getTokenMetadata>;
  try {
    meta = getTokenMetadata(token.trim());
  } catch (err) {
    return fail([problem('tags.escrow', 'invalid', `not a Cashu token: ${(err as Error).message}`)]);
  }
  const secrets = meta.incompleteProofs.map((p) => p.secret);
  if (!secrets.length || secrets.some((s) => typeof s !== 'string')) return fail([problem('tags.escrow', 'invalid', 'the token holds no proofs')]);
  const locks = secrets.map((s) => readLock(s));
  const bad = locks.find((l) => !l.ok);
  if (bad && !bad.ok) return fail(bad.errors.map((p) => problem(`tags.escrow.${p.path}`, p.code, p.message)));
  const tagsOf = (s: string) => JSON.stringify((JSON.parse(s) as [string, { data: string; tags?: unknown }])[1].tags ?? []) + (JSON.parse(s) as [string, { data: string }])[1].data;
  if (new Set(secrets.map(tagsOf)).size !== 1) return fail([problem('tags.escrow', 'mismatch', 'every proof must carry the same lock (data and tags): SIG_ALL requires it')]);
  const amount = Number(String(meta.amount));
  if (!Number.isSafeInteger(amount) || amount <= 0) return fail([problem('tags.escrow', 'invalid', 'the token amount is not a positive integer')]);
  return ok({ token: token.trim(), mint: meta.mint.trim().replace(/\/+$/, ''), unit: meta.unit ?? 'sat', amount, secrets: secrets as string[], lock: (locks[0] as { value: EscrowLock }).value });
}

function single(tags: readonly Tag[], name: string, out: Problem[]): string | undefined {
  const all = tagsNamed(tags, name);
  if (all.length > 1) out.push(problem(`tags.${name}`, 'unexpected', `only one "${name}" tag is allowed`));
  if (all.length && typeof all[0][1] !== 'string') out.push(problem(`tags.${name}`, 'invalid', `"${name}" tag has no value`));
  return all[0]?.[1];
}

/** The escrow a job request carries, if any (undefined when the request has no `escrow` tag). */
export function parseEscrow(e: EventLike): Parsed<EscrowToken | undefined> {
  const out: Problem[] = [];
  const token = single(e.tags, ESCROW_TAG, out);
  if (out.length) return fail(out);
  return token === undefined ? ok(undefined) : readEscrowToken(token);
}

/** Decodes a SIG_ALL signing package ("sigallA…"); only swaps are escrow claims. */
export function readEscrowPackage(raw: string, path = 'package'): Parsed<EscrowPackage> {
  let p: ReturnType<typeof SigAll.deserializePackage>;
  try {
    p = SigAll.deserializePackage(raw.trim());
  } catch (err) {
    return fail([problem(path, 'invalid', `not a SIG_ALL signing package: ${(err as Error).message}`)]);
  }
  if (p.type !== 'swap') return fail([problem(path, 'invalid', 'an escrow claim is a swap package')]);
  if (!p.inputs.length || !p.outputs.length) return fail([problem(path, 'invalid', 'the package has no inputs or no outputs')]);
  return ok({
    raw: raw.trim(),
    inputs: p.inputs.map((i) => ({ secret: i.secret, C: i.C })),
    outputs: p.outputs.map((o) => ({ amount: Number(String(o.amount)), id: o.id, B_: o.B_ })),
    signatures: p.witness?.signatures ?? [],
  });
}

/** The provider's claim on a result (`escrow_claim`), if any. */
export function parseEscrowClaim(e: EventLike): Parsed<EscrowPackage | undefined> {
  const out: Problem[] = [];
  const raw = single(e.tags, ESCROW_CLAIM_TAG, out);
  if (out.length) return fail(out);
  return raw === undefined ? ok(undefined) : readEscrowPackage(raw, `tags.${ESCROW_CLAIM_TAG}`);
}

/** The co-signed release on a receipt or verdict (`escrow_release`) in clear, if any (a sealed one is `parseSealedEscrowRelease`'s). */
export function parseEscrowRelease(e: EventLike): Parsed<EscrowPackage | undefined> {
  const out: Problem[] = [];
  const raw = single(e.tags, ESCROW_RELEASE_TAG, out);
  if (out.length) return fail(out);
  if (raw === undefined || isSealedReleaseTag(tagsNamed(e.tags, ESCROW_RELEASE_TAG)[0])) return ok(undefined);
  return readEscrowPackage(raw, `tags.${ESCROW_RELEASE_TAG}`);
}

/**
 * A release sealed to its one recipient (an arbiter's verdict): `["escrow_release", "<NIP-44 v2
 * payload>", "nip44", "<recipient pubkey>"]`. Sealed because a fully signed package is
 * spendable by whoever submits it first: only the winner should be able to redeem it (into
 * its own outputs) without a race against strangers reading the relay.
 */
export interface SealedEscrowRelease {
  readonly payload: string;
  readonly recipient: string;
}

const isSealedReleaseTag = (t: Tag | undefined): boolean => t?.[2] === 'nip44';

export function parseSealedEscrowRelease(e: EventLike): Parsed<SealedEscrowRelease | undefined> {
  const out: Problem[] = [];
  single(e.tags, ESCROW_RELEASE_TAG, out);
  if (out.length) return fail(out);
  const t = tagsNamed(e.tags, ESCROW_RELEASE_TAG)[0];
  if (!t || !isSealedReleaseTag(t)) return ok(undefined);
  if (!isHex64(t[3])) return fail([problem(`tags.${ESCROW_RELEASE_TAG}`, 'invalid', 'a sealed release names its recipient: ["escrow_release", "<payload>", "nip44", "<pubkey>"]')]);
  if (typeof t[1] !== 'string' || t[1].length === 0 || t[1].length > MAX_SEALED_CHARS) return fail([problem(`tags.${ESCROW_RELEASE_TAG}`, 'invalid', 'the sealed payload is empty or too large')]);
  return ok({ payload: t[1], recipient: t[3] });
}

const MAX_SEALED_CHARS = 200_000;

/** The `escrow_release` tag sealed (NIP-44 v2) from `senderSecretKey` to `recipient`. */
export function buildSealedEscrowReleaseTag(pkg: string, senderSecretKey: Uint8Array, recipient: string): string[] {
  const key = nip44.v2.utils.getConversationKey(senderSecretKey, recipient);
  return [ESCROW_RELEASE_TAG, nip44.v2.encrypt(pkg, key), 'nip44', recipient];
}

/**
 * The release an event carries for us: a clear one (a buyer's receipt), or one sealed to our
 * key (an arbiter's verdict), opened. `undefined` when there is none, or it is sealed to someone else.
 */
export function openEscrowRelease(e: EventLike & { pubkey: string }, recipientSecretKey: Uint8Array): Parsed<EscrowPackage | undefined> {
  const recipient = getPublicKey(recipientSecretKey);
  const sealed = parseSealedEscrowRelease(e);
  if (!sealed.ok) return sealed;
  if (!sealed.value) return parseEscrowRelease(e);
  if (sealed.value.recipient !== recipient) return ok(undefined);
  let raw: string;
  try {
    raw = nip44.v2.decrypt(sealed.value.payload, nip44.v2.utils.getConversationKey(recipientSecretKey, e.pubkey));
  } catch (err) {
    return fail([problem(`tags.${ESCROW_RELEASE_TAG}`, 'invalid', `cannot open the sealed release: ${(err as Error).message}`)]);
  }
  return readEscrowPackage(raw, `tags.${ESCROW_RELEASE_TAG}`);
}

export interface EscrowExpectations {
  /** The provider's payment key (from its kind 10019). */
  readonly provider: string;
  /** The buyer's payment key; when absent, pubkeys[0] is taken as the buyer. */
  readonly buyer?: string;
  /** Arbiter payment keys the checker accepts; when absent any second key is accepted. */
  readonly arbiters?: readonly string[];
  /** The lock must not open for the buyer alone before this (unix seconds). */
  readonly minLocktime?: number;
  /** The token must hold at least this many units (before the claim's input fee). */
  readonly minAmount?: number;
  /** Mints the checker trusts (URLs; trailing slashes ignored). */
  readonly mints?: readonly string[];
  readonly unit?: string;
}

/**
 * Pure checks of an escrow against the agreed terms: the lock is exactly 2-of-[buyer, arbiter]
 * with the provider as data, SIG_ALL, a locktime that leaves the dispute window, refund to the
 * buyer alone; the mint and unit are trusted and the amount covers the price. (DLEQ proofs,
 * the claim fee and the mint's spent state are the caller's to check: agents-common checkEscrow.)
 */
export function verifyEscrowLock(esc: EscrowToken, want: EscrowExpectations): Verification {
  const out: Problem[] = [];
  const l = esc.lock;
  if (xOnlyKey(l.data) !== xOnlyKey(want.provider)) out.push(problem('lock.data', 'mismatch', 'the escrow is not locked to the provider payment key'));
  const keys = l.pubkeys.map(xOnlyKey);
  const buyer = want.buyer !== undefined ? xOnlyKey(want.buyer) : keys[0];
  const others = keys.filter((k) => k !== buyer);
  if (keys.length !== 2 || !keys.includes(buyer ?? '') || others.length !== 1) out.push(problem('lock.pubkeys', 'mismatch', 'pubkeys must be exactly [buyer, arbiter]'));
  else if (new Set([xOnlyKey(l.data), ...keys]).size !== 3) out.push(problem('lock.pubkeys', 'invalid', 'provider, buyer and arbiter keys must differ'));
  else if (want.arbiters && !want.arbiters.map(xOnlyKey).includes(others[0])) out.push(problem('lock.pubkeys', 'unexpected', `arbiter ${others[0]} is not a trusted arbiter`));
  if (l.nSigs !== 2) out.push(problem('lock.n_sigs', 'mismatch', `n_sigs must be 2, got ${l.nSigs}`));
  if (l.sigflag !== 'SIG_ALL') out.push(problem('lock.sigflag', 'mismatch', `sigflag must be SIG_ALL, got ${l.sigflag}`));
  if (l.locktime === undefined) out.push(problem('lock.locktime', 'missing', 'the escrow needs a locktime (the buyer refund after the dispute window)'));
  else if (want.minLocktime !== undefined && l.locktime < want.minLocktime) out.push(problem('lock.locktime', 'invalid', `locktime ${l.locktime} leaves no dispute window: at least ${want.minLocktime}`));
  if (l.refund.length !== 1 || xOnlyKey(l.refund[0]) !== buyer) out.push(problem('lock.refund', 'mismatch', 'refund must be [buyer]'));
  if (l.nSigsRefund !== undefined && l.nSigsRefund !== 1) out.push(problem('lock.n_sigs_refund', 'mismatch', 'n_sigs_refund must be 1'));
  const norm = (u: string) => u.trim().replace(/\/+$/, '');
  if (want.mints && !want.mints.map(norm).includes(esc.mint)) out.push(problem('mint', 'unexpected', `mint ${esc.mint} is not trusted`));
  if (esc.unit !== (want.unit ?? 'sat')) out.push(problem('unit', 'mismatch', `unit must be ${want.unit ?? 'sat'}, got ${esc.unit}`));
  if (want.minAmount !== undefined && esc.amount < want.minAmount) out.push(problem('amount', 'invalid', `the escrow holds ${esc.amount} ${esc.unit}, at least ${want.minAmount} needed`));
  return verification(out);
}

/** The SIG_ALL digest of a package, as signers sign it (hex). */
export function escrowPackageDigest(pkg: EscrowPackage): string {
  const p = SigAll.deserializePackage(pkg.raw);
  return SigAll.computeDigests(p.inputs, p.outputs, p.quote).v0;
}

/** Payment keys (x-only hex) that produced a valid signature over the package's digest. */
export function escrowPackageSigners(pkg: EscrowPackage, candidates: readonly string[]): string[] {
  const digest = hexToBytes(escrowPackageDigest(pkg));
  const out: string[] = [];
  for (const k of candidates.map(xOnlyKey)) {
    if (!/^[0-9a-f]{64}$/.test(k)) continue;
    if (pkg.signatures.some((s) => isHex(s, 64) && safeVerify(s, digest, k))) out.push(k);
  }
  return out;
}

function safeVerify(sig: string, digest: Uint8Array, pubkey: string): boolean {
  try {
    return schnorr.verify(hexToBytes(sig), digest, hexToBytes(pubkey));
  } catch {
    return false;
  }
}

/**
 * A claim or release answers this escrow: its inputs are exactly the escrow's proofs, and it
 * carries valid signatures by every key in `signedBy` (a claim: the provider; a release: the
 * provider and the buyer or the arbiter).
 */
export function verifyEscrowPackage(pkg: EscrowPackage, esc: EscrowToken, signedBy: readonly string[]): Verification {
  const out: Problem[] = [];
  const want = [...esc.secrets].sort().join('\n');
  const got = pkg.inputs.map((i) => i.secret).sort().join('\n');
  if (want !== got) out.push(problem('package.inputs', 'mismatch', 'the package does not spend exactly the escrow proofs'));
  const signers = new Set(escrowPackageSigners(pkg, signedBy));
  for (const k of signedBy.map(xOnlyKey)) if (!signers.has(k)) out.push(problem('package.witness', 'missing', `no valid signature by ${k}`));
  return verification(out);
}
