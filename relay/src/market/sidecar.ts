// The market index as a sidecar of any relay (strfry or another): it subscribes to the market
// kinds, verifies every event itself (a relay is not trusted), extracts the same facts and
// folds them with the same reducers as the relay's own index — in arrival order, idempotent by
// event id — and publishes the same NIP-85 assertions back to the relay with its own key.
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Logger } from 'pino';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { REPUTATION_KIND } from '@bazaar/dvm-kinds/market/reputation';
import { verifyEventSync } from '../ingest/verify.ts';
import { extractFact, isMarketKind, type Fact } from './facts.ts';
import { MarketIndex } from './market-index.ts';
import { loadOrCreateReputationKey, type ReputationKey } from './reputation-key.ts';
import { ReputationPublisher } from './publisher.ts';
import { CashuChecker } from './cashu-checker.ts';
import type { ReputationParams } from './reputation.ts';

/** The market kinds, as NIP-01 filters need them listed. */
export const MARKET_KINDS: readonly number[] = [...Array.from({ length: 2000 }, (_, i) => 5000 + i), 7000, 11998, 31990, 39300, 39301, 39302].filter(isMarketKind);

export interface SidecarOptions {
  readonly relayUrl: string;
  /** Data directory: the index environment and the reputation key. */
  readonly dataDir: string;
  readonly trustedMints?: readonly string[];
  readonly debounceMs?: number;
  /** Publishing rounds at least this far apart (default 30 000 ms). */
  readonly minIntervalMs?: number;
  readonly params?: ReputationParams;
  readonly passphrase?: string;
  /** Re-read this far back (seconds) before the newest fact already held, when (re)subscribing. */
  readonly overlapSecs?: number;
  readonly logger?: Logger;
}

interface LinkOptions {
  readonly url: string;
  onOpen(): void;
  onEvent(sub: string, e: unknown): void;
  onEose(sub: string): void;
  readonly log?: Logger;
}

interface Pending {
  resolve(r: { ok: boolean; message: string }): void;
  timer: NodeJS.Timeout;
}

