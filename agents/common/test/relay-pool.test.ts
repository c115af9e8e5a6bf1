// RelayPool against our real relay: publish waits for OK, a dead relay answers ok=false
// within the deadline (never hangs), a refused event surfaces the relay's reason, events
// are de-duplicated across relays, and a subscription survives a relay restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay } from '@bazaar/relay/server';
import { RelayPool } from '../src/relay-pool.ts';
import { deadPort } from './helpers/dead-port.ts';

const logger = pino({ level: 'silent' });
const sk = generateSecretKey();
const note = (n: number): NostrEvent => finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', String(n)]], content: `note ${n}` }, sk) as NostrEvent;


t.test('publish with OK, dedupe across relays, a dead relay, a refused event, reconnect', async (t) => {
  const dirA = mkdtempSync(join(tmpdir(), 'pool-a-'));
  const dirB = mkdtempSync(join(tmpdir(), 'pool-b-'));
  let a = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dirA, transport: 'ws', verifyWorkers: 0, logger });
  const b = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dirB, transport: 'ws', verifyWorkers: 0, logger });
  const dead = `ws://127.0.0.1:${await deadPort()}`;
  const pool = new RelayPool({ relays: [a.url, b.url, dead], logger, minBackoffMs: 50, maxBackoffMs: 200 });
  t.teardown(async () => {
    await pool.close();
    await a.close();
    await b.close();
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  });
  await pool.waitConnected({ n: 2, timeoutMs: 5000 });
  const got: { e: NostrEvent; url: string }[] = [];
  let eoses = 0;
  pool.subscribe([{ kinds: [1], authors: [finalizeEvent({ kind: 1, created_at: 0, tags: [], content: '' }, sk).pubkey] }], (e, url) => got.push({ e, url }), { onEose: () => eoses++ });

  const e1 = note(1);
  const t0 = Date.now();
  const res = await pool.publish(e1, { timeoutMs: 1500 });
  t.same(res.filter((r) => r.ok).map((r) => r.url).sort(), [a.url, b.url].sort(), 'both live relays said OK');
  const down = res.find((r) => r.url === dead)!;
  t.equal(down.ok, false, 'the dead relay answers ok=false');
  t.match(down.message, /not connected/);
  t.ok(Date.now() - t0 < 5000, 'within the deadline, not forever');
  await new Promise<void>((resolve) => {
    const check = setInterval(() => { if (got.length >= 1 && eoses >= 2) { clearInterval(check); resolve(); } }, 10);
  });
  t.equal(got.filter((g) => g.e.id === e1.id).length, 1, 'delivered once though both relays sent it');

  const forged = { ...note(2), content: 'tampered' };
  const ok = await pool.publishAny(note(3));
  t.ok(ok.some((r) => r.ok));
  // A relay refusing an event answers OK false with its reason; publishAny throws with it.
  await t.rejects(pool.publishAny(forged, { timeoutMs: 1500 }), /no relay accepted/);

  // Restart relay A on the same port: the pool reconnects and the subscription is re-sent.
  const port = Number(new URL(a.url).port);
  await a.close();
  a = await startRelay({ port, host: '127.0.0.1', dataDir: dirA, transport: 'ws', verifyWorkers: 0, logger });
  await pool.waitConnected({ n: 2, timeoutMs: 10_000 });
  t.ok(pool.status().find((s) => s.url === a.url)!.reconnects >= 1, 'reconnected to A');
  const e4 = note(4);
  const [onlyA] = await Promise.all([pool.publish(e4, { timeoutMs: 3000 })]);
  t.ok(onlyA.find((r) => r.url === a.url)?.ok, 'publishes through the restarted relay');
  await new Promise<void>((resolve) => {
    const check = setInterval(() => { if (got.some((g) => g.e.id === e4.id)) { clearInterval(check); resolve(); } }, 10);
  });
  t.equal(got.filter((g) => g.e.id === e4.id).length, 1, 'live events flow again, once');
  const lonely = new RelayPool({ relays: [dead], logger });
  await t.rejects(lonely.waitConnected({ timeoutMs: 300 }), /no relay connected/, 'waitConnected has a deadline');
  await lonely.close();
});
