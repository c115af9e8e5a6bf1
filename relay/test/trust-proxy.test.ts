// --trust-proxy: policies see the address a reverse proxy forwards, and only then.
import t from 'tap';
import type { Policy } from '@bazaar/policies/policy';
import { TRANSPORTS, TestClient, signer, startTestRelay } from './helpers.ts';


for (const transport of TRANSPORTS) {
  t.test(`client address from X-Forwarded-For only with trustProxy (${transport})`, async (t) => {
    const seen: string[] = [];
    const policy: Policy = (_e, ctx) => {
      seen.push(ctx.source.ip);
      return { action: 'accept' };
    };
    const alice = signer();
    for (const trustProxy of [true, false]) {
      const relay = await startTestRelay(transport, { policy, trustProxy });
      const forwarded = await TestClient.connect(relay.url, { 'X-Forwarded-For': '203.0.113.9, 10.0.0.1' });
      const realIp = await TestClient.connect(relay.url, { 'X-Real-IP': '198.51.100.4' });
      const plain = await TestClient.connect(relay.url);
      seen.length = 0;
      for (const [i, c] of [forwarded, realIp, plain].entries()) t.equal((await c.publish(alice.sign({ kind: 1, content: `${trustProxy} ${i}` })))[0], true);
      const peer = seen[2];
      t.match(peer, /127\.0\.0\.1$/, 'a direct client is its socket peer');
      t.same(seen, trustProxy ? ['203.0.113.9', '198.51.100.4', peer] : [peer, peer, peer], `trustProxy=${trustProxy}`);
      for (const c of [forwarded, realIp, plain]) await c.close();
      await relay.close();
    }
  });
}
