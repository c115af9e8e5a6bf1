// `bazaar provider`: init | serve | status | earnings | doctor.
import { existsSync, readFileSync, watch } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import WebSocket from 'ws';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { createLogger, type Logger } from '@bazaar/cli-kit/log';
import { createKeystoreFile, KeystoreError, readKeystoreFile, unlockKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { readPassphrase } from '@bazaar/agents-common/identity/passphrase';
import { configTemplate, ConfigError, loadConfig, type ProviderConfig } from './config.ts';
import { ProviderStore, type Earning } from './store.ts';
import { DEFAULT_DATA_DIR, providerPaths, startProvider } from './runtime.ts';
import { untilSignal } from '@bazaar/cli-kit/signals';
import { DEFAULT_LEASE_MS, PoolError, probePool, readPoolEarnings, WORKER_NAME, type PoolEarning } from './pool/pool.ts';

const clusterFlag = { type: 'string', env: 'BAZAAR_PROVIDER_CLUSTER', description: 'Provider pool: NATS server URL(s) with JetStream (nats://host:4222, comma-separated); workers sharing this identity share the jobs, one announcement and one earnings book' } as const;

const dataFlag = { type: 'string', default: DEFAULT_DATA_DIR, env: 'BAZAAR_PROVIDER_DATA', description: 'Provider data directory (keys, config, LMDB, trajectories)' } as const;
const configFlag = { type: 'string', env: 'BAZAAR_PROVIDER_CONFIG', description: 'Config file (default: DATA/config.jsonc)' } as const;
const jsonFlag = { type: 'boolean', default: false, env: false, description: 'Machine-readable JSON output' } as const;

const initCommand: CommandSpec = {
  name: 'init',
  summary: 'Create the provider identity (NIP-06 mnemonic → Nostr key, plus a separate payment key), sealed with a passphrase, and a documented config file.',
  details: 'The passphrase comes from BAZAAR_PASSPHRASE or a prompt. Refuses to overwrite an existing identity.',
  flags: {
    data: dataFlag,
    config: configFlag,
    relay: { type: 'string', multiple: true, default: 'ws://127.0.0.1:4869', env: 'BAZAAR_PROVIDER_RELAYS', description: 'Relay URL for the config (repeatable)' },
    'nwc-uri-file': { type: 'string', env: 'BAZAAR_PROVIDER_NWC_URI_FILE', description: 'File holding the NWC URI of the wallet that issues invoices' },
    'show-mnemonic': { type: 'boolean', default: false, env: false, description: 'Print the 24-word backup mnemonic once (to stderr)' },
    'kdf-log-n': { type: 'number', integer: true, min: 10, max: 20, default: 17, env: 'BAZAAR_KDF_LOG_N', description: 'scrypt cost (log2 N) for sealing the keys' },
  },
  run: runInit,
};

const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'Run the provider agent in the foreground (pino logs; pretty on a terminal). Ctrl-C stops it cleanly.',
  details: 'With --cluster, this process is one worker of a provider pool: run it on several machines with the same keys.json, passphrase and config. Each job is claimed by one worker (JetStream KV, under a lease); a worker that dies loses its jobs to the others after --cluster-lease-ms; the pool has one announcement and heartbeat (capacity summed) and one earnings book.',
  flags: {
    data: dataFlag,
    config: configFlag,
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'BAZAAR_LOG_LEVEL', description: 'Log level' },
    'allow-file-repos': { type: 'boolean', default: false, env: 'BAZAAR_PROVIDER_ALLOW_FILE_REPOS', description: 'Accept file:// repo inputs (local mirrors, tests)' },
    'invoice-poll-ms': { type: 'number', integer: true, min: 100, max: 600_000, default: 10_000, env: 'BAZAAR_PROVIDER_INVOICE_POLL_MS', description: 'How often unpaid invoices are looked up' },
    cluster: clusterFlag,
    worker: { type: 'string', env: 'BAZAAR_PROVIDER_WORKER', description: "This worker's name in the pool (unique; A-Z a-z 0-9 _ -; default: the host name)" },
    'cluster-lease-ms': { type: 'number', integer: true, min: 200, max: 3_600_000, default: DEFAULT_LEASE_MS, env: 'BAZAAR_PROVIDER_CLUSTER_LEASE_MS', description: "A job's lease: a worker silent this long loses its jobs to the others (renewed every third of it)" },
  },
  run: runServe,
};

