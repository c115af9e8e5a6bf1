// The mint's durable state in one LMDB environment: the seed and keysets, proof states
// by Y, blind signatures by B_ (NUT-09 restore, "outputs already signed"), mint and
// melt quotes, and a ledger of totals for the conservation invariant. Every state
// change that must be atomic (check-unspent-and-mark) runs in one transactionSync.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';

export const STORE_VERSION = 1;

export interface KeysetRecord {
  readonly id: string;
  readonly unit: string;
  readonly index: number;
  readonly inputFeePpk: number;
  active: boolean;
  readonly createdAt: number;
}

export type ProofStateName = 'SPENT' | 'PENDING';
export interface ProofRecord {
  readonly state: ProofStateName;
  readonly amount: number;
  readonly keysetId: string;
  readonly witness?: string | null;
  /** Melt quote holding a PENDING proof. */
  readonly quote?: string;
  readonly at: number;
}

export interface SignatureRecord {
  readonly amount: number;
  readonly id: string;
  readonly C_: string;
  readonly dleq: { readonly e: string; readonly s: string };
}

export type MintQuoteState = 'UNPAID' | 'PAID' | 'ISSUED';
export interface MintQuoteRecord {
  readonly quote: string;
  readonly request: string;
  readonly paymentHash: string;
  readonly amount: number;
  readonly unit: string;
  readonly state: MintQuoteState;
  readonly expiry: number;
  readonly createdAt: number;
  /** Paid internally by a melt of this mint (no Lightning involved). */
  readonly internal?: boolean;
  /** NUT-20: minting needs a signature by this key. */
  readonly pubkey?: string;
  readonly updatedAt?: number;
}

export type MeltQuoteState = 'UNPAID' | 'PENDING' | 'PAID';
export interface MeltQuoteRecord {
  readonly quote: string;
  readonly request: string;
  readonly paymentHash: string;
  readonly amount: number;
  readonly unit: string;
  readonly feeReserve: number;
  readonly state: MeltQuoteState;
  readonly expiry: number;
  readonly createdAt: number;
  readonly paymentPreimage?: string | null;
  readonly feePaid?: number;
  readonly change?: readonly SignatureRecord[];
  /** Set when the invoice belongs to one of our own mint quotes. */
  readonly internalMintQuote?: string;
  /** While PENDING: what finishing the melt needs, so a restart can settle it. */
  readonly pending?: PendingMelt;
}

export interface PendingMelt {
  readonly ys: readonly string[];
  readonly inputs: readonly { readonly amount: number; readonly keysetId: string; readonly witness: string | null }[];
  readonly total: number;
  readonly inputFee: number;
  /** NUT-08 blank outputs for change. */
  readonly blanks: readonly { readonly amount: number; readonly id: string; readonly B_: string }[];
}

/** Totals in sats. Invariant: lnIn - lnOut == (signed - spent) + feesCollected. */
export interface Ledger {
  lnIn: number;
  lnOut: number;
  signed: number;
  spent: number;
  feesCollected: number;
}

export class MintStore {
  readonly root: RootDatabase;
  readonly meta: Database<unknown, string>;
  readonly keysets: Database<KeysetRecord, string>;
  readonly proofs: Database<ProofRecord, string>;
  readonly signatures: Database<SignatureRecord, string>;
  readonly mintQuotes: Database<MintQuoteRecord, string>;
  readonly meltQuotes: Database<MeltQuoteRecord, string>;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.root = openLmdb({ path: join(dataDir, 'mint.lmdb'), maxDbs: 12 });
    this.meta = this.root.openDB({ name: 'meta' });
    this.keysets = this.root.openDB({ name: 'keysets' });
    this.proofs = this.root.openDB({ name: 'proofs' });
    this.signatures = this.root.openDB({ name: 'signatures' });
    this.mintQuotes = this.root.openDB({ name: 'mint-quotes' });
    this.meltQuotes = this.root.openDB({ name: 'melt-quotes' });
    const version = this.meta.get('version');
    if (version === undefined) this.meta.putSync('version', STORE_VERSION);
    else if (version !== STORE_VERSION) throw new Error(`mint store ${dataDir} has version ${String(version)}, this build reads version ${STORE_VERSION}`);
  }

  ledger(): Ledger {
    return { lnIn: 0, lnOut: 0, signed: 0, spent: 0, feesCollected: 0, ...(this.meta.get('ledger') as Partial<Ledger> | undefined) };
  }

  /** Inside a transaction only: adds deltas to the ledger. */
  bumpLedger(delta: Partial<Ledger>): void {
    const l = this.ledger();
    for (const [k, v] of Object.entries(delta) as [keyof Ledger, number][]) l[k] += v;
    this.meta.putSync('ledger', l);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
