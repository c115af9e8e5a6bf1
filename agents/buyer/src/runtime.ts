// Wiring shared by every `bazaar buyer` command and by programs that want the buyer as it
// runs from the CLI: where things live in the data directory, and the identity, relay pool,
// wallet, sandbox and store a MarketClient needs.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { createKeystoreFile, unlockKeystoreFile, type Identity } from '@bazaar/agents-common/identity/keystore';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { BwrapRunner } from '@bazaar/agents-common/sandbox/bwrap-runner';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { Wallet } from '@bazaar/agents-common/wallet/wallet';
import type { BuyerConfig } from './config.ts';
import { BuyerStore } from './job-store.ts';
import { MarketClient, type BuyerSettings } from './market-client.ts';

export const DEFAULT_DATA_DIR = './data/buyer';

export interface BuyerPaths {
  readonly root: string;
  readonly keys: string;
  readonly config: string;
  readonly db: string;
  readonly wallet: string;
}

export function buyerPaths(dataDir: string, configPath?: string): BuyerPaths {
  const root = resolve(dataDir);
  return { root, keys: join(root, 'keys.json'), config: configPath ? resolve(configPath) : join(root, 'config.jsonc'), db: join(root, 'db'), wallet: join(root, 'wallet') };
}

export interface RunningBuyer {
  readonly client: MarketClient;
  readonly identity: Identity;
  readonly pool: RelayPool;
  readonly wallet: Wallet;
  readonly store: BuyerStore;
  readonly paths: BuyerPaths;
  close(): Promise<void>;
}

/** Unlocks the identity (creating it on first use when `create` is set), connects relays and wallet. */
export async function openBuyer(o: {
  dataDir: string;
  configPath?: string;
  passphrase: string;
  config: BuyerConfig;
  logger: Logger;
  create?: boolean;
  /** scrypt cost for a new identity (tests lower it). */
  kdfLogN?: number;
  runner?: Runner;
  settings?: Partial<BuyerSettings>;
  onStep?: (step: 'decision:persisted' | 'payment:answered', jobId: string) => void;
  minBackoffMs?: number;
  /** Clock (unix ms) for escrow locktimes, in the client and its Cashu wallet (tests move it with the mint's). */
  now?: () => number;
}): Promise<RunningBuyer> {
  const paths = buyerPaths(o.dataDir, o.configPath);
  if (!existsSync(paths.keys)) {
    if (!o.create) throw new Error(`no buyer identity at ${paths.keys} (run 'bazaar buyer init' first)`);
    await createKeystoreFile(paths.keys, o.passphrase, o.kdfLogN !== undefined ? { logN: o.kdfLogN } : {});
    o.logger.info({ keys: paths.keys }, 'created a new buyer identity');
  }
  const identity = await unlockKeystoreFile(paths.keys, o.passphrase);
  const c = o.config;
  const pool = new RelayPool({
    relays: c.relays,
    logger: o.logger.child({ part: 'pool' }),
    auth: (t) => finalizeEvent(t, identity.secretKey) as NostrEvent,
    ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}),
  });
  let wallet: Wallet | undefined;
  let store: BuyerStore | undefined;
  try {
    wallet = await Wallet.open({
      logger: o.logger.child({ part: 'wallet' }),
      dataDir: paths.wallet,
      limits: { perPaymentMsat: c.limits.perPaymentSats * 1000, perJobMsat: c.limits.perJobSats * 1000, perHourMsat: c.limits.perHourSats * 1000, perDayMsat: c.limits.perDaySats * 1000 },
      ...(c.nwcUri ? { lightning: { nwcUri: c.nwcUri } } : {}),
      ...(c.mint ? { cashu: { mintUrl: c.mint, ...(o.now ? { now: () => Math.floor(o.now!() / 1000) } : {}) } } : {}),
    });
    store = BuyerStore.open(paths.db);
    const runner = o.runner ?? (await createRunner(c, o.logger));
    const client = new MarketClient({
      logger: o.logger,
      pool,
      wallet,
      runner,
      identity,
      store,
      dataDir: paths.root,
      settings: {
        trustedReputationKeys: c.trustedReputationKeys,
        trustRelayReputation: c.trustRelayReputation,
        arbiters: c.arbiters,
        weights: c.weights,
        ...(c.region ? { region: c.region } : {}),
        ...(c.minSuccessRate !== undefined ? { minSuccessRate: c.minSuccessRate } : {}),
        ...(c.minIsolation ? { minIsolation: c.minIsolation } : {}),
        disputeWindowSecs: c.disputeWindowSecs,
        pingTimeoutMs: c.pingTimeoutMs,
        retryBaseMs: c.retryBaseMs,
        ...o.settings,
      },
      ...(o.onStep ? { onStep: o.onStep } : {}),
      ...(o.now ? { now: o.now } : {}),
    });
    const w = wallet;
    const s = store;
    return {
      client,
      identity,
      pool,
      wallet: w,
      store: s,
      paths,
      async close() {
        await pool.close();
        await w.close();
        await s.close();
      },
    };
  } catch (err) {
    await pool.close();
    await wallet?.close();
    await store?.close();
    throw err;
  }
}

export async function createRunner(c: Pick<BuyerConfig, 'isolation'>, log: Logger): Promise<Runner> {
  if (c.isolation === 'bwrap') return new BwrapRunner({ log: log.child({ part: 'sandbox' }) });
  const { ContainerRunner } = await import('@bazaar/agents-common/sandbox/container-runner');
  const { dockerClient } = await import('@bazaar/agents-common/sandbox/detect');
  const { baseImageTag } = await import('@bazaar/agents-common/sandbox/base-image');
  return new ContainerRunner({ docker: dockerClient(process.env.DOCKER_HOST), log: log.child({ part: 'sandbox' }), image: await baseImageTag() });
}
