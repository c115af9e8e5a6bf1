// The whole dev payment network in one call: the dev Lightning network, its NWC wallet
// service over a relay, and (optionally) the Cashu mint whose Lightning side is an account
// of the same network. Used by `bazaar devnet` and `bazaar up`.
//
// Layout of the data directory:
//   lightning/        LMDB: accounts (with node keys), invoices, payments
//   nwc/              LMDB: NWC connections (with wallet-service keys)
//   connections/      NAME.nwc — a connection URI per account, 0600 (it holds a client secret)
//   mint/             the Cashu mint's own LMDB store
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { accountLightningBackend } from './lightning/account-backend.ts';
import { LightningNetwork, validateAccountName } from './lightning/network.ts';
import { ConnectionStore, type CreateConnectionOptions } from './nwc/connections.ts';
import { startNwcService, type NwcService, type NwcServiceOptions } from './nwc/service.ts';

export const DEFAULT_RELAY_URL = 'ws://127.0.0.1:4869';
export const DEFAULT_MINT_PORT = 3338;
export const MINT_ACCOUNT = 'mint';

export interface DevnetPaths {
  readonly root: string;
  readonly lightning: string;
  readonly nwc: string;
  readonly connections: string;
  readonly mint: string;
}

export function devnetPaths(dataDir: string): DevnetPaths {
  const root = resolve(dataDir);
  return { root, lightning: join(root, 'lightning'), nwc: join(root, 'nwc'), connections: join(root, 'connections'), mint: join(root, 'mint') };
}

/** Where the connection URI of `account` is kept. */
export function connectionFile(paths: DevnetPaths, account: string, name = 'default'): string {
  return join(paths.connections, name === 'default' ? `${account}.nwc` : `${account}.${name}.nwc`);
}

/** Writes a secret file readable by the owner only (directory 0700, file 0600). */
export function writeSecretFile(path: string, content: string): void {
  const dir = resolve(path, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600); // mode is ignored when the file already existed
}

export interface DevnetStores {
  readonly paths: DevnetPaths;
  readonly network: LightningNetwork;
  readonly connections: ConnectionStore;
  close(): Promise<void>;
}

/** Opens the devnet's stores without starting any service (for CLI one-shots). */
export function openDevnetStores(dataDir: string, logger: Logger): DevnetStores {
  const paths = devnetPaths(dataDir);
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  // The LMDB files below hold account node keys and wallet-service secrets.
  chmodSync(paths.root, 0o700);
  const network = LightningNetwork.open({ path: paths.lightning, logger: logger.child({ part: 'lightning' }) });
  let connections: ConnectionStore;
  try {
    connections = ConnectionStore.open({ path: paths.nwc });
  } catch (err) {
    void network.close();
    throw err;
  }
  return {
    paths,
    network,
    connections,
    async close() {
      await connections.close();
      await network.close();
    },
  };
}

export interface AccountConnection {
  readonly account: string;
  /** `nostr+walletconnect://` URI: a secret, never log it. */
  readonly uri: string;
  readonly uriFile: string;
  readonly walletPubkey: string;
  readonly created: boolean;
}

/**
 * Returns a working NWC connection for `account`, creating the account and/or the
 * connection when needed, and keeps its URI in a 0600 file. Idempotent: an existing,
 * unrevoked connection file for a live connection is reused.
 */
export function ensureAccountConnection(
  stores: DevnetStores,
  account: string,
  opts: { relayUrls: readonly string[]; name?: string; fresh?: boolean } & Pick<CreateConnectionOptions, 'maxAmountMsat' | 'budgetRenewal' | 'methods'>,
): AccountConnection {
  validateAccountName(account);
  stores.network.ensureAccount(account);
  const file = connectionFile(stores.paths, account, opts.name);
  if (!opts.fresh && existsSync(file)) {
    const uri = readFileSync(file, 'utf8').trim();
    const walletPubkey = /^nostr\+walletconnect:\/\/([0-9a-f]{64})\?/.exec(uri)?.[1];
    const rec = walletPubkey ? stores.connections.get(walletPubkey) : undefined;
    if (rec && !rec.revoked && rec.account === account) return { account, uri, uriFile: file, walletPubkey: rec.walletPubkey, created: false };
  }
  const { uri, connection } = stores.connections.create({
    account,
    relayUrls: opts.relayUrls,
    ...(opts.name ? { name: opts.name } : {}),
    ...(opts.maxAmountMsat !== undefined ? { maxAmountMsat: opts.maxAmountMsat } : {}),
    ...(opts.budgetRenewal ? { budgetRenewal: opts.budgetRenewal } : {}),
    ...(opts.methods ? { methods: opts.methods } : {}),
  });
  writeSecretFile(file, uri + '\n');
  return { account, uri, uriFile: file, walletPubkey: connection.walletPubkey, created: true };
}

