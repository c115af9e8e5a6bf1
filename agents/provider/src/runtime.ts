// Wiring shared by `serve`, `doctor` and `bazaar up`: where things live in the data
// directory, and the runner / wallet a config asks for.
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { BwrapRunner } from '@bazaar/agents-common/sandbox/bwrap-runner';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { unlockKeystoreFile, type Identity } from '@bazaar/agents-common/identity/keystore';
import { DEFAULT_PRICES, loadConfig, type ProviderConfig } from './config.ts';
import { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { Provider } from './provider.ts';
import { ProviderPool } from './pool/pool.ts';

export const DEFAULT_DATA_DIR = './data/provider';

export interface ProviderPaths {
  readonly root: string;
  readonly keys: string;
  readonly config: string;
  readonly db: string;
  readonly status: string;
  readonly trajectories: string;
}

export function providerPaths(dataDir: string, configPath?: string): ProviderPaths {
  const root = resolve(dataDir);
  return { root, keys: join(root, 'keys.json'), config: configPath ? resolve(configPath) : join(root, 'config.jsonc'), db: join(root, 'db'), status: join(root, 'status.json'), trajectories: join(root, 'trajectories') };
}

/** Output of a 16 MiB-capped stream fits: the largest `max_output_bytes` a SandboxRun may ask for. */
const CAPTURE_BYTES = 16 * 1024 * 1024;

export async function createRunner(config: ProviderConfig, log: Logger): Promise<Runner> {
  if (config.isolation === 'bwrap') return new BwrapRunner({ log: log.child({ part: 'sandbox' }), captureBytes: CAPTURE_BYTES });
  const { ContainerRunner } = await import('@bazaar/agents-common/sandbox/container-runner');
  const { dockerClient } = await import('@bazaar/agents-common/sandbox/detect');
  const { baseImageTag } = await import('@bazaar/agents-common/sandbox/base-image');
  const image = config.backends.docker?.image ?? (await baseImageTag());
  return new ContainerRunner({ docker: dockerClient(config.backends.docker?.socket), log: log.child({ part: 'sandbox' }), image, captureBytes: CAPTURE_BYTES, ...(config.isolation === 'gvisor' ? { runtime: 'runsc' } : {}) });
}

/** The provider's wallet (DATA/wallet): its Lightning rail over NWC issues the invoices; null without one. */
export async function createWallet(config: ProviderConfig, dataDir: string, log: Logger): Promise<Wallet | null> {
  if (!config.nwcUri) {
    log.warn({}, 'no NWC wallet configured (nwc_uri / BAZAAR_NWC_URI): results will carry an amount but no invoice');
    return null;
  }
  return Wallet.open({ logger: log.child({ part: 'wallet' }), dataDir: join(dataDir, 'wallet'), lightning: { nwcUri: config.nwcUri } });
}

export interface RunningProvider {
  readonly provider: Provider;
  readonly identity: Identity;
  readonly paths: ProviderPaths;
  close(): Promise<void>;
}

/** A worker of a provider pool (`serve --cluster`). */
export interface ClusterChoice {
  /** NATS server URL(s) with JetStream, comma-separated. */
  readonly servers: string;
  readonly worker: string;
  readonly leaseMs?: number;
}

/** Unlock the identity, load the config, (join the pool,) start the agent. */
export async function startProvider(o: { dataDir: string; configPath?: string; passphrase: string; logger: Logger; overrides?: Partial<ProviderConfig>; invoicePollMs?: number; allowFileRepos?: boolean; minBackoffMs?: number; cluster?: ClusterChoice }): Promise<RunningProvider> {
  const paths = providerPaths(o.dataDir, o.configPath);
  const identity = await unlockKeystoreFile(paths.keys, o.passphrase);
  // In a pool every line says which worker wrote it.
  const logger = o.cluster ? o.logger.child({ worker: o.cluster.worker }) : o.logger;
  const merged = { ...(await loadConfig(paths.config)), ...o.overrides };
  // Overridden kinds get the default price of any kind the file did not price.
  const config: ProviderConfig = { ...merged, prices: { ...Object.fromEntries(merged.kinds.map((k) => [k, DEFAULT_PRICES[k]])), ...merged.prices } };
  const pool = o.cluster ? await ProviderPool.connect({ servers: o.cluster.servers, worker: o.cluster.worker, pubkey: identity.pubkey, logger, ...(o.cluster.leaseMs ? { leaseMs: o.cluster.leaseMs } : {}) }) : undefined;
  let wallet: Wallet | null = null;
  let provider: Provider;
  try {
    const runner = await createRunner(config, logger);
    wallet = await createWallet(config, paths.root, logger);
    provider = new Provider({ config, identity, dataDir: paths.root, logger, runner, wallet, ...(pool ? { pool } : {}), ...(o.invoicePollMs ? { invoicePollMs: o.invoicePollMs } : {}), ...(o.allowFileRepos ? { allowFileRepos: true } : {}), ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}) });
  } catch (err) {
    await pool?.close();
    await wallet?.close();
    throw err;
  }
  try {
    await provider.start();
  } catch (err) {
    await provider.stop().catch(() => {});
    await pool?.close();
    await wallet?.close();
    throw err;
  }
  return {
    provider,
    identity,
    paths,
    async close() {
      await provider.stop();
      await pool?.close();
      await wallet?.close();
    },
  };
}
