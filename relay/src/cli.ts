import type { CommandSpec } from '../../scripts/lib/command.ts';

export const relayCommand: CommandSpec = {
  name: 'relay',
  summary: 'Run the Bazaar Nostr relay.',
  envPrefix: 'BAZAAR_RELAY_',
  flags: {
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 4869, description: 'TCP port to listen on' },
    host: { type: 'string', default: '127.0.0.1', description: 'Address to bind' },
    data: { type: 'string', default: './data/relay', description: 'Data directory (LMDB files)' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'WebSocket transport' },
  },
  run: () => {
    throw new Error('relay: not implemented yet');
  },
};
