// Wiring shared by `serve`, `bazaar up` and tests: where things live in the data directory,
// and the identity, sandbox, wallet and store an Arbiter needs.
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { unlockKeystoreFile, type Identity } from '@bazaar/agents-common/identity/keystore';
import { BwrapRunner } from '@bazaar/agents-common/sandbox/bwrap-runner';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { loadConfig, type ArbiterConfig } from './config.ts';
import { Arbiter, type ArbiterOptions } from './arbiter.ts';

export const DEFAULT_DATA_DIR = './data/arbiter';

export interface ArbiterPaths {
  readonly root: string;
  readonly keys: string;
  readonly config: string;
  readonly db: string;
  readonly status: string;
  readonly evidence: string;
}

export function arbiterPaths(dataDir: string, configPath?: string): ArbiterPaths {
  const root = resolve(dataDir);
  return { root, keys: join(root, 'keys.json'), config: configPath ? resolve(configPath) : join(root, 'config.jsonc'), db: join(root, 'db'), status: join(root, 'status.json'), evidence: join(root, 'evidence') };
}

export async function createRunner(config: ArbiterConfig, log: Logger): Promise<Runner> {
  if (config.isolation === 'bwrap') return new BwrapRunner({ log: log.child({ part: 'sandbox' }) });
  const { ContainerRunner } = await import('@bazaar/agents-common/sandbox/container-runner');
  const { dockerClient } = await import('@bazaar/agents-common/sandbox/detect');
  const { baseImageTag } = await import('@bazaar/agents-common/sandbox/base-image');
  return new ContainerRunner({ docker: dockerClient(config.docker?.socket), log: log.child({ part: 'sandbox' }), image: config.docker?.image ?? (await baseImageTag()) });
}

export interface RunningArbiter {
  readonly arbiter: Arbiter;
  readonly identity: Identity;
  readonly paths: ArbiterPaths;
  close(): Promise<void>;
}

/** Unlock the identity, load the config, start the agent. */
export async function startArbiter(o: { dataDir: string; configPath?: string; passphrase: string; logger: Logger; overrides?: Partial<ArbiterConfig>; runner?: Runner } & Pick<ArbiterOptions, 'pollMs' | 'allowFileRepos' | 'minBackoffMs' | 'onStep'>): Promise<RunningArbiter> {
  const paths = arbiterPaths(o.dataDir, o.configPath);
  const identity = await unlockKeystoreFile(paths.keys, o.passphrase);
  const config: ArbiterConfig = { ...(await loadConfig(paths.config)), ...o.overrides };
  const runner = o.runner ?? (await createRunner(config, o.logger));
  // The wallet only issues fee invoices; without a fee there is nothing for it to do.
  const wallet = config.feeSats > 0 && config.nwcUri ? await Wallet.open({ logger: o.logger.child({ part: 'wallet' }), dataDir: join(paths.root, 'wallet'), lightning: { nwcUri: config.nwcUri } }) : null;
  const arbiter = new Arbiter({ config, identity, dataDir: paths.root, logger: o.logger, runner, wallet, ...(o.pollMs ? { pollMs: o.pollMs } : {}), ...(o.allowFileRepos ? { allowFileRepos: true } : {}), ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}), ...(o.onStep ? { onStep: o.onStep } : {}) });
  try {
    await arbiter.start();
  } catch (err) {
    await arbiter.stop().catch(() => {});
    await wallet?.close();
    throw err;
  }
  return {
    arbiter,
    identity,
    paths,
    async close() {
      await arbiter.stop();
      await wallet?.close();
    },
  };
}
