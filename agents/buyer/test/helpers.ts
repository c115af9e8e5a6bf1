// Test fixture: a real local market — our relay on an ephemeral port, the devnet (dev
// Lightning network, NWC wallet service, Cashu mint), providers with sealed identities and
// deterministic "coding agent" scripts, a sample git repository — and buyers built exactly
// as the CLI builds them (openBuyer). Everything is torn down.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { startDevnet, type RunningDevnet } from '@bazaar/devnet/devnet';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { configTemplate as providerConfigTemplate, type AgentBackendConfig, type ProviderConfig } from '@bazaar/provider/config';
import { startProvider, type RunningProvider } from '@bazaar/provider/runtime';
import { validateConfig, type BuyerConfig } from '../src/config.ts';
import { openBuyer, type RunningBuyer } from '../src/runtime.ts';
import type { BuyerSettings } from '../src/market-client.ts';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildJobResult } from '@bazaar/dvm-kinds/job';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { LightningWallet } from '@bazaar/agents-common/wallet/lightning';

export const PASSPHRASE = 'test passphrase 123';
export const logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

export interface Market {
  relay: RunningRelay;
  devnet: RunningDevnet;
  mintUrl: string;
}

export async function startMarket(t: Test, opts: { authRequired?: boolean; mint?: boolean; reputation?: boolean } = {}): Promise<Market> {
  const relayDir = tempDir('bazaar-buyer-relay-');
  // With `reputation`, the relay's market index publishes NIP-85 assertions under its reputation key (announced in NIP-11).
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', verifyWorkers: 0, logger, ...(opts.authRequired ? { info: { authRequired: true } } : {}), ...(opts.reputation ? { market: { debounceMs: 50, minIntervalMs: 50, page: false } } : {}) });
  const devDir = tempDir('bazaar-buyer-devnet-');
  const devnet = await startDevnet({ dataDir: devDir, relayUrl: relay.url, logger, mint: opts.mint === false ? false : { port: 0 }, nwc: { refreshIntervalMs: 200 } });
  t.teardown(async () => {
    await devnet.close();
    await relay.close();
    for (const d of [devDir, relayDir]) rmSync(d, { recursive: true, force: true });
  });
  return { relay, devnet, mintUrl: devnet.mintUrl ?? '' };
}

/** A git repository whose test fails: `add` subtracts. */
export function sampleRepo(t: Test): { dir: string; url: string; head: string } {
  const dir = tempDir('bazaar-sample-repo-');
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: dir, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'sum.mjs'), 'export function add(a, b) {\n  return a - b;\n}\n');
  writeFileSync(join(dir, 'test.mjs'), "import { add } from './sum.mjs';\nif (add(2, 3) !== 5) { console.error('add(2, 3) =', add(2, 3)); process.exit(1); }\nconsole.log('ok');\n");
  writeFileSync(join(dir, 'README.md'), '# sample\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'sample with a bug');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, url: `file://${dir}`, head: git('rev-parse', 'HEAD') };
}

export const agent = (script: string): AgentBackendConfig => ({ command: ['/bin/sh', '-c', script], allowDomains: [], timeLimitSecs: 60 });
/** Reads its task like a real agent CLI would, then fixes the bug. */
export const GOOD_AGENT = "grep -q 'add' \"$BAZAAR_TASK_FILE\" && cat >/dev/null && sed -i 's/a - b/a + b/' sum.mjs";

export interface ProviderHandle extends RunningProvider {
  readonly dataDir: string;
  readonly nwcUri: string;
}

/** A provider with its own devnet wallet account, overrides applied to the template config. */
export async function runProvider(t: Test, m: Market, name: string, overrides: Partial<ProviderConfig> = {}): Promise<ProviderHandle> {
  const dataDir = tempDir(`bazaar-buyer-prov-${name}-`);
  const { uri } = m.devnet.account(name);
  await m.devnet.nwc.refresh();
  await createKeystoreFile(join(dataDir, 'keys.json'), PASSPHRASE, { logN: 10 });
  writeFileSync(join(dataDir, 'config.jsonc'), providerConfigTemplate({ relays: [m.relay.url], nwcUri: uri }), { mode: 0o600 });
  const p = await startProvider({ dataDir, passphrase: PASSPHRASE, logger, overrides: { heartbeatSecs: 3600, lookbackSecs: 60, ...overrides }, invoicePollMs: 300, minBackoffMs: 100, allowFileRepos: true });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await p.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...p, dataDir, nwcUri: uri, close: async () => { closed = true; await p.close(); } };
}

