// NIP-42: an AUTH event's `relay` tag must name this relay — the --public-url when set,
// otherwise the address the client connected to (Host header and path; behind a trusted
// proxy X-Forwarded-Host / X-Forwarded-Proto).
import t from 'tap';
import { addressOfRequest, addressOfUrl, namesRelay } from '../src/relay-address.ts';
import { TRANSPORTS, TestClient, signer, startTestRelay, type TestRelay } from './helpers.ts';

t.test('namesRelay', async (t) => {
  const direct = addressOfRequest({ method: 'GET', path: '/', headers: { host: '127.0.0.1:4869' } }, false)!;
  t.same(direct, { hostname: '127.0.0.1', port: 4869, path: '' });
  for (const tag of ['ws://127.0.0.1:4869', 'ws://127.0.0.1:4869/', 'wss://127.0.0.1:4869', ' ws://127.0.0.1:4869// ']) t.ok(namesRelay(tag, direct), tag);
  for (const tag of ['ws://127.0.0.1:4870', 'ws://localhost:4869', 'ws://127.0.0.1', 'wss://relay.example.com', 'ws://127.0.0.1:4869/other', 'http://127.0.0.1:4869', 'not a url', ''])
    t.notOk(namesRelay(tag, direct), tag);

  const named = addressOfRequest({ method: 'GET', path: '/nostr?x=1', headers: { host: 'Relay.Example.com' } }, false)!;
  t.same(named, { hostname: 'relay.example.com', path: '/nostr' });
  for (const tag of ['wss://relay.example.com/nostr', 'ws://RELAY.example.com/nostr/', 'wss://relay.example.com:443/nostr']) t.ok(namesRelay(tag, named), tag);
  for (const tag of ['wss://relay.example.com', 'wss://relay.example.com:8443/nostr', 'wss://evil.example.com/nostr']) t.notOk(namesRelay(tag, named), tag);

  const proxied = addressOfRequest({ method: 'GET', path: '/', headers: { host: '127.0.0.1:4869', 'x-forwarded-host': 'relay.example.com', 'x-forwarded-proto': 'https' } }, true)!;
  t.same(proxied, { hostname: 'relay.example.com', scheme: 'wss' });
  t.ok(namesRelay('wss://relay.example.com', proxied));
  t.ok(namesRelay('wss://relay.example.com/any/path', proxied), 'proxies rewrite paths: not compared');
  t.notOk(namesRelay('ws://relay.example.com', proxied), 'port 80 is not where the client connected');
  t.notOk(namesRelay('ws://127.0.0.1:4869', proxied));
  t.same(addressOfRequest({ method: 'GET', path: '/', headers: { host: '127.0.0.1:4869', 'x-forwarded-host': 'relay.example.com' } }, false), { hostname: '127.0.0.1', port: 4869, path: '' }, 'forwarded headers ignored without trustProxy');
  t.equal(addressOfRequest({ method: 'GET', path: '/', headers: {} }, false), undefined, 'no Host: unknown');

  const pub = addressOfUrl('wss://relay.example.com/')!;
  t.ok(namesRelay('wss://relay.example.com', pub));
  t.notOk(namesRelay('ws://relay.example.com', pub));
  t.equal(addressOfUrl('https://relay.example.com'), undefined);
});

async function auth(relay: TestRelay, tag: string, headers?: Record<string, string>): Promise<[boolean, string]> {
  const c = await TestClient.connect(relay.url, headers);
  const challenge = (await c.waitFor((f) => f[0] === 'AUTH'))[1] as string;
  const e = signer().sign({ kind: 22242, tags: [['relay', tag], ['challenge', challenge]] });
  c.send(['AUTH', e]);
  const ok = await c.waitFor((f) => f[0] === 'OK' && f[1] === e.id);
  await c.close();
  return [ok[2] as boolean, ok[3] as string];
}

for (const transport of TRANSPORTS) {
  t.test(`AUTH relay tag without --public-url (${transport})`, async (t) => {
    const relay = await startTestRelay(transport);
    t.teardown(() => relay.close());
    t.same(await auth(relay, relay.url), [true, '']);
    t.same(await auth(relay, `${relay.url}/`), [true, '']);
    t.match(await auth(relay, 'wss://some-other-relay.example.com'), [false, /^invalid: AUTH relay tag .* does not name this relay/], 'a foreign relay tag is refused');
    t.match(await auth(relay, `ws://127.0.0.1:${relay.port + 1}`), [false, /^invalid: /], 'another port is another relay');
    t.match(await auth(relay, `${relay.url}/elsewhere`), [false, /^invalid: /], 'another path');
    t.same(await auth(relay, 'wss://relay.example.com', { Host: 'relay.example.com' }), [true, ''], 'the Host header the client sent names the relay');
    t.match(await auth(relay, 'wss://relay.example.com', { 'X-Forwarded-Host': 'relay.example.com' }), [false, /^invalid: /], 'forwarded headers count only with --trust-proxy');
  });

  t.test(`AUTH relay tag behind a trusted proxy (${transport})`, async (t) => {
    const relay = await startTestRelay(transport, { trustProxy: true });
    t.teardown(() => relay.close());
    const proxy = { 'X-Forwarded-Host': 'relay.example.com', 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.5' };
    t.same(await auth(relay, 'wss://relay.example.com/', proxy), [true, '']);
    t.match(await auth(relay, 'wss://some-other-relay.example.com', proxy), [false, /^invalid: /]);
    t.match(await auth(relay, relay.url, proxy), [false, /^invalid: /], 'the backend address is not what the client reached');
  });

  t.test(`AUTH relay tag with --public-url (${transport})`, async (t) => {
    const relay = await startTestRelay(transport, { publicUrl: 'wss://relay.example.com' });
    t.teardown(() => relay.close());
    t.same(await auth(relay, 'wss://relay.example.com/'), [true, '']);
    t.match(await auth(relay, relay.url), [false, /^invalid: /], 'the configured URL wins over the connection');
    t.match(await auth(relay, 'wss://some-other-relay.example.com'), [false, /^invalid: /]);
  });
}
