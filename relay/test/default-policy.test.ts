// The relay's built-in policy: malformed job requests refused with the problems
// listed; loopback clients are not throttled, other addresses are.
import t from 'tap';
import { TestClient, signer, startTestRelay } from './helpers.ts';
import { isLoopback, relayDefaultPolicy } from '../src/default-policy.ts';
import type { PolicyContext } from '@bazaar/policies/policy';

t.test('isLoopback', async (t) => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(ip), ip);
  for (const ip of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', '2001:db8::1', '']) t.notOk(isLoopback(ip), ip);
});

t.test('non-loopback clients are rate limited, loopback clients are not', async (t) => {
  const policy = relayDefaultPolicy();
  const alice = signer();
  const ctx = (ip: string): PolicyContext => ({ source: { type: 'ws', ip, connectionId: 'c1' }, receivedAt: 0, store: { query: async () => [] } });
  let remoteRejected = 0;
  let localRejected = 0;
  for (let i = 0; i < 400; i++) {
    const e = alice.sign({ kind: 1, content: String(i) });
    if ((await policy(e, ctx('203.0.113.7'))).action === 'reject') remoteRejected++;
    if ((await policy(e, ctx('127.0.0.1'))).action === 'reject') localRejected++;
  }
  t.ok(remoteRejected > 0, `remote flood throttled (${remoteRejected} of 400 rejected)`);
  t.equal(localRejected, 0, 'loopback never throttled');
});

t.test('a malformed 5932 request is refused over a socket with invalid: and its problems', async (t) => {
  const relay = await startTestRelay('uws', { policy: relayDefaultPolicy() });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  const bad = signer().sign({ kind: 5932, tags: [['param', 'time_limit_secs', 'soon']] });
  const [ok, msg] = await c.publish(bad);
  t.equal(ok, false);
  t.match(msg, /^invalid: /);
  t.ok(msg.length > 'invalid: '.length + 10, `problems listed: ${msg}`);
  t.same((await c.publish(signer().sign({ kind: 1, content: 'fine' })))[0], true, 'ordinary events pass');
  await c.close();
});
