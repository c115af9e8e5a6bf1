// Wires a relay together: store + verifier + policy + core + transport.
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { pino } from 'pino';
import type { Policy } from '@bazaar/policies/policy';
import { RelayCore } from './relay.ts';
import { addressOfUrl } from './relay-address.ts';
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from './limits.ts';
import type { RelayInfoConfig } from './nip11.ts';
import type { EventStore } from './store/event-store.ts';
import { createVerifier, invalidReason } from './ingest/verify.ts';
import type { Transport } from './transport/transport.ts';
import type { NegentropyOptions } from './sync/negentropy-sessions.ts';
import type { RelayCluster } from './cluster/cluster.ts';
import type { ClusterOptions } from './cluster/cluster-options.ts';
import { createUwsTransport } from './transport/uws-transport.ts';
import { createWsTransport } from './transport/ws-transport.ts';
import type { MarketOptions, MarketService } from './market/service.ts';

export interface RelayOptions {
  readonly port?: number;
  readonly host?: string;
  /** Data directory for the LMDB store (created if missing). Ignored when `store` is given. */
  readonly dataDir?: string;
  readonly store?: EventStore;
  readonly transport?: 'uws' | 'ws';
  readonly limits?: Partial<RelayLimits>;
  readonly info?: Partial<RelayInfoConfig>;
  readonly policy?: Policy;
  readonly policyTimeoutMs?: number;
  readonly publicUrl?: string;
  /** Take client addresses from X-Forwarded-For / X-Real-IP (behind a reverse proxy only). */
  readonly trustProxy?: boolean;
  /** Time budget of one query-scheduler turn (ms); default 5. */
  readonly querySliceMs?: number;
  /** Worker threads for signature verification (0 = inline). */
  readonly verifyWorkers?: number;
  /**
   * The market index, NIP-85 reputation, HTTP API, page and /metrics (needs `dataDir`).
   * `bazaar relay` turns it on unless `--no-market`; programmatic relays opt in.
   */
  readonly market?: MarketOptions | boolean;
  /** Where the LMDB store applies writes: inline (default; lmdb-js batches and group-commits) or on writer threads of their own. Ignored when `store` is given. */
  readonly storeWriter?: 'thread' | 'inline';
  readonly logger?: Logger;
  /** Clock in unix seconds (tests). */
  readonly now?: () => number;
  /** NIP-77 negentropy sync limits; `false` turns NIP-77 off. */
  readonly negentropy?: Partial<NegentropyOptions> | false;
  /** Join a relay cluster on NATS JetStream (see cluster/cluster.ts and README). */
  readonly cluster?: ClusterOptions;
}

export interface RunningRelay {
  /** ws://host:port */
  readonly url: string;
  readonly port: number;
  readonly core: RelayCore;
  readonly transport: Transport['name'];
  /** The market side, when enabled. */
  readonly market?: MarketService;
  /** The cluster link, when the relay is a cluster node. */
  readonly cluster?: RelayCluster;
  close(): Promise<void>;
}

export function createTransport(name: 'uws' | 'ws'): Transport {
  return name === 'uws' ? createUwsTransport() : createWsTransport();
}