/** A small NIP-01 client: one socket, reconnecting with backoff, re-subscribing on reconnect. */
class RelayLink {
  #ws: WebSocket | undefined;
  #closed = false;
  #backoff = 500;
  readonly #pending = new Map<string, Pending>();
  readonly #o: LinkOptions;
  #opened!: () => void;
  /** Resolves once the first connection is open. */
  readonly ready = new Promise<void>((r) => { this.#opened = r; });

  constructor(o: LinkOptions) {
    this.#o = o;
    this.#connect();
  }

  #connect(): void {
    if (this.#closed) return;
    const ws = new WebSocket(this.#o.url);
    this.#ws = ws;
    ws.on('open', () => {
      this.#backoff = 500;
      this.#o.log?.info({ relay: this.#o.url }, 'connected');
      this.#o.onOpen();
      this.#opened();
    });
    ws.on('message', (data) => {
      let m: unknown[];
      try {
        m = JSON.parse(data.toString()) as unknown[];
      } catch {
        return;
      }
      if (!Array.isArray(m)) return;
      if (m[0] === 'EVENT' && typeof m[1] === 'string') this.#o.onEvent(m[1], m[2]);
      else if (m[0] === 'EOSE' && typeof m[1] === 'string') this.#o.onEose(m[1]);
      else if (m[0] === 'OK' && typeof m[1] === 'string') {
        const p = this.#pending.get(m[1]);
        if (p) {
          clearTimeout(p.timer);
          this.#pending.delete(m[1]);
          p.resolve({ ok: m[2] === true, message: typeof m[3] === 'string' ? m[3] : '' });
        }
      } else if (m[0] === 'CLOSED') this.#o.log?.warn({ relay: this.#o.url, sub: m[1], reason: m[2] }, 'subscription closed by the relay');
      else if (m[0] === 'NOTICE') this.#o.log?.info({ relay: this.#o.url, notice: m[1] }, 'relay notice');
    });
    ws.on('error', (err) => this.#o.log?.debug({ err, relay: this.#o.url }, 'relay socket error'));
    ws.on('close', () => {
      for (const [id, p] of this.#pending) { clearTimeout(p.timer); p.resolve({ ok: false, message: 'error: connection closed before OK' }); this.#pending.delete(id); }
      if (this.#closed) return;
      this.#o.log?.warn({ relay: this.#o.url, retryMs: this.#backoff }, 'disconnected; reconnecting');
      setTimeout(() => this.#connect(), this.#backoff).unref();
      this.#backoff = Math.min(this.#backoff * 2, 30_000);
    });
  }

  send(msg: unknown[]): boolean {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  /** EVENT and wait for the relay's OK (10 s at most). */
  publish(e: NostrEvent): Promise<{ ok: boolean; message: string }> {
    return new Promise((resolve) => {
      if (!this.send(['EVENT', e])) return resolve({ ok: false, message: 'error: not connected' });
      const timer = setTimeout(() => { this.#pending.delete(e.id); resolve({ ok: false, message: 'error: no OK within 10 s' }); }, 10_000);
      this.#pending.set(e.id, { resolve, timer });
    });
  }

  close(): void {
    this.#closed = true;
    this.#ws?.close();
  }
}

export interface RunningSidecar {
  readonly index: MarketIndex;
  readonly key: ReputationKey;
  readonly publisher: ReputationPublisher;
  /** Resolves once the first subscription reached EOSE (the backlog is indexed). */
  readonly caughtUp: Promise<void>;
  /** Events received that were dropped (bad signature or shape). */
  readonly rejected: () => number;
  close(): Promise<void>;
}

export async function startSidecar(o: SidecarOptions): Promise<RunningSidecar> {
  const log = o.logger?.child({ component: 'indexer' });
  const key = loadOrCreateReputationKey(join(o.dataDir, 'reputation.key'), { ...((o.passphrase ?? process.env.BAZAAR_RELAY_KEY_PASSPHRASE) ? { passphrase: o.passphrase ?? process.env.BAZAAR_RELAY_KEY_PASSPHRASE } : {}) });
  const index = await MarketIndex.open({ path: join(o.dataDir, 'index'), ...(o.logger ? { logger: o.logger } : {}), ...(o.trustedMints ? { trustedMints: o.trustedMints } : {}), ...(o.params ? { params: o.params } : {}) });
  let rejected = 0;
  let batch: Fact[] = [];
  let flushing: Promise<unknown> = Promise.resolve();
  const flush = () => {
    const facts = batch;
    batch = [];
    flushing = flushing.then(() => index.addFacts(facts)).catch((err: unknown) => log?.error({ err }, 'could not store facts'));
    return flushing;
  };
  let scheduled = false;
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((r) => { markCaughtUp = r; });
  const assertions: NostrEvent[] = [];
  let assertionsDone!: () => void;
  const assertionsRead = new Promise<void>((r) => { assertionsDone = r; });

  const newestFact = (): number => {
    let max = 0;
    for (const f of index.state.facts()) if (f.at > max) max = f.at;
    return max;
  };
  const link = new RelayLink({
    url: o.relayUrl,
    ...(log ? { log } : {}),
    onOpen: () => {
      const newest = newestFact();
      const filter: Filter = { kinds: [...MARKET_KINDS], ...(newest > 0 ? { since: Math.max(0, newest - (o.overlapSecs ?? 3600)) } : {}) };
      link.send(['REQ', 'market', filter]);
      link.send(['REQ', 'own', { kinds: [REPUTATION_KIND], authors: [key.pubkey] }]);
    },
    onEvent: (sub, raw) => {
      if (sub === 'own') {
        if (verifyEventSync(raw)) assertions.push(raw as NostrEvent);
        return;
      }
      if (sub !== 'market') return;
      // Never trust the relay: the signature is checked here, like an ingest.
      if (!verifyEventSync(raw)) { rejected++; return; }
      const e = raw as NostrEvent;
      if (index.state.has(e.id)) return;
      const f = extractFact(e, { knownRequest: (id) => index.state.has(id) || batch.some((b) => b.id === id) });
      if (!f) return;
      batch.push(f);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => { scheduled = false; void flush(); });
      }
    },
    onEose: (sub) => {
      if (sub === 'own') { link.send(['CLOSE', 'own']); assertionsDone(); }
      if (sub === 'market') void flush().then(() => markCaughtUp());
    },
  });
  const publisher = new ReputationPublisher({
    key, state: () => index.state, publish: (e) => link.publish(e), ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}), ...(o.minIntervalMs !== undefined ? { minIntervalMs: o.minIntervalMs } : {}),
    relayHint: o.relayUrl,
    profile: { name: 'Bazaar market indexer', about: `NIP-85 assertions about Bazaar compute providers (kind 30382, d = provider), computed from the NIP-90 job traffic on ${o.relayUrl}: only independent buyers' paid jobs with verified proof of payment count.` },
    ...(log ? { logger: log } : {}),
  });
  index.on('applied', () => publisher.schedule());
  const checker = o.trustedMints?.length ? new CashuChecker({ index, ...(log ? { logger: log } : {}) }) : undefined;
  await link.ready;
  // Seed what is already published, so a restart re-publishes only what changed.
  await Promise.race([assertionsRead, new Promise((r) => setTimeout(r, 10_000).unref())]);
  publisher.seed(assertions);
  const profile = await publisher.profileEvent(Math.floor(Date.now() / 1000));
  if (profile) void link.publish(profile);
  checker?.start();
  void caughtUp.then(() => publisher.schedule());
  log?.info({ relay: o.relayUrl, reputationPubkey: key.pubkey, keyAtRest: key.atRest }, 'indexer running');
  return {
    index, key, publisher, caughtUp,
    rejected: () => rejected,
    async close() {
      link.close();
      await checker?.close();
      await publisher.close();
      await flush();
      await index.close();
    },
  };
}