export function buyerConfig(m: Market, o: { name?: string; fundSats?: number; mint?: boolean; extra?: Record<string, unknown> } = {}): BuyerConfig {
  // Funded when created; pass fundSats: 0 for a second config of the same account.
  const fund = o.fundSats ?? 10_000;
  const { uri } = m.devnet.account(o.name ?? 'buyer', fund ? { fundSats: fund } : {});
  const { config, problems } = validateConfig({ relays: [m.relay.url], nwc_uri: uri, ...(o.mint && m.mintUrl ? { mint: m.mintUrl } : {}), ping_timeout_ms: 3000, retry_base_ms: 50, ...o.extra });
  if (!config) throw new Error(problems.join('; '));
  return config;
}

export async function makeBuyer(t: Test, m: Market, o: { dataDir?: string; config?: BuyerConfig; settings?: Partial<BuyerSettings>; onStep?: Parameters<typeof openBuyer>[0]['onStep'] } = {}): Promise<RunningBuyer & { dataDir: string }> {
  const dataDir = o.dataDir ?? tempDir('bazaar-buyer-data-');
  await m.devnet.nwc.refresh();
  const b = await openBuyer({ dataDir, passphrase: PASSPHRASE, config: o.config ?? buyerConfig(m), logger, create: true, kdfLogN: 10, minBackoffMs: 100, ...(o.settings ? { settings: o.settings } : {}), ...(o.onStep ? { onStep: o.onStep } : {}) });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await b.close();
    if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...b, dataDir, close: async () => { closed = true; await b.close(); } };
}

/** Sats in a devnet account. */
export const balance = (m: Market, name: string): number => Math.floor(m.devnet.network.balance(name) / 1000);

export const patchTask = (repo: string, extra: Record<string, unknown> = {}) => ({ type: 'patch' as const, repo, ref: 'main', title: 'add() is wrong', body: 'add(2, 3) returns -1: the add function subtracts.', test: 'node test.mjs', allow: ['*.mjs'], timeLimitSecs: 60, ...extra });

/**
 * A provider written from scratch on the wire (our RelayPool, its own devnet wallet): it
 * answers every request of `kind` naming it with `answer(request)` — a real peer, used where
 * the project's own provider refuses to misbehave (it checks its results before offering them).
 */
export async function scriptedProvider(
  t: Test,
  m: Market,
  name: string,
  o: { kind: number; answer: (request: NostrEvent) => { content: string; tags: string[][] }; priceMsats: number; announce?: boolean; lightningNode?: string },
): Promise<{ pubkey: string; requests: NostrEvent[] }> {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const { uri } = m.devnet.account(name);
  await m.devnet.nwc.refresh();
  const wallet = await LightningWallet.connect({ nwcUri: uri, logger });
  const pool = new RelayPool({ relays: [m.relay.url], logger, auth: (tpl) => finalizeEvent(tpl, sk) as NostrEvent });
  const sign = (tpl: EventTemplate) => finalizeEvent(tpl, sk) as NostrEvent;
  const requests: NostrEvent[] = [];
  if (o.announce !== false) await pool.publish(sign(buildAnnouncement({ d: name, kinds: [o.kind], prices: { [o.kind]: { baseMsats: o.priceMsats, perUnitMsats: 0, unit: 'job' } }, terms: { [o.kind]: 'after-verify' }, ...(o.lightningNode ? { lightningNode: o.lightningNode } : {}) })), { timeoutMs: 5000 });
  const sub = pool.subscribe([{ kinds: [o.kind], '#p': [pubkey] }], (req) => {
    requests.push(req);
    void (async () => {
      await pool.publish(sign(buildFeedback({ request: req, status: 'processing' })), { timeoutMs: 5000 });
      const inv = await wallet.makeInvoice({ amountMsat: o.priceMsats, description: `job ${req.id}` });
      const a = o.answer(req);
      const tpl = buildJobResult(req, a.content, a.tags, { amount: { msats: o.priceMsats, bolt11: inv.bolt11 } });
      await pool.publish(sign(tpl), { timeoutMs: 5000 });
    })().catch((err: unknown) => logger.error({ err }, 'scripted provider failed'));
  });
  t.teardown(async () => {
    sub.close();
    await pool.close();
    await wallet.close();
  });
  return { pubkey, requests };
}

/** Polls `cond` (every 25 ms) until it gives a value; fails after `ms`. */
export async function waitFor<T>(what: string, cond: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
