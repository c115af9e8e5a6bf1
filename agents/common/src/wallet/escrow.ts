// Cashu escrow for pay-after-verify jobs (DESIGN §4), over NUT-11 P2PK with SIG_ALL:
// the buyer locks the price to data = provider, pubkeys = [buyer, arbiter], n_sigs = 2,
// locktime = deadline + dispute window, refund = [buyer]. Any two of the three release
// it to a claimant's outputs; after the locktime the buyer alone may take it back (and
// two of three still can). SIG_ALL signs the claimant's outputs, so a signature given
// for one claim cannot be moved onto someone else's outputs.
import { SigAll, type SigAllSigningPackage } from '@cashu/cashu-ts';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CashuWallet, CashuWalletError, sumJson, toProofJson, type ProofJson } from './cashu.ts';

export interface EscrowTerms {
  /** Sats the claimant must receive after the mint's input fee. */
  readonly price: number;
  /** Payment keys, "02" + x-only hex. */
  readonly provider: string;
  readonly buyer: string;
  readonly arbiter: string;
  /** Unix seconds: job deadline + dispute window. */
  readonly locktime: number;
}

export interface LockedEscrow {
  readonly token: string;
  readonly proofs: ProofJson[];
  /** Sats locked (price + the claimant's input fee). */
  readonly amount: number;
  readonly terms: EscrowTerms;
}

export interface EscrowCheck {
  readonly ok: boolean;
  readonly problems: string[];
  readonly amount: number;
  readonly proofs: ProofJson[];
}

export interface PreparedClaim {
  /** Id of the claimant's durable claim operation. */
  readonly claimId: string;
  /** Serialized SigAllSigningPackage ("sigallA…") to pass to co-signers. */
  readonly package: string;
}

// "02" + x-only per DESIGN §4; "03…" (a compressed key with odd y, as some key stores print
// it) names the same x-only key under NUT-11 and is accepted, then written as "02" + x.
const PAYMENT_KEY = /^0[23][0-9a-f]{64}$/;

/** A fresh payment key: secret hex and public key "02" + x-only (separate from Nostr identity keys). */
export function newPaymentKey(): { secretKey: string; pubkey: string } {
  const sk = schnorr.utils.randomSecretKey();
  return { secretKey: bytesToHex(sk), pubkey: paymentPubkey(bytesToHex(sk)) };
}

export function paymentPubkey(secretKeyHex: string): string {
  return '02' + bytesToHex(schnorr.getPublicKey(hexToBytes(secretKeyHex)));
}

const xonly = (k: string): string => k.slice(-64).toLowerCase();
const as02 = (k: string): string => '02' + xonly(k);
const tagKey = (id: string): string => `escrow:${id}`;

function validateTerms(t: EscrowTerms): void {
  if (!Number.isSafeInteger(t.price) || t.price <= 0) throw new CashuWalletError('escrow price must be a positive integer of sats');
  for (const [name, k] of [['provider', t.provider], ['buyer', t.buyer], ['arbiter', t.arbiter]] as const) {
    if (!PAYMENT_KEY.test(k)) throw new CashuWalletError(`${name} payment key must be "02" + 64 lowercase hex (x-only public key)`);
  }
  if (new Set([t.provider, t.buyer, t.arbiter].map(xonly)).size !== 3) throw new CashuWalletError('provider, buyer and arbiter keys must differ');
  if (!Number.isSafeInteger(t.locktime) || t.locktime <= 0) throw new CashuWalletError('locktime must be a unix time in seconds');
}

/** Smallest amount whose power-of-two split, minus the input fee for those proofs, covers `price`. */
export function amountWithClaimFee(price: number, inputFeePpk: number): number {
  let amount = price;
  for (let i = 0; i < 64; i++) {
    const proofs = amount.toString(2).split('').filter((b) => b === '1').length;
    const fee = Math.ceil((proofs * inputFeePpk) / 1000);
    if (amount - fee >= price) return amount;
    amount = price + fee;
  }
  throw new CashuWalletError('cannot size the escrow with its fee');
}

