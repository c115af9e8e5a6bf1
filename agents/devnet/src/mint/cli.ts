// `bazaar devnet mint`: run the Cashu mint in the foreground until SIGINT/SIGTERM, its
// Lightning side either the dev network (an account of its own) or a FakeWallet.
import { resolve } from 'node:path';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import type { LightningBackend } from '../lightning-backend.ts';
import { untilSignal } from '@bazaar/cli-kit/signals';

export const mintCommand: CommandSpec = {
  name: 'mint',
  summary: 'Run the devnet Cashu mint (NUT-00..12, 14, 17; unit sat) over HTTP.',
  envPrefix: 'BAZAAR_MINT_',
  flags: {
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 3338, description: 'TCP port (0 = any free port)' },
    host: { type: 'string', default: '127.0.0.1', description: 'Address to bind' },
    data: { type: 'string', default: './data/devnet/mint', description: 'Mint data directory (LMDB: seed, keysets, spent proofs, quotes)' },
    'input-fee-ppk': { type: 'number', integer: true, min: 0, max: 100_000, default: 100, description: 'Input fee per proof, parts per thousand of a sat (NUT-02)' },
    'fake-wallet': { type: 'boolean', default: false, description: 'Stand in for nutshell/CDK FakeWallet mints in client test suites: lnbc invoices that pay themselves, any invoice melts (expired too)' },
    'fake-wallet-delay': { type: 'number', integer: true, min: 0, max: 600_000, default: 1000, description: 'FakeWallet: ms before a mint quote is paid by itself (and notified over the websocket)' },
    'fake-wallet-brr': { type: 'boolean', default: true, description: 'FakeWallet: a quote status check finds it paid at once, as nutshell FAKEWALLET_BRR (--no-fake-wallet-brr to wait for the delay)' },
    'lightning-data': { type: 'string', default: './data/devnet/lightning', description: 'Dev Lightning network data directory (ignored with --fake-wallet)' },
    account: { type: 'string', default: 'mint', description: "The mint's dev-network account (created if missing)" },
    name: { type: 'string', default: 'Bazaar devnet mint', description: 'Name in /v1/info' },
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level' },
  },
  details: `Endpoints: /v1/info, /v1/keys, /v1/keysets, /v1/swap, /v1/mint/quote/bolt11, /v1/mint/bolt11,
/v1/melt/quote/bolt11, /v1/melt/bolt11, /v1/checkstate, /v1/restore, websocket /v1/ws.
Examples:
  bazaar devnet mint --port 3338 --data ./data/devnet/mint
  bazaar devnet mint --fake-wallet --input-fee-ppk 0 --data /tmp/mint`,
  run: runMint,
};

async function runMint(f: FlagValues): Promise<number> {
  const logger = createLogger({ name: 'mint', level: f['log-level'] as string });
  let lightning: LightningBackend;
  let closeLightning: () => Promise<void> | void = () => {};
  if (f['fake-wallet']) {
    const { FakeWallet } = await import('./fake-wallet.ts');
    const fw = new FakeWallet({ paidAfterMs: f['fake-wallet-delay'] as number, brr: f['fake-wallet-brr'] as boolean });
    lightning = fw;
    closeLightning = () => fw.close();
  } else {
    const { LightningNetwork } = await import('../lightning/network.ts');
    const { accountLightningBackend } = await import('../lightning/account-backend.ts');
    const network = LightningNetwork.open({ path: resolve(f['lightning-data'] as string), logger: logger.child({ part: 'lightning' }) });
    network.ensureAccount(f.account as string);
    lightning = accountLightningBackend(network, f.account as string);
    closeLightning = () => network.close();
  }
  const { startMint } = await import('./server.ts');
  const mint = await startMint({
    port: f.port as number,
    host: f.host as string,
    dataDir: resolve(f.data as string),
    lightning,
    inputFeePpk: f['input-fee-ppk'] as number,
    name: f.name as string,
    logger,
  });
  process.stdout.write(`mint listening on ${mint.url}\n`);
  await untilSignal(async () => {
    await mint.close();
    await closeLightning();
  }, logger);
  return 0;
}
