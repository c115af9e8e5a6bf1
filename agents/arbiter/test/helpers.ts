// Test fixture: a real local market — our relay, the devnet (dev Lightning network, NWC wallet
// service, Cashu mint with a movable clock), providers and buyers built as their CLIs build them,
// the arbiter as `serve` starts it — plus the two liars the honest agents refuse to be: a
// provider that delivers a broken patch claiming its tests pass, and a buyer that disputes a
// patch that works. Everything is torn down.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import { bytesToHex } from '@noble/hashes/utils.js';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { startDevnet, type RunningDevnet } from '@bazaar/devnet/devnet';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { CashuWallet } from '@bazaar/agents-common/wallet/cashu';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { lockEscrow, newPaymentKey, prepareClaim, signClaim } from '@bazaar/agents-common/wallet/escrow';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildPaymentInfo, parsePaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { buildEscrowClaimTag, buildEscrowTag, parseEscrow, xOnlyKey } from '@bazaar/dvm-kinds/market/escrow';
import { buildDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { configTemplate as providerConfigTemplate, type AgentBackendConfig, type ProviderConfig } from '@bazaar/provider/config';
import { startProvider, type RunningProvider } from '@bazaar/provider/runtime';
import { validateConfig, type BuyerConfig } from '@bazaar/buyer/config';
import { openBuyer, type RunningBuyer } from '@bazaar/buyer/runtime';
import { configTemplate, type ArbiterConfig } from '../src/config.ts';
import { startArbiter, type RunningArbiter } from '../src/runtime.ts';

export const PASSPHRASE = 'test passphrase 123';
export const logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

/** A clock the mint and the buyer share, movable past escrow locktimes. */
export class Clock {
  offsetMs = 0;
  now = (): number => Date.now() + this.offsetMs;
  secs = (): number => Math.floor(this.now() / 1000);
}

export interface Market {
  relay: RunningRelay;
  devnet: RunningDevnet;
  mintUrl: string;
  clock: Clock;
}

/** `market`: the relay's market index and reputation too (its HTTP API shows what verdicts did). */
export async function startMarket(t: Test, o: { market?: boolean } = {}): Promise<Market> {
  const relayDir = tempDir('bazaar-arb-relay-');
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', verifyWorkers: 0, logger, ...(o.market ? { market: true } : {}) });
  const devDir = tempDir('bazaar-arb-devnet-');
  const clock = new Clock();
  const devnet = await startDevnet({ dataDir: devDir, relayUrl: relay.url, logger, mint: { port: 0, now: clock.secs }, nwc: { refreshIntervalMs: 200 } });
  t.teardown(async () => {
    await devnet.close();
    await relay.close();
    for (const d of [devDir, relayDir]) rmSync(d, { recursive: true, force: true });
  });
  return { relay, devnet, mintUrl: devnet.mintUrl ?? '', clock };
}

/** A git repository whose test fails: `add` subtracts. */
export function sampleRepo(t: Test): { dir: string; url: string } {
  const dir = tempDir('bazaar-arb-repo-');
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: dir, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'sum.mjs'), 'export function add(a, b) {\n  return a - b;\n}\n');
  writeFileSync(join(dir, 'test.mjs'), "import { add } from './sum.mjs';\nif (add(2, 3) !== 5) { console.error('add(2, 3) =', add(2, 3)); process.exit(1); }\nconsole.log('ok');\n");
  git('add', '-A');
  git('commit', '-q', '-m', 'sample with a bug');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, url: `file://${dir}` };
}

