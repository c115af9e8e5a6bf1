// The agent's wallet: one object holding the payment rails an agent is configured with.
// Lightning goes through NWC (lightning.ts); the Cashu side (cashu.ts, escrow.ts) is
// attached here by its own options. Either rail is optional: an agent without a
// configured rail gets a clear error when it tries to use it.
import type { Logger } from 'pino';
import { LightningWallet, type LightningWalletOptions } from './lightning.ts';
import { CashuWallet, type CashuWalletOptions } from './cashu.ts';

export interface WalletOptions {
  readonly logger: Logger;
  /** Lightning through Nostr Wallet Connect. */
  readonly lightning?: Omit<LightningWalletOptions, 'logger'>;
  /** Cashu ecash at one mint, proofs in LMDB under `dataDir`. */
  readonly cashu?: Omit<CashuWalletOptions, 'logger'>;
}

export class Wallet {
  private readonly ln: LightningWallet | undefined;
  private readonly ecash: CashuWallet | undefined;

  private constructor(ln: LightningWallet | undefined, ecash: CashuWallet | undefined) {
    this.ln = ln;
    this.ecash = ecash;
  }

  static async open(opts: WalletOptions): Promise<Wallet> {
    const ln = opts.lightning ? await LightningWallet.connect({ ...opts.lightning, logger: opts.logger.child({ rail: 'lightning' }) }) : undefined;
    let ecash: CashuWallet | undefined;
    try {
      ecash = opts.cashu ? await CashuWallet.open({ ...opts.cashu, logger: opts.logger.child({ rail: 'cashu' }) }) : undefined;
    } catch (err) {
      await ln?.close();
      throw err;
    }
    return new Wallet(ln, ecash);
  }

  get hasLightning(): boolean {
    return this.ln !== undefined;
  }

  /** The Lightning rail; throws if the agent has no NWC connection configured. */
  get lightning(): LightningWallet {
    if (!this.ln) throw new Error('no Lightning wallet configured (give the agent a nostr+walletconnect:// URI)');
    return this.ln;
  }

  get hasCashu(): boolean {
    return this.ecash !== undefined;
  }

  /** The Cashu rail (see escrow.ts for escrow over it); throws if no mint is configured. */
  get cashu(): CashuWallet {
    if (!this.ecash) throw new Error('no Cashu wallet configured (give the agent a mint URL and a data directory)');
    return this.ecash;
  }

  async close(): Promise<void> {
    await this.ln?.close();
    await this.ecash?.close();
  }
}