const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'Running or not, uptime, relays connected, jobs in flight / done / failed, earnings, backends.',
  flags: { data: dataFlag, json: jsonFlag },
  run: runStatus,
};

const earningsCommand: CommandSpec = {
  name: 'earnings',
  summary: "Earnings: totals, by kind and by source, and the most recent ones (with --cluster: the provider pool's book, every worker's).",
  flags: { data: dataFlag, json: jsonFlag, cluster: clusterFlag, limit: { type: 'number', integer: true, min: 0, max: 100_000, default: 10, env: false, description: 'How many recent earnings to list' } },
  run: runEarnings,
};

const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary: 'Check identity, config, relays, wallet, mints, sandbox runners and backends: one line each; non-zero exit on any failure.',
  flags: { data: dataFlag, config: configFlag, cluster: clusterFlag, 'timeout-ms': { type: 'number', integer: true, min: 100, max: 120_000, default: 5_000, env: false, description: 'Deadline of each network check' } },
  run: runDoctor,
};

const trajectoryCommand: CommandSpec = {
  name: 'trajectory',
  summary: "Print a job's trajectory log (JSON lines) — what an arbiter asks for — and check it against the sha256 in the job's result.",
  positionals: 'JOB_ID',
  flags: { data: dataFlag },
  run: runTrajectory,
};

const tryCommand: CommandSpec = {
  name: 'try',
  summary: 'Act as a plain NIP-90 customer: post a SandboxRun job with a throwaway key, print the feedback and the result, and pay its invoice from an NWC wallet.',
  details: 'Pays only an invoice for the job it posted (the event must reference exactly that request and be addressed to it; the bolt11 amount must equal the amount tag), and never more than --max-sats.',
  flags: {
    relay: { type: 'string', default: 'ws://127.0.0.1:4869', env: 'BAZAAR_TRY_RELAY', description: 'Relay to post the job to' },
    cmd: { type: 'string', multiple: true, default: 'echo hello from the bazaar sandbox; uname -sr', env: false, description: 'Shell command to run (repeatable)' },
    'time-limit': { type: 'number', integer: true, min: 1, max: 3600, default: 30, env: false, description: 'time_limit_secs of the job' },
    'pay-with': { type: 'string', env: 'BAZAAR_TRY_PAY_WITH', description: 'File holding the NWC URI of the wallet that pays the result' },
    'max-sats': { type: 'number', integer: true, min: 1, max: 1_000_000, default: 10, env: 'BAZAAR_TRY_MAX_SATS', description: 'Pay at most this much for the job (sats)' },
    'timeout-ms': { type: 'number', integer: true, min: 1000, max: 3_600_000, default: 60_000, env: false, description: 'Give up after this long' },
  },
  run: runTry,
};

export const providerCommand: CommandSpec = {
  name: 'provider',
  summary: 'The provider agent: sells verified compute over NIP-90 and gets paid.',
  subcommands: {
    init: async () => initCommand,
    serve: async () => serveCommand,
    status: async () => statusCommand,
    earnings: async () => earningsCommand,
    doctor: async () => doctorCommand,
    trajectory: async () => trajectoryCommand,
    try: async () => tryCommand,
  },
};

function fail(msg: string): number {
  process.stderr.write(`error: ${msg}\n`);
  return 1;
}

