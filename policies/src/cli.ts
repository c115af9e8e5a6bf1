// `bazaar policy`: check a policy file, or run it as a strfry write-policy plugin.
import { resolve } from 'node:path';
import type { CommandSpec } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { defaultPolicy } from './default-policy.ts';
import { loadPolicyFile, RULE_NAMES, type PolicyDeps } from './load.ts';
import type { Policy } from './policy.ts';

const policiesFlag = { type: 'string', description: 'Policy file (JSON with comments; see policies/README.md). Without it: the defaults' } as const;
const hex64 = (v: unknown, flag: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw new UsageError(`${flag} must be 64 lowercase hex characters`);
  return v;
};

async function load(file: unknown, reputationPubkey: string | undefined, logger: PolicyDeps['logger']): Promise<Policy> {
  if (typeof file !== 'string') return defaultPolicy();
  return loadPolicyFile(resolve(file), { ...(reputationPubkey ? { reputationPubkey } : {}), ...(logger ? { logger } : {}), signal: AbortSignal.timeout(10_000) });
}

const strfryCommand: CommandSpec = {
  name: 'strfry',
  summary: "Run policies as a strfry write-policy plugin: JSON requests on stdin, one decision per line on stdout (strfry's docs/plugins.md).",
  envPrefix: 'BAZAAR_POLICY_',
  flags: {
    policies: policiesFlag,
    relay: { type: 'string', description: "strfry's own WebSocket URL, so market rules can read history (e.g. ws://127.0.0.1:7777)" },
    'reputation-pubkey': { type: 'string', description: 'Default reputation key for reputationFloor' },
    'timeout-ms': { type: 'number', integer: true, min: 1, max: 60_000, default: 2000, description: 'Longest one decision may take before it is rejected with error:' },
    'log-level': { type: 'string', default: 'warn', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], description: 'stderr log level' },
  },
  details: `In strfry.conf:
  relay { writePolicy { plugin = "bazaar policy strfry --policies /etc/bazaar/policies.jsonc --relay ws://127.0.0.1:7777" } }
Logs go to stderr (strfry shows them in its log); stdout carries only decisions.`,
  run: async (f) => {
    // Not createLogger(): stdout belongs to strfry's protocol, so logs go to stderr (fd 2), still redacted.
    const { pino } = await import('pino');
    const { REDACT_PATHS } = await import('@bazaar/cli-kit/log');
    const log = pino({ name: 'policy-strfry', level: f['log-level'] as string, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
    const relay = f.relay as string | undefined;
    if (relay !== undefined && !/^wss?:\/\/./.test(relay)) throw new UsageError('--relay must start with ws:// or wss://');
    const policy = await load(f.policies, hex64(f['reputation-pubkey'], '--reputation-pubkey'), log);
    const { RelayReadStore, emptyStore } = await import('./relay-store.ts');
    const store = relay ? new RelayReadStore({ url: relay, timeoutMs: Math.max(100, (f['timeout-ms'] as number) - 100) }) : emptyStore;
    const { runStrfryPlugin } = await import('./strfry.ts');
    log.info({ policies: f.policies ?? 'defaults', relay }, 'strfry plugin ready');
    await runStrfryPlugin({ input: process.stdin, output: process.stdout, policy, store, timeoutMs: f['timeout-ms'] as number, log });
    return 0;
  },
};

const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'Load a policy file and report every problem in it (exit 1 when invalid).',
  envPrefix: 'BAZAAR_POLICY_',
  flags: { policies: { ...policiesFlag, description: 'Policy file to check' }, 'reputation-pubkey': { type: 'string', description: 'Reputation key reputationFloor may default to' } },
  run: async (f) => {
    if (typeof f.policies !== 'string') throw new UsageError('--policies FILE is required');
    try {
      await load(f.policies, hex64(f['reputation-pubkey'], '--reputation-pubkey'), undefined);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`${f.policies}: ok\n`);
    return 0;
  },
};

export const policyCommand: CommandSpec = {
  name: 'policy',
  summary: 'Relay write policies: check a policy file, or run it inside strfry.',
  details: `Rules: ${RULE_NAMES.join(', ')}.\nFile format: policies/README.md; example: policies/examples/policies.jsonc.`,
  subcommands: {
    strfry: async () => strfryCommand,
    check: async () => checkCommand,
  },
};

