// Test helper: our relay on an ephemeral port, a dev Lightning network, an NWC connection
// store and the wallet service — all real, all in temp dirs, all torn down.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { ConnectionStore, type CreateConnectionOptions } from '../../src/nwc/connections.ts';
import { startNwcService, type NwcService, type NwcServiceOptions } from '../../src/nwc/service.ts';
import type { LightningNetwork } from '../../src/lightning/network.ts';
import { openTestNetwork, silentLogger, tempDir } from './network.ts';

export type NWCClientT = InstanceType<Awaited<ReturnType<typeof loadNwcSdk>>['NWCClient']>;

export interface NwcFixture {
  relay: RunningRelay;
  network: LightningNetwork;
  connections: ConnectionStore;
  service: NwcService;
  /** A new connection for `account` and an NWCClient on it (closed on teardown). */
  connect(account: string, opts?: Partial<CreateConnectionOptions>): Promise<{ client: NWCClientT; uri: string; walletPubkey: string }>;
  clientFor(uri: string): Promise<NWCClientT>;
}

export async function startRelayForTest(t: Test): Promise<RunningRelay> {
  const dir = tempDir(t, 'bazaar-nwc-relay-');
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dir, transport: 'ws', verifyWorkers: 0, logger: silentLogger });
  t.teardown(async () => {
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return relay;
}

export async function startNwcFixture(t: Test, opts: { service?: Partial<NwcServiceOptions>; now?: () => number } = {}): Promise<NwcFixture> {
  const relay = await startRelayForTest(t);
  const network = openTestNetwork(t, opts.now ? { now: opts.now } : {});
  const dir = tempDir(t, 'bazaar-nwc-');
  const connections = ConnectionStore.open({ path: join(dir, 'nwc') });
  const { NWCClient } = await loadNwcSdk();
  const clients: NWCClientT[] = [];
  const service = await startNwcService({ relayUrls: [relay.url], network, connections, logger: silentLogger, ...opts.service });
  // Closing clients and the service tolerates an already-closed relay, so teardown order does not matter.
  t.teardown(async () => {
    for (const c of clients) c.close();
    await service.close();
    await connections.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clientFor = async (uri: string) => {
    const c = new NWCClient({ nostrWalletConnectUrl: uri });
    clients.push(c);
    return c;
  };
  return {
    relay,
    network,
    connections,
    service,
    clientFor,
    async connect(account, copts = {}) {
      const { uri, connection } = connections.create({ account, relayUrls: [relay.url], ...copts });
      await service.refresh();
      return { client: await clientFor(uri), uri, walletPubkey: connection.walletPubkey };
    },
  };
}
