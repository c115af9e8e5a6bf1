// The agent's wallet: one object holding the payment rails an agent is configured with.
// Lightning goes through NWC (lightning.ts); the Cashu side (cashu.ts, escrow.ts) is
// attached here by its own options. Either rail is optional: an agent without a
// configured rail gets a clear error when it tries to use it.
import type { Logger } from 'pino';
import { LightningWallet, type LightningWalletOptions } from './lightning.ts';

export interface WalletOptions {
  readonly logger: Logger;
  /** Lightning through Nostr Wallet Connect. */
  readonly lightning?: Omit<LightningWalletOptions, 'logger'>;
}

export class Wallet {
  private readonly ln: LightningWallet | undefined;

  private constructor(ln: LightningWallet | undefined) {
    this.ln = ln;
  }

  static async open(opts: WalletOptions): Promise<Wallet> {
    const ln = opts.lightning ? await LightningWallet.connect({ ...opts.lightning, logger: opts.logger.child({ rail: 'lightning' }) }) : undefined;
    return new Wallet(ln);
  }

  get hasLightning(): boolean {
    return this.ln !== undefined;
  }

  /** The Lightning rail; throws if the agent has no NWC connection configured. */
  get lightning(): LightningWallet {
    if (!this.ln) throw new Error('no Lightning wallet configured (give the agent a nostr+walletconnect:// URI)');
    return this.ln;
  }

  async close(): Promise<void> {
    this.ln?.close();
  }
}
