// `bazaar up` (what `npm start` runs): the whole local market in one process —
// the relay, and the devnet (dev Lightning network, NWC wallets, Cashu mint) when
// present — with data under ./data. Ctrl-C stops everything cleanly.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import { untilSignal } from '@bazaar/cli-kit/signals';

export const upCommand: CommandSpec = {
  name: 'up',
  summary: 'Run the whole local market: relay, devnet wallets and mint, provider.',
  envPrefix: 'BAZAAR_UP_',
  flags: {
    data: { type: 'string', default: './data', description: 'Data directory (relay/, devnet/, provider/ inside)' },
    host: { type: 'string', default: '127.0.0.1', description: 'Address the relay and mint bind' },
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 4869, description: 'Relay port' },
    'mint-port': { type: 'number', integer: true, min: 0, max: 65535, default: 3338, description: 'Cashu mint port' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'Relay WebSocket transport' },
    setup: { type: 'boolean', default: true, description: 'As root, install missing Debian packages the sandbox needs (bubblewrap) through scripts/setup.sh before starting (--no-setup: only report them)' },
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level' },
  },
  run: runUp,
};

interface Part {
  name: string;
  close(): Promise<void>;
}

async function runUp(f: FlagValues): Promise<number> {
  const logger = createLogger({ name: 'bazaar', level: f['log-level'] as string });
  const dataDir = resolve(f.data as string);
  const parts: Part[] = [];
  const stopAll = async () => {
    for (const p of parts.reverse()) {
      try {
        await p.close();
      } catch (err) {
        logger.error({ err, part: p.name }, 'error while stopping');
      }
    }
  };
  const lines: string[] = [];
  try {
    const { startRelay } = await import('../relay/src/server.ts');
    const mintPort = f['mint-port'] as number;
    const relay = await startRelay({
      port: f.port as number, host: f.host as string, dataDir: resolve(dataDir, 'relay'), transport: f.transport as 'uws' | 'ws', logger: logger.child({ component: 'relay' }),
      // The market index and reputation; the devnet mint is trusted for escrowed Cashu receipts.
      market: { trustedMints: mintPort > 0 ? [`http://${f.host as string}:${mintPort}`] : [] },
    });
    parts.push({ name: 'relay', close: () => relay.close() });
    lines.push(`  relay      ${relay.url}   (data: ${resolve(dataDir, 'relay')})`);
    lines.push(`  market     ${relay.url.replace(/^ws/, 'http')}/   (marketplace page; JSON under /api/, Prometheus at /metrics)`);
    // Parts register themselves in `parts` as soon as they run, so a later failure stops them all.
    // The provider runs jobs in bubblewrap: without it, it would accept jobs that then fail.
    const sandboxProblem = await prepareSandbox(logger, f.setup as boolean);
    lines.push(...(await startMarketParts(parts, { dataDir, relayUrl: relay.url, host: f.host as string, mintPort: f['mint-port'] as number, logger, sandboxProblem })));
    lines.push('', 'Try:', `  curl -H 'Accept: application/nostr+json' ${relay.url.replace(/^ws/, 'http')}`);
    if (!sandboxProblem) lines.push(`  point any Nostr client at ${relay.url} and post a NIP-90 job request for one of the provider's kinds`);
  } catch (err) {
    logger.error({ err }, 'start-up failed');
    await stopAll();
    return 1;
  }
  process.stdout.write(`\nBazaar local market is running:\n${lines.join('\n')}\n\nPress Ctrl-C to stop.\n\n`);
  await untilSignal(stopAll, logger, 'stopping the local market');
  return 0;
}

