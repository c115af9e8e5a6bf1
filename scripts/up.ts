// `bazaar up` (what `npm start` runs): the whole local market in one process — the relay
// (with its market index and reputation), the devnet (dev Lightning network, NWC wallets for a
// buyer, a provider and an arbiter, Cashu mint, a stand-in model endpoint), the sample
// repository served over HTTP, one provider offering every job kind (sample agents for
// PatchGen and CodeReview, the devnet model for TextGen) and an arbiter — with data under ./data, a
// machine-readable DATA/market.json for scripts (npm run demo), and a buyer config ready for
// `bazaar buyer`. Ctrl-C stops everything cleanly.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import { untilSignal } from '@bazaar/cli-kit/signals';
import type { UpArbiter } from '../agents/arbiter/src/up.ts';

export const upCommand: CommandSpec = {
  name: 'up',
  summary: 'Run the whole local market: relay, devnet wallets and mint, provider, arbiter.',
  envPrefix: 'BAZAAR_UP_',
  flags: {
    data: { type: 'string', default: './data', description: 'Data directory (relay/, devnet/, provider/, arbiter/ inside)' },
    host: { type: 'string', default: '127.0.0.1', description: 'Address the relay and mint bind' },
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 4869, description: 'Relay port' },
    'mint-port': { type: 'number', integer: true, min: 0, max: 65535, default: 3338, description: 'Cashu mint port' },
    'model-port': { type: 'number', integer: true, min: 0, max: 65535, default: 4870, description: 'Port of the devnet model endpoint (OpenAI-compatible stand-in for TextGen)' },
    'git-port': { type: 'number', integer: true, min: 0, max: 65535, default: 4871, description: 'Port the sample repository is served on (git over HTTP)' },
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
    lines.push(...(await startMarketParts(parts, { dataDir, relayUrl: relay.url, host: f.host as string, mintPort: f['mint-port'] as number, modelPort: f['model-port'] as number, gitPort: f['git-port'] as number, logger, sandboxProblem })));
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

/** The market around the relay: devnet, model, sample repository, provider, buyer config. Each started part is pushed onto `parts` at once. Returns banner lines. */
async function startMarketParts(parts: Part[], o: { dataDir: string; relayUrl: string; host: string; mintPort: number; modelPort: number; gitPort: number; logger: ReturnType<typeof createLogger>; sandboxProblem?: string }): Promise<string[]> {
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
  const wallets: Record<string, string> = {};
  for (const [name, sats] of [['provider', 0], ['buyer', 100_000], ['arbiter', 0]] as const) {
    const conn = devnet.account(name);
    // Fund a wallet only on first start, so restarts do not print money.
    if (sats > 0 && devnet.network.balance(name) === 0) devnet.network.fund(name, sats * 1000);
    wallets[name] = conn.uriFile;
    lines.push(`  wallet     ${name.padEnd(9)} ${String(Math.floor(devnet.network.balance(name) / 1000)).padStart(7)} sats   NWC URI in ${conn.uriFile}`);
  }
  if (devnet.mintUrl) lines.push(`  mint       ${devnet.mintUrl}   (Cashu, unit sat)`);
  const { startDevModel } = await import('../agents/devnet/src/dev-model.ts');
  const model = await startDevModel({ port: o.modelPort, host: o.host, logger: o.logger.child({ component: 'devnet' }) });
  parts.push({ name: 'model', close: () => model.close() });
  lines.push(`  model      ${model.url}   (${model.model}: an OpenAI-compatible stand-in that echoes — not a language model)`);
  const { startSampleHost } = await import('./sample-host.ts');
  const sample = await startSampleHost({ dataDir: o.dataDir, host: o.host, port: o.gitPort, logger: o.logger.child({ component: 'sample' }) });
  parts.push({ name: 'sample', close: () => sample.close() });
  lines.push(`  sample     ${sample.repoUrl} @ ${sample.ref}   (git over HTTP; add() has a bug, node test.mjs fails)`);
  // Arbiter: rules on disputes of escrowed jobs that name it, replaying them in its own sandbox
  // (so, like the provider, only with a working sandbox).
  let arbiter: UpArbiter | undefined;
  if (!o.sandboxProblem) {
    const { startUpArbiter } = await import('../agents/arbiter/src/up.ts');
    arbiter = await startUpArbiter({ dataDir: resolve(o.dataDir, 'arbiter'), relayUrl: o.relayUrl, ...(devnet.mintUrl ? { mintUrl: devnet.mintUrl } : {}), logger: o.logger.child({ component: 'arbiter' }) });
    const a = arbiter;
    parts.push({ name: 'arbiter', close: () => a.close() });
  }
  // The buyer: a config for `bazaar buyer` (identity made by its first command, with your passphrase).
  const buyerDir = resolve(o.dataDir, 'buyer');
  const buyerConfig = await writeBuyerConfig(buyerDir, { relays: [o.relayUrl], nwcUriFile: wallets.buyer, ...(devnet.mintUrl ? { mint: devnet.mintUrl } : {}), ...(arbiter ? { arbiters: [arbiter.pubkey] } : {}) });
  lines.push(`  buyer      config ${buyerConfig}   (wallet: buyer; \`bazaar buyer …\` uses it)`);
  const market = { relay: o.relayUrl, mint: devnet.mintUrl ?? null, model: { url: model.url, name: model.model }, sampleRepo: { url: sample.repoUrl, ref: sample.ref, test: 'node test.mjs' }, wallets, buyerData: buyerDir, dataDir: o.dataDir, pid: process.pid, ...(arbiter ? { arbiter: { pubkey: arbiter.pubkey, paymentPubkey: arbiter.paymentPubkey, dataDir: resolve(o.dataDir, 'arbiter') } } : {}) } as Record<string, unknown>;
  const writeMarket = () => writeFile(resolve(o.dataDir, 'market.json'), `${JSON.stringify(market, null, 2)}\n`, { mode: 0o600 });
  if (o.sandboxProblem) {
    lines.push(`  provider   NOT STARTED: ${o.sandboxProblem}`);
    await writeMarket();
    parts.push({ name: 'market.json', close: () => rm(resolve(o.dataDir, 'market.json'), { force: true }) });
    return lines;
  }
  // Provider: every kind, pay-after-verify, paid into the devnet 'provider' wallet.
  const { startUpProvider } = await import('../agents/provider/src/up.ts');
  const provider = await startUpProvider({ dataDir: resolve(o.dataDir, 'provider'), relayUrl: o.relayUrl, nwcUri: devnet.account('provider').uri, customerUriFile: wallets.buyer, ...(devnet.mintUrl ? { mintUrl: devnet.mintUrl } : {}), textGen: { url: model.url, model: model.model }, logger: o.logger.child({ component: 'provider' }) });
  parts.push({ name: 'provider', close: () => provider.close() });
  lines.push(...provider.lines, ...(arbiter?.lines ?? []));
  market.provider = provider.pubkey;
  await writeMarket();
  parts.push({ name: 'market.json', close: () => rm(resolve(o.dataDir, 'market.json'), { force: true }) });
  lines.push('', 'Buy from it (the buyer verifies in its own sandbox and pays only for what passed):');
  lines.push(`  export BAZAAR_PASSPHRASE=…   # seals the buyer keys, made on first use in ${buyerDir}`);
  lines.push(`  node scripts/bazaar.mjs buyer sandbox --cmd 'echo hello; uname -sr' --budget 50`);
  lines.push(`  node scripts/bazaar.mjs buyer patch --repo ${sample.repoUrl} --ref main --title 'add() subtracts' --body 'In sum.mjs, replace \`a - b\` with \`a + b\`.' --test 'node test.mjs' --budget 100`);
  lines.push('  npm run demo                # a SandboxRun, a paid PatchGen, a disputed one, an arbitrated escrow; balances before and after');
  return lines;
}

/** DATA/buyer/config.jsonc for the local market, written once (then the user's to edit). */
async function writeBuyerConfig(dir: string, o: { relays: string[]; nwcUriFile: string; mint?: string; arbiters?: string[] }): Promise<string> {
  const path = resolve(dir, 'config.jsonc');
  if (existsSync(path)) return path;
  const { configTemplate } = await import('../agents/buyer/src/config.ts');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const nwcUri = (await readFile(o.nwcUriFile, 'utf8')).trim();
  await writeFile(path, configTemplate({ relays: o.relays, nwcUri, ...(o.mint ? { mint: o.mint } : {}), ...(o.arbiters ? { arbiters: o.arbiters } : {}) }), { mode: 0o600, flag: 'wx' });
  return path;
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
