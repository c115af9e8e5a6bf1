// Test fixture: a real local market — our relay on an ephemeral port, the devnet (dev
// Lightning network + NWC wallet service over that relay), a provider with a sealed
// identity in a temp dir — and a raw nostr-tools customer. Everything is torn down.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import type { Test } from 'tap';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { startDevnet, type RunningDevnet } from '@bazaar/devnet/devnet';
import { createKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { configTemplate } from '../src/config.ts';
import { startProvider, type ClusterChoice, type RunningProvider } from '../src/runtime.ts';

export const PASSPHRASE = 'test passphrase 123';
export const logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * A fresh directory under the system temp dir, removed when `t` ends. tap runs teardowns last
 * registered first, so whatever is started in it afterwards (and closed by its own teardown)
 * has stopped writing there before it goes.
 */
export function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Wait until `cond()` holds, checking after each relay frame or every 25 ms; fails after `ms`. */
export async function waitFor<T>(cond: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Market {
  relay: RunningRelay;
  devnet: RunningDevnet;
  providerDir: string;
  customerUri: string;
  providerUri: string;
}

export async function startMarket(t: Test, opts: { relayPort?: number; relayDir?: string; authRequired?: boolean } = {}): Promise<Market> {
  const relayDir = opts.relayDir ?? tempDir(t, 'bazaar-prov-relay-');
  const relay = await startRelay({ port: opts.relayPort ?? 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', verifyWorkers: 0, logger, ...(opts.authRequired ? { info: { authRequired: true } } : {}) });
  const devDir = tempDir(t, 'bazaar-prov-devnet-');
  const devnet = await startDevnet({ dataDir: devDir, relayUrl: relay.url, logger, mint: false, nwc: { refreshIntervalMs: 200 } });
  const provider = devnet.account('provider');
  const customer = devnet.account('customer', { fundSats: 10_000 });
  await devnet.nwc.refresh();
  const providerDir = await makeProviderDir(t, [relay.url], provider.uri);
  t.teardown(async () => {
    await devnet.close();
    await relay.close();
  });
  return { relay, devnet, providerDir, customerUri: customer.uri, providerUri: provider.uri };
}

/** A provider data dir with a sealed identity (cheap scrypt for tests) and a config from the template, removed when `t` ends. */
export async function makeProviderDir(t: Test, relays: string[], nwcUri?: string): Promise<string> {
  const dir = tempDir(t, 'bazaar-prov-data-');
  await createKeystoreFile(join(dir, 'keys.json'), PASSPHRASE, { logN: 10 });
  writeFileSync(join(dir, 'config.jsonc'), configTemplate({ relays, ...(nwcUri ? { nwcUri } : {}) }), { mode: 0o600 });
  return dir;
}

export async function runProvider(t: Test, m: Market, overrides: Parameters<typeof startProvider>[0]['overrides'] = {}, extra: { dataDir?: string; allowFileRepos?: boolean; cluster?: ClusterChoice } = {}): Promise<RunningProvider> {
  const p = await startProvider({ dataDir: extra.dataDir ?? m.providerDir, passphrase: PASSPHRASE, logger, overrides: { heartbeatSecs: 3600, ...overrides }, invoicePollMs: 300, minBackoffMs: 100, ...(extra.allowFileRepos ? { allowFileRepos: true } : {}), ...(extra.cluster ? { cluster: extra.cluster } : {}) });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await p.close();
  });
  const close = p.close;
  return { ...p, close: async () => { closed = true; await close(); } };
}

/** A raw NIP-01 customer over `ws` (no Bazaar code): signs with its own key, collects every event. */
export class Customer {
  readonly sk = generateSecretKey();
  readonly pubkey = getPublicKey(this.sk);
  readonly events: NostrEvent[] = [];
  readonly ws: WebSocket;
  readonly #oks = new Map<string, (v: [boolean, string]) => void>();
  readonly #open: Promise<void>;
  readonly #authed: Promise<void> | undefined;
  #listeners = new Set<() => void>();

  /** With `auth`, answers the relay's NIP-42 challenge before subscribing. */
  constructor(url: string, opts: { auth?: boolean } = {}) {
    this.ws = new WebSocket(url);
    this.#open = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    let challenged: (c: string) => void = () => {};
    if (opts.auth) {
      const challenge = new Promise<string>((resolve) => (challenged = resolve));
      this.#authed = challenge.then(async (c) => {
        const [ok, msg] = await this.publish(this.sign({ kind: 22242, tags: [['relay', url], ['challenge', c]] }), 'AUTH');
        if (!ok) throw new Error(`AUTH refused: ${msg}`);
      });
    }
    this.ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as unknown[];
      if (m[0] === 'AUTH') challenged(m[1] as string);
      else if (m[0] === 'EVENT') {
        this.events.push(m[2] as NostrEvent);
        for (const l of this.#listeners) l();
      } else if (m[0] === 'OK') this.#oks.get(m[1] as string)?.([m[2] as boolean, m[3] as string]);
    });
  }

  async ready(): Promise<this> {
    await this.#open;
    await this.#authed;
    this.ws.send(JSON.stringify(['REQ', 'mine', { kinds: [6930, 6931, 6932, 6933, 6050, 7000], '#p': [this.pubkey] }]));
    return this;
  }

  sign(t: { kind: number; tags: string[][]; content?: string; created_at?: number }): NostrEvent {
    return finalizeEvent({ kind: t.kind, tags: t.tags, content: t.content ?? '', created_at: t.created_at ?? Math.floor(Date.now() / 1000) }, this.sk) as NostrEvent;
  }

  async publish(e: NostrEvent, verb: 'EVENT' | 'AUTH' = 'EVENT'): Promise<[boolean, string]> {
    const ok = new Promise<[boolean, string]>((resolve) => this.#oks.set(e.id, resolve));
    this.ws.send(JSON.stringify([verb, e]));
    return ok;
  }

  /** Resolves with the first event (already received or to come) matching `pred`. */
  waitEvent(pred: (e: NostrEvent) => boolean, ms = 20_000, what = 'event'): Promise<NostrEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(l);
        reject(new Error(`timed out waiting for ${what}`));
      }, ms);
      const l = () => {
        const e = this.events.find(pred);
        if (!e) return;
        clearTimeout(timer);
        this.#listeners.delete(l);
        resolve(e);
      };
      this.#listeners.add(l);
    });
  }

  feedbackFor(jobId: string, status?: string): NostrEvent[] {
    return this.events.filter((e) => e.kind === 7000 && e.tags.some((t) => t[0] === 'e' && t[1] === jobId) && (!status || e.tags.some((t) => t[0] === 'status' && t[1] === status)));
  }

  resultsFor(jobId: string): NostrEvent[] {
    return this.events.filter((e) => e.kind >= 6000 && e.kind < 7000 && e.tags.some((t) => t[0] === 'e' && t[1] === jobId));
  }

  close(): void {
    this.ws.close();
  }
}

