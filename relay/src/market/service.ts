// The market side of a running relay, wired in one place: the index following the store, the
// reputation key and its NIP-85 publisher, the Cashu mint checker, the HTTP API, the page and
// /metrics. `startRelay` opens it before the relay core (the core needs its hooks) and
// attaches the core once it exists (the publisher publishes through `addEvent`).
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { REPUTATION_KIND } from '@bazaar/dvm-kinds/market/reputation';
import type { EventStore } from '../store/event-store.ts';
import type { RelayCore } from '../relay.ts';
import type { HttpRequest, HttpResponse } from '../transport/transport.ts';
import { MarketIndex } from './market-index.ts';
import { loadOrCreateReputationKey, type ReputationKey } from './reputation-key.ts';
import { ReputationPublisher } from './publisher.ts';
import { CashuChecker } from './cashu-checker.ts';
import { marketHttp } from './http-api.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import type { ReputationParams } from './reputation.ts';

export interface MarketOptions {
  /** Index environment directory (default: DATA/market/index). */
  readonly dir?: string;
  /** Reputation key file (default: DATA/market/reputation.key). */
  readonly keyFile?: string;
  /** Encrypts the reputation key at rest (NIP-49); default: BAZAAR_RELAY_KEY_PASSPHRASE. */
  readonly passphrase?: string;
  /** Mints whose NUT-07 answers count for Cashu receipts. */
  readonly trustedMints?: readonly string[];
  /** Wait this long after a change before publishing assertions (default 2000 ms). */
  readonly debounceMs?: number;
  /** Publishing rounds at least this far apart (default 30 000 ms). */
  readonly minIntervalMs?: number;
  /** Publish NIP-85 assertions (default true). */
  readonly publish?: boolean;
  /** Serve the marketplace page at `/` (default true). */
  readonly page?: boolean;
  readonly params?: ReputationParams;
  /** The index catches up with the store at most this often (default 250 ms; see MarketIndexOptions). */
  readonly catchUpIntervalMs?: number;
  /** How often Cashu receipts are re-checked at their mint (default 30 s). */
  readonly cashuCheckIntervalMs?: number;
}

export class MarketService {
  readonly index: MarketIndex;
  readonly key: ReputationKey;
  readonly metrics: RelayMetrics;
  publisher: ReputationPublisher | undefined;
  readonly #opts: MarketOptions;
  readonly #log: Logger | undefined;
  readonly #api: (req: HttpRequest) => HttpResponse | undefined;
  #core: RelayCore | undefined;
  #checker: CashuChecker | undefined;

  private constructor(index: MarketIndex, key: ReputationKey, o: MarketOptions, log: Logger | undefined) {
    this.index = index;
    this.key = key;
    this.#opts = o;
    this.#log = log;
    this.#api = marketHttp({ state: () => this.index.state, reputationPubkey: key.pubkey, ...(o.page === false ? { page: false } : {}) });
    this.metrics = createRelayMetrics({ core: () => this.#core, index: () => this.index, publisher: () => this.publisher });
  }

  static async open(dataDir: string, o: MarketOptions, logger?: Logger): Promise<MarketService> {
    const log = logger?.child({ component: 'market' });
    const key = loadOrCreateReputationKey(o.keyFile ?? join(dataDir, 'market', 'reputation.key'), { ...((o.passphrase ?? process.env.BAZAAR_RELAY_KEY_PASSPHRASE) ? { passphrase: o.passphrase ?? process.env.BAZAAR_RELAY_KEY_PASSPHRASE } : {}) });
    const index = await MarketIndex.open({ path: o.dir ?? join(dataDir, 'market', 'index'), ...(logger ? { logger } : {}), ...(o.trustedMints ? { trustedMints: o.trustedMints } : {}), ...(o.params ? { params: o.params } : {}), ...(o.catchUpIntervalMs !== undefined ? { catchUpIntervalMs: o.catchUpIntervalMs } : {}) });
    log?.info({ reputationPubkey: key.pubkey, keyAtRest: key.atRest }, 'market index and reputation key ready');
    return new MarketService(index, key, o, log);
  }

  /** HTTP routes for RelayCoreOptions.http: /metrics, the API, the page. */
  http = (req: HttpRequest): HttpResponse | Promise<HttpResponse> | undefined => this.metrics.http(req) ?? this.#api(req);

  /** For RelayCoreOptions.onStored. */
  onStored = (event: NostrEvent, seq: number): void => this.index.push(event, seq);

  /** Attach the running core and store: follow the store, publish through the core. */
  async start(core: RelayCore, store: EventStore): Promise<void> {
    this.#core = core;
    const o = this.#opts;
    if (o.publish !== false) {
      const publish = (e: NostrEvent) => core.addEvent(e, { source: 'internal', sourceInfo: 'reputation' });
      this.publisher = new ReputationPublisher({
        key: this.key, state: () => this.index.state, publish, ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}), ...(o.minIntervalMs !== undefined ? { minIntervalMs: o.minIntervalMs } : {}),
        ...(core.opts.publicUrl ? { relayHint: core.opts.publicUrl } : {}),
        profile: {
          name: `${String(core.opts.info.name)} reputation`,
          about: 'NIP-85 assertions about Bazaar compute providers (kind 30382, d = provider): figures from the NIP-90 job traffic this relay stores, counting only independent buyers\' paid jobs with verified proof of payment. Tiers per the Bazaar design.',
        },
        ...(this.#log ? { logger: this.#log } : {}),
      });
      this.publisher.seed(await storedAssertions(store, this.key.pubkey));
      const profile = await this.publisher.profileEvent(Math.floor(Date.now() / 1000));
      if (profile) {
        const [have] = await store.query([{ kinds: [0], authors: [this.key.pubkey], limit: 1 }]);
        if (!have || (JSON.parse(have) as NostrEvent).content !== profile.content) await core.addEvent(profile, { source: 'internal', sourceInfo: 'reputation' });
      }
      this.index.on('applied', () => this.publisher?.schedule());
    }
    if (o.trustedMints?.length) {
      this.#checker = new CashuChecker({ index: this.index, ...(o.cashuCheckIntervalMs !== undefined ? { intervalMs: o.cashuCheckIntervalMs } : {}), ...(this.#log ? { logger: this.#log } : {}) });
      this.index.on('applied', (facts: { t: string }[]) => { if (facts.some((f) => f.t === 'receipt')) void this.#checker?.check(); });
    }
    this.index.on('error', () => {}); // logged by the index; the next notify retries
    await this.index.follow(store);
    this.publisher?.schedule();
    this.#checker?.start();
  }

  async close(): Promise<void> {
    await this.#checker?.close();
    await this.publisher?.close();
    await this.index.close();
  }
}

/** Every assertion this key already has in the store (paged: a store caps each query's limit). */
async function storedAssertions(store: EventStore, pubkey: string): Promise<NostrEvent[]> {
  const out: NostrEvent[] = [];
  let until: number | undefined;
  const seen = new Set<string>();
  for (;;) {
    const page = (await store.query([{ kinds: [REPUTATION_KIND], authors: [pubkey], ...(until !== undefined ? { until } : {}) }])).map((j) => JSON.parse(j) as NostrEvent).filter((e) => !seen.has(e.id));
    if (!page.length) return out;
    for (const e of page) { seen.add(e.id); out.push(e); }
    const oldest = page[page.length - 1].created_at;
    if (until === oldest) return out; // a whole page at one second: good enough to seed from
    until = oldest;
  }
}