/** The market around the relay: devnet and provider. Each started part is pushed onto `parts` at once. Returns banner lines. */
async function startMarketParts(parts: Part[], o: { dataDir: string; relayUrl: string; host: string; mintPort: number; logger: ReturnType<typeof createLogger>; sandboxProblem?: string }): Promise<string[]> {
  const lines: string[] = [];
  // Devnet: dev Lightning network + NWC wallets over our relay + Cashu mint.
  const { startDevnet } = await import('../agents/devnet/src/devnet.ts');
  const devnet = await startDevnet({
    dataDir: resolve(o.dataDir, 'devnet'),
    relayUrl: o.relayUrl,
    logger: o.logger.child({ component: 'devnet' }),
    mint: { port: o.mintPort, host: o.host },
  });
  parts.push({ name: 'devnet', close: () => devnet.close() });
  for (const [name, sats] of [['provider', 0], ['customer', 100_000]] as const) {
    const conn = devnet.account(name);
    // Fund a wallet only on first start, so restarts do not print money.
    if (sats > 0 && devnet.network.balance(name) === 0) devnet.network.fund(name, sats * 1000);
    lines.push(`  wallet     ${name.padEnd(9)} ${String(Math.floor(devnet.network.balance(name) / 1000)).padStart(7)} sats   NWC URI in ${conn.uriFile}`);
  }
  if (devnet.mintUrl) lines.push(`  mint       ${devnet.mintUrl}   (Cashu, unit sat)`);
  if (o.sandboxProblem) {
    lines.push(`  provider   NOT STARTED: ${o.sandboxProblem}`);
    return lines;
  }
  // Provider: every kind it can serve, pay-after-verify, paid into the devnet 'provider' wallet.
  const { startUpProvider } = await import('../agents/provider/src/up.ts');
  const provider = await startUpProvider({ dataDir: resolve(o.dataDir, 'provider'), relayUrl: o.relayUrl, nwcUri: devnet.account('provider').uri, customerUriFile: devnet.account('customer').uriFile, ...(devnet.mintUrl ? { mintUrl: devnet.mintUrl } : {}), logger: o.logger.child({ component: 'provider' }) });
  parts.push({ name: 'provider', close: () => provider.close() });
  lines.push(...provider.lines);
  return lines;
}

const SETUP_SCRIPT = fileURLToPath(new URL('./setup.sh', import.meta.url));

/**
 * Makes sure the provider's sandbox (bubblewrap) works before it is started. Missing Debian
 * packages are installed through scripts/setup.sh when running as root (unless --no-setup).
 * Returns undefined when the sandbox is ready, else what is wrong and how to fix it.
 */
async function prepareSandbox(logger: ReturnType<typeof createLogger>, allowSetup: boolean): Promise<string | undefined> {
  const { detectBwrap } = await import('@bazaar/agents-common/sandbox/detect');
  const log = logger.child({ component: 'sandbox' });
  let bwrap = await detectBwrap(log);
  if (!bwrap.available && bwrap.missingPackages?.length && allowSetup && process.getuid?.() === 0) {
    log.warn({ missing: bwrap.missingPackages }, 'the sandbox needs Debian packages that are missing; installing them with scripts/setup.sh');
    const { execHost } = await import('@bazaar/agents-common/sandbox/proc');
    const r = await execHost('bash', [SETUP_SCRIPT], { timeoutMs: 15 * 60_000 }).catch((err: Error) => ({ code: null, stdout: '', stderr: err.message }));
    if (r.code !== 0) log.error({ code: r.code, stderr: r.stderr.trim().split('\n').slice(-5).join(' | ') }, 'scripts/setup.sh failed');
    bwrap = await detectBwrap(log);
  }
  if (bwrap.available) return undefined;
  const fix = bwrap.missingPackages?.length
    ? `install ${bwrap.missingPackages.join(', ')}: sudo apt-get install ${bwrap.missingPackages.join(' ')} (or sudo npm run setup), then start again`
    : 'run `node scripts/bazaar.mjs provider doctor` to see why';
  log.error({ why: bwrap.why }, 'the provider is not started: its sandbox (bubblewrap) is not usable');
  return `the sandbox (bubblewrap) is not usable: ${bwrap.why ?? 'unknown'} — ${fix}`;
}
