// The pipeline's own promises, seen from outside: the provider asks its relay only for
// deletions that reference its cancellable jobs (a recording proxy between it and the real
// relay shows every REQ it sends and every event it is sent), and a request is opened
// (NIP-44) and parsed once on its way from decide to execute.
import { WebSocketServer, WebSocket } from 'ws';
import t, { type Test } from 'tap';
import { sealJobRequest } from '@bazaar/dvm-kinds/private';
import * as privateJobs from '@bazaar/dvm-kinds/private';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { Customer, PASSPHRASE, isFeedback, isResult, logger, makeProviderDir, sandboxJob, startMarket, waitFor, type Market } from './helpers.ts';
import { startProvider } from '../src/runtime.ts';

interface Recording {
  url: string;
  /** Filters of every REQ the provider sent, in order. */
  reqs: Filter[][];
  /** Events the relay sent to the provider. */
  delivered: NostrEvent[];
}

/** A WebSocket proxy in front of the relay that records the provider's REQs and what it receives. */
async function recordingProxy(t: Test, relayUrl: string): Promise<Recording> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const rec: Recording = { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, reqs: [], delivered: [] };
  wss.on('connection', (client) => {
    const upstream = new WebSocket(relayUrl);
    const queued: string[] = [];
    upstream.on('open', () => {
      for (const f of queued.splice(0)) upstream.send(f);
    });
    client.on('message', (d) => {
      const text = d.toString();
      const m = JSON.parse(text) as unknown[];
      if (m[0] === 'REQ') rec.reqs.push(m.slice(2) as Filter[]);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else queued.push(text);
    });
    upstream.on('message', (d) => {
      const text = d.toString();
      const m = JSON.parse(text) as unknown[];
      if (m[0] === 'EVENT') rec.delivered.push(m[2] as NostrEvent);
      if (client.readyState === WebSocket.OPEN) client.send(text);
    });
    client.on('close', () => upstream.close());
    upstream.on('close', () => client.close());
  });
  t.teardown(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
  return rec;
}

async function provider(t: Test, m: Market, relayUrl: string, overrides: Record<string, unknown> = {}, start = startProvider) {
  const dir = await makeProviderDir(t, [relayUrl], m.providerUri);
  const p = await start({ dataDir: dir, passphrase: PASSPHRASE, logger, overrides: { heartbeatSecs: 3600, ...overrides }, invoicePollMs: 300, minBackoffMs: 100 });
  t.teardown(() => p.close());
  return p;
}

const deletionFilters = (r: Recording) => r.reqs.flat().filter((f) => f.kinds?.includes(5));

t.test('deletions: the provider asks only for those referencing its cancellable jobs', async (t) => {
  const m = await startMarket(t);
  const proxy = await recordingProxy(t, m.relay.url);
  const running = await provider(t, m, proxy.url, { capacity: 1, queue: 5 });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());

  const long = sandboxJob(c, ['sleep 3; echo long']);
  await c.publish(long);
  await c.waitEvent(isFeedback(long.id, 'processing'), 10_000, 'the long job started');
  const waiting = sandboxJob(c, ['echo waiting']);
  await c.publish(waiting);
  await waitFor(() => deletionFilters(proxy).some((f) => f['#e']?.includes(waiting.id)), 10_000, 'a deletion filter naming the queued job');
  // Someone deletes an unrelated event: the relay never sends it to the provider.
  const unrelated = c.sign({ kind: 5, tags: [['e', 'ab'.repeat(32)]] });
  await c.publish(unrelated);
  await c.publish(c.sign({ kind: 5, tags: [['e', waiting.id], ['k', '5930']] }));
  await waitFor(() => running.provider.store.get(waiting.id)?.state === 'cancelled', 10_000, 'the queued job cancelled');
  await c.waitEvent(isResult(long.id), 20_000, 'the long job finished');

  const filters = deletionFilters(proxy);
  t.ok(filters.length > 0, 'deletions are subscribed to');
  t.ok(filters.every((f) => Array.isArray(f['#e']) && f['#e'].length > 0), 'every deletion filter lists job ids');
  const ours = new Set([long.id, waiting.id]);
  t.ok(filters.every((f) => f['#e']!.every((id) => ours.has(id))), 'and only ids of our jobs');
  t.ok(filters.filter((f) => f['#e']!.includes(waiting.id)).every((f) => !f['#e']!.includes(long.id)), 'a started job is no longer watched');
  t.notOk(proxy.delivered.some((e) => e.id === unrelated.id), 'the unrelated deletion never reached the provider');
});

t.test('a private request is opened and parsed once between decide and execute', async (t) => {
  const m = await startMarket(t);
  let opened = 0;
  const { startProvider: counted } = await t.mockImport<typeof import('../src/runtime.ts')>('../src/runtime.ts', {
    '@bazaar/dvm-kinds/private': {
      ...privateJobs,
      openJobRequest: (...args: Parameters<typeof privateJobs.openJobRequest>) => {
        opened++;
        return privateJobs.openJobRequest(...args);
      },
    },
  });
  const running = await provider(t, m, m.relay.url, {}, counted);
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const sealed = sealJobRequest({ kind: 5930, created_at: Math.floor(Date.now() / 1000), content: '', tags: [['param', 'cmd', 'echo sealed'], ['param', 'time_limit_secs', '20']] }, c.sk, running.identity.pubkey);
  if (!sealed.ok) return t.fail('sealing failed');
  const job = c.sign(sealed.value);
  await c.publish(job);
  await c.waitEvent(isResult(job.id), 20_000, 'the private result');
  t.equal(opened, 1, 'decrypted once');
});
