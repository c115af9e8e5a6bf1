// Crash safety: every event that got `OK true` survives a SIGKILL of the relay
// process mid-stream. Runs the real CLI as a child process on a real data dir.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestClient, signer } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../scripts/bazaar.mjs', import.meta.url));

function startChild(dataDir: string, transport: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(...dieWithParent(process.execPath, [BIN, 'relay', '--port', '0', '--data', dataDir, '--transport', transport, '--log-level', 'info']), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BAZAAR_LOG_FORMAT: 'json' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (b) => (err += b));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /"url":"(ws:\/\/[^"]+)"[^\n]*relay listening/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`relay exited early (${code}): ${err}${out}`)));
  });
}

for (const transport of ['uws', 'ws']) {
  t.test(`SIGKILL mid-stream loses no acknowledged event (${transport})`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-crash-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const { child, url } = await startChild(dataDir, transport);
    const exited = new Promise((r) => child.once('exit', r));
    const c = await TestClient.connect(url);
    const alice = signer();
    const events = Array.from({ length: 600 }, (_, i) => alice.sign({ kind: 1, content: `event ${i}`, tags: [['t', 'crash']] }));
    const acked = new Set<string>();
    let sent = 0;
    // Stream events without waiting; kill the relay once a third have been acknowledged.
    const killAt = 200;
    const killed = new Promise<void>((resolve) => {
      c.ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (f[0] === 'OK' && f[2] === true) {
          acked.add(f[1]);
          if (acked.size === killAt) {
            child.kill('SIGKILL');
            resolve();
          }
        }
      });
    });
    for (const e of events) {
      c.send(['EVENT', e]);
      sent++;
    }
    await killed;
    await exited;
    await c.close().catch(() => {});
    const ackedNow = new Set(acked);
    t.ok(ackedNow.size >= killAt, `${ackedNow.size} of ${sent} events acknowledged before the kill`);

    const again = await startChild(dataDir, transport);
    t.teardown(() => {
      again.child.kill('SIGTERM');
    });
    const c2 = await TestClient.connect(again.url);
    const count = await c2.count('n', { authors: [alice.pubkey] });
    // Query by ids in chunks so the check does not depend on limit ordering.
    const byId = new Set<string>();
    const ids = [...ackedNow];
    for (let i = 0; i < ids.length; i += 400) for (const e of await c2.query(`ids${i}`, { ids: ids.slice(i, i + 400) })) byId.add(e.id);
    t.same(ids.filter((id) => !byId.has(id)), [], 'every acknowledged event is there after restart');
    t.ok(count >= ackedNow.size, `count ${count} >= acknowledged ${ackedNow.size}`);
    await c2.close();
  });
}
