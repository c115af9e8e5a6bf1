// `npm run demo`: the market in four purchases, with the money shown before and after.
//   1. a SandboxRun, verified and paid;
//   2. a PatchGen from the local provider (its sample agent fixes the sample repository): the
//      buyer applies the patch to its own checkout, runs the tests in its own sandbox, then pays;
//   3. a PatchGen from a dishonest provider whose patch breaks the tests while it claims they
//      pass: the buyer's own run of the tests fails, it pays nothing and publishes a dispute;
//   4. the same lie paid into a Cashu escrow (2-of-3: buyer, provider, arbiter): the buyer
//      disputes, the provider stands by its result, the market's arbiter replays the tests in
//      its own sandbox and rules for the buyer, who takes its escrow back with the arbiter's
//      signature.
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
import { ArbiterStore } from '../agents/arbiter/src/store.ts';
import type { Case } from '../agents/arbiter/src/case.ts';
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
  /** The market's arbiter (absent when its sandbox could not start). */
  arbiter?: { pubkey: string; paymentPubkey: string; dataDir: string };
  pid: number;
}

const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'Four purchases on the local market — a SandboxRun, a PatchGen that passes and is paid, one that fails the buyer\'s tests and is disputed, one paid into an escrow, disputed and arbitrated — with balances before and after.',
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
  // Written on every run: the demo's own buyer follows this market (its arbiter may be new).
  await writeFile(join(buyerData, 'config.jsonc'), configTemplate({ relays: [m.relay], nwcUri: readFileSync(m.wallets.buyer, 'utf8').trim(), ...(m.mint ? { mint: m.mint } : {}), ...(m.arbiter ? { arbiters: [m.arbiter.pubkey] } : {}) }), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, BAZAAR_PASSPHRASE: process.env.BAZAAR_DEMO_PASSPHRASE || 'bazaar-demo-buyer', BAZAAR_LOG_LEVEL: 'warn' };
  const buyer = (args: string[]) => bazaar(['buyer', ...args, '--data', buyerData], env);
  // Balances straight from the dev Lightning network's LMDB (shared safely with the running market).
  const network = LightningNetwork.open({ path: join(devnetData, 'lightning'), logger: log });
  const balance = async (name: string): Promise<number> => network.balance(name);
  let rogue: Awaited<ReturnType<typeof startDishonestProvider>> | undefined;
  let escrowRogue: Awaited<ReturnType<typeof startDishonestProvider>> | undefined;
  // The escrow case needs the market's arbiter and mint; the buyer's ecash is topped up from its Lightning balance first.
  const escrowCase = m.arbiter && m.mint ? { arbiter: m.arbiter, mint: m.mint } : undefined;
  const failures: string[] = [];
  try {
    // The dishonest provider's wallet, made like any devnet account.
    const rogueFile = join(devnetData, 'connections', 'dishonest.nwc');
    if (!existsSync(rogueFile)) {
      const made = await bazaar(['devnet', 'account', 'add', 'dishonest', '--data', devnetData, '--relay', m.relay], env, { capture: true });
      if (made.code !== 0) throw new Error(`cannot create the dishonest provider's wallet: ${made.out.trim()}`);
    }
    // The escrow is locked from the buyer's ecash: minted first from its Lightning wallet, as a person would.
    let ecash = async (): Promise<number> => 0;
    if (escrowCase) {
      ecash = async () => {
        const w = await bazaar(['buyer', 'wallet', '--json', '--data', buyerData], env, { capture: true });
        // stdout's one JSON document (stderr is captured with it: a first run announces the new identity).
        const doc = w.code === 0 ? /^\{\n[\s\S]*?\n\}$/m.exec(w.out)?.[0] : undefined;
        const got = doc ? (JSON.parse(doc) as { ecashSats: number | null }).ecashSats : null;
        if (got === null) throw new Error(`cannot read the buyer's wallet: ${w.out.trim()}`);
        return got;
      };
      const have = await ecash();
      if (have < 100) {
        process.stdout.write(`\n$ bazaar buyer wallet --topup ${100 - have}      # ecash for the escrow, paid from the buyer's Lightning wallet\n\n`);
        if ((await buyer(['wallet', '--topup', String(100 - have)])).code !== 0) failures.push('the ecash top-up failed');
      }
    }
    const names = ['buyer', 'provider', 'dishonest'];
    const before = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await balance(n)] as const)));
    // Sats to the millisat: a SandboxRun of 1,100 msats shows as 1.1, not as 1 (or 0).
    const sats = (msats: number) => String(msats / 1000);
    const ecashBefore = await ecash();
    const table = (title: string, b: Record<string, number>, ecash: number) => `${title}\n${names.map((n) => `  ${n.padEnd(10)} ${sats(b[n]).padStart(11)} sats`).join('\n')}\n${escrowCase ? `  ${'buyer'.padEnd(10)} ${String(ecash).padStart(11)} sats of ecash (Cashu, for escrows)\n` : ''}`;
    process.stdout.write(`\n${table('Balances before:', before, ecashBefore)}`);

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

    if (escrowCase) {
      escrowRogue = await startDishonestProvider({ relayUrl: m.relay, priceMsats: 20_000, logger: log, escrow: { mintUrl: escrowCase.mint, arbiterPaymentKey: escrowCase.arbiter.paymentPubkey } });
      await step('4. PatchGen from a dishonest provider, paid into a Cashu escrow (2-of-3: buyer, provider, arbiter): the buyer\'s tests fail, it disputes; the provider stands by its patch', ['patch', '--repo', m.sampleRepo.url, '--ref', m.sampleRepo.ref, '--title', 'add() subtracts', '--body', issue, '--test', m.sampleRepo.test, '--allow', '*.mjs', '--budget', '100', '--pay', 'escrow', '--provider', escrowRogue.npub, '--strategy', 'pinned'], 3);
      process.stdout.write('\nThe arbiter replays the tests in its own sandbox and checkout, then publishes its verdict…\n');
      const decided = await arbiterCase(escrowCase.arbiter.dataDir, escrowRogue.pubkey, 300_000);
      process.stdout.write(`\n$ bazaar arbiter cases --limit 1\n\n`);
      await bazaar(['arbiter', 'cases', '--data', escrowCase.arbiter.dataDir, '--limit', '1'], env);
      if (decided?.state !== 'published') failures.push(`4. no verdict from the arbiter (case ${decided ? `${decided.state}${decided.unavailable ? `: ${decided.unavailable.message}` : ''}` : 'not taken'})`);
      else if (decided.decision?.ruling !== 'buyer' || decided.decision.release?.to !== 'buyer') failures.push(`4. the arbiter ruled ${decided.decision?.ruling} (release to ${decided.decision?.release?.to ?? 'nobody'}), expected the buyer`);
      else process.stdout.write(`\nVerdict ${decided.verdict?.id.slice(0, 16)}…: ${decided.decision.reasons[0] ?? ''}\n`);
      process.stdout.write(`\n$ bazaar buyer jobs --limit 1      # takes the release the verdict sealed to the buyer to the mint\n\n`);
      await buyer(['jobs', '--limit', '1']);
    }

    const after = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await balance(n)] as const)));
    const ecashAfter = await ecash();
    process.stdout.write(`\n${table('Balances after:', after, ecashAfter)}`);
    const d = (n: string) => after[n] - before[n];
    process.stdout.write(`\nThe buyer paid ${sats(-d('buyer'))} sats, all to the honest provider (+${sats(d('provider'))}), for the two results it verified;\nthe dishonest provider got ${sats(d('dishonest'))}: its patch failed the buyer's tests.\n`);
    if (escrowCase) {
      process.stdout.write(`The escrow came back to the buyer with the arbiter's signature: ecash ${ecashBefore} → ${ecashAfter} sats (${ecashBefore - ecashAfter} sats of mint fees); the dishonest escrow provider got nothing.\n`);
      // The escrow's lock, claim and redemption are swaps at the mint: a sat of input fee each, at most.
      if (ecashBefore - ecashAfter > 5) failures.push(`4. the buyer's ecash did not come back (${ecashBefore} → ${ecashAfter} sats)`);
    }
    if (d('dishonest') !== 0) failures.push('the dishonest provider was paid');
    if (after.buyer - before.buyer !== -(after.provider - before.provider)) failures.push('what the buyer paid is not what the provider received');
  } finally {
    await rogue?.close();
    await escrowRogue?.close();
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

/** The arbiter's case against `provider` once decided and published (or whatever it is at the deadline). */
async function arbiterCase(arbiterData: string, provider: string, ms: number): Promise<Case | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    // Opened read-only beside the running arbiter, afresh each time (as `bazaar arbiter cases` does).
    const store = ArbiterStore.open(join(arbiterData, 'db'), { readOnly: true });
    const c = [...store.cases()].find((x) => x.provider === provider);
    await store.close();
    if (c?.state === 'published' || c?.state === 'rejected' || Date.now() > end) return c;
    await new Promise((r) => setTimeout(r, 500));
  }
}

process.exitCode = await runCommand(demoCommand, process.argv.slice(2), 'npm run demo --');
