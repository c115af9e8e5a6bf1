// `bazaar devnet`: run the dev payment network (NWC wallet service over the relay + Cashu
// mint on the dev Lightning network), and manage its accounts from another terminal.
import type { CommandSpec, FlagSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { createLogger, type Logger } from '@bazaar/cli-kit/log';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connectionFile, DEFAULT_MINT_PORT, DEFAULT_RELAY_URL, ensureAccountConnection, openDevnetStores, startDevnet, type DevnetStores } from './devnet.ts';
import { BUDGET_RENEWALS, type BudgetRenewal } from './nwc/connections.ts';
import { LightningError } from './lightning/errors.ts';
import { untilSignal } from '@bazaar/cli-kit/signals';

const ENV = 'BAZAAR_DEVNET_';

const dataFlag: FlagSpec = { type: 'string', default: './data/devnet', description: 'Devnet data directory', env: `${ENV}DATA` };
const relayFlag: FlagSpec = { type: 'string', default: DEFAULT_RELAY_URL, description: 'Relay the NWC wallet service listens on (written into connection URIs)', env: `${ENV}RELAY` };
const logLevelFlag: FlagSpec = { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'warn', description: 'Log level', env: `${ENV}LOG_LEVEL` };

function sats(raw: string | undefined, what: string): number {
  if (raw === undefined) throw new UsageError(`${what} is required`);
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw) * 1000)) throw new UsageError(`${what} must be a positive whole number of sats, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function oneName(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected ${usage}`);
  return positionals[0];
}

