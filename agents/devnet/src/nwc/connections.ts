// NWC connections of the devnet wallet service, in LMDB. Each connection has its own
// wallet-service key (NIP-47: the wallet pubkey SHOULD be unique per connection) and is
// bound to one Lightning account and one client pubkey. The client secret is generated
// here, returned once inside the connection URI and never stored (NIP-47: the service
// SHOULD NOT store it). The wallet-service secrets are stored: this is a dev network.
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { bytesToHex } from '@noble/hashes/utils.js';

export const NWC_DB_VERSION = 1;

export const BUDGET_RENEWALS = ['never', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type BudgetRenewal = (typeof BUDGET_RENEWALS)[number];

/** NIP-47 methods this wallet service implements. */
export const NWC_METHODS = [
  'pay_invoice', 'multi_pay_invoice', 'pay_keysend', 'multi_pay_keysend',
  'get_balance', 'get_budget', 'get_info', 'make_invoice', 'lookup_invoice', 'list_transactions',
] as const;
export type NwcMethod = (typeof NWC_METHODS)[number];
export const NWC_NOTIFICATIONS = ['payment_received', 'payment_sent'] as const;

export interface ConnectionRecord {
  readonly walletPubkey: string;
  /** Hex secret key of this connection's wallet-service identity (dev network: stored at rest). */
  readonly walletSecret: string;
  readonly clientPubkey: string;
  readonly account: string;
  readonly name: string;
  /** Unix seconds. */
  readonly createdAt: number;
  /** Methods this connection may call (a subset of NWC_METHODS). */
  readonly methods: readonly NwcMethod[];
  /** Spending budget in msat over `budgetRenewal`; absent = unlimited (up to the balance). */
  readonly maxAmountMsat?: number;
  readonly budgetRenewal: BudgetRenewal;
  readonly revoked?: boolean;
}

export type ConnectionInfo = Omit<ConnectionRecord, 'walletSecret'>;

export interface NewConnection {
  readonly connection: ConnectionInfo;
  /** `nostr+walletconnect://` URI holding the client secret. Secret: show once, store 0600, never log. */
  readonly uri: string;
}

export interface CreateConnectionOptions {
  readonly account: string;
  readonly name?: string;
  readonly relayUrls: readonly string[];
  readonly methods?: readonly NwcMethod[];
  readonly maxAmountMsat?: number;
  readonly budgetRenewal?: BudgetRenewal;
  readonly lud16?: string;
}

export function buildNwcUri(walletPubkey: string, relayUrls: readonly string[], clientSecretHex: string, lud16?: string): string {
  const q = relayUrls.map((r) => `relay=${encodeURIComponent(r)}`);
  q.push(`secret=${clientSecretHex}`);
  if (lud16) q.push(`lud16=${encodeURIComponent(lud16)}`);
  return `nostr+walletconnect://${walletPubkey}?${q.join('&')}`;
}

export class ConnectionStore {
  private readonly root: RootDatabase;
  private readonly meta: Database<unknown, string>;
  private readonly conns: Database<ConnectionRecord, string>;
  private readonly listeners = new Set<() => void>();

  private constructor(path: string) {
    this.root = openLmdb({ path, compression: false });
    this.meta = this.root.openDB({ name: 'meta' });
    this.conns = this.root.openDB({ name: 'connections' });
    const v = this.meta.get('version');
    if (v === undefined) this.meta.putSync('version', NWC_DB_VERSION);
    else if (v !== NWC_DB_VERSION) {
      void this.root.close();
      throw new Error(`NWC connection store at ${path} has format version ${String(v)}, this build reads version ${NWC_DB_VERSION}`);
    }
  }

  static open(opts: { path: string }): ConnectionStore {
    return new ConnectionStore(opts.path);
  }

  create(opts: CreateConnectionOptions): NewConnection {
    if (!opts.relayUrls.length) throw new Error('a connection needs at least one relay URL');
    for (const r of opts.relayUrls) {
      if (!/^wss?:\/\//.test(r)) throw new Error(`relay URL must start with ws:// or wss://, got ${JSON.stringify(r)}`);
    }
    const methods = opts.methods ?? NWC_METHODS;
    for (const m of methods) if (!NWC_METHODS.includes(m)) throw new Error(`unknown NWC method ${JSON.stringify(m)}`);
    if (opts.maxAmountMsat !== undefined && (!Number.isSafeInteger(opts.maxAmountMsat) || opts.maxAmountMsat < 0)) {
      throw new Error('maxAmountMsat must be a non-negative integer');
    }
    const walletSk = generateSecretKey();
    const clientSk = generateSecretKey();
    const rec: ConnectionRecord = {
      walletPubkey: getPublicKey(walletSk),
      walletSecret: bytesToHex(walletSk),
      clientPubkey: getPublicKey(clientSk),
      account: opts.account,
      name: opts.name ?? 'default',
      createdAt: Math.floor(Date.now() / 1000),
      methods: [...methods],
      ...(opts.maxAmountMsat !== undefined ? { maxAmountMsat: opts.maxAmountMsat } : {}),
      budgetRenewal: opts.budgetRenewal ?? 'never',
    };
    this.conns.putSync(rec.walletPubkey, rec);
    this.emitChange();
    return { connection: info(rec), uri: buildNwcUri(rec.walletPubkey, opts.relayUrls, bytesToHex(clientSk), opts.lud16) };
  }

  /** The full record (with the wallet secret) for the service; undefined if unknown. */
  get(walletPubkey: string): ConnectionRecord | undefined {
    return this.conns.get(walletPubkey);
  }

  list(opts: { account?: string; includeRevoked?: boolean } = {}): ConnectionInfo[] {
    return this.records(opts).map(info);
  }

  /** Active records with secrets, for the service. */
  records(opts: { account?: string; includeRevoked?: boolean } = {}): ConnectionRecord[] {
    const out: ConnectionRecord[] = [];
    for (const { value } of this.conns.getRange()) {
      if (opts.account !== undefined && value.account !== opts.account) continue;
      if (value.revoked && !opts.includeRevoked) continue;
      out.push(value);
    }
    return out;
  }

  revoke(walletPubkey: string): boolean {
    const rec = this.conns.get(walletPubkey);
    if (!rec || rec.revoked) return false;
    this.conns.putSync(walletPubkey, { ...rec, revoked: true });
    this.emitChange();
    return true;
  }

  /** In-process change notification (other processes are noticed by polling `records()`). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emitChange(): void {
    for (const l of [...this.listeners]) l();
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.root.close();
  }
}

function info(rec: ConnectionRecord): ConnectionInfo {
  const { walletSecret: _s, ...rest } = rec;
  void _s;
  return rest;
}
