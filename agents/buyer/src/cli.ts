// `bazaar buyer`: buy verifiable work on the market — one-shot jobs (sandbox, index, patch,
// review, text), the directory (providers), history (jobs, receipts) and the Autopilot daemon.
//
// Output: on a terminal, live progress on stderr (feedback as it arrives, elapsed time, spend)
// and a summary on stdout; with --json, exactly one JSON document on stdout and nothing else
// there (logs go to stderr). Exit codes are part of the interface (EXIT below).
import { existsSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import { decode as decodeNip19 } from 'nostr-tools/nip19';
import type { CommandSpec, FlagSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { REDACT_PATHS } from '@bazaar/cli-kit/log';
import { createKeystoreFile, KeystoreError, readKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { readPassphrase } from '@bazaar/agents-common/identity/passphrase';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { ConfigError, configTemplate, loadConfig, type BuyerConfig } from './config.ts';
import { DEFAULT_DATA_DIR, buyerPaths, openBuyer, type RunningBuyer } from './runtime.ts';
import { PREFERENCES, parseStrategy, type PayChoice, type Preference } from './selection.ts';
import { KIND_OF, maxUnits, readTask, type TaskSpec } from './tasks.ts';
import type { RunOptions, RunReport } from './market-client.ts';
import { ProgressPrinter, formatSats, summary } from './progress.ts';

/** Exit codes of the job commands (and autopilot): distinct so a script can branch on them. */
export const EXIT = {
  /** The result was verified and paid (or verified and nothing was asked). */
  ok: 0,
  /** Something went wrong on our side (bad config, wallet unreachable…). */
  error: 1,
  /** Bad flags. */
  usage: 2,
  /** The result failed verification: nothing paid, a dispute published. */
  disputed: 3,
  /** Refused for the budget: every provider is over it, or one asked more than allowed; nothing paid. */
  budgetRefused: 4,
  /** No provider usable, answering, or delivering in time. */
  noProvider: 5,
  /** A payment is in flight with an unknown outcome; the next `bazaar buyer …` resumes it. */
  paymentPending: 6,
} as const;

export function exitCodeFor(outcome: RunReport['outcome']): number {
  switch (outcome) {
    case 'paid':
    case 'verified':
      return EXIT.ok;
    case 'disputed':
      return EXIT.disputed;
    case 'budget-refused':
      return EXIT.budgetRefused;
    case 'no-provider':
    case 'failed':
      return EXIT.noProvider;
    case 'running':
      return EXIT.paymentPending;
  }
}

const EXIT_HELP = `Exit codes: 0 verified and paid (or nothing asked), 1 error, 2 usage, 3 verification failed
(disputed, not paid), 4 refused for the budget (nothing paid), 5 no provider could do it,
6 a payment is in flight (the next bazaar buyer command resumes it), 130 interrupted (Ctrl-C:
the job is cancelled with a kind 5 deletion; a payment already under way is finished first).`;

const ENV = 'BAZAAR_BUYER_';
const dataFlag: FlagSpec = { type: 'string', default: DEFAULT_DATA_DIR, env: 'BAZAAR_BUYER_DATA', description: 'Buyer data directory (keys, config, LMDB, evidence)' };
const configFlag: FlagSpec = { type: 'string', env: 'BAZAAR_BUYER_CONFIG', description: 'Config file (default: DATA/config.jsonc)' };
const jsonFlag: FlagSpec = { type: 'boolean', default: false, env: false, description: 'One JSON document on stdout instead of progress and a summary' };
const logFlag: FlagSpec = { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'warn', env: 'BAZAAR_LOG_LEVEL', description: 'Log level (logs go to stderr)' };

/** Flags every job command takes. */
const commonFlags: Readonly<Record<string, FlagSpec>> = {
  data: dataFlag,
  config: configFlag,
  relay: { type: 'string', multiple: true, env: 'BAZAAR_BUYER_RELAYS', description: 'Relay URL (repeatable; default: the config\'s)' },
  provider: { type: 'string', multiple: true, env: false, description: 'Pin a provider (npub or hex; repeatable): tried first, usable without an announcement' },
  strategy: { type: 'string', env: false, description: 'first | prefer | race:N | retry:N | pinned (default retry:3; prefer with --provider)' },
  prefer: { type: 'string', choices: PREFERENCES, env: false, description: 'Resource preference: reweights the provider score' },
  'max-price': { type: 'number', integer: true, min: 0, env: false, description: 'The most one provider may charge, in sats' },
  budget: { type: 'number', integer: true, min: 1, env: false, description: 'The most this task may cost in total, in sats (default: the config\'s default_budget_sats)' },
  timeout: { type: 'number', integer: true, min: 5, max: 86_400, env: false, description: 'Give up (and cancel) after this many seconds (default by kind)' },
  pay: { type: 'string', choices: ['lightning', 'cashu', 'escrow'], env: false, description: 'How to pay (default: what the provider\'s terms need; Lightning when possible)' },
  encrypt: { type: 'boolean', default: false, env: false, description: 'NIP-44-encrypt the inputs and params to the chosen provider' },
  'nwc-uri-file': { type: 'string', env: 'BAZAAR_BUYER_NWC_URI_FILE', description: 'File holding the NWC URI of the paying wallet (overrides the config)' },
  mint: { type: 'string', env: 'BAZAAR_BUYER_MINT', description: 'Cashu mint URL for --pay cashu and escrow (overrides the config)' },
  json: jsonFlag,
  'log-level': logFlag,
};

/** Where the buyer lives and how it connects: every command that opens the buyer takes these. */
function connectionFlags(): Record<string, FlagSpec> {
  const { data, config, relay, 'nwc-uri-file': nwc, mint } = commonFlags;
  return { data: data!, config: config!, relay: relay!, 'nwc-uri-file': nwc!, mint: mint!, 'log-level': logFlag };
}

function jobCommand(name: string, summaryText: string, flags: Record<string, FlagSpec>, toTask: (f: FlagValues, positionals: string[]) => Record<string, unknown>, extra: { positionals?: string; details?: string; budgetRequired?: boolean } = {}): CommandSpec {
  return {
    name,
    summary: summaryText,
    envPrefix: ENV,
    ...(extra.positionals ? { positionals: extra.positionals } : {}),
    details: `${extra.details ? `${extra.details}\n\n` : ''}${EXIT_HELP}`,
    flags: { ...flags, ...commonFlags },
    run: (f, pos) => runJob(f, pos, toTask, extra.budgetRequired ?? false),
  };
}

const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : v === undefined ? [] : [String(v)]);
const csv = (v: unknown): string[] => list(v).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);

const sandboxCommand = jobCommand(
  'sandbox',
  'Run shell commands in a provider\'s sandbox (SandboxRun, kind 5930), optionally in a checkout of a repository; hashes and totals verified, --rerun replays them in our sandbox.',
  {
    cmd: { type: 'string', multiple: true, env: false, description: 'Shell command line (repeatable; run in order with /bin/sh -c, stopping at the first failure)' },
    repo: { type: 'string', env: false, description: 'Repository URL to check out first' },
    ref: { type: 'string', env: false, description: 'Git ref of --repo' },
    'time-limit': { type: 'number', integer: true, min: 1, max: 86_400, default: 60, env: false, description: 'time_limit_secs for all commands together' },
    rerun: { type: 'boolean', default: false, env: false, description: 'Verify by running the commands again in our own sandbox and comparing' },
  },
  (f) => ({ type: 'sandbox', cmd: list(f.cmd), ...(f.repo ? { repo: f.repo } : {}), ...(f.ref ? { ref: f.ref } : {}), time_limit_secs: f['time-limit'] }),
);

const indexCommand = jobCommand(
  'index',
  'Index a repository (RepoIndex, kind 5931): files with sizes, hashes and languages, and symbols; a sample of files is checked against our own checkout.',
  {
    repo: { type: 'string', env: false, description: 'Repository URL (required)' },
    ref: { type: 'string', default: 'HEAD', env: false, description: 'Git ref' },
    path: { type: 'string', multiple: true, env: false, description: 'Only paths matching this glob (repeatable)' },
    'max-files': { type: 'number', integer: true, min: 1, env: false, description: 'At most this many files' },
  },
  (f) => ({ type: 'index', repo: f.repo, ref: f.ref, ...(f.path ? { paths: list(f.path) } : {}), ...(f['max-files'] !== undefined ? { max_files: f['max-files'] } : {}) }),
);

const patchCommand = jobCommand(
  'patch',
  'Get a patch for an issue (PatchGen, kind 5932); paid only after it applies to our own checkout and the tests pass in our sandbox.',
  {
    repo: { type: 'string', env: false, description: 'Repository URL (required)' },
    ref: { type: 'string', default: 'HEAD', env: false, description: 'Git ref the patch applies to' },
    title: { type: 'string', env: false, description: 'Issue title (required)' },
    body: { type: 'string', env: false, description: 'Issue body (default: the title)' },
    test: { type: 'string', env: false, description: 'Test command that must pass with the patch applied' },
    allow: { type: 'string', multiple: true, env: false, description: 'Path glob the patch may touch (repeatable; default: anything)' },
    deny: { type: 'string', multiple: true, env: false, description: 'Path glob the patch must not touch (repeatable)' },
    'time-limit': { type: 'number', integer: true, min: 1, max: 86_400, default: 600, env: false, description: 'time_limit_secs for the provider' },
  },
  (f) => ({ type: 'patch', repo: f.repo, ref: f.ref, title: f.title, ...(f.body ? { body: f.body } : {}), ...(f.test ? { test: f.test } : {}), ...(f.allow ? { allow: list(f.allow) } : {}), ...(f.deny ? { deny: list(f.deny) } : {}), time_limit_secs: f['time-limit'] }),
  { budgetRequired: true, details: 'The diff is printed after the summary (or in result.content with --json).' },
);

/** The issue's examples say `--focus security,logic`; "logic" is what DESIGN calls correctness. */
const FOCUS_ALIASES: Readonly<Record<string, string>> = { logic: 'correctness', test: 'tests', perf: 'performance' };

const reviewCommand = jobCommand(
  'review',
  'Get a code review of a diff (CodeReview, kind 5933); checked for schema, substance, and that every issue is about a file in the diff.',
  {
    diff: { type: 'string', env: false, description: 'File holding the unified diff to review (required; - for stdin)' },
    focus: { type: 'string', multiple: true, env: false, description: 'correctness (alias logic), security, performance, style, tests, docs — comma-separated or repeated' },
    depth: { type: 'string', choices: ['quick', 'standard', 'thorough'], env: false, description: 'Review depth' },
  },
  (f) => {
    if (!f.diff) throw new UsageError('--diff FILE is required');
    let diff: string;
    try {
      diff = readFileSync(f.diff === '-' ? 0 : (f.diff as string), 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --diff: ${(err as Error).message}`);
    }
    return { type: 'review', diff, ...(f.focus ? { focus: csv(f.focus).map((x) => FOCUS_ALIASES[x] ?? x) } : {}), ...(f.depth ? { depth: f.depth } : {}) };
  },
);

const textCommand = jobCommand(
  'text',
  'Generate text from a prompt (TextGen, kind 5050); accepted on the provider\'s reputation.',
  {
    model: { type: 'string', env: false, description: 'Model to ask for' },
    'max-tokens': { type: 'number', integer: true, min: 1, env: false, description: 'max_tokens' },
  },
  (f, pos) => {
    if (!pos.length) throw new UsageError('the prompt is required: bazaar buyer text "…"');
    return { type: 'text', prompt: pos.join(' '), ...(f.model ? { model: f.model } : {}), ...(f['max-tokens'] ? { max_tokens: f['max-tokens'] } : {}) };
  },
  { positionals: '"PROMPT"' },
);

const initCommand: CommandSpec = {
  name: 'init',
  summary: 'Create the buyer identity (a mnemonic: Nostr key + separate payment key) sealed with a passphrase, and a documented config file.',
  details: 'The passphrase comes from BAZAAR_PASSPHRASE or a prompt. Refuses to overwrite an existing identity. Job commands create the identity on first use when there is none.',
  envPrefix: ENV,
  flags: {
    data: dataFlag,
    config: configFlag,
    relay: { type: 'string', multiple: true, default: 'ws://127.0.0.1:4869', env: 'BAZAAR_BUYER_RELAYS', description: 'Relay URL for the config (repeatable)' },
    'nwc-uri-file': { type: 'string', env: 'BAZAAR_BUYER_NWC_URI_FILE', description: 'File holding the NWC URI of the paying wallet' },
    mint: { type: 'string', env: 'BAZAAR_BUYER_MINT', description: 'Cashu mint URL (escrow, --pay cashu)' },
    arbiter: { type: 'string', multiple: true, env: false, description: 'Arbiter for escrow locks (npub or hex; repeatable)' },
    'show-mnemonic': { type: 'boolean', default: false, env: false, description: 'Print the 24-word backup mnemonic once (to stderr)' },
    'kdf-log-n': { type: 'number', integer: true, min: 10, max: 20, default: 17, env: 'BAZAAR_KDF_LOG_N', description: 'scrypt cost (log2 N) for sealing the keys' },
  },
  run: runInit,
};

const jobsCommand: CommandSpec = {
  name: 'jobs',
  summary: 'The tasks this buyer ran: outcome, provider, spend; resumes payments left in flight by a crash (--wait also waits for results still out).',
  envPrefix: ENV,
  flags: { limit: { type: 'number', integer: true, min: 1, default: 20, env: false, description: 'How many runs to list (newest first)' }, wait: { type: 'boolean', default: false, env: false, description: 'Also wait for results of jobs still out (until their expiration)' }, json: jsonFlag, ...connectionFlags() },
  run: runJobs,
};

const receiptsCommand: CommandSpec = {
  name: 'receipts',
  summary: 'Receipts this buyer published (kind 39302): job, provider, amount, how it paid, the proof.',
  envPrefix: ENV,
  flags: { data: dataFlag, json: jsonFlag, limit: { type: 'number', integer: true, min: 1, default: 50, env: false, description: 'How many (newest first)' } },
  run: runReceipts,
};

const providersCommand: CommandSpec = {
  name: 'providers',
  summary: 'The provider directory: kinds, prices, liveness, reputation from trusted keys and, with --kind, the score a job would rank them by.',
  envPrefix: ENV,
  flags: {
    kind: { type: 'string', env: false, description: 'Job kind (5930, 5931, 5932, 5933, 5050) or its name (sandbox, index, patch, review, text)' },
    prefer: commonFlags.prefer,
    budget: commonFlags.budget,
    'max-price': commonFlags['max-price'],
    json: jsonFlag,
    ...connectionFlags(),
  },
  run: runProviders,
};

const autopilotCommand: CommandSpec = {
  name: 'autopilot',
  summary: 'The Autopilot daemon: works through a queue of tasks (JSON lines) within a total budget, with a per-task allocation and a delegation policy.',
  envPrefix: ENV,
  details: `Each line of --tasks is a task: {"id"?, "type": "sandbox|index|patch|review|text", …its fields, "budget_sats"?,
"complexity"?}. See the buyer README ("Autopilot") for the fields and the delegation policy.
${EXIT_HELP}`,
  flags: {
    tasks: { type: 'string', env: false, description: 'Task file, one JSON object per line (required)' },
    budget: { type: 'number', integer: true, min: 1, env: false, description: 'Total budget for all tasks, in sats (required)' },
    'max-per-task': { type: 'number', integer: true, min: 1, env: false, description: 'Most one delegation may cost, in sats (default: the policy\'s)' },
    delegate: { type: 'string', multiple: true, env: false, description: 'Task types allowed to delegate (default: all; comma-separated or repeated)' },
    'keep-local-below': { type: 'number', min: 0, env: false, description: 'Tasks with a complexity below this are kept local, not bought' },
    follow: { type: 'boolean', default: false, env: false, description: 'Keep running and take tasks appended to the file until Ctrl-C' },
    concurrency: { type: 'number', integer: true, min: 1, max: 16, default: 1, env: false, description: 'Tasks worked on at once' },
    ...Object.fromEntries(Object.entries(commonFlags).filter(([k]) => !['budget', 'provider'].includes(k))),
  },
  run: async (f) => (await import('./autopilot-cli.ts')).runAutopilot(f),
};

const walletCommand: CommandSpec = {
  name: 'wallet',
  summary: 'The buyer\'s money: the Lightning balance (NWC get_balance) and the ecash purse at its mint; --topup SATS mints ecash paid from the Lightning wallet (for --pay cashu and escrow).',
  details: 'A top-up is a Lightning payment to the mint (it counts against the spending limits like any payment); the mint quote is stored first, so an interrupted top-up is finished by the next command that opens the wallet.',
  envPrefix: ENV,
  flags: {
    topup: { type: 'number', integer: true, min: 1, max: 10_000_000, env: false, description: 'Mint this many sats of ecash at the configured mint, paid from the Lightning wallet' },
    json: jsonFlag,
    ...connectionFlags(),
  },
  run: runWallet,
};

export const buyerCommand: CommandSpec = {
  name: 'buyer',
  summary: 'The buyer agent (Autopilot): buys verifiable work, verifies it in its own sandbox, pays only for what passed.',
  subcommands: {
    init: async () => initCommand,
    sandbox: async () => sandboxCommand,
    index: async () => indexCommand,
    patch: async () => patchCommand,
    review: async () => reviewCommand,
    text: async () => textCommand,
    jobs: async () => jobsCommand,
    receipts: async () => receiptsCommand,
    providers: async () => providersCommand,
    autopilot: async () => autopilotCommand,
    wallet: async () => walletCommand,
  },
};

// ---------------------------------------------------------------- shared wiring

/** Logs go to stderr, so --json keeps stdout for its one document. Secrets are redacted. */
export function stderrLogger(level: string): Logger {
  const pretty = process.stderr.isTTY === true && process.env.BAZAAR_LOG_FORMAT !== 'json';
  return pino(
    { name: 'buyer', level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}) },
    ...(pretty ? [] : [pino.destination(2)]),
  );
}

export function hexKey(v: string, what: string): string {
  if (/^[0-9a-f]{64}$/.test(v)) return v;
  try {
    const d = decodeNip19(v);
    if (d.type === 'npub') return d.data;
    if (d.type === 'nprofile') return d.data.pubkey;
  } catch {
    // reported below
  }
  throw new UsageError(`${what} must be an npub or a 64-char hex public key, got ${JSON.stringify(v)}`);
}

/** The config file, with flag/environment overrides for relays, wallet and mint. */
export async function effectiveConfig(f: FlagValues): Promise<BuyerConfig> {
  const paths = buyerPaths(f.data as string, f.config as string | undefined);
  const c = await loadConfig(paths.config);
  let nwcUri = c.nwcUri;
  if (f['nwc-uri-file']) {
    try {
      nwcUri = readFileSync(f['nwc-uri-file'] as string, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --nwc-uri-file: ${(err as Error).message}`);
    }
  }
  if (process.env.BAZAAR_BUYER_NWC_URI) nwcUri = process.env.BAZAAR_BUYER_NWC_URI;
  const relays = list(f.relay);
  for (const r of relays) if (!/^wss?:\/\/\S+$/.test(r)) throw new UsageError(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`);
  const mint = (f.mint as string | undefined) ?? c.mint;
  if (mint !== undefined && !/^https?:\/\/\S+$/.test(mint)) throw new UsageError(`--mint must be an http(s) URL, got ${JSON.stringify(mint)}`);
  return { ...c, ...(relays.length ? { relays } : {}), ...(nwcUri ? { nwcUri } : {}), ...(mint ? { mint } : {}) };
}

/** Unlocks (or on first use creates) the identity and opens everything a client needs. */
export async function openFromFlags(f: FlagValues, log: Logger, config: BuyerConfig): Promise<RunningBuyer> {
  const paths = buyerPaths(f.data as string, f.config as string | undefined);
  const fresh = !existsSync(paths.keys);
  const passphrase = await readPassphrase({ confirm: fresh, prompt: fresh ? 'New passphrase for the buyer keys: ' : 'Passphrase for the buyer keys: ' });
  const b = await openBuyer({ dataDir: paths.root, ...(f.config ? { configPath: f.config as string } : {}), passphrase, config, logger: log, create: true, ...(process.env.BAZAAR_KDF_LOG_N ? { kdfLogN: Number(process.env.BAZAAR_KDF_LOG_N) } : {}) });
  if (fresh) process.stderr.write(`created a new buyer identity ${b.identity.npub} in ${paths.keys} (sealed with your passphrase)\n`);
  return b;
}

export function runOptionsFrom(f: FlagValues, budgetSats: number, kind: number): Omit<RunOptions, 'signal' | 'onProgress'> {
  let strategy: RunOptions['strategy'];
  if (f.strategy !== undefined) {
    const s = parseStrategy(f.strategy as string);
    if ('error' in s) throw new UsageError(`--strategy: ${s.error}`);
    strategy = s;
  }
  const providers = list(f.provider).map((p) => hexKey(p, '--provider'));
  if (strategy?.type === 'pinned' && !providers.length) throw new UsageError('--strategy pinned needs --provider');
  void kind;
  return {
    budgetMsats: budgetSats * 1000,
    ...(f['max-price'] !== undefined ? { maxPriceMsats: (f['max-price'] as number) * 1000 } : {}),
    ...(strategy ? { strategy } : {}),
    ...(f.prefer ? { preference: f.prefer as Preference } : {}),
    ...(providers.length ? { providers } : {}),
    ...(f.pay ? { pay: f.pay as PayChoice } : {}),
    ...(f.timeout !== undefined ? { timeoutSecs: f.timeout as number } : {}),
    ...(f.encrypt ? { encrypt: true } : {}),
    ...(f.rerun ? { rerun: true } : {}),
  };
}

/** Task-spec field → the flag that sets it, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = { time_limit_secs: '--time-limit', max_files: '--max-files', max_tokens: '--max-tokens', paths: '--path', prompt: 'the prompt' };

function fail(msg: string): number {
  process.stderr.write(`error: ${msg}\n`);
  return EXIT.error;
}

// ---------------------------------------------------------------- commands

async function runJob(f: FlagValues, pos: string[], toTask: (f: FlagValues, p: string[]) => Record<string, unknown>, budgetRequired: boolean): Promise<number> {
  const read = readTask(toTask(f, pos));
  if ('problems' in read) throw new UsageError(read.problems.map((p) => p.replace(/^(\w+):/, (_, k: string) => `${FLAG_OF[k] ?? `--${k}`}:`)).join('; '));
  const task: TaskSpec = read.task;
  if (budgetRequired && f.budget === undefined) throw new UsageError('--budget SATS is required');
  const log = stderrLogger(f['log-level'] as string);
  let config: BuyerConfig;
  try {
    config = await effectiveConfig(f);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  const budgetSats = (f.budget as number | undefined) ?? config.defaultBudgetSats;
  const opts = runOptionsFrom(f, budgetSats, KIND_OF[task.type]);
  let b: RunningBuyer;
  try {
    b = await openFromFlags(f, log, config);
  } catch (err) {
    if (err instanceof KeystoreError || err instanceof ConfigError) return fail(err.message);
    return fail((err as Error).message);
  }
  const ac = new AbortController();
  const onSignal = () => {
    process.stderr.write('\ninterrupted: cancelling the job…\n');
    ac.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // A payment a crash left in flight is finished before anything new is bought.
    await b.client.resume({ signal: ac.signal });
    const printer = f.json ? undefined : new ProgressPrinter({ budgetMsats: opts.budgetMsats });
    const report = await b.client.run(task, { ...opts, signal: ac.signal, ...(printer ? { onProgress: printer.on } : {}) });
    if (f.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(`\n${summary(report)}\n`);
      const shown = resultText(task, report);
      if (shown) process.stdout.write(`\n${shown}${shown.endsWith('\n') ? '' : '\n'}`);
    }
    // Interrupted: the job was cancelled (kind 5) and nothing was paid for it.
    return ac.signal.aborted ? 130 : exitCodeFor(report.outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await b.close();
  }
}

/** The part of a result a person wants to see after the summary. */
function resultText(task: TaskSpec, r: RunReport): string | undefined {
  if (!r.result || (r.outcome !== 'paid' && r.outcome !== 'verified' && r.outcome !== 'disputed')) return undefined;
  const head = r.outcome === 'disputed' ? '--- the rejected result ---\n' : '--- result ---\n';
  if (task.type === 'sandbox') {
    try {
      const out = JSON.parse(r.result.content) as { commands: { cmd: string; exit_code: number; stdout: string; stderr: string }[] };
      return head + out.commands.map((c) => `$ ${c.cmd}\n${c.stdout}${c.stderr}${c.exit_code ? `(exit ${c.exit_code})\n` : ''}`).join('');
    } catch {
      return head + r.result.content;
    }
  }
  if (task.type === 'index') {
    try {
      const idx = JSON.parse(r.result.content) as { files: unknown[]; symbols: unknown[]; commit?: string };
      return `${head}${idx.files.length} files, ${idx.symbols.length} symbols${idx.commit ? ` at ${idx.commit}` : ''} (the index: --json, result.content)\n`;
    } catch {
      return head + r.result.content;
    }
  }
  return head + r.result.content;
}

async function runInit(f: FlagValues): Promise<number> {
  const paths = buyerPaths(f.data as string, f.config as string | undefined);
  if (existsSync(paths.keys)) return fail(`an identity already exists at ${paths.keys}; refusing to overwrite it`);
  let nwcUri: string | undefined;
  if (f['nwc-uri-file']) {
    try {
      nwcUri = readFileSync(f['nwc-uri-file'] as string, 'utf8').trim();
    } catch (err) {
      return fail(`cannot read --nwc-uri-file: ${(err as Error).message}`);
    }
  }
  const arbiters = list(f.arbiter).map((a) => hexKey(a, '--arbiter'));
  try {
    const passphrase = await readPassphrase({ confirm: true, prompt: 'New passphrase for the buyer keys: ' });
    const made = await createKeystoreFile(paths.keys, passphrase, { logN: f['kdf-log-n'] as number });
    if (!existsSync(paths.config)) {
      await writeFile(paths.config, configTemplate({ relays: list(f.relay), ...(nwcUri ? { nwcUri } : {}), ...(f.mint ? { mint: f.mint as string } : {}), arbiters }), { mode: 0o600, flag: 'wx' });
      await chmod(paths.config, 0o600);
    }
    if (f['show-mnemonic']) process.stderr.write(`\nBackup mnemonic (write it down; it restores both keys):\n  ${made.mnemonic}\n\n`);
    process.stdout.write(`identity   ${made.identity.npub}\npubkey     ${made.identity.pubkey}\npayment    ${made.identity.paymentPubkey}  (P2PK key for escrow, separate from the identity)\nkeys       ${paths.keys}  (sealed: scrypt + XChaCha20-Poly1305)\nconfig     ${paths.config}\n\nNext: bazaar buyer providers --kind sandbox, then bazaar buyer sandbox --cmd 'echo hi'\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof KeystoreError) return fail(err.message);
    throw err;
  }
}

