// RelayPool against real relays started with auth required (NIP-42): subscriptions and
// publishes succeed after the pool answers each relay's own challenge; without a signer
// the refusal is reported, never hung on. Per-call relay sets: normalised URLs share one
// connection, an on-demand relay is closed when idle, queries end at EOSE or the deadline.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RunningRelay } from '@bazaar/relay/server';
import { RelayPool } from '../src/relay-pool.ts';
import { deadPort } from './helpers/dead-port.ts';
import { normalizeRelayUrl } from '../src/relay-url.ts';

const logger = pino({ level: 'silent' });
const sk = generateSecretKey();
const me = getPublicKey(sk);
const sign = (tpl: Parameters<typeof finalizeEvent>[0]) => finalizeEvent(tpl, sk) as NostrEvent;
const note = (text: string): NostrEvent => sign({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: text });

async function relay(t: Test, authRequired: boolean): Promise<RunningRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'pool-auth-'));
  const r = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dir, transport: 'ws', verifyWorkers: 0, logger, info: { authRequired } });
  t.teardown(async () => {
    await r.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return r;
}


/** Resolves with the first event `pool` delivers on a new subscription for `filter` (or rejects after ms). */
function firstEvent(pool: RelayPool, filter: Parameters<RelayPool['subscribe']>[0][0], relays?: string[], ms = 10_000): Promise<NostrEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.close();
      reject(new Error('no event'));
    }, ms);
    const sub = pool.subscribe([filter], (e) => {
      clearTimeout(timer);
      sub.close();
      resolve(e);
    }, relays ? { relays } : {});
  });
}

t.test('normalizeRelayUrl', async (t) => {
  t.equal(normalizeRelayUrl('WSS://Relay.Example.com:443/'), 'wss://relay.example.com');
  t.equal(normalizeRelayUrl('ws://127.0.0.1:4869'), 'ws://127.0.0.1:4869');
  t.equal(normalizeRelayUrl('ws://a.com:80//x//y/'), 'ws://a.com/x/y');
  t.equal(normalizeRelayUrl('https://a.com/?b=2&a=1#frag'), 'wss://a.com?a=1&b=2');
  t.equal(normalizeRelayUrl('ftp://a.com'), undefined);
  t.equal(normalizeRelayUrl('not a url'), undefined);
  t.equal(normalizeRelayUrl('wss://user:pw@a.com'), undefined, 'credentials are refused');
});

t.test('auth-required relays: each challenge answered, REQ and EVENT retried after AUTH', async (t) => {
  const a = await relay(t, true);
  const b = await relay(t, true);
  const pool = new RelayPool({ relays: [a.url, b.url], logger, auth: sign, minBackoffMs: 50 });
  t.teardown(() => pool.close());
  await pool.waitConnected({ n: 2, timeoutMs: 5000 });
  const stored = note('stored before we subscribe');
  const first = await pool.publish(stored, { timeoutMs: 5000 });
  t.same(first.map((r) => r.ok), [true, true], `both relays accepted after AUTH (${first.map((r) => r.message).join(', ')})`);
  const got = await firstEvent(pool, { kinds: [1], authors: [me] });
  t.equal(got.id, stored.id, 'a subscription refused before AUTH is re-sent and answered');
  const st = pool.status();
  t.same(st.map((s) => s.authedAs), [me, me], 'authenticated on both relays');
  t.ok(st.every((s) => s.authRequired), 'each relay remembered as requiring AUTH');

  // Live delivery after AUTH, and a reconnect: the pool authenticates again before sending.
  const live: NostrEvent[] = [];
  pool.subscribe([{ kinds: [1], authors: [me], since: Math.floor(Date.now() / 1000) }], (e) => live.push(e));
  const e2 = note('live');
  await pool.publishAny(e2, { relays: [a.url] });
  await waitUntil(() => live.some((e) => e.id === e2.id));
  t.pass('live event delivered on an authenticated subscription');
});

t.test('after a reconnect to a relay known to require AUTH, frames wait for the new AUTH', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pool-auth-'));
  let a = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dir, transport: 'ws', verifyWorkers: 0, logger, info: { authRequired: true } });
  const port = a.port;
  const pool = new RelayPool({ relays: [a.url], logger, auth: sign, minBackoffMs: 50, maxBackoffMs: 200 });
  t.teardown(async () => {
    await pool.close();
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const closes: string[] = [];
  const live: NostrEvent[] = [];
  pool.subscribe([{ kinds: [1], authors: [me], since: Math.floor(Date.now() / 1000) }], (e) => live.push(e), { onClosed: (_u, reason) => closes.push(reason) });
  await pool.publishAny(note('before restart'), { timeoutMs: 5000 });
  await a.close();
  a = await startRelay({ port, host: '127.0.0.1', dataDir: dir, transport: 'ws', verifyWorkers: 0, logger, info: { authRequired: true } });
  await pool.waitConnected({ timeoutMs: 10_000 });
  const after = note('after restart');
  const [res] = await pool.publish(after, { timeoutMs: 5000 });
  t.ok(res.ok, `published after the reconnect (${res.message})`);
  await waitUntil(() => live.some((e) => e.id === after.id));
  t.pass('the subscription was re-sent after the new AUTH');
  t.same(closes, [], 'no subscription ever ended with auth-required');
  t.equal(pool.status()[0].authedAs, me);
  t.ok(pool.status()[0].reconnects >= 1);
});

