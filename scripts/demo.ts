// `npm run demo`: the market in three purchases, with the money shown before and after.
//   1. a SandboxRun, verified and paid;
//   2. a PatchGen from the local provider (its sample agent fixes the sample repository): the
//      buyer applies the patch to its own checkout, runs the tests in its own sandbox, then pays;
//   3. a PatchGen from a dishonest provider whose patch breaks the tests while it claims they
//      pass: the buyer's own run of the tests fails, it pays nothing and publishes a dispute.
// It uses the market `npm start` runs (found through DATA/market.json), or starts its own in a
// temporary directory when none is running. Every purchase is made with the real CLI
// (`bazaar buyer …`), exactly as a person would type it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { runCommand, type CommandSpec, type FlagValues } from '@bazaar/cli-kit/command';
import { configTemplate } from '../agents/buyer/src/config.ts';
import { LightningNetwork } from '../agents/devnet/src/lightning/network.ts';
import { startDishonestProvider } from './demo/dishonest-provider.ts';

const BAZAAR = fileURLToPath(new URL('./bazaar.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface MarketInfo {
  relay: string;
  mint: string | null;
  sampleRepo: { url: string; ref: string; test: string };
  wallets: Record<string, string>;
  dataDir: string;
  provider?: string;
  pid: number;
}

const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'Three purchases on the local market — a SandboxRun, a PatchGen that passes and is paid, one that fails the buyer\'s tests and is disputed — with balances before and after.',
  details: 'Uses the market `npm start` runs (DATA/market.json), or starts its own in a temporary directory.',
  envPrefix: 'BAZAAR_DEMO_',
  flags: {
    data: { type: 'string', default: './data', description: 'Data directory of a running `npm start` (market.json inside)' },
    'self-contained': { type: 'boolean', default: false, description: 'Start a fresh market in a temporary directory even if one is running' },
  },
  run: runDemo,
};

function bazaar(args: string[], env: NodeJS.ProcessEnv, o: { capture?: boolean } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [BAZAAR, ...args], { cwd: ROOT, env, stdio: o.capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolveRun({ code: code ?? 1, out }));
  });
}