async function runJobs(f: FlagValues): Promise<number> {
  const paths = buyerPaths(f.data as string, f.config as string | undefined);
  if (!existsSync(paths.keys)) return fail(`no buyer identity at ${paths.keys} (nothing bought yet)`);
  const log = stderrLogger(f['log-level'] as string);
  let b: RunningBuyer;
  try {
    b = await openFromFlags(f, log, await effectiveConfig(f));
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    const { resumed, refundedSats, arbitratedSats } = await b.client.resume({ waitForResults: f.wait as boolean });
    const runs = [...b.store.runs()].sort((x, y) => y.createdAt - x.createdAt).slice(0, f.limit as number);
    const reports = runs.map((r) => b.client.report(r.id, r.createdAt));
    if (f.json) {
      process.stdout.write(`${JSON.stringify({ resumed, refundedSats, arbitratedSats, runs: reports.map((r) => ({ ...r, elapsedMs: undefined })) }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (resumed) process.stderr.write(`resumed ${resumed} job${resumed === 1 ? '' : 's'} left unfinished by an earlier run\n`);
    if (arbitratedSats) process.stderr.write(`redeemed ${arbitratedSats} sats of escrow an arbiter's verdict released to us\n`);
    if (refundedSats > arbitratedSats) process.stderr.write(`refunded ${refundedSats - arbitratedSats} sats of escrow past its locktime\n`);
    if (!reports.length) process.stdout.write('no jobs yet\n');
    for (const r of reports) {
      const when = new Date(runs.find((x) => x.id === r.runId)!.createdAt).toISOString().replace('T', ' ').slice(0, 19);
      process.stdout.write(`${when}  ${r.outcome.padEnd(14)} ${`${formatSats(r.spentMsats)}/${formatSats(r.budgetMsats)} sats`.padEnd(16)} ${r.task}${r.provider ? `  → ${r.provider.slice(0, 12)}…` : ''}${r.arbitration ? `  · arbiter ruled for the ${r.arbitration.ruling}${r.arbitration.fee ? ` · its fee ${formatSats(r.arbitration.fee.msats)} sats ${r.arbitration.fee.state === 'paid' ? 'paid' : r.arbitration.fee.state === 'due' ? 'due (retried)' : `refused: ${r.arbitration.fee.reason ?? ''}`}` : ''}` : ''}\n`);
    }
    return EXIT.ok;
  } finally {
    await b.close();
  }
}

async function runReceipts(f: FlagValues): Promise<number> {
  const paths = buyerPaths(f.data as string);
  if (!existsSync(paths.db)) {
    if (f.json) process.stdout.write('[]\n');
    else process.stdout.write('no receipts yet\n');
    return EXIT.ok;
  }
  // Read-only: no passphrase needed to list what was paid.
  const { BuyerStore } = await import('./job-store.ts');
  const store = BuyerStore.open(paths.db);
  try {
    const rows = [...store.jobs()]
      .filter((j) => j.receipt)
      .sort((x, y) => (y.paid?.paidAt ?? 0) - (x.paid?.paidAt ?? 0))
      .slice(0, f.limit as number)
      .map((j) => ({ receiptId: j.receipt!.id, jobId: j.id, kind: j.kind, provider: j.provider, amountMsats: j.payment!.amountMsats, method: j.payment!.method, when: j.payment!.when, paidAt: j.paid?.paidAt, published: j.receiptPublished === true, proof: j.payment!.method === 'escrow' ? 'escrow release' : j.paid?.preimage }));
    if (f.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (!rows.length) process.stdout.write('no receipts yet\n');
    else for (const r of rows) process.stdout.write(`${new Date(r.paidAt ?? 0).toISOString().replace('T', ' ').slice(0, 19)}  ${formatSats(r.amountMsats).padStart(9)} sats  ${r.method.padEnd(9)} ${JOB_KINDS.get(r.kind)?.name ?? r.kind}  provider ${r.provider.slice(0, 12)}…  receipt ${r.receiptId.slice(0, 12)}…${r.published ? '' : ' (not published yet)'}\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

const KIND_NAMES: Readonly<Record<string, number>> = { sandbox: 5930, index: 5931, patch: 5932, review: 5933, text: 5050 };

async function runProviders(f: FlagValues): Promise<number> {
  let kind: number | undefined;
  if (f.kind !== undefined) {
    kind = KIND_NAMES[f.kind as string] ?? Number(f.kind);
    if (!JOB_KINDS.has(kind)) throw new UsageError(`--kind must be one of ${Object.entries(KIND_NAMES).map(([n, k]) => `${k} (${n})`).join(', ')}`);
  }
  const log = stderrLogger(f['log-level'] as string);
  const config = await effectiveConfig(f);
  const b = await openFromFlags(f, log, config);
  try {
    const budget = ((f.budget as number | undefined) ?? config.defaultBudgetSats) * 1000;
    const type = kind !== undefined ? (Object.entries(KIND_NAMES).find(([, k]) => k === kind)![0] as TaskSpec['type']) : undefined;
    const units = type === 'sandbox' ? 60 : type ? maxUnits({ type } as TaskSpec) : 1;
    const { views, ranking } = await b.client.providers({ ...(kind !== undefined ? { kind, units } : {}), budgetMsats: budget, ...(f['max-price'] !== undefined ? { maxPriceMsats: (f['max-price'] as number) * 1000 } : {}), ...(f.prefer ? { preference: f.prefer as Preference } : {}) });
    const rows = views.map((v) => {
      const c = ranking?.ranked.find((x) => x.pubkey === v.pubkey);
      const x = ranking?.excluded.find((e) => e.pubkey === v.pubkey);
      return {
        pubkey: v.pubkey,
        name: v.announcement?.name,
        kinds: v.announcement?.kinds ?? [],
        liveness: v.liveness,
        load: v.heartbeat ? `${v.heartbeat.active}/${v.heartbeat.capacity}` : undefined,
        isolation: v.announcement?.isolation,
        terms: v.announcement?.terms,
        prices: v.announcement?.prices,
        reputation: v.reputation ? { rank: v.reputation.rank, tier: v.reputation.tier, successRate: v.reputation.successRate, jobs: v.reputation.jobsSeen, paid: v.reputation.paidJobs, signedBy: v.reputation.pubkey } : undefined,
        ...(c ? { score: c.score, parts: c.parts, quoteMsats: c.quoteMsats, pay: c.pay } : {}),
        ...(x ? { excluded: x.reason } : {}),
      };
    });
    rows.sort((p, q) => (q.score ?? -1) - (p.score ?? -1));
    if (f.json) {
      process.stdout.write(`${JSON.stringify({ kind: kind ?? null, providers: rows }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (!rows.length) process.stdout.write(`no providers announce ${kind !== undefined ? `kind ${kind}` : 'any job kind'} on ${config.relays.join(', ')}\n`);
    else process.stdout.write(`${'PROVIDER'.padEnd(17)}  ${'NAME'.padEnd(24)} ${'LIVENESS'.padEnd(8)} ${'LOAD'.padEnd(6)} ${'KINDS'.padEnd(30)} REPUTATION${kind !== undefined ? '  SCORE / QUOTE' : ''}\n`);
    for (const r of rows) {
      const rep = r.reputation ? `rank ${r.reputation.rank} tier ${r.reputation.tier} (${Math.round(r.reputation.successRate * 100)}% of ${r.reputation.jobs})` : 'no reputation';
      const score = r.score !== undefined ? `score ${r.score.toFixed(3)}` : r.excluded ? `excluded: ${r.excluded}` : '';
      const quote = r.quoteMsats !== undefined ? `  up to ${Math.ceil(r.quoteMsats / 1000)} sats` : '';
      process.stdout.write(`${r.pubkey.slice(0, 16)}…  ${(r.name ?? '').slice(0, 24).padEnd(24)} ${r.liveness.padEnd(8)} ${(r.load ?? '-').padEnd(6)} kinds ${r.kinds.join(',').padEnd(24)} ${rep}  ${score}${quote}\n`);
    }
    return EXIT.ok;
  } finally {
    await b.close();
  }
}

async function runWallet(f: FlagValues): Promise<number> {
  const log = stderrLogger(f['log-level'] as string);
  let b: RunningBuyer;
  try {
    b = await openFromFlags(f, log, await effectiveConfig(f));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return fail((err as Error).message);
  }
  try {
    const w = b.wallet;
    let minted: number | undefined;
    if (f.topup !== undefined) {
      const sats = f.topup as number;
      if (!w.hasCashu) return fail('no mint configured: give one with --mint URL or "mint" in the config');
      if (!w.hasLightning) return fail('no Lightning wallet to pay the mint with: give an NWC URI (--nwc-uri-file, or "nwc_uri" in the config)');
      const { quote, bolt11 } = await w.cashu.requestMint(sats);
      try {
        await w.lightning.pay(bolt11, { maxAmountMsat: sats * 1000, timeoutMs: 30_000 });
      } catch (err) {
        return fail(`the Lightning wallet did not pay the mint's invoice: ${(err as Error).message}`);
      }
      minted = await w.cashu.completeMint(quote, { timeoutMs: 30_000 });
    }
    const lightningMsats = w.hasLightning ? await w.lightning.balanceMsat().catch((err: Error) => err) : undefined;
    const ecash = w.hasCashu ? w.cashu.balance() : undefined;
    const mint = w.hasCashu ? w.cashu.mintUrl : undefined;
    const spending = w.spending();
    if (f.json) {
      process.stdout.write(`${JSON.stringify({ lightningMsats: typeof lightningMsats === 'number' ? lightningMsats : null, ...(lightningMsats instanceof Error ? { lightningError: lightningMsats.message } : {}), ecashSats: ecash ?? null, mint: mint ?? null, ...(minted !== undefined ? { mintedSats: minted } : {}), spending }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (minted !== undefined) process.stdout.write(`minted ${minted} sats of ecash at ${mint}, paid from the Lightning wallet\n`);
    const ln = lightningMsats === undefined ? 'not configured (nwc_uri)' : lightningMsats instanceof Error ? `unknown: ${lightningMsats.message}` : `${formatSats(lightningMsats)} sats`;
    process.stdout.write(`lightning  ${ln}\necash      ${ecash === undefined ? 'not configured (mint)' : `${ecash} sats at ${mint}`}\n`);
    return EXIT.ok;
  } finally {
    await b.close();
  }
}