t.test('without a signer: auth-required refusals are reported, not hung on', async (t) => {
  const a = await relay(t, true);
  const pool = new RelayPool({ relays: [a.url], logger });
  t.teardown(() => pool.close());
  await pool.waitConnected({ timeoutMs: 5000 });
  const [res] = await pool.publish(note('no auth'), { timeoutMs: 3000 });
  t.equal(res.ok, false);
  t.match(res.message, /^auth-required: .*no AUTH signer/);
  const closed = await new Promise<string>((resolve) => pool.subscribe([{ kinds: [1] }], () => {}, { onClosed: (_url, reason) => resolve(reason) }));
  t.match(closed, /^auth-required:/, 'the CLOSED reason reaches the caller');
  const events = await pool.query([{ kinds: [1] }], { timeoutMs: 3000 });
  t.same(events, [], 'a query ends at CLOSED');
});

t.test('per-call relays: one connection per normalised URL, closed when idle; queries end at EOSE or the deadline', async (t) => {
  const home = await relay(t, false);
  const away = await relay(t, false);
  const dead = `ws://127.0.0.1:${await deadPort()}`;
  const pool = new RelayPool({ relays: [home.url], logger, idleTimeoutMs: 200, connectTimeoutMs: 1000 });
  t.teardown(() => pool.close());
  await pool.waitConnected({ timeoutMs: 5000 });
  const spelled = away.url.replace('ws://', 'WS://') + '/';
  const e = note('only away');
  const res = await pool.publish(e, { relays: [spelled, away.url], timeoutMs: 3000 });
  t.equal(res.length, 1, 'two spellings of one relay are one relay');
  t.equal(res[0].url, away.url);
  t.ok(res[0].ok);
  t.same(pool.urls, [home.url], 'the default set is unchanged');
  const fromAway = await pool.query([{ ids: [e.id] }], { relays: [away.url, dead], timeoutMs: 2000 });
  t.same(fromAway.map((x) => x.id), [e.id], 'query over a per-call set, a dead relay only costs the deadline');
  const fromHome = await pool.query([{ ids: [e.id] }], { timeoutMs: 2000 });
  t.same(fromHome, [], 'the default relays never saw it');
  await waitUntil(() => !pool.status().some((s) => s.url === away.url));
  t.pass('the on-demand relay was closed after being idle');
  t.ok(pool.status().some((s) => s.url === home.url && s.connected), 'the default relay stays');

  // A subscription keeps an on-demand relay open past the idle timeout.
  const seen: NostrEvent[] = [];
  const sub = pool.subscribe([{ kinds: [1], authors: [me], since: Math.floor(Date.now() / 1000) }], (x) => seen.push(x), { relays: [away.url] });
  await pool.waitConnected({ relays: [away.url], timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 400)); // longer than idleTimeoutMs: the relay must still be connected
  const later = note('later');
  await pool.publishAny(later, { relays: [away.url] });
  await waitUntil(() => seen.some((x) => x.id === later.id));
  sub.close();
  t.pass('a subscribed on-demand relay is kept');

  // Two subscriptions matching one event both receive it (de-duplication is per subscription);
  // `since` makes the event reach both whether it arrives live or stored.
  const x: NostrEvent[] = [];
  const y: NostrEvent[] = [];
  const now = Math.floor(Date.now() / 1000);
  pool.subscribe([{ kinds: [1], authors: [me], since: now }], (ev) => x.push(ev));
  pool.subscribe([{ kinds: [1], since: now }], (ev) => y.push(ev));
  const both = note('for both');
  await pool.publishAny(both);
  await waitUntil(() => x.some((ev) => ev.id === both.id) && y.some((ev) => ev.id === both.id));
  t.pass('each subscription got the event');

  const ac = new AbortController();
  const pending = pool.publish(note('aborted'), { relays: [dead], timeoutMs: 60_000, signal: ac.signal });
  ac.abort();
  const [aborted] = await pending;
  t.equal(aborted.ok, false);
  t.match(aborted.message, /aborted/);
});

async function waitUntil(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