async function reachable(relay: string): Promise<boolean> {
  try {
    const res = await fetch(relay.replace(/^ws/, 'http'), { headers: { Accept: 'application/nostr+json' }, signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** A market started for the demo alone: `bazaar up` on free ports in a temporary directory. */
async function startOwnMarket(): Promise<{ info: MarketInfo; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-demo-'));
  const child = spawn(process.execPath, [BAZAAR, 'up', '--data', dir, '--port', '0', '--mint-port', '0', '--model-port', '0', '--git-port', '0', '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((ok, fail) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Press Ctrl-C to stop')) ok();
    });
    void exited.then((c) => fail(new Error(`the market did not start (exit ${c}):\n${out.slice(-2000)}`)));
  });
  const info = JSON.parse(readFileSync(join(dir, 'market.json'), 'utf8')) as MarketInfo;
  return {
    info,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function runDemo(f: FlagValues): Promise<number> {
  const log = pino({ level: 'warn' }, pino.destination(2));
  const dataDir = resolve(f.data as string);
  let market: { info: MarketInfo; stop: () => Promise<void> };
  const marketFile = join(dataDir, 'market.json');
  const running = !f['self-contained'] && existsSync(marketFile) ? (JSON.parse(readFileSync(marketFile, 'utf8')) as MarketInfo) : undefined;
  if (running && (await reachable(running.relay))) {
    market = { info: running, stop: async () => {} };
    process.stdout.write(`Using the market npm start runs (${running.relay}).\n`);
  } else {
    process.stdout.write('No market running: starting one for the demo (relay, devnet, mint, model, sample repository, provider)…\n');
    market = await startOwnMarket();
  }
  // Interrupted (Ctrl-C, or a test runner's timeout): the market this demo started goes too.
  const onSignal = () => {
    void market.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const m = market.info;
  const devnetData = join(m.dataDir, 'devnet');
  // The demo's own buyer (its identity and history stay apart from yours in DATA/buyer).
  const buyerData = join(m.dataDir, 'demo-buyer');
  await mkdir(buyerData, { recursive: true, mode: 0o700 });
  if (!existsSync(join(buyerData, 'config.jsonc'))) {
    await writeFile(join(buyerData, 'config.jsonc'), configTemplate({ relays: [m.relay], nwcUri: readFileSync(m.wallets.buyer, 'utf8').trim(), ...(m.mint ? { mint: m.mint } : {}) }), { mode: 0o600 });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, BAZAAR_PASSPHRASE: process.env.BAZAAR_DEMO_PASSPHRASE || 'bazaar-demo-buyer', BAZAAR_LOG_LEVEL: 'warn' };
  const buyer = (args: string[]) => bazaar(['buyer', ...args, '--data', buyerData], env);
  // Balances straight from the dev Lightning network's LMDB (shared safely with the running market).
  const network = LightningNetwork.open({ path: join(devnetData, 'lightning'), logger: log });
  const balance = async (name: string): Promise<number> => network.balance(name);
  let rogue: Awaited<ReturnType<typeof startDishonestProvider>> | undefined;
  const failures: string[] = [];
  try {
    // The dishonest provider's wallet, made like any devnet account.
    const rogueFile = join(devnetData, 'connections', 'dishonest.nwc');
    if (!existsSync(rogueFile)) {
      const made = await bazaar(['devnet', 'account', 'add', 'dishonest', '--data', devnetData, '--relay', m.relay], env, { capture: true });
      if (made.code !== 0) throw new Error(`cannot create the dishonest provider's wallet: ${made.out.trim()}`);
    }
    const names = ['buyer', 'provider', 'dishonest'];
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await balance(n)] as const)));
    // Sats to the millisat: a SandboxRun of 1,100 msats shows as 1.1, not as 1 (or 0).
    const sats = (msats: number) => String(msats / 1000);
    const table = (title: string, b: Record<string, number>) => `${title}\n${names.map((n) => `  ${n.padEnd(10)} ${sats(b[n]).padStart(11)} sats`).join('\n')}\n`;
    process.stdout.write(`\n${table('Balances before:', before)}`);

    const step = async (title: string, args: string[], want: number) => {
      process.stdout.write(`\n=== ${title}\n$ bazaar buyer ${args.map((a) => (/[\s'`*]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' ')}\n\n`);
      const r = await buyer(args);
      if (r.code !== want) failures.push(`${title}: exit ${r.code}, expected ${want}`);
    };
    await step('1. SandboxRun: run commands in a provider\'s sandbox, check the hashes, pay', ['sandbox', '--cmd', 'echo hello from a sandbox on the market; uname -sr', '--time-limit', '10', '--budget', '50'], 0);
    const issue = 'add(2, 3) returns -1: add() subtracts.\n\nIn sum.mjs, replace `a - b` with `a + b`.';
    await step('2. PatchGen from the local provider: the buyer applies the patch to its own checkout, runs the tests in its own sandbox, then pays', ['patch', '--repo', m.sampleRepo.url, '--ref', m.sampleRepo.ref, '--title', 'add() subtracts', '--body', issue, '--test', m.sampleRepo.test, '--allow', '*.mjs', '--budget', '100', ...(m.provider ? ['--provider', m.provider] : [])], 0);
    rogue = await startDishonestProvider({ relayUrl: m.relay, nwcUri: readFileSync(rogueFile, 'utf8').trim(), priceMsats: 20_000, logger: log });
    await step('3. PatchGen from a dishonest provider (its result claims the tests pass): the buyer\'s own test run fails — nothing paid, a dispute published', ['patch', '--repo', m.sampleRepo.url, '--ref', m.sampleRepo.ref, '--title', 'add() subtracts', '--body', issue, '--test', m.sampleRepo.test, '--allow', '*.mjs', '--budget', '100', '--provider', rogue.npub, '--strategy', 'pinned'], 3);

    const after = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await balance(n)] as const)));
    process.stdout.write(`\n${table('Balances after:', after)}`);
    const d = (n: string) => after[n] - before[n];
    process.stdout.write(`\nThe buyer paid ${sats(-d('buyer'))} sats, all to the honest provider (+${sats(d('provider'))}), for the two results it verified;\nthe dishonest provider got ${sats(d('dishonest'))}: its patch failed the buyer's tests.\n`);
    if (d('dishonest') !== 0) failures.push('the dishonest provider was paid');
    if (after.buyer - before.buyer !== -(after.provider - before.provider)) failures.push('what the buyer paid is not what the provider received');
  } finally {
    await rogue?.close();
    await network.close();
    await market.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failures.length) {
    process.stderr.write(`\ndemo: something did not go as expected:\n  ${failures.join('\n  ')}\n`);
    return 1;
  }
  process.stdout.write(`\nDemo complete.${running && market.info === running ? ` \`node scripts/bazaar.mjs buyer jobs --data ${buyerData}\` lists its runs.` : ''}\n`);
  return 0;
}

process.exitCode = await runCommand(demoCommand, process.argv.slice(2), 'npm run demo --');
