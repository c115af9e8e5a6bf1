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
import { readEscrowToken, verifyEscrowLock } from '@bazaar/dvm-kinds/market/escrow';

// The tags and the lock format are specified in dvm-kinds (market/escrow.ts): one definition
// for buyer, provider, arbiter and the relay's index.
export { ESCROW_CLAIM_TAG, ESCROW_RELEASE_TAG, ESCROW_TAG } from '@bazaar/dvm-kinds/market/escrow';

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
    const esc = readEscrowToken(token);
    if (!esc.ok) return { problems: esc.errors.map((p) => p.message) };
    const { mint, lock } = esc.value;
    if (!this.#mints.includes(mint)) return { problems: [`mint ${mint} is not trusted by this provider (trusted: ${this.#mints.join(', ')})`] };
    // The buyer is the refund key; the arbiter is the other signer.
    const buyer = lock.refund[0];
    const arbiter = lock.pubkeys.find((k) => xonly(k) !== xonly(buyer ?? ''));
    if (!buyer || !arbiter) return { problems: ['the token is not locked to [buyer, arbiter] with a refund to the buyer (NUT-11 pubkeys, refund)'] };
    const minLock = Math.floor(Date.now() / 1000) + timeLimitSecs + this.#disputeWindowSecs;
    const priceSats = Math.ceil(priceMsats / 1000);
    const v = verifyEscrowLock(esc.value, { provider: this.#paymentPubkey, buyer, arbiters: [...this.#arbiters], minLocktime: minLock, mints: this.#mints });
    const problems = v.problems.map((p) => (p.path === 'lock.pubkeys' && p.code === 'unexpected' ? `arbiter ${arbiter} is not one this provider trusts` : p.path === 'lock.locktime' ? `${p.message} (now + time limit + ${this.#disputeWindowSecs}s)` : p.message));
    if (problems.length) return { problems };
    const wallet = await this.#wallet(mint);
    const locktime = lock.locktime!;
    const terms = { price: priceSats, provider: this.#paymentPubkey, buyer, arbiter, locktime };
    try {
      const c = await checkEscrow(wallet, token, terms);
      if (!c.ok) return { problems: c.problems };
    } catch (err) {
      return { problems: [(err as Error).message] };
    }
    return { problems: [], ref: { token, mint, priceSats, buyer, arbiter, locktime } };
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