export const FIX = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a - b;\n+  return a + b;\n }\n';
export const BROKEN = FIX.replace('+  return a + b;', '+  return a * b;');
export const agent = (script: string): AgentBackendConfig => ({ command: ['/bin/sh', '-c', script], allowDomains: [], timeLimitSecs: 60 });
/** Reads its task like a real agent CLI would, then fixes the bug. */
export const GOOD_AGENT = "grep -q 'add' \"$BAZAAR_TASK_FILE\" && cat >/dev/null && sed -i 's/a - b/a + b/' sum.mjs";
export const patchTask = (repo: string, extra: Record<string, unknown> = {}) => ({ type: 'patch' as const, repo, ref: 'main', title: 'add() is wrong', body: 'add(2, 3) returns -1: the add function subtracts.', test: 'node test.mjs', allow: ['*.mjs'], timeLimitSecs: 60, ...extra });

export interface ArbiterHandle extends RunningArbiter {
  readonly dataDir: string;
}

/** An arbiter data dir: sealed identity and a config for this market. */
export async function arbiterDir(m: Market, o: { responseWindowSecs?: number; public?: boolean } = {}): Promise<string> {
  const dataDir = tempDir('bazaar-arb-data-');
  await createKeystoreFile(join(dataDir, 'keys.json'), PASSPHRASE, { logN: 10 });
  writeFileSync(join(dataDir, 'config.jsonc'), configTemplate({ relays: [m.relay.url], mints: [m.mintUrl], responseWindowSecs: o.responseWindowSecs ?? 3, ...(o.public ? { public: true } : {}) }), { mode: 0o600 });
  return dataDir;
}

export async function runArbiter(t: Test, m: Market, o: { dataDir?: string; overrides?: Partial<ArbiterConfig>; responseWindowSecs?: number; runner?: Runner } = {}): Promise<ArbiterHandle> {
  const dataDir = o.dataDir ?? (await arbiterDir(m, o));
  const a = await startArbiter({ dataDir, passphrase: PASSPHRASE, logger, overrides: { retryBaseSecs: 1, ...o.overrides }, pollMs: 200, allowFileRepos: true, minBackoffMs: 100, ...(o.runner ? { runner: o.runner } : {}) });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await a.close();
    if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...a, dataDir, close: async () => { closed = true; await a.close(); } };
}

export interface ProviderHandle extends RunningProvider {
  readonly dataDir: string;
}

/** `dataDir`: reopen a provider that ran before (a restart); the caller removes it. */
export async function runProvider(t: Test, m: Market, name: string, overrides: Partial<ProviderConfig> = {}, o: { dataDir?: string } = {}): Promise<ProviderHandle> {
  const dataDir = o.dataDir ?? tempDir(`bazaar-arb-prov-${name}-`);
  if (!o.dataDir) {
    const { uri } = m.devnet.account(name);
    await m.devnet.nwc.refresh();
    await createKeystoreFile(join(dataDir, 'keys.json'), PASSPHRASE, { logN: 10 });
    writeFileSync(join(dataDir, 'config.jsonc'), providerConfigTemplate({ relays: [m.relay.url], nwcUri: uri }), { mode: 0o600 });
  }
  const p = await startProvider({ dataDir, passphrase: PASSPHRASE, logger, overrides: { heartbeatSecs: 3600, lookbackSecs: 60, ...overrides }, invoicePollMs: 300, minBackoffMs: 100, allowFileRepos: true });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await p.close();
    if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...p, dataDir, close: async () => { closed = true; await p.close(); } };
}

/** An escrow provider of PatchGen that accepts our arbiter. */
export const escrowProvider = (m: Market, arbiterPaymentKey: string, extra: Partial<ProviderConfig> = {}): Partial<ProviderConfig> => ({ kinds: [5932], backends: { patchGen: agent(GOOD_AGENT) }, terms: { default: 'escrow' }, mints: [m.mintUrl], arbiters: [arbiterPaymentKey], disputeWindowSecs: 60, ...extra });

export function buyerConfig(m: Market, o: { name?: string; arbiters?: string[] } = {}): BuyerConfig {
  const { uri } = m.devnet.account(o.name ?? 'buyer', { fundSats: 10_000 });
  const { config, problems } = validateConfig({ relays: [m.relay.url], nwc_uri: uri, mint: m.mintUrl, ping_timeout_ms: 3000, retry_base_ms: 50, arbiters: o.arbiters ?? [], dispute_window_secs: 60 });
  if (!config) throw new Error(problems.join('; '));
  return config;
}

