// A second relay on a port that is already taken must fail with a clear error, on both
// transports and in any order — uWS sets SO_REUSEPORT by default, which let two relays
// listen at once and split clients silently between two databases.
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TRANSPORTS, TestClient, startTestRelay } from './helpers.ts';

for (const first of TRANSPORTS) {
  for (const second of TRANSPORTS) {
    t.test(`${second} after ${first} on the same port is refused`, async (t) => {
      const a = await startTestRelay(first);
      t.teardown(() => a.close());
      await t.rejects(startTestRelay(second, { port: a.port }), { message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${a.port}: address already in use`) });
      // The first relay still owns the port and serves every client.
      for (let i = 0; i < 4; i++) {
        const c = await TestClient.connect(a.url);
        t.equal((await c.waitFor((f) => f[0] === 'AUTH'))[0], 'AUTH');
        await c.close();
      }
    });
  }
}

t.test('a closed relay frees its port', async (t) => {
  // ws (Node sets SO_REUSEADDR): free at once, even with connections closed moments ago.
  const a = await startTestRelay('ws');
  const c = await TestClient.connect(a.url);
  await c.waitFor((f) => f[0] === 'AUTH');
  await a.close();
  await c.close();
  const b = await startTestRelay('ws', { port: a.port });
  t.equal(b.port, a.port);
  await b.close();
  // uWS: free at once when no connection of it is left in TIME_WAIT (uWS sets no SO_REUSEADDR;
  // whether a closed connection's TIME_WAIT lands on our side depends on who closed TCP first).
  const u1 = await startTestRelay('uws');
  await u1.close();
  const u2 = await startTestRelay('uws', { port: u1.port });
  t.equal(u2.port, u1.port);
  await u2.close();
});

t.test('bazaar relay on a used port exits 1 with the reason', async (t) => {
  const a = await startTestRelay('uws');
  t.teardown(() => a.close());
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-listen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(...dieWithParent(process.execPath, ['scripts/bazaar.mjs', 'relay', '--port', String(a.port), '--data', dir, '--log-level', 'silent']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 1);
  t.match(stderr, new RegExp(`bazaar relay: cannot listen on 127\\.0\\.0\\.1:${a.port}: address already in use`));
});