async function runInit(f: FlagValues): Promise<number> {
  const paths = providerPaths(f.data as string, f.config as string | undefined);
  if (existsSync(paths.keys)) return fail(`an identity already exists at ${paths.keys}; refusing to overwrite it`);
  let nwcUri: string | undefined;
  if (f['nwc-uri-file']) {
    try {
      nwcUri = readFileSync(f['nwc-uri-file'] as string, 'utf8').trim();
    } catch (err) {
      return fail(`cannot read --nwc-uri-file: ${(err as Error).message}`);
    }
    if (!nwcUri.startsWith('nostr+walletconnect://')) return fail('--nwc-uri-file does not hold a nostr+walletconnect:// URI');
  }
  const relays = f.relay as string[];
  for (const r of relays) if (!/^wss?:\/\/\S+$/.test(r)) throw new UsageError(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`);
  try {
    const passphrase = await readPassphrase({ confirm: true, prompt: 'New passphrase for the provider keys: ' });
    const made = await createKeystoreFile(paths.keys, passphrase, { logN: f['kdf-log-n'] as number });
    if (!existsSync(paths.config)) {
      await writeFile(paths.config, configTemplate({ relays, ...(nwcUri ? { nwcUri } : {}) }), { mode: 0o600, flag: 'wx' });
      await chmod(paths.config, 0o600);
    }
    if (f['show-mnemonic']) process.stderr.write(`\nBackup mnemonic (write it down; it restores both keys):\n  ${made.mnemonic}\n\n`);
    process.stdout.write(`identity   ${made.identity.npub}\npubkey     ${made.identity.pubkey}\npayment    ${made.identity.paymentPubkey}  (P2PK key, separate from the identity)\nkeys       ${paths.keys}  (sealed: scrypt + XChaCha20-Poly1305)\nconfig     ${paths.config}\n\nNext: edit the config, then run 'bazaar provider doctor' and 'bazaar provider serve'.\n`);
    return 0;
  } catch (err) {
    if (err instanceof KeystoreError) return fail(err.message);
    throw err;
  }
}

async function runServe(f: FlagValues): Promise<number> {
  const log = createLogger({ name: 'provider', level: f['log-level'] as string });
  const paths = providerPaths(f.data as string, f.config as string | undefined);
  const worker = (f.worker as string | undefined) ?? hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  if (f.worker !== undefined && !f.cluster) throw new UsageError('--worker names a worker of a provider pool: it needs --cluster');
  if (f.cluster && !WORKER_NAME.test(worker)) throw new UsageError(`--worker must be 1–64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(worker)}`);
  let running;
  try {
    const passphrase = await readPassphrase({ prompt: 'Passphrase for the provider keys: ' });
    const cluster = f.cluster ? { servers: f.cluster as string, worker, leaseMs: f['cluster-lease-ms'] as number } : undefined;
    running = await startProvider({ dataDir: paths.root, configPath: paths.config, passphrase, logger: log, invoicePollMs: f['invoice-poll-ms'] as number, allowFileRepos: f['allow-file-repos'] as boolean, ...(cluster ? { cluster } : {}) });
  } catch (err) {
    if (err instanceof KeystoreError || err instanceof ConfigError || err instanceof PoolError) return fail(err.message);
    log.error({ err }, 'provider failed to start');
    return 1;
  }
  const stopWatching = watchConfig(paths.config, running.provider.config, log, (c) => running.provider.reconfigure(c));
  process.stdout.write(`provider ${running.identity.npub} serving kinds ${running.provider.config.kinds.join(', ')} on ${running.provider.config.relays.join(', ')}${f.cluster ? ` as worker ${worker} of the pool at ${f.cluster as string}` : ''}\n`);
  await untilSignal(() => {
    stopWatching();
    return running.close();
  }, log, 'stopping');
  return 0;
}

/** Reload the config when its file changes; relays need a restart, everything else applies live. */
function watchConfig(path: string, current: ProviderConfig, log: Logger, apply: (c: ProviderConfig) => Promise<void>): () => void {
  let timer: NodeJS.Timeout | undefined;
  let live = current;
  let w: ReturnType<typeof watch>;
  try {
    w = watch(path, () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try {
          const next = await loadConfig(path);
          if (JSON.stringify(next.relays) !== JSON.stringify(live.relays)) log.warn({}, 'relay list changed: restart the provider to apply it');
          live = { ...next, relays: live.relays };
          await apply(live);
          log.info({ kinds: live.kinds, capacity: live.capacity }, 'config reloaded and re-announced');
        } catch (err) {
          log.error({ err: (err as Error).message }, 'config change rejected; keeping the running config');
        }
      }, 300);
    });
  } catch {
    return () => {};
  }
  return () => {
    clearTimeout(timer);
    w.close();
  };
}

interface StatusFile {
  pid: number;
  startedAt: number;
  updatedAt: number;
  relays: { url: string; connected: boolean }[];
  active: number;
  queued: number;
  capacity: number;
  kinds: number[];
  isolation: string;
  backends: Record<string, string>;
  wallet: boolean;
  pool?: { worker: string; leader?: string; capacity: number; running: number; workers: { worker: string; capacity: number; running: number; queued: number }[] };
}

async function readStatusFile(path: string): Promise<StatusFile | undefined> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as StatusFile;
    process.kill(s.pid, 0);
    return s;
  } catch {
    return undefined;
  }
}

const sats = (msats: number) => `${(msats / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 })} sats`;

async function runStatus(f: FlagValues): Promise<number> {
  const paths = providerPaths(f.data as string);
  if (!existsSync(paths.keys)) return fail(`no provider at ${paths.root} (run 'bazaar provider init')`);
  const keys = await readKeystoreFile(paths.keys);
  const live = await readStatusFile(paths.status);
  const store = existsSync(paths.db) ? ProviderStore.open(paths.db) : undefined;
  const counts = store?.counts() ?? {};
  const earnings = store?.earningsSummary(0) ?? { totalMsats: 0, count: 0, byKind: {}, bySource: {}, recent: [] };
  const costs = store?.costs() ?? { arbiterFeesMsats: 0, arbiterFees: 0, unpaid: 0 };
  await store?.close();
  const n = (k: string) => (counts as Record<string, number>)[k] ?? 0;
  const out = {
    npub: keys.npub,
    pubkey: keys.pubkey,
    running: !!live,
    ...(live ? { pid: live.pid, uptimeSecs: Math.round((Date.now() - live.startedAt) / 1000), relays: live.relays, relaysConnected: live.relays.filter((r) => r.connected).length, capacity: live.capacity, kinds: live.kinds, isolation: live.isolation, backends: live.backends, wallet: live.wallet, ...(live.pool ? { pool: live.pool } : {}) } : {}),
    jobs: { inFlight: n('running') + n('queued') + n('awaiting-payment'), running: live?.active ?? 0, queued: live?.queued ?? 0, delivered: n('delivered') + n('settled') + n('unpaid'), settled: n('settled'), failed: n('failed'), rejected: n('rejected') + n('expired'), cancelled: n('cancelled') },
    earnings: { totalMsats: earnings.totalMsats, count: earnings.count },
    costs,
  };
  if (f.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  const lines = [`provider   ${keys.npub}`, `state      ${live ? `running (pid ${live.pid}, up ${out.uptimeSecs}s)` : 'not running'}`];
  if (live) {
    lines.push(`relays     ${out.relaysConnected}/${live.relays.length} connected  ${live.relays.map((r) => `${r.url}${r.connected ? '' : ' (down)'}`).join(', ')}`);
    lines.push(`serving    kinds ${live.kinds.join(', ')} · capacity ${live.capacity} · isolation ${live.isolation} · wallet ${live.wallet ? 'connected' : 'none (no invoices)'}`);
    for (const [k, b] of Object.entries(live.backends ?? {})) lines.push(`backend    ${k}: ${b}`);
    if (live.pool) lines.push(`pool       worker ${live.pool.worker}${live.pool.leader === live.pool.worker ? ' (leader)' : `, leader ${live.pool.leader ?? 'none yet'}`} · ${live.pool.workers.length} workers · capacity ${live.pool.capacity} · running ${live.pool.running}  ${live.pool.workers.map((w) => `${w.worker} ${w.running}/${w.capacity}`).join(', ')}`);
  }
  lines.push(`jobs       ${out.jobs.inFlight} in flight · ${out.jobs.delivered} delivered (${out.jobs.settled} paid) · ${out.jobs.failed} failed · ${out.jobs.rejected} refused · ${out.jobs.cancelled} cancelled`);
  lines.push(`earnings   ${sats(earnings.totalMsats)} from ${earnings.count} payments`);
  if (costs.arbiterFees || costs.unpaid) lines.push(`costs      ${sats(costs.arbiterFeesMsats)} in ${costs.arbiterFees} arbiter fee${costs.arbiterFees === 1 ? '' : 's'} (disputes lost)${costs.unpaid ? ` · ${costs.unpaid} not paid (see the log)` : ''}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