export async function makeBuyer(t: Test, m: Market, o: { arbiters?: string[]; name?: string } = {}): Promise<RunningBuyer & { dataDir: string }> {
  const dataDir = tempDir('bazaar-arb-buyer-');
  const config = buyerConfig(m, o);
  await m.devnet.nwc.refresh();
  const b = await openBuyer({ dataDir, passphrase: PASSPHRASE, config, logger, create: true, kdfLogN: 10, minBackoffMs: 100, now: m.clock.now });
  t.teardown(async () => {
    await b.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...b, dataDir };
}

/** Ecash for a wallet: minted against a bolt11 paid from a devnet account. */
export async function fund(m: Market, cashu: CashuWallet, account: string, sats: number): Promise<void> {
  m.devnet.account(account, { fundSats: sats * 2 });
  const { quote, bolt11 } = await cashu.requestMint(sats);
  m.devnet.network.pay(account, bolt11);
  await cashu.completeMint(quote, { timeoutMs: 10_000 });
}

/** Polls an async condition every 50 ms; fails after `ms`. */
export async function until<T>(what: string, cond: () => Promise<T | undefined | false> | T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Peer {
  readonly sk: Uint8Array;
  readonly pubkey: string;
  readonly pool: RelayPool;
  sign(t: EventTemplate): NostrEvent;
}

export function peer(t: Test, m: Market): Peer {
  const sk = generateSecretKey();
  const pool = new RelayPool({ relays: [m.relay.url], logger, auth: (tpl) => finalizeEvent(tpl, sk) as NostrEvent });
  t.teardown(() => pool.close());
  return { sk, pubkey: getPublicKey(sk), pool, sign: (tpl) => finalizeEvent(tpl, sk) as NostrEvent };
}

/** The payment key an agent publishes in its kind 10019. */
export async function paymentKeyOf(pool: RelayPool, pubkey: string): Promise<string> {
  const [e] = await pool.query([{ kinds: [10019], authors: [pubkey] }], { timeoutMs: 5000 });
  const p = e ? parsePaymentInfo(e) : undefined;
  if (!p?.ok) throw new Error(`no payment info for ${pubkey}`);
  return '02' + xOnlyKey(p.value.p2pkPubkey);
}

/**
 * A provider written on the wire that takes escrowed PatchGen jobs like ours does (it checks
 * the lock names it and claims the escrow to outputs of its own), but delivers `patch` claiming
 * the tests passed — the liar the project's provider refuses to be. It never answers disputes.
 */
export async function lyingProvider(t: Test, m: Market, o: { arbiterPaymentKey: string; patch: string; priceMsats: number }): Promise<{ pubkey: string; paymentKey: string; wallet: CashuWallet }> {
  const p = peer(t, m);
  const pay = newPaymentKey();
  const dir = tempDir('bazaar-arb-liar-');
  const wallet = await CashuWallet.open({ mintUrl: m.mintUrl, dataDir: dir, logger });
  t.teardown(async () => {
    await wallet.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await p.pool.publishAny(p.sign(buildAnnouncement({ d: 'liar', kinds: [5932], prices: { 5932: { baseMsats: o.priceMsats, perUnitMsats: 0, unit: 'job' } }, terms: { 5932: 'escrow' }, arbiters: [o.arbiterPaymentKey], disputeWindowSecs: 60 })), { timeoutMs: 5000 });
  await p.pool.publishAny(p.sign(buildPaymentInfo({ mints: [{ url: m.mintUrl }], p2pkPubkey: pay.pubkey })), { timeoutMs: 5000 });
  const sub = p.pool.subscribe([{ kinds: [5932], '#p': [p.pubkey] }], (req) => {
    void (async () => {
      const esc = parseEscrow(req);
      if (!esc.ok || !esc.value) return;
      await p.pool.publish(p.sign(buildFeedback({ request: req, status: 'processing' })), { timeoutMs: 5000 });
      const claim = await prepareClaim(wallet, esc.value.token);
      const signed = signClaim(claim.package, pay.secretKey);
      const tpl = buildPatchGenResult(req, { patch: o.patch, testExitCode: 0 }, { amount: { msats: o.priceMsats } });
      await p.pool.publish(p.sign({ ...tpl, tags: [...tpl.tags, buildEscrowClaimTag(signed)] }), { timeoutMs: 5000 });
    })().catch((err: unknown) => logger.error({ err }, 'lying provider failed'));
  });
  t.teardown(() => sub.close());
  return { pubkey: p.pubkey, paymentKey: pay.pubkey, wallet };
}

/**
 * A buyer written on the wire: it locks an escrow to the provider with our arbiter, posts a
 * PatchGen job, takes the result and — whatever it is — disputes it with its own claim, the
 * liar the project's buyer refuses to be (it disputes only what failed its verification).
 */
export async function lyingBuyer(t: Test, m: Market, o: { provider: string; arbiter: string; repo: string; priceSats: number }): Promise<{ peer: Peer; wallet: CashuWallet; request: NostrEvent; result: () => Promise<NostrEvent>; dispute: (created?: number) => Promise<NostrEvent>; escrowAmount: number }> {
  const p = peer(t, m);
  const pay = newPaymentKey();
  const dir = tempDir('bazaar-arb-liar-buyer-');
  const wallet = await CashuWallet.open({ mintUrl: m.mintUrl, dataDir: dir, logger });
  t.teardown(async () => {
    await wallet.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await fund(m, wallet, 'liar-buyer', 200);
  const providerKey = await paymentKeyOf(p.pool, o.provider);
  const arbiterKey = await paymentKeyOf(p.pool, o.arbiter);
  const expiration = Math.floor(Date.now() / 1000) + 300;
  const locked = await lockEscrow(wallet, { price: o.priceSats, provider: providerKey, buyer: pay.pubkey, arbiter: arbiterKey, locktime: expiration + 60 + 60 + 300 });
  const tpl = buildPatchGenRequest({ repoUrl: o.repo, issueBody: 'add(2, 3) returns -1: the add function subtracts.', params: { repo_ref: 'main', issue_title: 'add() is wrong', test_cmd: 'node test.mjs', time_limit_secs: 60, allow_path: ['*.mjs'] }, providers: [o.provider], expiration, relays: [m.relay.url] });
  const request = p.sign({ ...tpl, tags: [...tpl.tags, buildEscrowTag(locked.token)] });
  let resultEvent: NostrEvent | undefined;
  const sub = p.pool.subscribe([{ kinds: [6932], '#e': [request.id] }], (e) => {
    if (e.pubkey === o.provider) resultEvent = e;
  });
  t.teardown(() => sub.close());
  await p.pool.publishAny(request, { timeoutMs: 5000 });
  const result = () => until('the provider delivers', () => resultEvent, 120_000);
  const dispute = async (created?: number) => {
    const r = await result();
    const claim = await prepareClaim(wallet, locked.token);
    const ev = p.sign({ ...buildDispute({ requestId: request.id, resultId: r.id, provider: o.provider, arbiter: o.arbiter, failedChecks: ['test_exit_code'], evidenceSha256: sha256Hex('made up'), message: 'tests fail (they do not)', escrowClaim: signClaim(claim.package, pay.secretKey) }), ...(created ? { created_at: created } : {}) });
    await p.pool.publishAny(ev, { timeoutMs: 5000 });
    return ev;
  };
  return { peer: p, wallet, request, result, dispute, escrowAmount: locked.amount };
}

export const hex = bytesToHex;
