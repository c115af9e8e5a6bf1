// `bazaar arbiter`: init | serve | status | cases.
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import { untilSignal } from '@bazaar/cli-kit/signals';
import { createKeystoreFile, KeystoreError, readKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { readPassphrase } from '@bazaar/agents-common/identity/passphrase';
import { configTemplate, ConfigError, loadConfig } from './config.ts';
import { CASE_STATES, OPEN_STATES, type Case, type CaseState } from './case.ts';
import { ArbiterStore, StoreError } from './store.ts';
import { arbiterPaths, DEFAULT_DATA_DIR, startArbiter } from './runtime.ts';

const dataFlag = { type: 'string', default: DEFAULT_DATA_DIR, env: 'BAZAAR_ARBITER_DATA', description: 'Arbiter data directory (keys, config, LMDB, evidence)' } as const;
const configFlag = { type: 'string', env: 'BAZAAR_ARBITER_CONFIG', description: 'Config file (default: DATA/config.jsonc)' } as const;
const jsonFlag = { type: 'boolean', default: false, env: false, description: 'Machine-readable JSON output (one document on stdout)' } as const;

const initCommand: CommandSpec = {
  name: 'init',
  summary: 'Create the arbiter identity (NIP-06 mnemonic → Nostr key, plus a separate payment key buyers name in escrow locks), sealed with a passphrase, and a documented config file.',
  details: 'The passphrase comes from BAZAAR_PASSPHRASE or a prompt. Refuses to overwrite an existing identity.',
  flags: {
    data: dataFlag,
    config: configFlag,
    relay: { type: 'string', multiple: true, default: 'ws://127.0.0.1:4869', env: 'BAZAAR_ARBITER_RELAYS', description: 'Relay URL for the config (repeatable)' },
    mint: { type: 'string', multiple: true, env: 'BAZAAR_ARBITER_MINTS', description: 'Mint URL listed in the kind 10019 payment info (repeatable)' },
    public: { type: 'boolean', default: false, env: false, description: 'Also take disputes that do not name this arbiter (reputation-only verdicts)' },
    'response-window': { type: 'number', integer: true, min: 1, max: 30 * 24 * 3600, default: 86_400, env: false, description: 'Seconds the provider has to answer a dispute' },
    'show-mnemonic': { type: 'boolean', default: false, env: false, description: 'Print the 24-word backup mnemonic once (to stderr)' },
    'kdf-log-n': { type: 'number', integer: true, min: 10, max: 20, default: 17, env: 'BAZAAR_KDF_LOG_N', description: 'scrypt cost (log2 N) for sealing the keys' },
    json: jsonFlag,
  },
  run: runInit,
};

const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'Run the arbiter in the foreground: take disputes, gather evidence, replay in the sandbox, publish verdicts. Ctrl-C stops it cleanly.',
  flags: {
    data: dataFlag,
    config: configFlag,
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'BAZAAR_LOG_LEVEL', description: 'Log level' },
    'allow-file-repos': { type: 'boolean', default: false, env: 'BAZAAR_ARBITER_ALLOW_FILE_REPOS', description: 'Replay jobs on file:// repositories (local mirrors, tests)' },
    'poll-ms': { type: 'number', integer: true, min: 50, max: 600_000, default: 5000, env: 'BAZAAR_ARBITER_POLL_MS', description: 'How often open cases are looked at (windows, answers, retries)' },
    json: { ...jsonFlag, description: 'Print the started arbiter as one JSON line on stdout (logs stay on stderr)' },
  },
  run: runServe,
};

const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'Running or not, identity and payment key, relays, cases by state (no passphrase needed).',
  flags: { data: dataFlag, json: jsonFlag },
  run: runStatus,
};

const casesCommand: CommandSpec = {
  name: 'cases',
  summary: 'Disputes taken: open ones (waiting for the answer, the window, a replay that cannot run yet) and decided ones with their ruling.',
  flags: {
    data: dataFlag,
    json: jsonFlag,
    state: { type: 'string', choices: [...CASE_STATES, 'undecided'], env: false, description: 'Only cases in this state (undecided = open or unavailable)' },
    limit: { type: 'number', integer: true, min: 1, max: 100_000, default: 50, env: false, description: 'At most this many, newest first' },
  },
  run: runCases,
};

export const arbiterCommand: CommandSpec = {
  name: 'arbiter',
  summary: 'The arbiter agent: rules on disputes by replaying the verification in its own sandbox, publishes verdicts, co-signs escrow releases.',
  subcommands: {
    init: async () => initCommand,
    serve: async () => serveCommand,
    status: async () => statusCommand,
    cases: async () => casesCommand,
  },
};

function fail(msg: string): number {
  process.stderr.write(`error: ${msg}\n`);
  return 1;
}