/** Buyer: locks price + claim fee under the escrow terms. The locked proofs are kept, tagged, for a refund. */
export async function lockEscrow(wallet: CashuWallet, terms: EscrowTerms & { readonly id?: string; readonly jobId?: string }): Promise<LockedEscrow> {
  validateTerms(terms);
  const amount = amountWithClaimFee(terms.price, wallet.inputFeePpk());
  const { token, proofs } = await wallet.send(amount, {
    includeFees: false,
    // The lock is a spend: the wallet's limits (per job with `jobId`) apply before the mint is called.
    ...(terms.jobId !== undefined ? { jobId: terms.jobId } : {}),
    tag: tagKey(terms.id ?? `${xonly(terms.provider).slice(0, 16)}-${terms.locktime}`),
    p2pk: {
      pubkey: [terms.provider, terms.buyer, terms.arbiter].map(as02),
      requiredSignatures: 2,
      locktime: terms.locktime,
      refundKeys: [as02(terms.buyer)],
      sigFlag: 'SIG_ALL',
    },
  });
  return { token, proofs, amount, terms };
}

function lockOf(p: ProofJson): number {
  try {
    const body = (JSON.parse(p.secret) as [unknown, { tags?: string[][] }])[1];
    const lt = Number(body?.tags?.find((x) => x[0] === 'locktime')?.[1]);
    return Number.isSafeInteger(lt) && lt > 0 ? lt : Infinity;
  } catch {
    return Infinity;
  }
}

function decodeEscrow(wallet: CashuWallet, tokenOrProofs: string | readonly ProofJson[]): ProofJson[] {
  if (typeof tokenOrProofs !== 'string') return tokenOrProofs.map((p) => toProofJson(p));
  const decoded = wallet.decodeToken(tokenOrProofs);
  if (decoded.mint !== wallet.mintUrl) throw new CashuWalletError(`escrow is on mint ${decoded.mint}, expected ${wallet.mintUrl}`);
  return decoded.proofs;
}

function lockProblems(p: ProofJson, t: EscrowTerms): string[] {
  const problems: string[] = [];
  let secret: unknown;
  try {
    secret = JSON.parse(p.secret);
  } catch {
    return ['proof is not locked (plain secret)'];
  }
  if (!Array.isArray(secret) || secret[0] !== 'P2PK' || typeof secret[1] !== 'object' || secret[1] === null) return ['proof is not a P2PK lock'];
  const body = secret[1] as { data?: unknown; tags?: unknown };
  const tags = new Map<string, string[]>();
  for (const tag of Array.isArray(body.tags) ? (body.tags as unknown[]) : []) {
    if (!Array.isArray(tag) || typeof tag[0] !== 'string') return ['malformed tags'];
    if (tags.has(tag[0])) problems.push(`tag ${tag[0]} repeated`);
    tags.set(tag[0], tag.slice(1) as string[]);
  }
  if (typeof body.data !== 'string' || xonly(body.data) !== xonly(t.provider)) problems.push('data is not the provider key');
  const pubkeys = (tags.get('pubkeys') ?? []).map(xonly).sort();
  if (pubkeys.join() !== [t.buyer, t.arbiter].map(xonly).sort().join()) problems.push('pubkeys are not [buyer, arbiter]');
  if (tags.get('n_sigs')?.[0] !== '2') problems.push('n_sigs is not 2');
  if (tags.get('sigflag')?.[0] !== 'SIG_ALL') problems.push('sigflag is not SIG_ALL');
  if (Number(tags.get('locktime')?.[0]) !== t.locktime) problems.push(`locktime is not ${t.locktime}`);
  const refund = (tags.get('refund') ?? []).map(xonly);
  if (refund.length !== 1 || refund[0] !== xonly(t.buyer)) problems.push('refund is not [buyer]');
  const nRefund = tags.get('n_sigs_refund')?.[0];
  if (nRefund !== undefined && nRefund !== '1') problems.push('n_sigs_refund is not 1');
  return problems;
}

/**
 * Provider, before starting work: the lock terms are exactly the agreed ones, every
 * proof carries a valid DLEQ (the mint really signed it), the value covers the price
 * after the claim fee, and the mint reports every proof unspent.
 */
