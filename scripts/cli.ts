// `bazaar` dispatcher: each subcommand lives in its own package and is loaded lazily,
// so `bazaar relay` never pays for the agents' imports.
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';

export const root: CommandSpec = {
  name: 'bazaar',
  summary: 'Bazaar: an open market for verifiable compute, spoken entirely in Nostr events.',
  subcommands: {
    relay: async () => (await import('../relay/src/cli.ts')).relayCommand,
    indexer: async () => (await import('../relay/src/cli.ts')).indexerCommand,
    devnet: async () => (await import('../agents/devnet/src/cli.ts')).devnetCommand,
    provider: async () => (await import('../agents/provider/src/cli.ts')).providerCommand,
    buyer: async () => (await import('../agents/buyer/src/cli.ts')).buyerCommand,
    arbiter: async () => (await import('../agents/arbiter/src/cli.ts')).arbiterCommand,
    policy: async () => (await import('../policies/src/cli.ts')).policyCommand,
    up: async () => (await import('./up.ts')).upCommand,
  },
};

export function main(argv: string[]): Promise<number> {
  return runCommand(root, argv);
}
