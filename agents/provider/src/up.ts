// The provider part of `bazaar up`: a provider under DATA/provider with an identity created on
// first start, its config written once from the template (then the operator's to edit),
// and the relay, wallet and mint of this local market applied on every start. It offers every
// job kind: the config's backends where the operator configured them, otherwise the sample
// agents (PatchGen, CodeReview) and the devnet model (TextGen).
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { configTemplate, loadConfig, SELF_CONTAINED_KINDS, SERVED_KINDS } from './config.ts';
import { SAMPLE_PATCH_AGENT, SAMPLE_REVIEW_AGENT } from './sample-agents.ts';
import { providerPaths, startProvider } from './runtime.ts';

/** Used only when BAZAAR_PASSPHRASE is unset: the local market is a dev setup with dev money. */
export const DEV_PASSPHRASE = 'bazaar-devnet-provider';

export async function startUpProvider(o: { dataDir: string; relayUrl: string; nwcUri: string; mintUrl?: string; customerUriFile?: string; textGen?: { url: string; model: string }; logger: Logger }): Promise<{ close(): Promise<void>; lines: string[]; pubkey: string }> {
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
  const own = await loadConfig(paths.config);
  const backends = {
    ...own.backends,
    patchGen: own.backends.patchGen ?? SAMPLE_PATCH_AGENT,
    codeReview: own.backends.codeReview ?? SAMPLE_REVIEW_AGENT,
    ...(own.backends.textGen ?? o.textGen ? { textGen: own.backends.textGen ?? o.textGen } : {}),
  };
  const kinds = SERVED_KINDS.filter((k) => own.kinds.includes(k) || k === 5932 || k === 5933 || (k === 5050 && backends.textGen));
  const running = await startProvider({
    dataDir: paths.root,
    passphrase,
    logger: o.logger,
    overrides: { relays: [o.relayUrl], nwcUri: o.nwcUri, ...(o.mintUrl ? { mints: [o.mintUrl] } : {}), kinds, backends },
  });
  const c = running.provider.config;
  lines.push(`  provider   ${running.identity.npub}`);
  lines.push(`             kinds ${c.kinds.join(', ')} · capacity ${c.capacity} · ${c.isolation} · pay-after-verify   (data: ${paths.root}, config: ${paths.config})`);
  const samples = [c.backends.patchGen === SAMPLE_PATCH_AGENT ? 'PatchGen' : '', c.backends.codeReview === SAMPLE_REVIEW_AGENT ? 'CodeReview' : ''].filter(Boolean);
  if (samples.length) lines.push(`             ${samples.join(' and ')} by the sample agent (follows "In FILE, replace \`old\` with \`new\`." in the issue); configure a real agent in the config`);
  lines.push(`  try        node scripts/bazaar.mjs provider try --relay ${o.relayUrl}${o.customerUriFile ? ` --pay-with ${o.customerUriFile}` : ''}`);
  if (!process.env.BAZAAR_PASSPHRASE) lines.push(`             keys sealed with the dev passphrase "${DEV_PASSPHRASE}" (set BAZAAR_PASSPHRASE before the first start to choose one)`);
  return { close: () => running.close(), lines, pubkey: running.identity.pubkey };
}
