// The provider part of `bazaar up`: a provider under DATA/provider with an identity created on
// first start, its config written once from the template (then the operator's to edit),
// and the relay, wallet and mint of this local market applied on every start.
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { configTemplate, SELF_CONTAINED_KINDS } from './config.ts';
import { providerPaths, startProvider } from './runtime.ts';

/** Used only when BAZAAR_PASSPHRASE is unset: the local market is a dev setup with dev money. */
export const DEV_PASSPHRASE = 'bazaar-devnet-provider';

export async function startUpProvider(o: { dataDir: string; relayUrl: string; nwcUri: string; mintUrl?: string; customerUriFile?: string; logger: Logger }): Promise<{ close(): Promise<void>; lines: string[] }> {
  const paths = providerPaths(o.dataDir);
  const passphrase = process.env.BAZAAR_PASSPHRASE || DEV_PASSPHRASE;
  const lines: string[] = [];
  if (!existsSync(paths.keys)) {
    const made = await createKeystoreFile(paths.keys, passphrase);
    o.logger.info({ npub: made.identity.npub, keys: paths.keys }, 'provider identity created');
  }
  if (!existsSync(paths.config)) {
    await writeFile(paths.config, configTemplate({ relays: [o.relayUrl], kinds: SELF_CONTAINED_KINDS }), { mode: 0o600, flag: 'wx' });
    await chmod(paths.config, 0o600);
  }
  const running = await startProvider({
    dataDir: paths.root,
    passphrase,
    logger: o.logger,
    overrides: { relays: [o.relayUrl], nwcUri: o.nwcUri, ...(o.mintUrl ? { mints: [o.mintUrl] } : {}) },
  });
  const c = running.provider.config;
  lines.push(`  provider   ${running.identity.npub}`);
  lines.push(`             kinds ${c.kinds.join(', ')} · capacity ${c.capacity} · ${c.isolation} · pay-after-verify   (data: ${paths.root}, config: ${paths.config})`);
  lines.push(`  try        node scripts/bazaar.mjs provider try --relay ${o.relayUrl}${o.customerUriFile ? ` --pay-with ${o.customerUriFile}` : ''}`);
  if (!process.env.BAZAAR_PASSPHRASE) lines.push(`             keys sealed with the dev passphrase "${DEV_PASSPHRASE}" (set BAZAAR_PASSPHRASE before the first start to choose one)`);
  return { close: () => running.close(), lines };
}