export async function checkEscrow(wallet: CashuWallet, tokenOrProofs: string | readonly ProofJson[], terms: EscrowTerms): Promise<EscrowCheck> {
  validateTerms(terms);
  const proofs = decodeEscrow(wallet, tokenOrProofs);
  const problems: string[] = [];
  if (!proofs.length) problems.push('escrow has no proofs');
  const firstTags = proofs[0] ? JSON.stringify((JSON.parse(proofs[0].secret.startsWith('[') ? proofs[0].secret : '[0,{}]') as [unknown, { data?: unknown; tags?: unknown }])[1]?.tags ?? null) : '';
  proofs.forEach((p, i) => {
    for (const pr of lockProblems(p, terms)) problems.push(`proof ${i}: ${pr}`);
    try {
      const body = (JSON.parse(p.secret) as [unknown, { tags?: unknown }])[1];
      if (JSON.stringify(body?.tags ?? null) !== firstTags) problems.push(`proof ${i}: tags differ from proof 0 (SIG_ALL needs identical locks)`);
    } catch {
      /* reported by lockProblems */
    }
    if (!wallet.verifyDleq(p)) problems.push(`proof ${i}: missing or invalid DLEQ proof`);
  });
  const amount = sumJson(proofs);
  if (proofs.length) {
    let fee = 0;
    try {
      fee = wallet.fee(proofs);
    } catch (err) {
      problems.push(`unknown keyset: ${(err as Error).message}`);
    }
    if (amount - fee < terms.price) problems.push(`escrow holds ${amount} sat, ${amount - fee} after the claim fee; the price is ${terms.price}`);
    if (!problems.length) {
      const states = await wallet.checkStates(proofs);
      states.forEach((s, i) => {
        if (s !== 'UNSPENT') problems.push(`proof ${i} is ${s}`);
      });
    }
  }
  return { ok: problems.length === 0, problems, amount, proofs };
}

/** Claimant (provider on release, winner of a dispute, buyer on refund): a SIG_ALL package to its own fresh outputs. */
export async function prepareClaim(wallet: CashuWallet, tokenOrProofs: string | readonly ProofJson[]): Promise<PreparedClaim> {
  const proofs = decodeEscrow(wallet, tokenOrProofs);
  const claim = await wallet.prepareClaim(proofs, 'claim');
  return { claimId: claim.claimId, package: SigAll.serializePackage(claim.package) };
}

/**
 * Co-signer: signs a claim package. With `escrow`, refuses a package whose inputs are not
 * exactly those escrow proofs (a signer must know what it releases).
 */
export function signClaim(pkg: string, secretKey: string, escrow?: readonly ProofJson[]): string {
  let parsed: SigAllSigningPackage;
  try {
    parsed = SigAll.deserializePackage(pkg);
  } catch (err) {
    throw new CashuWalletError(`not a signing package: ${(err as Error).message}`);
  }
  if (parsed.type !== 'swap') throw new CashuWalletError('only swap claims are signed');
  if (escrow) {
    const want = escrow.map((p) => `${p.secret}|${p.C}`).sort().join('\n');
    const got = parsed.inputs.map((p) => `${p.secret}|${p.C}`).sort().join('\n');
    if (want !== got) throw new CashuWalletError('package inputs are not the escrow proofs');
  }
  return SigAll.serializePackage(SigAll.signPackage(parsed, secretKey));
}

/** Claimant: merges co-signatures (its own key signs too, if given) and redeems into its purse. */
export async function redeemClaim(wallet: CashuWallet, claimId: string, signedPackages: readonly string[], ownSecretKey?: string): Promise<number> {
  const base = wallet.claimPackage(claimId);
  if (!base) throw new CashuWalletError(`no pending claim ${claimId}`);
  const signatures = new Set<string>();
  const digest = SigAll.computeDigests(base.inputs, base.outputs).v0;
  for (const s of signedPackages) {
    const p = SigAll.deserializePackage(s);
    // A package for other outputs is useless here; refuse it instead of failing at the mint.
    if (p.type !== 'swap' || SigAll.computeDigests(p.inputs, p.outputs).v0 !== digest) throw new CashuWalletError('a signed package is for a different transaction than this claim');
    for (const sig of p.witness?.signatures ?? []) signatures.add(sig);
  }
  let pkg: SigAllSigningPackage = { ...base, witness: { signatures: [...signatures] } };
  if (ownSecretKey) pkg = SigAll.signPackage(pkg, ownSecretKey);
  return wallet.completeClaim(claimId, pkg);
}

/** Buyer, after the locktime: takes the escrow back with the refund key alone. */
export async function refundAfterLocktime(wallet: CashuWallet, tokenOrProofs: string | readonly ProofJson[], buyerSecretKey: string): Promise<number> {
  const proofs = decodeEscrow(wallet, tokenOrProofs);
  const locktime = Math.max(...proofs.map(lockOf));
  // A clear local answer first (the wallet clock); the mint's clock still decides.
  if (Number.isFinite(locktime) && wallet.now() < locktime) throw new CashuWalletError(`escrow locktime ${locktime} not reached (${locktime - wallet.now()} s left)`);
  const claim = await prepareClaim(wallet, proofs);
  return redeemClaim(wallet, claim.claimId, [], buyerSecretKey);
}
