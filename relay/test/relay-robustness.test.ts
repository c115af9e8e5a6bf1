// Bad input never crashes or wedges the relay: malformed frames get prefixed
// NOTICE / OK false / CLOSED and the connection stays usable; a fuzz run of random
// and mutated frames leaves the relay serving fresh connections; slow consumers
// are disconnected instead of buffered without bound.
import t from 'tap';
import WebSocket from 'ws';
import { TRANSPORTS, TestClient, signer, startTestRelay } from './helpers.ts';
import { createMemoryStore } from '../src/store/memory-store.ts';
import { prng } from './random.ts';

const STORE = process.env.BAZAAR_TEST_MEMORY_STORE ? () => ({ store: createMemoryStore() }) : () => ({});


for (const transport of TRANSPORTS) {
  t.test(`robustness on ${transport}`, async (t) => {
    const relay = await startTestRelay(transport, STORE());
    t.teardown(() => relay.close());
    const alice = signer();

    t.test('malformed messages get prefixed replies and the connection stays usable', async (t) => {
      const c = await TestClient.connect(relay.url);
      const cases: [unknown, RegExp][] = [
        ['not json', /^invalid: /],
        ['{"a":1}', /^invalid: /],
        ['[]', /^invalid: /],
        ['[1,2]', /^invalid: /],
        ['["WHAT"]', /^invalid: unknown message type/],
        ['["EVENT"]', /^invalid: /],
        ['["EVENT", 5]', /^invalid: /],
        ['["EVENT", {"id": 5}]', /^invalid: /],
        ['["CLOSE"]', /^invalid: /],
        ['["CLOSE", 1, 2]', /^invalid: /],
        ['["AUTH", "x"]', /^invalid: /],
        ['["COUNT"]', /^invalid: /],
      ];
      for (const [frame, re] of cases) {
        c.send(frame);
        const f = await c.next((f) => f[0] === 'NOTICE');
        t.match(f[1], re, String(frame));
      }
      const e = alice.sign({ kind: 1 });
      c.send(['EVENT', { ...e, sig: 'zz' }]);
      t.match((await c.next((f) => f[0] === 'OK' && f[1] === e.id))[3], /^invalid: sig/);
      c.ws.send(Buffer.from([1, 2, 3, 4]), { binary: true });
      t.match((await c.next((f) => f[0] === 'NOTICE'))[1], /^invalid: binary frames/);
      t.same(await c.publish(e), [true, ''], 'still usable');
      await c.close();
    });

    t.test('a frame over the message limit: OK false (or NOTICE) and the connection survives', async (t) => {
      const c = await TestClient.connect(relay.url);
      const big = alice.sign({ kind: 1, content: 'x'.repeat(600 * 1024) });
      c.send(['EVENT', big]);
      const r = await c.next((f) => f[0] === 'OK' && f[1] === big.id);
      t.equal(r[2], false);
      t.match(r[3], /^invalid: message is \d+ bytes/);
      c.send('[' + ' '.repeat(700 * 1024) + ']');
      t.match((await c.next((f) => f[0] === 'NOTICE'))[1], /^invalid: message is/);
      t.same((await c.publish(alice.sign({ kind: 1, content: 'after' })))[0], true);
      await c.close();
    });

    t.test('fuzz: thousands of random and mutated frames, then a fresh connection works', async (t) => {
      const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
      t.comment(`fuzz seed ${seed}`);
      const rnd = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
      const valid = alice.sign({ kind: 1, content: 'seed', tags: [['e', 'a'.repeat(64)], ['p', alice.pubkey]] });
      const templates = [
        JSON.stringify(['EVENT', valid]),
        JSON.stringify(['REQ', 'sub', { kinds: [1], '#e': ['a'.repeat(64)], limit: 5 }]),
        JSON.stringify(['COUNT', 'cnt', { authors: [alice.pubkey] }]),
        JSON.stringify(['CLOSE', 'sub']),
        JSON.stringify(['AUTH', valid]),
      ];
      const junk = ['"', '[', ']', '{', '}', ',', ':', 'null', '1e999', '-0', '"\\u0000"', '\\', '"\\ud800"', 'true', '[[[[[[[[', '{"#e":', '"REQ"', '\u2028', '💥'];
      const mutate = (s: string): string => {
        const chars = [...s];
        const n = 1 + Math.floor(rnd() * 4);
        for (let i = 0; i < n; i++) {
          const pos = Math.floor(rnd() * (chars.length + 1));
          const op = rnd();
          if (op < 0.33) chars.splice(pos, 1);
          else if (op < 0.66) chars.splice(pos, 0, pick(junk));
          else chars[pos] = String.fromCharCode(Math.floor(rnd() * 256));
        }
        return chars.join('');
      };
      const randomValue = (depth: number): unknown => {
        const r = rnd();
        if (depth > 3 || r < 0.3) return pick([null, true, 0, -1, 1.5, 2 ** 53, '', 'REQ', 'EVENT', 'x'.repeat(Math.floor(rnd() * 100))]);
        if (r < 0.65) return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(depth + 1));
        return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(['ids', 'authors', 'kinds', '#e', '#p', 'since', 'until', 'limit', 'id', 'sig', 'tags', 'content']), randomValue(depth + 1)]));
      };
      const conns = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(relay.url)));
      const FRAMES = 3000;
      for (let i = 0; i < FRAMES; i++) {
        const c = conns[i % conns.length];
        if (c.closed) continue;
        const r = rnd();
        const frame = r < 0.5 ? mutate(pick(templates)) : r < 0.8 ? JSON.stringify([pick(['EVENT', 'REQ', 'COUNT', 'CLOSE', 'AUTH', 'X']), randomValue(0), randomValue(0)]) : JSON.stringify(randomValue(0));
        if (rnd() < 0.02) c.ws.send(Buffer.from(frame), { binary: true });
        else c.send(frame);
      }
      // Ordering on each socket: once this REQ's EOSE arrives, every earlier frame was processed.
      for (const [i, c] of conns.entries()) {
        if (c.closed) continue;
        await c.req(`done${i}`, { ids: [valid.id] });
      }
      t.ok(conns.some((c) => !c.closed), 'connections survive garbage');
      const fresh = await TestClient.connect(relay.url);
      const e = alice.sign({ kind: 1, content: 'after fuzz' });
      t.same(await fresh.publish(e), [true, '']);
      t.same((await fresh.query('q', { ids: [e.id] })).map((x) => x.id), [e.id]);
      await fresh.close();
      for (const c of conns) await c.close();
    });

    t.test('a slow consumer is disconnected instead of buffered without bound', async (t) => {
      const slowRelay = await startTestRelay(transport, { ...STORE(), limits: { maxBackpressureBytes: 256 * 1024 } });
      t.teardown(() => slowRelay.close());
      const pub = await TestClient.connect(slowRelay.url);
      const big = 'y'.repeat(60 * 1024);
      const events = Array.from({ length: 40 }, (_, i) => alice.sign({ kind: 1, content: big + i }));
      for (const e of events) await pub.publish(e);
      // A client that never reads: pause its socket so data piles up in the relay.
      const slow = new WebSocket(slowRelay.url);
      await new Promise((r) => slow.once('open', r));
      const raw = (slow as unknown as { _socket: { pause(): void; resume(): void; on(ev: 'data', f: (b: Buffer) => void): void } })._socket;
      let received = 0;
      raw.on('data', (b) => (received += b.length));
      raw.pause();
      const dropped = new Promise<void>((r) => slowRelay.core.on('disconnect', () => r()));
      const REQS = 20;
      for (let i = 0; i < REQS; i++) slow.send(JSON.stringify(['REQ', `s${i}`, { kinds: [1], limit: 40 }]));
      // The client reads nothing; once the kernel buffers fill, the relay's queue passes the limit.
      await dropped;
      const closed = new Promise<void>((r) => slow.once('close', () => r()));
      raw.resume();
      await closed;
      const requested = REQS * events.length * big.length;
      t.ok(received < requested / 2, `disconnected after ${received} of ${requested} bytes`);
      t.same((await pub.publish(alice.sign({ kind: 1, content: 'still serving' })))[0], true, 'relay keeps serving others');
      await pub.close();
    });
  });
}