/** The pool's earnings book (every worker's), summarised like the local one. */
async function poolEarningsSummary(servers: string, keysPath: string, recent: number) {
  const keys = await readKeystoreFile(keysPath);
  const all = await readPoolEarnings({ servers, pubkey: keys.pubkey });
  const byKind: Record<string, number> = {};
  const bySource: Record<string, number> = {};
  const byWorker: Record<string, number> = {};
  let totalMsats = 0;
  for (const e of all) {
    totalMsats += e.msats;
    byKind[e.kind] = (byKind[e.kind] ?? 0) + e.msats;
    bySource[e.source] = (bySource[e.source] ?? 0) + e.msats;
    if (e.worker) byWorker[e.worker] = (byWorker[e.worker] ?? 0) + e.msats;
  }
  return { totalMsats, count: all.length, byKind, bySource, byWorker, recent: all.slice(0, recent) as PoolEarning[] };
}

async function runEarnings(f: FlagValues): Promise<number> {
  const paths = providerPaths(f.data as string);
  if (f.cluster) {
    if (!existsSync(paths.keys)) return fail(`no provider at ${paths.root} (run 'bazaar provider init'): the pool is found by the identity's pubkey`);
    let s;
    try {
      s = await poolEarningsSummary(f.cluster as string, paths.keys, f.limit as number);
    } catch (err) {
      if (err instanceof PoolError || err instanceof KeystoreError) return fail(err.message);
      throw err;
    }
    if (f.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      return 0;
    }
    const lines = [`pool total ${sats(s.totalMsats)} from ${s.count} payments`];
    for (const [k, v] of Object.entries(s.byWorker)) lines.push(`worker ${k}  ${sats(v)}`);
    for (const [k, v] of Object.entries(s.byKind)) lines.push(`kind ${k}  ${sats(v)}`);
    for (const [k, v] of Object.entries(s.bySource)) lines.push(`via ${k.padEnd(9)} ${sats(v)}`);
    if (s.recent.length) {
      lines.push('', 'recent:');
      for (const e of s.recent) lines.push(`  ${new Date(e.paidAt).toISOString()}  kind ${e.kind}  ${sats(e.msats).padStart(12)}  ${e.source}  job ${e.jobId.slice(0, 12)}…${e.worker ? `  worker ${e.worker}` : ''}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  if (!existsSync(paths.db)) {
    if (!existsSync(paths.keys)) return fail(`no provider at ${paths.root} (run 'bazaar provider init')`);
  }
  const store = existsSync(paths.db) ? ProviderStore.open(paths.db) : undefined;
  const s = store?.earningsSummary(f.limit as number) ?? { totalMsats: 0, count: 0, byKind: {}, bySource: {}, recent: [] as Earning[] };
  const costs = store?.costs() ?? { arbiterFeesMsats: 0, arbiterFees: 0, unpaid: 0 };
  await store?.close();
  if (f.json) {
    process.stdout.write(JSON.stringify({ ...s, costs, netMsats: s.totalMsats - costs.arbiterFeesMsats }, null, 2) + '\n');
    return 0;
  }
  const lines = [`total      ${sats(s.totalMsats)} from ${s.count} payments`];
  if (costs.arbiterFees || costs.unpaid) lines.push(`costs      ${sats(costs.arbiterFeesMsats)} in ${costs.arbiterFees} arbiter fee${costs.arbiterFees === 1 ? '' : 's'} (disputes lost) · net ${sats(s.totalMsats - costs.arbiterFeesMsats)}${costs.unpaid ? ` · ${costs.unpaid} not paid (see the log)` : ''}`);
  for (const [k, v] of Object.entries(s.byKind)) lines.push(`kind ${k}  ${sats(v)}`);
  for (const [k, v] of Object.entries(s.bySource)) lines.push(`via ${k.padEnd(9)} ${sats(v)}`);
  if (s.recent.length) {
    lines.push('', 'recent:');
    for (const e of s.recent) lines.push(`  ${new Date(e.paidAt).toISOString()}  kind ${e.kind}  ${sats(e.msats).padStart(12)}  ${e.source}  job ${e.jobId.slice(0, 12)}…`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function checkRelay(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no EOSE within ${timeoutMs} ms`));
    }, timeoutMs);
    const t0 = Date.now();
    ws.on('open', () => ws.send(JSON.stringify(['REQ', 'doctor', { kinds: [31990], limit: 1 }])));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as unknown[];
      if (m[0] === 'EOSE') {
        clearTimeout(timer);
        ws.close();
        resolve(`answers in ${Date.now() - t0} ms`);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function runDoctor(f: FlagValues): Promise<number> {
  const paths = providerPaths(f.data as string, f.config as string | undefined);
  const timeoutMs = f['timeout-ms'] as number;
  const log = createLogger({ name: 'doctor', level: 'silent', pretty: false });
  let failures = 0;
  const line = (ok: boolean | 'warn', what: string, detail: string) => {
    if (ok === false) failures++;
    process.stdout.write(`${ok === true ? 'ok  ' : ok === 'warn' ? 'warn' : 'FAIL'}  ${what.padEnd(18)} ${detail}\n`);
  };
  const check = async (what: string, fn: () => Promise<string>, soft = false) => {
    try {
      line(true, what, await fn());
    } catch (err) {
      line(soft ? 'warn' : false, what, (err as Error).message);
    }
  };
  await check('identity', async () => {
    const k = await readKeystoreFile(paths.keys);
    if (process.env.BAZAAR_PASSPHRASE) {
      await unlockKeystoreFile(paths.keys, process.env.BAZAAR_PASSPHRASE);
      return `${k.npub} (unlocked with BAZAAR_PASSPHRASE)`;
    }
    return `${k.npub} (sealed; set BAZAAR_PASSPHRASE to test unlocking)`;
  });
  let config: ProviderConfig | undefined;
  await check('config', async () => {
    config = await loadConfig(paths.config);
    return `${paths.config}: kinds ${config.kinds.join(', ')}, capacity ${config.capacity}, isolation ${config.isolation}`;
  });
  if (config) {
    for (const r of config.relays) await check(`relay`, async () => `${r} ${await checkRelay(r, timeoutMs)}`);
    if (f.cluster) {
      const servers = f.cluster as string;
      await check('cluster', async () => {
        const { pubkey } = await readKeystoreFile(paths.keys);
        const p = await probePool({ servers, pubkey, timeoutMs });
        const who = p.workers.length ? `workers ${p.workers.map((w) => `${w.worker} (capacity ${w.capacity}, seen ${w.agoSecs}s ago)`).join(', ')}${p.leader ? `; leader ${p.leader}` : ''}` : 'no worker of this identity registered yet';
        return `${servers}: JetStream ok; ${who}`;
      });
    }
    const c = config;
    await check('wallet (NWC)', async () => {
      if (!c.nwcUri) throw new Error('no nwc_uri in the config and no BAZAAR_NWC_URI: cannot issue invoices');
      const { LightningWallet } = await import('@bazaar/agents-common/wallet/lightning');
      const ln = await LightningWallet.connect({ nwcUri: c.nwcUri, logger: log, requestTimeoutMs: timeoutMs });
      try {
        const info = await ln.getInfo();
        for (const m of ['make_invoice', 'lookup_invoice']) if (!info.methods.includes(m)) throw new Error(`the wallet does not allow ${m}`);
        return `get_info ok${info.alias ? ` (${info.alias})` : ''}; methods ${info.methods.join(', ')}`;
      } finally {
        await ln.close();
      }
    });
    for (const m of c.mints) {
      await check('mint', async () => {
        const res = await fetch(new URL('/v1/info', m), { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`${m}: HTTP ${res.status}`);
        const info = (await res.json()) as { name?: string };
        return `${m} reachable${info.name ? ` (${info.name})` : ''}`;
      });
    }
    const { detectRunners } = await import('@bazaar/agents-common/sandbox/detect');
    const runners = await detectRunners({ log, signal: AbortSignal.timeout(timeoutMs * 2) });
    for (const r of runners) {
      const wanted = c.isolation === 'bwrap' ? r.kind === 'bwrap' : r.kind === 'container';
      line(r.available ? true : wanted ? false : 'warn', `sandbox ${r.kind}`, r.available ? `available ${Object.entries(r.details).map(([k, v]) => `${k}=${v}`).join(' ')}${r.why ? ` (${r.why})` : ''}` : `unavailable: ${r.why ?? ''}${wanted ? ' — the configured isolation' : ''}`);
    }
    for (const k of c.kinds) {
      if (k === 5930 || k === 5931) line(true, `backend ${k}`, 'runs in the sandbox');
      else if (k === 5050 && c.backends.textGen) {
        const tg = c.backends.textGen;
        await check(`backend ${k}`, async () => {
          const res = await fetch(`${tg.url.replace(/\/$/, '')}/models`, { signal: AbortSignal.timeout(timeoutMs) });
          if (!res.ok) throw new Error(`${tg.url}/models: HTTP ${res.status}`);
          return `${tg.url} answers; model ${tg.model}`;
        });
      } else if ((k === 5932 && c.backends.patchGen) || (k === 5933 && c.backends.codeReview)) {
        const agent = (k === 5932 ? c.backends.patchGen : c.backends.codeReview)!;
        await check(`backend ${k}`, async () => {
          // The sandbox sees the host's /usr, /bin, /sbin and /lib: the agent must be installed there.
          const bin = agent.command[0];
          const dirs = bin.includes('/') ? [''] : ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
          const found = dirs.map((d) => (d ? `${d}/${bin}` : bin)).find((p) => existsSync(p) && /^\/(usr|bin|sbin|lib)/.test(p));
          if (!found) throw new Error(`agent command ${bin} is not installed under /usr, /bin or /sbin, which is all the sandbox sees`);
          if (agent.apiKeyEnv && !process.env[agent.apiKeyEnv]) throw new Error(`${agent.apiKeyEnv} is not set: the credential proxy has no key for ${agent.allowDomains.join(', ')}`);
          const key = agent.apiKeyEnv ? `key from ${agent.apiKeyEnv}` : 'no key';
          return `agent ${found}; model API via the credential proxy: ${agent.allowDomains.join(', ') || 'none'} (${key})`;
        });
      } else line(false, `backend ${k}`, 'no backend for this kind in this build');
    }
  }
  process.stdout.write(failures ? `\n${failures} check(s) failed\n` : '\nall checks passed\n');
  return failures ? 1 : 0;
}

async function runTrajectory(f: FlagValues, positionals: string[]): Promise<number> {
  const id = positionals[0];
  if (!id || !/^[0-9a-f]{64}$/.test(id)) throw new UsageError('JOB_ID must be the 64-char hex id of the job request');
  const paths = providerPaths(f.data as string);
  let text: string;
  try {
    text = await readFile(join(paths.trajectories, `${id}.jsonl`), 'utf8');
  } catch {
    return fail(`no trajectory for job ${id} under ${paths.trajectories}`);
  }
  const store = existsSync(paths.db) ? ProviderStore.open(paths.db) : undefined;
  const job = store?.get(id);
  await store?.close();
  const sha = sha256Hex(text);
  process.stdout.write(text);
  if (job?.trajectorySha256 && job.trajectorySha256 !== sha) return fail(`trajectory sha256 ${sha} differs from the one in the result (${job.trajectorySha256})`);
  process.stderr.write(`sha256 ${sha}${job?.trajectorySha256 ? ' (matches the result)' : ''}\n`);
  return 0;
}

async function runTry(f: FlagValues): Promise<number> {
  const { tryJob } = await import('./try.ts');
  const relay = f.relay as string;
  if (!/^wss?:\/\/\S+$/.test(relay)) throw new UsageError(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(relay)}`);
  return tryJob({
    relay,
    cmds: f.cmd as string[],
    timeLimitSecs: f['time-limit'] as number,
    ...(f['pay-with'] ? { payWith: f['pay-with'] as string } : {}),
    maxSats: f['max-sats'] as number,
    timeoutMs: f['timeout-ms'] as number,
    logger: createLogger({ name: 'try', level: process.env.BAZAAR_LOG_LEVEL ?? 'silent', pretty: false }),
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
  });
}