export interface StartDevnetOptions {
  readonly dataDir: string;
  readonly relayUrl?: string;
  readonly logger: Logger;
  /** Start the Cashu mint too (default true) — on `port` (default 3338; 0 = any free port). */
  readonly mint?: false | { readonly port?: number; readonly host?: string; readonly inputFeePpk?: number; readonly name?: string; /** The mint's clock, unix seconds (tests move it past escrow locktimes). */ readonly now?: () => number };
  /** Accounts to create (with a connection URI file each) if missing. */
  readonly accounts?: readonly string[];
  readonly nwc?: Partial<Pick<NwcServiceOptions, 'rateLimit' | 'maxRequestAgeSecs' | 'refreshIntervalMs'>>;
}

export interface RunningDevnet {
  readonly paths: DevnetPaths;
  readonly network: LightningNetwork;
  readonly connections: ConnectionStore;
  readonly nwc: NwcService;
  readonly relayUrl: string;
  /** http://host:port of the Cashu mint, when started. */
  readonly mintUrl?: string;
  /** Account + NWC URI (created if needed; see ensureAccountConnection). */
  account(name: string, opts?: { fundSats?: number; name?: string; fresh?: boolean }): AccountConnection;
  close(): Promise<void>;
}

export async function startDevnet(opts: StartDevnetOptions): Promise<RunningDevnet> {
  const log = opts.logger;
  const relayUrl = opts.relayUrl ?? DEFAULT_RELAY_URL;
  const stores = openDevnetStores(opts.dataDir, log);
  const cleanup: (() => Promise<void>)[] = [() => stores.close()];
  const closeAll = async () => {
    for (const c of cleanup.reverse()) {
      try {
        await c();
      } catch (err) {
        log.error({ err }, 'devnet shutdown step failed');
      }
    }
  };
  try {
    for (const name of opts.accounts ?? []) ensureAccountConnection(stores, name, { relayUrls: [relayUrl] });
    let nwc: NwcService;
    try {
      nwc = await startNwcService({ relayUrls: [relayUrl], network: stores.network, connections: stores.connections, logger: log.child({ part: 'nwc' }), ...opts.nwc });
    } catch (err) {
      throw new Error(`cannot start the NWC wallet service on ${relayUrl} (is the relay running? start it with 'bazaar relay'): ${(err as Error).message}`);
    }
    cleanup.push(() => nwc.close());
    let mintUrl: string | undefined;
    if (opts.mint !== false) {
      const m = opts.mint ?? {};
      stores.network.ensureAccount(MINT_ACCOUNT);
      const { startMint } = await import('./mint/server.ts');
      const mint = await startMint({
        port: m.port ?? DEFAULT_MINT_PORT,
        host: m.host ?? '127.0.0.1',
        dataDir: stores.paths.mint,
        lightning: accountLightningBackend(stores.network, MINT_ACCOUNT),
        ...(m.inputFeePpk !== undefined ? { inputFeePpk: m.inputFeePpk } : {}),
        ...(m.name ? { name: m.name } : {}),
        ...(m.now ? { now: m.now } : {}),
        logger: log.child({ part: 'mint' }),
      });
      cleanup.push(() => mint.close());
      mintUrl = mint.url;
    }
    log.info({ dataDir: stores.paths.root, relayUrl, mintUrl, accounts: stores.network.listAccounts().length }, 'devnet started');
    let closing: Promise<void> | undefined;
    return {
      paths: stores.paths,
      network: stores.network,
      connections: stores.connections,
      nwc,
      relayUrl,
      ...(mintUrl ? { mintUrl } : {}),
      account(name, aopts = {}) {
        const conn = ensureAccountConnection(stores, name, { relayUrls: [relayUrl], ...(aopts.name ? { name: aopts.name } : {}), ...(aopts.fresh ? { fresh: true } : {}) });
        if (aopts.fundSats) stores.network.fund(name, aopts.fundSats * 1000);
        return conn;
      },
      close: () => (closing ??= closeAll().then(() => log.info({}, 'devnet stopped'))),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