async function runInit(f: FlagValues): Promise<number> {
  const paths = arbiterPaths(f.data as string, f.config as string | undefined);
  if (existsSync(paths.keys)) return fail(`an identity already exists at ${paths.keys}; refusing to overwrite it`);
  const relays = f.relay as string[];
  for (const r of relays) if (!/^wss?:\/\/\S+$/.test(r)) throw new UsageError(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`);
  const mints = (f.mint as string[] | undefined) ?? [];
  for (const m of mints) if (!/^https?:\/\/\S+$/.test(m)) throw new UsageError(`--mint must be an http(s) URL, got ${JSON.stringify(m)}`);
  try {
    const passphrase = await readPassphrase({ confirm: true, prompt: 'New passphrase for the arbiter keys: ' });
    const made = await createKeystoreFile(paths.keys, passphrase, { logN: f['kdf-log-n'] as number });
    if (!existsSync(paths.config)) {
      await writeFile(paths.config, configTemplate({ relays, mints, public: f.public as boolean, responseWindowSecs: f['response-window'] as number }), { mode: 0o600, flag: 'wx' });
      await chmod(paths.config, 0o600);
    }
    if (f['show-mnemonic']) process.stderr.write(`\nBackup mnemonic (write it down; it restores both keys):\n  ${made.mnemonic}\n\n`);
    if (f.json) {
      process.stdout.write(JSON.stringify({ npub: made.identity.npub, pubkey: made.identity.pubkey, paymentPubkey: '02' + made.identity.paymentPubkey.slice(-64), keys: paths.keys, config: paths.config }) + '\n');
      return 0;
    }
    process.stdout.write(`identity   ${made.identity.npub}\npubkey     ${made.identity.pubkey}\npayment    02${made.identity.paymentPubkey.slice(-64)}  (the key buyers name in escrow locks; providers list it as an arbiter)\nkeys       ${paths.keys}  (sealed: scrypt + XChaCha20-Poly1305)\nconfig     ${paths.config}\n\nNext: edit the config (mints, response window), then run 'bazaar arbiter serve'.\n`);
    return 0;
  } catch (err) {
    if (err instanceof KeystoreError) return fail(err.message);
    throw err;
  }
}

async function runServe(f: FlagValues): Promise<number> {
  const log = createLogger({ name: 'arbiter', level: f['log-level'] as string });
  const paths = arbiterPaths(f.data as string, f.config as string | undefined);
  let running;
  try {
    const passphrase = await readPassphrase({ prompt: 'Passphrase for the arbiter keys: ' });
    running = await startArbiter({ dataDir: paths.root, configPath: paths.config, passphrase, logger: log, pollMs: f['poll-ms'] as number, allowFileRepos: f['allow-file-repos'] as boolean });
  } catch (err) {
    if (err instanceof KeystoreError || err instanceof ConfigError || err instanceof StoreError) return fail(err.message);
    log.error({ err }, 'arbiter failed to start');
    return 1;
  }
  const s = running.arbiter.status();
  if (f.json) process.stdout.write(JSON.stringify({ npub: running.identity.npub, pubkey: s.pubkey, paymentPubkey: s.paymentPubkey, relays: running.arbiter.pool.urls, kinds: s.kinds, public: s.public, responseWindowSecs: s.responseWindowSecs, isolation: s.isolation, pid: process.pid }) + '\n');
  else process.stdout.write(`arbiter ${running.identity.npub} (payment key ${s.paymentPubkey}) replaying kinds ${s.kinds.join(', ')} on ${running.arbiter.pool.urls.join(', ')}; response window ${s.responseWindowSecs}s${s.public ? '; public' : ''}\n`);
  await untilSignal(() => running.close(), log, 'stopping');
  return 0;
}

interface StatusFile {
  pid: number;
  startedAt: number;
  relays: { url: string; connected: boolean }[];
  kinds: number[];
  public: boolean;
  responseWindowSecs: number;
  isolation: string;
  replaying?: string;
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

function openStore(db: string): ArbiterStore | undefined {
  return existsSync(db) ? ArbiterStore.open(db, { readOnly: true }) : undefined;
}

async function runStatus(f: FlagValues): Promise<number> {
  const paths = arbiterPaths(f.data as string);
  if (!existsSync(paths.keys)) return fail(`no arbiter at ${paths.root} (run 'bazaar arbiter init')`);
  const keys = await readKeystoreFile(paths.keys);
  const live = await readStatusFile(paths.status);
  let config: Awaited<ReturnType<typeof loadConfig>> | undefined;
  try {
    config = await loadConfig(paths.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
  const store = openStore(paths.db);
  const counts = store?.counts() ?? { open: 0, unavailable: 0, decided: 0, published: 0, rejected: 0 };
  await store?.close();
  const out = {
    npub: keys.npub,
    pubkey: keys.pubkey,
    paymentPubkey: '02' + keys.paymentPubkey.slice(-64),
    running: !!live,
    ...(live ? { pid: live.pid, uptimeSecs: Math.round((Date.now() - live.startedAt) / 1000), relays: live.relays, relaysConnected: live.relays.filter((r) => r.connected).length, isolation: live.isolation, ...(live.replaying ? { replaying: live.replaying } : {}) } : {}),
    ...(config ? { kinds: config.kinds, public: config.public, responseWindowSecs: config.responseWindowSecs, feeSats: config.feeSats } : {}),
    cases: counts,
  };
  if (f.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  const lines = [`arbiter    ${keys.npub}`, `payment    ${out.paymentPubkey}`, `state      ${live ? `running (pid ${live.pid}, up ${out.uptimeSecs}s)` : 'not running'}`];
  if (live) lines.push(`relays     ${out.relaysConnected}/${live.relays.length} connected  ${live.relays.map((r) => `${r.url}${r.connected ? '' : ' (down)'}`).join(', ')}`);
  if (config) lines.push(`serving    kinds ${config.kinds.join(', ')} · window ${config.responseWindowSecs}s · ${config.public ? 'public' : 'named disputes only'} · fee ${config.feeSats ? `${config.feeSats} sats (loser pays)` : 'none'}`);
  lines.push(`cases      ${counts.open} open · ${counts.unavailable} cannot replay yet · ${counts.decided} decided (publishing) · ${counts.published} published · ${counts.rejected} not taken`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

/** What `cases` shows of a case. */
export function caseView(c: Case) {
  return {
    id: c.id,
    state: c.state,
    kind: c.kind,
    buyer: c.buyer,
    provider: c.provider,
    openedAt: c.openedAt,
    windowEndsAt: c.windowEndsAt,
    escrow: c.escrow ? { mint: c.escrow.mint, amountSats: c.escrow.amount, ...(c.escrow.locktime !== undefined ? { locktime: c.escrow.locktime } : {}) } : null,
    failedChecks: c.failedChecks,
    providerAnswered: c.response ? c.response.position : null,
    trajectory: c.trajectory ? c.trajectory.status : null,
    replay: c.replay ? (c.replay.ok ? 'passed' : 'failed') : null,
    ...(c.unavailable ? { unavailable: { reason: c.unavailable.reason, message: c.unavailable.message, attempts: c.unavailable.attempts, nextAttemptAt: c.unavailable.nextAttemptAt } } : {}),
    ...(c.decision ? { ruling: c.decision.ruling, ...(c.decision.providerShare !== undefined ? { providerShare: c.decision.providerShare } : {}), reasons: c.decision.reasons, evidenceSha256: c.decision.evidenceSha256, release: c.decision.release?.to ?? null, decidedAt: c.decision.decidedAt } : {}),
    ...(c.decision?.fee ? { fee: { msats: c.decision.fee.msats, payer: c.decision.fee.payer === c.provider ? 'provider' : 'buyer', bolt11: c.decision.fee.bolt11, paid: !!c.feePaidAt, ...(c.feePaidAt ? { paidAt: c.feePaidAt } : {}) } } : {}),
    ...(c.verdict ? { verdictId: c.verdict.id } : {}),
    ...(c.publishedAt ? { publishedAt: c.publishedAt } : {}),
    ...(c.rejected ? { rejected: c.rejected } : {}),
  };
}

function describe(c: ReturnType<typeof caseView>): string {
  const age = (ms: number) => {
    const s = Math.round(Math.abs(ms) / 1000);
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  };
  if (c.state === 'rejected') return `not taken: ${c.rejected}`;
  if (c.state === 'unavailable') return `cannot replay (${c.unavailable?.reason}): ${c.unavailable?.message.slice(0, 120)}; retry in ${age((c.unavailable?.nextAttemptAt ?? 0) - Date.now())}`;
  if (c.state === 'open') {
    const left = c.windowEndsAt - Date.now();
    return `replay ${c.replay ?? 'pending'} · provider ${c.providerAnswered ?? 'silent'} · trajectory ${c.trajectory ?? 'none'} · ${left > 0 ? `window ends in ${age(left)}` : 'window over'}`;
  }
  return `${c.ruling}${c.providerShare !== undefined ? ` (${Math.round(c.providerShare * 100)}% provider)` : ''}${c.release ? ` · escrow → ${c.release}` : ''}${c.fee ? ` · fee ${c.fee.msats / 1000} sats ${c.fee.paid ? 'paid by' : 'asked of'} the ${c.fee.payer}${c.fee.paid ? '' : ' (unpaid)'}` : ''} · ${c.state === 'decided' ? 'publishing' : 'published'} ${c.verdictId?.slice(0, 12)}…`;
}

async function runCases(f: FlagValues): Promise<number> {
  const paths = arbiterPaths(f.data as string);
  if (!existsSync(paths.keys)) return fail(`no arbiter at ${paths.root} (run 'bazaar arbiter init')`);
  const store = openStore(paths.db);
  const want = f.state as string | undefined;
  const all = store ? [...store.cases()] : [];
  await store?.close();
  const picked = all
    .filter((c) => !want || (want === 'undecided' ? OPEN_STATES.has(c.state) : c.state === (want as CaseState)))
    .sort((a, b) => b.openedAt - a.openedAt)
    .slice(0, f.limit as number)
    .map(caseView);
  if (f.json) {
    process.stdout.write(JSON.stringify({ cases: picked }, null, 2) + '\n');
    return 0;
  }
  if (!picked.length) {
    process.stdout.write('no cases\n');
    return 0;
  }
  for (const c of picked) process.stdout.write(`${c.id.slice(0, 16)}…  ${String(c.kind).padEnd(5)} ${c.state.padEnd(11)} ${describe(c)}\n`);
  return 0;
}
