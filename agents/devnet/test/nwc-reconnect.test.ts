// The wallet service survives a relay restart: it reconnects, re-announces its info event
// to the (here: empty) new relay and answers requests again.
import t from 'tap';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { startRelay } from '@bazaar/relay/server';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { ConnectionStore } from '../src/nwc/connections.ts';
import { startNwcService } from '../src/nwc/service.ts';
import { openTestNetwork, silentLogger, tempDir } from './helpers/network.ts';

useWebSocketImplementation(WebSocket);

t.test('relay restart: reconnect, re-announce, answer', async (t) => {
  const dir = tempDir(t, 'bazaar-nwc-reconnect-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const relayA = await startRelay({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'relay-a'), transport: 'ws', verifyWorkers: 0, logger: silentLogger });
  let relayB: Awaited<ReturnType<typeof startRelay>> | undefined;
  t.teardown(async () => {
    await relayA.close();
    await relayB?.close();
  });
  const network = openTestNetwork(t);
  network.createAccount('alice');
  network.fund('alice', 7_000);
  const connections = ConnectionStore.open({ path: join(dir, 'nwc') });
  const { uri, connection } = connections.create({ account: 'alice', relayUrls: [relayA.url] });
  const service = await startNwcService({ relayUrls: [relayA.url], network, connections, logger: silentLogger });
  const { NWCClient } = await loadNwcSdk();
  const client = new NWCClient({ nostrWalletConnectUrl: uri });
  t.teardown(async () => {
    client.close();
    await service.close();
    await connections.close();
  });
  t.same(await client.getBalance(), { balance: 7_000 });

  await relayA.close();
  relayB = await startRelay({ port: relayA.port, host: '127.0.0.1', dataDir: join(dir, 'relay-b'), transport: 'ws', verifyWorkers: 0, logger: silentLogger });
  t.equal(relayB.url, relayA.url);

  // The new relay starts empty; the info event shows up once the service has reconnected.
  const watcher = await Relay.connect(relayB.url);
  t.teardown(() => watcher.close());
  await new Promise<void>((resolve) => {
    const sub = watcher.subscribe([{ kinds: [13194], authors: [connection.walletPubkey] }], {
      onevent: () => resolve(),
      onclose: () => undefined,
    });
    t.teardown(() => sub.close());
  });
  t.same(await client.getBalance(), { balance: 7_000 }, 'answered after the restart');
});
