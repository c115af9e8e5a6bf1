// Escrow terms (DESIGN §4) on the provider side, over agents-common's escrow primitives:
// before work, the request's P2PK-locked Cashu token is checked (trusted mint, lock to our
// payment key with [buyer, trusted arbiter], n_sigs 2, SIG_ALL, refund to the buyer, a
// locktime that leaves the dispute window, DLEQ, value, unspent at the mint); with the
// result goes our half-signed claim (a SIG_ALL package to our own fresh outputs); once the
// buyer (receipt) or the arbiter (verdict) returns it co-signed, we redeem at the mint.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CashuWallet } from '@bazaar/agents-common/wallet/cashu';
import { checkEscrow, prepareClaim, redeemClaim, signClaim } from '@bazaar/agents-common/wallet/escrow';
import type { Identity } from '@bazaar/agents-common/identity/keystore';

/** Tag carrying the locked token in the request: `["escrow", "<cashuB…>"]`. */
export const ESCROW_TAG = 'escrow';
/** Tag carrying our signed claim package in the result: `["escrow_claim", "<sigallA…>"]`. */
export const ESCROW_CLAIM_TAG = 'escrow_claim';
/** Tag carrying the co-signed package back, on the buyer's receipt or the arbiter's verdict. */
export const ESCROW_RELEASE_TAG = 'escrow_release';

export interface EscrowRef {
  readonly token: string;
  readonly mint: string;
  readonly priceSats: number;
  readonly buyer: string;
  readonly arbiter: string;
  readonly locktime: number;
  readonly claimId?: string;
}

const xonly = (k: string): string => k.slice(-64).toLowerCase();

/** The lock of the token's first proof, read without trusting it (checkEscrow re-checks every proof). */
function readLock(wallet: CashuWallet, token: string): { buyer?: string; arbiter?: string; locktime?: number } {
  try {
    const decoded = wallet.wallet.decodeToken(token.trim());
    const body = (JSON.parse(decoded.proofs[0].secret) as [string, { tags?: string[][] }])[1];
    const tags = body.tags ?? [];
    const pubkeys = tags.find((t) => t[0] === 'pubkeys')?.slice(1) ?? [];
    const lt = Number(tags.find((t) => t[0] === 'locktime')?.[1]);
    return { buyer: pubkeys[0], arbiter: pubkeys[1], ...(Number.isSafeInteger(lt) ? { locktime: lt } : {}) };
  } catch {
    return {};
  }
}

export class EscrowDesk {
  readonly #wallets = new Map<string, Promise<CashuWallet>>();
  readonly #dir: string;
  readonly #log: Logger;
  readonly #secretHex: string;
  readonly #paymentPubkey: string;
  readonly #mints: readonly string[];
  readonly #arbiters: Set<string>;
  readonly #disputeWindowSecs: number;

  constructor(o: { dataDir: string; logger: Logger; identity: Identity; mints: readonly string[]; arbiters: readonly string[]; disputeWindowSecs: number }) {
    this.#dir = join(o.dataDir, 'cashu');
    this.#log = o.logger;
    this.#secretHex = bytesToHex(o.identity.paymentSecretKey);
    this.#paymentPubkey = '02' + xonly(o.identity.paymentPubkey);
    this.#mints = o.mints.map((m) => m.replace(/\/+$/, ''));
    this.#arbiters = new Set(o.arbiters.map(xonly));
    this.#disputeWindowSecs = o.disputeWindowSecs;
  }

  #wallet(mint: string): Promise<CashuWallet> {
    let w = this.#wallets.get(mint);
    if (!w) {
      const i = this.#mints.indexOf(mint);
      w = CashuWallet.open({ mintUrl: mint, dataDir: join(this.#dir, `mint-${i}`), logger: this.#log.child({ mint }) });
      w.catch(() => this.#wallets.delete(mint));
      this.#wallets.set(mint, w);
    }
    return w;
  }

  /** Everything wrong with the escrow for a job costing at most `priceMsats` and running up to `timeLimitSecs`; [] when acceptable. */
  async check(token: string, priceMsats: number, timeLimitSecs: number): Promise<{ problems: string[]; ref?: EscrowRef }> {
    if (!this.#mints.length) return { problems: ['this provider trusts no mint'] };
    let mint: string;
    try {
      mint = (await this.#anyWallet()).wallet.decodeToken(token.trim()).mint.replace(/\/+$/, '');
    } catch {
      return { problems: ['the escrow tag does not hold a Cashu token'] };
    }
    if (!this.#mints.includes(mint)) return { problems: [`mint ${mint} is not trusted by this provider (trusted: ${this.#mints.join(', ')})`] };
    const wallet = await this.#wallet(mint);
    const lock = readLock(wallet, token);
    const problems: string[] = [];
    if (!lock.buyer || !lock.arbiter) return { problems: ['the token is not locked to [buyer, arbiter] (NUT-11 pubkeys)'] };
    if (!this.#arbiters.has(xonly(lock.arbiter))) problems.push(`arbiter ${lock.arbiter} is not one this provider trusts`);
    const minLock = Math.floor(Date.now() / 1000) + timeLimitSecs + this.#disputeWindowSecs;
    if (lock.locktime === undefined || lock.locktime < minLock) problems.push(`locktime ${lock.locktime ?? 'missing'} leaves no dispute window: at least ${minLock} (now + time limit + ${this.#disputeWindowSecs}s)`);
    const priceSats = Math.ceil(priceMsats / 1000);
    if (problems.length) return { problems };
    const terms = { price: priceSats, provider: this.#paymentPubkey, buyer: lock.buyer, arbiter: lock.arbiter, locktime: lock.locktime! };
    try {
      const c = await checkEscrow(wallet, token, terms);
      if (!c.ok) return { problems: c.problems };
    } catch (err) {
      return { problems: [(err as Error).message] };
    }
    return { problems: [], ref: { token, mint, priceSats, buyer: lock.buyer, arbiter: lock.arbiter, locktime: lock.locktime! } };
  }

  async #anyWallet(): Promise<CashuWallet> {
    return this.#wallet(this.#mints[0]);
  }

  /** Our half of the release: a claim to our outputs, signed with our payment key. Durable in the Cashu wallet. */
  async prepare(ref: EscrowRef): Promise<{ claimId: string; signedPackage: string }> {
    const wallet = await this.#wallet(ref.mint);
    const claim = await prepareClaim(wallet, ref.token);
    return { claimId: claim.claimId, signedPackage: signClaim(claim.package, this.#secretHex) };
  }

  /** Redeem with the co-signed package from the buyer or the arbiter; returns sats received. */
  async redeem(ref: EscrowRef, signedPackage: string): Promise<number> {
    if (!ref.claimId) throw new Error('no claim prepared for this escrow');
    const wallet = await this.#wallet(ref.mint);
    return redeemClaim(wallet, ref.claimId, [signedPackage], this.#secretHex);
  }

  async close(): Promise<void> {
    for (const w of this.#wallets.values()) await (await w.catch(() => undefined))?.close();
  }
}