export async function startRelay(opts: RelayOptions = {}): Promise<RunningRelay> {
  if (opts.publicUrl !== undefined && !addressOfUrl(opts.publicUrl)) throw new Error(`startRelay: publicUrl must be a ws:// or wss:// URL (got ${JSON.stringify(opts.publicUrl)})`);
  const logger = opts.logger ?? pino({ level: 'silent' });
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...opts.limits };
  const info: RelayInfoConfig = { name: 'bazaar', description: 'Bazaar relay: an open market for verifiable compute over Nostr (NIP-90).', authRequired: false, restrictedWrites: false, ...opts.info };
  const ownStore = !opts.store;
  let store: EventStore;
  if (opts.store) store = opts.store;
  else {
    if (!opts.dataDir) throw new Error('startRelay: either dataDir or store is required');
    mkdirSync(opts.dataDir, { recursive: true });
    const { openLmdbStore } = await import('./store/lmdb-store.ts');
    // Writes on the store's own thread: the event loop keeps taking messages while a batch commits.
    store = await openLmdbStore({ path: opts.dataDir, logger, maxLimit: limits.maxLimit, writer: opts.storeWriter ?? 'inline' });
  }
  let cluster: RelayCluster | undefined;
  if (opts.cluster) {
    // Reach NATS before anything else starts: an unreachable cluster fails the start, not the first event.
    const { RelayCluster: Cluster } = await import('./cluster/cluster.ts');
    try {
      cluster = await Cluster.connect(opts.cluster, { logger, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
    } catch (err) {
      if (ownStore) await store.close();
      throw err;
    }
  }
  const verifier = createVerifier({ logger, ...(opts.verifyWorkers !== undefined ? { workers: opts.verifyWorkers } : {}) });
  let market: MarketService | undefined;
  if (opts.market) {
    if (!opts.dataDir) throw new Error('startRelay: the market index needs a dataDir');
    const { MarketService } = await import('./market/service.ts');
    market = await MarketService.open(opts.dataDir, opts.market === true ? {} : opts.market, logger);
    info.reputationPubkey = market.key.pubkey;
  }
  const core = new RelayCore({
    store,
    ...(market ? { onStored: market.onStored, http: market.http, onQuery: market.metrics.observeQuery } : {}),
    verify: async (e) => {
      const outcome = await verifier.check(e);
      return outcome === 'valid' ? null : invalidReason(outcome);
    },
    limits,
    info,
    logger,
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.policyTimeoutMs !== undefined ? { policyTimeoutMs: opts.policyTimeoutMs } : {}),
    ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
    ...(opts.trustProxy ? { trustProxy: true } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.querySliceMs !== undefined ? { querySliceMs: opts.querySliceMs } : {}),
    ...(opts.negentropy !== undefined ? { negentropy: opts.negentropy } : {}),
    ...(cluster ? { replicate: cluster.replicate } : {}),
  });
  try {
    await market?.start(core, store);
  } catch (err) {
    await cluster?.close();
    await market?.close();
    await verifier.close();
    if (ownStore) await store.close();
    throw err;
  }
  const transportName = opts.transport ?? 'uws';
  const transport = createTransport(transportName);
  const host = opts.host ?? '127.0.0.1';
  let port: number;
  try {
    port = await transport.listen(
      {
        host,
        port: opts.port ?? 4869,
        // Frames up to 4x the message limit are read and answered with an error; beyond that the socket is cut.
        maxFrameBytes: Math.max(limits.maxMessageBytes * 4, 4 * 1024 * 1024),
        maxBackpressureBytes: limits.maxBackpressureBytes,
        idleTimeoutSecs: limits.idleTimeoutSecs,
      },
      core,
    );
  } catch (err) {
    await cluster?.close();
    await market?.close();
    await verifier.close();
    if (ownStore) await store.close();
    throw err;
  }
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, transport: transportName, dataDir: opts.dataDir }, 'relay listening');
  if (cluster) {
    try {
      await cluster.start(core, store, url);
    } catch (err) {
      await transport.close();
      await cluster.close();
      await market?.close();
      await verifier.close();
      if (ownStore) await store.close();
      throw err;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    core,
    transport: transportName,
    ...(market ? { market } : {}),
    ...(cluster ? { cluster } : {}),
    close: () =>
      (closing ??= (async () => {
        await transport.close();
        // Stream events being stored finish before the store closes; the rest are redelivered.
        await cluster?.close();
        core.negentropy?.stop();
        await market?.close();
        await verifier.close();
        if (ownStore) await store.close();
        logger.info({ url }, 'relay stopped');
      })()),
  };
}