export const isFeedback = (jobId: string, status: string) => (e: NostrEvent) => e.kind === 7000 && e.tags.some((t) => t[0] === 'e' && t[1] === jobId) && e.tags.some((t) => t[0] === 'status' && t[1] === status);
export const isResult = (jobId: string) => (e: NostrEvent) => e.kind >= 6000 && e.kind < 7000 && e.tags.some((t) => t[0] === 'e' && t[1] === jobId);

export function sandboxJob(c: Customer, cmds: string[], extra: string[][] = [], timeLimit = 30): NostrEvent {
  return c.sign({ kind: 5930, tags: [...cmds.map((x) => ['param', 'cmd', x]), ['param', 'time_limit_secs', String(timeLimit)], ...extra] });
}

/** The job's outcome as the customer sees it: its result, or an error feedback (then this throws with its message). */
export async function resultOrError(c: Customer, jobId: string, ms = 60_000): Promise<NostrEvent> {
  const e = await c.waitEvent((x) => isResult(jobId)(x) || isFeedback(jobId, 'error')(x), ms, `outcome of ${jobId}`);
  if (e.kind === 7000) throw new Error(`job failed: ${e.tags.find((t) => t[0] === 'status')?.[2] ?? ''}`);
  return e;
}

const ROOT = new URL('../../..', import.meta.url).pathname;

/** `bazaar ARGS` as a child process (JSON logs, the test passphrase), its output collected and awaitable. */
export function bazaar(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess & { out: () => string; waitFor: (re: RegExp, ms?: number) => Promise<void>; exited: Promise<number | null> } {
  // Dies with the test process even when tap kills it (die-with-parent.ts).
  const p = spawn(...dieWithParent(process.execPath, ['--import=tsx', 'scripts/bazaar.mjs', ...args]), { cwd: ROOT, env: { ...process.env, BAZAAR_PASSPHRASE: PASSPHRASE, BAZAAR_LOG_FORMAT: 'json', BAZAAR_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const on = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  p.stdout!.on('data', on);
  p.stderr!.on('data', on);
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  return Object.assign(p, {
    out: () => out,
    exited,
    waitFor: (re: RegExp, ms = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out waiting for ${re} in provider output:\n${out.slice(-2000)}`)); }, ms);
        const check = () => {
          if (re.test(out)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      }),
  });
}

export async function cliJson<T>(args: string[]): Promise<T> {
  const p = bazaar(args);
  const code = await p.exited;
  if (code !== 0) throw new Error(`bazaar ${args.join(' ')} exited ${code}: ${p.out()}`);
  return JSON.parse(p.out()) as T;
}

/** Every event on the relay matching `filter` (REQ until EOSE). */
export function query(url: string, filter: object): Promise<NostrEvent[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got: NostrEvent[] = [];
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('query timed out')); }, 10_000);
    ws.on('open', () => ws.send(JSON.stringify(['REQ', 'q', filter])));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as unknown[];
      if (m[0] === 'EVENT') got.push(m[2] as NostrEvent);
      if (m[0] === 'EOSE') {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    });
    ws.on('error', reject);
  });
}
