// `bazaar relay`: run the relay in the foreground until SIGINT/SIGTERM.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { createLogger, type Logger } from '@bazaar/cli-kit/log';
import type { Policy } from '@bazaar/policies/policy';
import { untilSignal } from '@bazaar/cli-kit/signals';
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from './limits.ts';
import { DEFAULT_NEGENTROPY } from './sync/negentropy-sessions.ts';
import { checkClusterOptions, type ClusterOptions } from './cluster/cluster-options.ts';

const int = (description: string, def: number, min = 0) => ({ type: 'number' as const, integer: true, min, default: def, description });

/** `--heap-growth`, for every command that holds the market index in memory (relay, reindex, indexer). */
const HEAP_GROWTH_FLAG = {
  ...int('How far V8 lets the heap grow past the live data before the next full collection, percent (0 = V8\'s own choice, 10-300 % by collection speed). The market index keeps its state on the heap; the default bounds peak memory at a few % of CPU', 50),
  max: 300,
};

export const relayCommand: CommandSpec = {
  name: 'relay',
  summary: 'Run the Bazaar Nostr relay (NIP-01, 09, 11, 40, 42, 45, 70, 77) on LMDB storage.',
  envPrefix: 'BAZAAR_RELAY_',
  flags: {
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 4869, description: 'TCP port to listen on (0 = any free port)' },
    host: { type: 'string', default: '127.0.0.1', description: 'Address to bind' },
    data: { type: 'string', default: './data/relay', description: 'Data directory (LMDB files)' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'WebSocket transport' },
    policies: { type: 'string', description: "Write-policy file (see policies/README.md), run after the built-in event limits; 'none': only those. Default: the policies package's defaultPolicy (rate limits for clients not on this machine, valid job requests)" },
    'public-url': { type: 'string', description: 'Public ws(s):// URL of this relay, checked in NIP-42 AUTH' },
    'trust-proxy': { type: 'boolean', default: false, description: 'Behind a reverse proxy: take client addresses from X-Forwarded-For / X-Real-IP (rate limits, logs)' },
    'auth-required': { type: 'boolean', default: false, description: 'Require NIP-42 AUTH before any REQ, COUNT or EVENT' },
    name: { type: 'string', default: 'bazaar', description: 'NIP-11 name' },
    description: { type: 'string', description: 'NIP-11 description' },
    pubkey: { type: 'string', description: 'NIP-11 admin pubkey (hex)' },
    contact: { type: 'string', description: 'NIP-11 contact URI' },
    'max-message-bytes': int('Largest client message processed', DEFAULT_RELAY_LIMITS.maxMessageBytes, 1024),
    'max-subscriptions': int('Open subscriptions per connection', DEFAULT_RELAY_LIMITS.maxSubscriptions, 1),
    'max-filters': int('Filters per REQ', DEFAULT_RELAY_LIMITS.maxFilters, 1),
    'max-limit': int('Largest limit honoured (also the default limit)', DEFAULT_RELAY_LIMITS.maxLimit, 1),
    'max-queries': int('REQ/COUNT queries one connection may have in progress (more get CLOSED rate-limited:)', DEFAULT_RELAY_LIMITS.maxQueries, 1),
    'query-slice-ms': { type: 'number', integer: true, min: 1, max: 1000, default: 5, description: 'Time budget of one query-scheduler turn before other work gets the event loop (ms)' },
    cluster: { type: 'string', description: 'Join a relay cluster: NATS server URL(s) with JetStream, comma-separated (nats://host:4222)' },
    node: { type: 'string', description: 'This node\'s name in the cluster (unique; A-Z a-z 0-9 _ -); required with --cluster' },
    'cluster-stream': { type: 'string', default: 'BAZAAR_EVENTS', description: 'JetStream stream of the cluster\'s events' },
    'cluster-retention': int('Seconds the stream keeps an event; a node down longer catches up by NIP-77', 7 * 86_400, 1),
    'cluster-max-events': { type: 'number', integer: true, min: 1, description: 'Most events the stream keeps (oldest dropped first); default: no count limit, only --cluster-retention' },
    'cluster-replicas': int('Stream replicas across a NATS cluster', 1, 1),
    'cluster-peer-url': { type: 'string', description: 'ws(s):// URL other nodes use to reach this one for NIP-77 catch-up (default: --public-url, else the address listened on)' },
    negentropy: { type: 'boolean', default: true, description: 'Serve NIP-77 negentropy sync (NEG-OPEN); --no-negentropy turns it off' },
    'neg-max-events': int('Most events one NEG-OPEN may reconcile (more: NEG-ERR blocked:)', DEFAULT_NEGENTROPY.maxSyncEvents, 1),
    'neg-frame-size': int('Largest negentropy message sent, bytes before hex (0 = unlimited, else >= 4096)', DEFAULT_NEGENTROPY.frameSizeLimit),
    'max-event-tags': int('Tags per event', DEFAULT_RELAY_LIMITS.maxTags, 1),
    'max-content-length': int('Characters of event content', DEFAULT_RELAY_LIMITS.maxContentLength, 1),
    'created-at-past': int('Reject events older than this many seconds (0 = no limit)', DEFAULT_RELAY_LIMITS.createdAtPastSecs),
    'created-at-future': int('Reject events more than this many seconds in the future', DEFAULT_RELAY_LIMITS.createdAtFutureSecs),
    'max-backpressure': int('Bytes queued for a client before it is disconnected', DEFAULT_RELAY_LIMITS.maxBackpressureBytes, 65536),
    'idle-timeout': int('Seconds of silence before a connection is closed (pings keep clients alive; 0 = never)', DEFAULT_RELAY_LIMITS.idleTimeoutSecs),
    'verify-workers': { type: 'number', integer: true, min: 0, max: 64, description: 'Signature verification threads (default: 0 with native libsecp256k1, cores - 1 with the WASM fallback; 0 = inline)' },
    market: { type: 'boolean', default: true, description: 'Market index, NIP-85 reputation, HTTP API (/api/…), marketplace page (/) and /metrics; --no-market turns them off' },
    'trusted-mint': { type: 'string', multiple: true, description: 'A Cashu mint whose NUT-07 proof states count for escrowed receipts (repeatable; without one, Cashu receipts stay unverified)' },
    'reputation-debounce-ms': { type: 'number', integer: true, min: 0, default: 2000, description: 'Wait this long after a change before publishing NIP-85 assertions' },
    'reputation-interval-ms': { type: 'number', integer: true, min: 0, default: 30000, description: 'Publishing rounds of NIP-85 assertions at least this far apart under sustained traffic' },
    'store-writer': { type: 'string', choices: ['inline', 'thread'], default: 'inline', description: 'Where LMDB writes are applied: inline (lmdb-js batches and group-commits them; the faster on disk) or on writer threads of their own' },
    'heap-growth': HEAP_GROWTH_FLAG,
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level' },
  },
  subcommands: {
    reindex: async () => reindexCommand,
    sync: async () => (await import('./sync/sync-command.ts')).syncCommand,
  },
  details: `Serves NIP-11 (Accept: application/nostr+json), GET /health, and with the market (default)
the marketplace page at /, the JSON API under /api/ and Prometheus metrics at /metrics, on the same port.
The reputation key lives in DATA/market/reputation.key (0600; NIP-49 encrypted when
BAZAAR_RELAY_KEY_PASSPHRASE is set); NIP-11 announces it as reputation_pubkey.
Examples:
  bazaar relay --port 4869 --host 127.0.0.1 --data ./data/relay
  BAZAAR_RELAY_PORT=7777 bazaar relay --transport ws`,
  run: runRelay,
};