/** Runs `fn` with the devnet stores open; LightningErrors become one clear line and exit 1. */
async function withStores(f: FlagValues, fn: (s: DevnetStores, log: Logger) => number | void): Promise<number> {
  const log = createLogger({ name: 'devnet', level: f['log-level'] as string });
  const stores = openDevnetStores(f.data as string, log);
  try {
    return fn(stores, log) ?? 0;
  } catch (err) {
    if (err instanceof LightningError) {
      process.stderr.write(`devnet: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await stores.close();
  }
}

const fmtSats = (msat: number) => (msat % 1000 === 0 ? `${msat / 1000} sat` : `${(msat / 1000).toFixed(3)} sat`);

const accountAdd: CommandSpec = {
  name: 'add',
  summary: 'Create an account and print its NWC connection URI (also written to DATA/connections/NAME.nwc, mode 0600).',
  positionals: 'NAME',
  flags: {
    data: dataFlag,
    relay: relayFlag,
    fund: { type: 'number', integer: true, min: 0, default: 0, description: 'Sats to fund the new account with', env: false },
    'max-amount': { type: 'number', integer: true, min: 1, description: 'Spending budget of the connection, in sats (default: unlimited)', env: false },
    'budget-renewal': { type: 'string', choices: BUDGET_RENEWALS, default: 'never', description: 'When the budget renews', env: false },
    'log-level': logLevelFlag,
  },
  details: `The URI holds the connection's client secret: treat it like a password.
A running 'bazaar devnet' picks the new connection up within a few seconds.`,
  run: (f, pos) =>
    withStores(f, (s) => {
      const name = oneName(pos, 'NAME');
      if (s.network.getAccount(name)) throw new UsageError(`account ${JSON.stringify(name)} already exists (use 'bazaar devnet account connect ${name}' for another URI)`);
      s.network.createAccount(name);
      const conn = ensureAccountConnection(s, name, {
        relayUrls: [f.relay as string],
        fresh: true,
        ...(f['max-amount'] !== undefined ? { maxAmountMsat: (f['max-amount'] as number) * 1000 } : {}),
        budgetRenewal: f['budget-renewal'] as BudgetRenewal,
      });
      if ((f.fund as number) > 0) s.network.fund(name, (f.fund as number) * 1000);
      process.stderr.write(`account ${name} created; connection URI written to ${conn.uriFile}\n`);
      process.stdout.write(conn.uri + '\n');
    }),
};

const accountConnect: CommandSpec = {
  name: 'connect',
  summary: 'Create another NWC connection for an existing account and print its URI (written to DATA/connections/NAME.LABEL.nwc).',
  positionals: 'NAME',
  flags: {
    data: dataFlag,
    relay: relayFlag,
    label: { type: 'string', default: 'extra', description: 'Connection label (file name suffix)', env: false },
    'max-amount': { type: 'number', integer: true, min: 1, description: 'Spending budget of the connection, in sats (default: unlimited)', env: false },
    'budget-renewal': { type: 'string', choices: BUDGET_RENEWALS, default: 'never', description: 'When the budget renews', env: false },
    'log-level': logLevelFlag,
  },
  run: (f, pos) =>
    withStores(f, (s) => {
      const name = oneName(pos, 'NAME');
      s.network.requireAccount(name);
      const label = f.label as string;
      if (!/^[a-z0-9_-]{1,32}$/.test(label)) throw new UsageError('--label must be 1-32 of [a-z0-9_-]');
      const conn = ensureAccountConnection(s, name, {
        relayUrls: [f.relay as string],
        name: label,
        fresh: true,
        ...(f['max-amount'] !== undefined ? { maxAmountMsat: (f['max-amount'] as number) * 1000 } : {}),
        budgetRenewal: f['budget-renewal'] as BudgetRenewal,
      });
      process.stderr.write(`connection ${label} for ${name} written to ${conn.uriFile}\n`);
      process.stdout.write(conn.uri + '\n');
    }),
};

const accountList: CommandSpec = {
  name: 'list',
  summary: 'List accounts with balances, node keys and NWC connections.',
  flags: { data: dataFlag, json: { type: 'boolean', default: false, description: 'Print JSON', env: false }, 'log-level': logLevelFlag },
  run: (f) =>
    withStores(f, (s) => {
      const rows = s.network.listAccounts().map((a) => ({
        name: a.name,
        balanceMsat: a.balanceMsat,
        nodePubkey: a.nodePubkey,
        connections: s.connections.list({ account: a.name }).map((c) => ({ name: c.name, walletPubkey: c.walletPubkey, ...(c.maxAmountMsat !== undefined ? { maxAmountMsat: c.maxAmountMsat, budgetRenewal: c.budgetRenewal } : {}) })),
      }));
      if (f.json) {
        process.stdout.write(JSON.stringify({ accounts: rows, invariant: s.network.checkInvariant() }, null, 2) + '\n');
        return;
      }
      if (!rows.length) process.stdout.write("no accounts yet: 'bazaar devnet account add NAME'\n");
      for (const r of rows) process.stdout.write(`${r.name.padEnd(20)} ${fmtSats(r.balanceMsat).padStart(16)}  node ${r.nodePubkey}  ${r.connections.length} connection(s)\n`);
    }),
};

const accountRevoke: CommandSpec = {
  name: 'revoke',
  summary: "Revoke an account's NWC connection (its URI stops working at once) and delete its URI file.",
  positionals: 'NAME',
  flags: {
    data: dataFlag,
    label: { type: 'string', default: 'default', description: "Connection label ('default' for the one made by 'account add')", env: false },
    'log-level': logLevelFlag,
  },
  run: (f, pos) =>
    withStores(f, (s) => {
      const name = oneName(pos, 'NAME');
      s.network.requireAccount(name);
      const file = connectionFile(s.paths, name, f.label as string);
      if (!existsSync(file)) throw new UsageError(`no connection file ${file}`);
      const walletPubkey = /^nostr\+walletconnect:\/\/([0-9a-f]{64})\?/.exec(readFileSync(file, 'utf8').trim())?.[1];
      const revoked = walletPubkey ? s.connections.revoke(walletPubkey) : false;
      rmSync(file, { force: true });
      process.stdout.write(revoked ? `revoked connection ${walletPubkey} of ${name}\n` : `connection of ${name} was already revoked or unknown; file removed\n`);
    }),
};

const accountCommand: CommandSpec = {
  name: 'account',
  summary: 'Manage dev-network accounts and their NWC connections.',
  subcommands: {
    add: async () => accountAdd,
    connect: async () => accountConnect,
    list: async () => accountList,
    revoke: async () => accountRevoke,
  },
};

const fundCommand: CommandSpec = {
  name: 'fund',
  summary: 'Credit an account with new sats (the only way money enters the dev network).',
  positionals: 'NAME SATS',
  flags: { data: dataFlag, 'log-level': logLevelFlag },
  run: (f, pos) =>
    withStores(f, (s) => {
      if (pos.length !== 2) throw new UsageError('expected NAME SATS');
      const balance = s.network.fund(pos[0], sats(pos[1], 'SATS') * 1000);
      process.stdout.write(`${pos[0]}: ${fmtSats(balance)}\n`);
    }),
};

const balanceCommand: CommandSpec = {
  name: 'balance',
  summary: 'Print the balance of an account.',
  positionals: 'NAME',
  flags: { data: dataFlag, msat: { type: 'boolean', default: false, description: 'Print millisats as a bare number', env: false }, 'log-level': logLevelFlag },
  run: (f, pos) =>
    withStores(f, (s) => {
      const msat = s.network.balance(oneName(pos, 'NAME'));
      process.stdout.write(f.msat ? `${msat}\n` : `${fmtSats(msat)}\n`);
    }),
};

const invoiceCommand: CommandSpec = {
  name: 'invoice',
  summary: 'Create a BOLT11 invoice payable to an account and print it.',
  positionals: 'NAME SATS',
  flags: {
    data: dataFlag,
    description: { type: 'string', default: '', description: 'Invoice description', env: false },
    expiry: { type: 'number', integer: true, min: 1, default: 3600, description: 'Seconds until the invoice expires', env: false },
    'log-level': logLevelFlag,
  },
  run: (f, pos) =>
    withStores(f, (s) => {
      if (pos.length !== 2) throw new UsageError('expected NAME SATS');
      const inv = s.network.createInvoice(pos[0], sats(pos[1], 'SATS') * 1000, f.description as string, f.expiry as number);
      process.stdout.write(inv.bolt11 + '\n');
    }),
};

const payCommand: CommandSpec = {
  name: 'pay',
  summary: 'Pay a dev-network BOLT11 invoice from an account.',
  positionals: 'NAME BOLT11',
  flags: { data: dataFlag, 'log-level': logLevelFlag },
  run: (f, pos) =>
    withStores(f, (s) => {
      if (pos.length !== 2) throw new UsageError('expected NAME BOLT11');
      const p = s.network.pay(pos[0], pos[1]);
      process.stdout.write(`paid ${fmtSats(p.amountMsat)} to ${p.payeeAccount}, payment hash ${p.paymentHash}\n`);
    }),
};

async function runDevnet(f: FlagValues): Promise<number> {
  const log = createLogger({ name: 'devnet', level: f['log-level'] as string });
  const devnet = await startDevnet({
    dataDir: f.data as string,
    relayUrl: f.relay as string,
    logger: log,
    mint: f.mint ? { port: f['mint-port'] as number, host: f['mint-host'] as string, inputFeePpk: f['input-fee-ppk'] as number } : false,
  });
  const accounts = devnet.network.listAccounts();
  process.stdout.write(
    [
      `devnet running (data ${devnet.paths.root})`,
      `  NWC wallet service on ${devnet.relayUrl}: ${devnet.connections.list().length} connection(s), ${accounts.length} account(s)`,
      ...(devnet.mintUrl ? [`  Cashu mint (unit sat) on ${devnet.mintUrl}`] : []),
      `  add an account:  bazaar devnet account add NAME --fund 10000   (prints its nostr+walletconnect:// URI)`,
      '',
    ].join('\n'),
  );
  await untilSignal(() => devnet.close(), log);
  return 0;
}

export const devnetCommand: CommandSpec = {
  name: 'devnet',
  summary: 'Run the dev payment network: dev Lightning network, NIP-47 wallet service over the relay, Cashu mint.',
  envPrefix: ENV,
  flags: {
    data: dataFlag,
    relay: relayFlag,
    mint: { type: 'boolean', default: true, description: 'Also run the Cashu mint (--no-mint to skip)' },
    'mint-port': { type: 'number', integer: true, min: 0, max: 65535, default: DEFAULT_MINT_PORT, description: 'Cashu mint port' },
    'mint-host': { type: 'string', default: '127.0.0.1', description: 'Cashu mint bind address' },
    'input-fee-ppk': { type: 'number', integer: true, min: 0, max: 100_000, default: 100, description: 'Mint input fee per proof, ppk (NUT-02)' },
    'log-level': { ...logLevelFlag, default: 'info' },
  },
  details: `The relay must be running ('bazaar relay'). Examples:
  bazaar devnet --data ./data/devnet --relay ws://127.0.0.1:4869
  bazaar devnet account add alice --fund 100000
  bazaar devnet fund alice 5000
  bazaar devnet balance alice`,
  subcommands: {
    account: async () => accountCommand,
    fund: async () => fundCommand,
    balance: async () => balanceCommand,
    invoice: async () => invoiceCommand,
    pay: async () => payCommand,
    mint: async () => (await import('./mint/cli.ts')).mintCommand,
  },
  run: runDevnet,
};
