// The Cashu wallet keeps cashu-ts to itself: importing it changes nothing process-wide (no
// WebSocket injection, no global request options), and its own mint calls still have a
// deadline — a mint that accepts the connection and never answers fails the call in time.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import * as cashuTs from '@cashu/cashu-ts';

t.test('importing the wallet has no process-wide side effects', async (t) => {
  const calls: string[] = [];
  const webSocketBefore = (globalThis as { WebSocket?: unknown }).WebSocket;
  const mod = await t.mockImport<typeof import('../src/wallet/cashu.ts')>('../src/wallet/cashu.ts', {
    '@cashu/cashu-ts': {
      ...cashuTs,
      injectWebSocketImpl: () => calls.push('injectWebSocketImpl'),
      setGlobalRequestOptions: () => calls.push('setGlobalRequestOptions'),
    },
  });
  t.equal(typeof mod.CashuWallet, 'function');
  t.same(calls, [], 'no global injection at import');
  t.equal((globalThis as { WebSocket?: unknown }).WebSocket, webSocketBefore, 'the global WebSocket is untouched');
});

t.test('a mint that never answers: open() fails at the wallet deadline', async (t) => {
  const sockets = new Set<import('node:net').Socket>();
  const silent: Server = createServer(() => {
    /* accept and never answer */
  });
  silent.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-cashu-silent-'));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });
  const { CashuWallet } = await import('../src/wallet/cashu.ts');
  const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  const started = Date.now();
  await t.rejects(CashuWallet.open({ mintUrl: url, dataDir: dir, logger: pino({ level: 'silent' }), requestTimeoutMs: 300 }), /cannot reach mint .*timed out after 300 ms/);
  t.ok(Date.now() - started < 5_000, `gave up in ${Date.now() - started} ms`);
});