export function limitsFromFlags(f: FlagValues): RelayLimits {
  return {
    maxMessageBytes: f['max-message-bytes'] as number,
    maxSubscriptions: f['max-subscriptions'] as number,
    maxFilters: f['max-filters'] as number,
    maxLimit: f['max-limit'] as number,
    maxTags: f['max-event-tags'] as number,
    maxContentLength: f['max-content-length'] as number,
    createdAtPastSecs: f['created-at-past'] as number,
    createdAtFutureSecs: f['created-at-future'] as number,
    maxBackpressureBytes: f['max-backpressure'] as number,
    idleTimeoutSecs: f['idle-timeout'] as number,
    maxSubIdLength: DEFAULT_RELAY_LIMITS.maxSubIdLength,
    maxQueries: f['max-queries'] as number,
  };
}

/**
 * The write policy a `--policies` value names: a policy file, `none`, or (absent) the built-in
 * default. A bad file is a usage error. Shared by `bazaar relay` and `bazaar relay sync`.
 */
export async function policyFromFlag(value: string | undefined, logger: Logger, pubkey?: string): Promise<Policy | undefined> {
  if (value === 'none') return undefined;
  if (value) {
    const { loadPolicyFile, PolicyConfigError } = await import('@bazaar/policies/load');
    try {
      return await loadPolicyFile(resolve(value), { logger, ...(pubkey ? { reputationPubkey: pubkey } : {}) });
    } catch (err) {
      // A bad policy file is a usage error: say exactly what is wrong and stop.
      if (err instanceof PolicyConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError((err as Error).message);
      throw err;
    }
  }
  // The one default policy (policies' defaultPolicy); its per-event limits are the relay's own
  // built-in stage, run with the numbers the relay is given.
  const { defaultPolicy } = await import('@bazaar/policies/default-policy');
  return defaultPolicy({}, { eventLimits: false });
}

function clusterFromFlags(f: FlagValues, publicUrl: string | undefined): { cluster?: ClusterOptions } {
  const servers = f.cluster as string | undefined;
  const node = f.node as string | undefined;
  if (servers === undefined) {
    if (node !== undefined) throw new UsageError('--node names a cluster node: give --cluster too');
    return {};
  }
  if (node === undefined) throw new UsageError('--cluster needs --node NAME, this node\'s unique name in the cluster');
  let peerUrl = (f['cluster-peer-url'] as string | undefined) ?? publicUrl;
  const host = f.host as string;
  if (peerUrl === undefined && (host === '0.0.0.0' || host === '::')) peerUrl = `ws://${hostname()}:${f.port as number}`;
  const opts: ClusterOptions = {
    servers,
    node,
    stream: f['cluster-stream'] as string,
    retentionSecs: f['cluster-retention'] as number,
    ...(f['cluster-max-events'] !== undefined ? { retentionEvents: f['cluster-max-events'] as number } : {}),
    replicas: f['cluster-replicas'] as number,
    ...(peerUrl !== undefined ? { peerUrl } : {}),
  };
  try {
    checkClusterOptions(opts);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { cluster: opts };
}

function negFrameSize(n: number): number {
  if (n !== 0 && n < 4096) throw new UsageError('--neg-frame-size must be 0 (unlimited) or at least 4096');
  return n;
}

/**
 * V8's --heap-growing-percent, set at run time (V8 reads it at every full collection; node
 * leaves its flags writable). Without it V8 grows the old generation up to 4× the live data
 * when collections are fast: at 200 000 stored events that was 120 MiB of garbage on top of
 * the market index's state (relay README, "Memory and disk").
 */
function setHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

async function runRelay(f: FlagValues): Promise<number> {
  const pubkey = f.pubkey as string | undefined;
  if (pubkey !== undefined && !/^[0-9a-f]{64}$/.test(pubkey)) throw new UsageError('--pubkey must be 64 lowercase hex characters');
  const publicUrl = f['public-url'] as string | undefined;
  if (publicUrl !== undefined && !/^wss?:\/\/./.test(publicUrl)) throw new UsageError('--public-url must start with ws:// or wss://');
  const logger = createLogger({ name: 'relay', level: f['log-level'] as string });
  setHeapGrowth(f['heap-growth'] as number);
  const { startRelay } = await import('./server.ts');
  const policy = await policyFromFlag(f.policies as string | undefined, logger, pubkey);
  const relay = await startRelay({
    port: f.port as number,
    host: f.host as string,
    dataDir: resolve(f.data as string),
    transport: f.transport as 'uws' | 'ws',
    limits: limitsFromFlags(f),
    info: {
      name: f.name as string,
      ...(f.description ? { description: f.description as string } : {}),
      ...(pubkey ? { pubkey } : {}),
      ...(f.contact ? { contact: f.contact as string } : {}),
      authRequired: f['auth-required'] as boolean,
    },
    ...(policy ? { policy } : {}),
    ...(publicUrl ? { publicUrl } : {}),
    ...(f['trust-proxy'] ? { trustProxy: true } : {}),
    ...(f['verify-workers'] !== undefined ? { verifyWorkers: f['verify-workers'] as number } : {}),
    querySliceMs: f['query-slice-ms'] as number,
    ...(f.market ? { market: marketOptions(f) } : {}),
    storeWriter: f['store-writer'] as 'thread' | 'inline',
    ...clusterFromFlags(f, publicUrl),
    negentropy: f.negentropy ? { maxSyncEvents: f['neg-max-events'] as number, frameSizeLimit: negFrameSize(f['neg-frame-size'] as number) } : false,
    logger,
  });
  await untilSignal(() => relay.close(), logger);
  return 0;
}

function marketOptions(f: FlagValues): import('./market/service.ts').MarketOptions {
  const mints = (f['trusted-mint'] as string[] | undefined) ?? [];
  for (const m of mints) if (!/^https?:\/\/./.test(m)) throw new UsageError(`--trusted-mint must be an http(s):// URL, got ${JSON.stringify(m)}`);
  return { trustedMints: mints, debounceMs: f['reputation-debounce-ms'] as number, minIntervalMs: f['reputation-interval-ms'] as number };
}

export const reindexCommand: CommandSpec = {
  name: 'reindex',
  summary: 'Rebuild the market index and reputation from the stored events (the relay must be stopped).',
  envPrefix: 'BAZAAR_RELAY_',
  flags: {
    data: { type: 'string', default: './data/relay', description: 'Data directory of the relay (LMDB files)' },
    'from-scratch': { type: 'boolean', default: false, description: 'Also forget facts of events the store no longer holds (replaced, deleted, expired): the index then describes only what is stored' },
    'trusted-mint': { type: 'string', multiple: true, description: 'As for `bazaar relay`' },
    json: { type: 'boolean', default: false, description: 'Print the outcome as JSON' },
    'heap-growth': HEAP_GROWTH_FLAG,
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'warn', description: 'Log level' },
  },
  details: `Re-extracts the facts of every stored event from sequence 0 with this build's code and rebuilds
the job index, the provider directory and reputation. The result equals what the running relay
builds incrementally. Assertions are re-published by the relay when it next starts (only those
whose figures changed).`,
  async run(f) {
    const { existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const dataDir = resolve(f.data as string);
    if (!existsSync(join(dataDir, 'data.mdb'))) throw new UsageError(`no relay store in ${dataDir} (data.mdb not found)`);
    const logger = createLogger({ name: 'relay-reindex', level: f['log-level'] as string });
    setHeapGrowth(f['heap-growth'] as number);
    const { openLmdbStore } = await import('./store/lmdb-store.ts');
    const { MarketIndex } = await import('./market/market-index.ts');
    const store = await openLmdbStore({ path: dataDir, logger, purgeIntervalMs: 0 });
    const mints = (f['trusted-mint'] as string[] | undefined) ?? [];
    const index = await MarketIndex.open({ path: join(dataDir, 'market', 'index'), logger, trustedMints: mints });
    try {
      const started = performance.now();
      const r = await index.reindex(store, { fromScratch: f['from-scratch'] as boolean });
      const t = index.state.totals();
      const out = { events: r.events, facts: r.facts, jobs: t.jobs, providers: t.providers, paidJobs: t.paidJobs, cursor: index.cursor, ms: Math.round(performance.now() - started) };
      process.stdout.write(f.json ? `${JSON.stringify(out)}\n` : `reindexed ${out.events} market events (${out.facts} facts): ${out.jobs} jobs, ${out.providers} providers, ${out.paidJobs} paid jobs; at store sequence ${out.cursor} in ${out.ms} ms\n`);
      return 0;
    } finally {
      await index.close();
      await store.close();
    }
  },
};

export const indexerCommand: CommandSpec = {
  name: 'indexer',
  summary: 'Run the market index and NIP-85 reputation as a sidecar of any relay (strfry or another).',
  envPrefix: 'BAZAAR_INDEXER_',
  flags: {
    relay: { type: 'string', description: 'The relay to index and publish assertions to (ws:// or wss://); required' },
    data: { type: 'string', default: './data/indexer', description: 'Data directory (index LMDB files, reputation.key)' },
    'trusted-mint': { type: 'string', multiple: true, description: 'A Cashu mint whose NUT-07 proof states count for escrowed receipts (repeatable)' },
    'reputation-debounce-ms': { type: 'number', integer: true, min: 0, default: 2000, description: 'Wait this long after a change before publishing NIP-85 assertions' },
    'reputation-interval-ms': { type: 'number', integer: true, min: 0, default: 30000, description: 'Publishing rounds at least this far apart under sustained traffic' },
    'heap-growth': HEAP_GROWTH_FLAG,
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level' },
  },
  details: `Subscribes to the NIP-90 job kinds (5000-6999, 7000), announcements (31990), heartbeats (11998),
disputes, verdicts and receipts (39300-39302), verifies every event's signature itself, builds the
same index as the Bazaar relay and publishes the same kind 30382 assertions to the relay, signed by
its own key (DATA/reputation.key; NIP-49 encrypted when BAZAAR_RELAY_KEY_PASSPHRASE is set).
Reconnects with backoff; on reconnect it re-reads from an hour before the newest fact it holds.
Example:
  bazaar indexer --relay wss://relay.example.com --data ./data/indexer`,
  async run(f) {
    const relay = f.relay as string | undefined;
    if (!relay) throw new UsageError('--relay is required');
    if (!/^wss?:\/\/./.test(relay)) throw new UsageError(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(relay)}`);
    const mints = (f['trusted-mint'] as string[] | undefined) ?? [];
    for (const m of mints) if (!/^https?:\/\/./.test(m)) throw new UsageError(`--trusted-mint must be an http(s):// URL, got ${JSON.stringify(m)}`);
    const logger = createLogger({ name: 'indexer', level: f['log-level'] as string });
    setHeapGrowth(f['heap-growth'] as number);
    const { startSidecar } = await import('./market/sidecar.ts');
    const sidecar = await startSidecar({ relayUrl: relay, dataDir: resolve(f.data as string), trustedMints: mints, debounceMs: f['reputation-debounce-ms'] as number, minIntervalMs: f['reputation-interval-ms'] as number, logger });
    process.stdout.write(`indexer: following ${relay}; reputation key ${sidecar.key.pubkey}\n`);
    await untilSignal(() => sidecar.close(), logger);
    return 0;
  },
};
