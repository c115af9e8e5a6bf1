// The arbiter part of `bazaar up`: an arbiter under DATA/arbiter with an identity created on
// first start, its config written once from the template (then the operator's to edit), and the
// relay and mint of this local market applied on every start. The local provider lists its
// payment key, and the local buyer config names it, so an escrowed job on the local market has
// an arbiter both sides trust.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { configTemplate, loadConfig } from './config.ts';
import { arbiterPaths, startArbiter } from './runtime.ts';

/** Used only when BAZAAR_PASSPHRASE is unset: the local market is a dev setup with dev money. */
export const DEV_PASSPHRASE = 'bazaar-devnet-arbiter';

export interface UpArbiter {
  readonly pubkey: string;
  /** "02" + x-only: the key escrow locks name. */
  readonly paymentPubkey: string;
  readonly lines: string[];
  close(): Promise<void>;
}

export async function startUpArbiter(o: { dataDir: string; relayUrl: string; mintUrl?: string; logger: Logger }): Promise<UpArbiter> {
  const paths = arbiterPaths(o.dataDir);
  const passphrase = process.env.BAZAAR_PASSPHRASE || DEV_PASSPHRASE;
  if (!existsSync(paths.keys)) {
    const made = await createKeystoreFile(paths.keys, passphrase);
    o.logger.info({ npub: made.identity.npub, keys: paths.keys }, 'arbiter identity created');
  }
  if (!existsSync(paths.config)) {
    await writeFile(paths.config, configTemplate({ relays: [o.relayUrl], ...(o.mintUrl ? { mints: [o.mintUrl] } : {}) }), { mode: 0o600, flag: 'wx' });
  }
  // Validates the operator's edits before the overrides below hide a broken file.
  await loadConfig(paths.config);
  // The sample repository is served over HTTP, so no file:// repositories are allowed here.
  const running = await startArbiter({ dataDir: paths.root, passphrase, logger: o.logger, overrides: { relays: [o.relayUrl], ...(o.mintUrl ? { mints: [o.mintUrl] } : {}) } });
  const s = running.arbiter.status();
  const lines = [
    `  arbiter    ${running.identity.npub}`,
    `             payment key ${s.paymentPubkey} · replays kinds ${s.kinds.join(', ')} · response window ${s.responseWindowSecs}s · ${s.isolation}   (data: ${paths.root}, config: ${paths.config})`,
    `             node scripts/bazaar.mjs arbiter cases --data ${paths.root}`,
  ];
  if (!process.env.BAZAAR_PASSPHRASE) lines.push(`             keys sealed with the dev passphrase "${DEV_PASSPHRASE}"`);
  return { pubkey: running.identity.pubkey, paymentPubkey: s.paymentPubkey, lines, close: () => running.close() };
}
