// The relay cluster on a real `nats-server -js` (started here on a free loopback port with its
// own store), with real relay processes as nodes: fan-out across nodes, a killed node resuming
// from its durable consumer, nodes behind the stream's retention and a late node catching up by
// NIP-77, replaceable/addressable/deletion convergence against the in-memory oracle, and OK only
// after the stream's ack. Skipped, with the reason, where nats-server is absent.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { findNatsServer, startNatsServer, type NatsServer } from '@bazaar/testkit/nats';
import { createMemoryStore } from '../src/store/memory-store.ts';
import { startNode, type NodeChild } from './cluster-node.ts';
import { TestClient, signer, now, type Signer } from './helpers.ts';

const natsBin = findNatsServer();
const root = new URL('../..', import.meta.url).pathname;
// Relay processes, a NATS or strfry server, thousands of signed events: minutes on a loaded 2-core machine.
t.setTimeout(10 * 60_000);

/** Collects every event a live subscription delivers, and resolves when `ids` have all arrived. */
async function subscribe(url: string, filter: object): Promise<{ client: TestClient; seen: Set<string>; waitAll(ids: readonly string[], timeoutMs?: number): Promise<void> }> {
  const client = await TestClient.connect(url);
  const seen = new Set<string>();
  let waiting: { ids: readonly string[]; resolve: () => void } | undefined;
  client.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as unknown[];
    if (f[0] === 'EVENT' && f[1] === 'live') seen.add((f[2] as NostrEvent).id);
    if (waiting && waiting.ids.every((id) => seen.has(id))) {
      waiting.resolve();
      waiting = undefined;
    }
  });
  await client.req('live', filter);
  return {
    client,
    seen,
    waitAll: (ids, timeoutMs = 120_000) =>
      ids.every((id) => seen.has(id))
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${ids.filter((id) => !seen.has(id)).length} of ${ids.length} events never arrived at ${url}`)), timeoutMs);
          waiting = { ids, resolve: () => { clearTimeout(timer); resolve(); } };
        }),
  };
}

/** Every stored event of these authors on a node (the sets here stay under the relay's 500 limit). */
async function storedIds(url: string, authors: string[]): Promise<string[]> {
  const c = await TestClient.connect(url);
  const evs = await c.query('all', { authors, limit: 500 });
  await c.close();
  return evs.map((e) => e.id).sort();
}

async function countOf(url: string, filter: object): Promise<number> {
  const c = await TestClient.connect(url);
  const n = await c.count('n', filter);
  await c.close();
  return n;
}

/** Resolves once `cond` holds, asking again every 100 ms; fails after `timeoutMs`. */
async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `bazaar relay` run to its end: its exit code and stderr (for start-up failures). */
function relayExits(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['scripts/bazaar.mjs', 'relay', '--port', '0', '--no-market', ...args], { cwd: root, timeout: 120_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number | null }).code ?? null) : 0, stderr });
    });
  });
}

async function publishAll(url: string, events: readonly NostrEvent[]): Promise<[boolean, string][]> {
  const c = await TestClient.connect(url);
  const out = await Promise.all(events.map((e) => c.publish(e)));
  await c.close();
  return out;
}

if (!natsBin.path) {
  t.test('relay cluster', { skip: `relay cluster: ${natsBin.reason}` }, () => {});
} else {
  const work = mkdtempSync(join(tmpdir(), 'bazaar-cluster-'));
  let nats: NatsServer;
  const nodes: NodeChild[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const start = async (name: string, args: string[] = [], dataDir = join(work, name)): Promise<NodeChild> => {
    const n = await startNode({ name, dataDir, nats: nats.url, args });
    nodes.push(n);
    return n;
  };

  t.before(async () => {
    nats = await startNatsServer({ binary: natsBin.path!, workDir: work });
  });

  const alice = signer();
  let A: NodeChild;
  let B: NodeChild;
  let C: NodeChild;
  let D: NodeChild;

  t.test('3 nodes: an event published on A reaches a live subscriber on C and is stored on all three', async (t) => {
    A = await start('A');
    B = await start('B');
    C = await start('C');
    const onB = await subscribe(B.url, { authors: [alice.pubkey] });
    const onC = await subscribe(C.url, { authors: [alice.pubkey] });
    t.teardown(() => onB.client.close());
    t.teardown(() => onC.client.close());
    const e = alice.sign({ kind: 1, content: 'hello cluster' });
    t.same((await publishAll(A.url, [e]))[0], [true, ''], 'OK true from A (after the stream acked)');
    await onC.waitAll([e.id]);
    t.ok(onC.seen.has(e.id), 'a live subscriber on C got it');
    await onB.waitAll([e.id]);
    for (const n of [A, B, C]) t.same(await storedIds(n.url, [alice.pubkey]), [e.id], `stored on ${n.name}`);
    // Ephemeral events cross the cluster live and are stored nowhere.
    const eph = alice.sign({ kind: 20001, content: 'typing…' });
    t.same((await publishAll(B.url, [eph]))[0], [true, '']);
    await onC.waitAll([eph.id]);
    t.equal(await countOf(C.url, { ids: [eph.id] }), 0, 'ephemeral: delivered on C, not stored');
    // The same event sent to two nodes at once is stored once per node (message id = event id).
    const twice = alice.sign({ kind: 1, content: 'sent twice' });
    const [ra, rc] = await Promise.all([publishAll(A.url, [twice]), publishAll(C.url, [twice])]);
    t.ok(ra[0][0] && rc[0][0], 'both nodes answer OK true');
    await onB.waitAll([twice.id]);
    t.equal(await countOf(B.url, { ids: [twice.id] }), 1);
  });

  t.test('node B killed, 1 000 events published, B restarted: B holds all 1 000', async (t) => {
    const bob = signer();
    const dataDir = B.dataDir;
    await B.kill();
    const events = Array.from({ length: 1000 }, (_, i) => bob.sign({ kind: 1, content: `while B was down ${i}`, created_at: now() - i }));
    const oks = [...(await publishAll(A.url, events.slice(0, 500))), ...(await publishAll(C.url, events.slice(500)))];
    t.equal(oks.filter(([ok]) => ok).length, 1000, 'all accepted by A and C');
    // NIP-40 while B is down: events that expire before B comes back reach B through the stream
    // already expired; every node must end up serving the same (none of them).
    const dave = signer();
    const soon = now() + 2;
    const expiring: NostrEvent[] = [
      dave.sign({ kind: 1, content: 'expires while B is down', tags: [['expiration', String(soon)]] }),
      dave.sign({ kind: 30023, content: 'article, expires', tags: [['d', 'x'], ['expiration', String(soon)]] }),
    ];
    const kept = dave.sign({ kind: 1, content: 'expires in an hour', tags: [['expiration', String(now() + 3600)]] });
    // An addressable event's newer version that expires: it replaced the older one on A and C,
    // so B, which reads both late, must not bring the older one back.
    const olderVersion = dave.sign({ kind: 30023, created_at: now() - 20, content: 'older version', tags: [['d', 'y']] });
    const newerVersion = dave.sign({ kind: 30023, created_at: now() - 10, content: 'newer version, expires', tags: [['d', 'y'], ['expiration', String(soon)]] });
    expiring.push(newerVersion);
    t.same((await publishAll(A.url, [olderVersion])).map(([ok]) => ok), [true]);
    t.same((await publishAll(A.url, [...expiring, kept])).map(([ok]) => ok), [true, true, true, true]);
    // Observed, not slept: A stops serving them once their second has come.
    await until(async () => (await countOf(A.url, { ids: expiring.map((e) => e.id) })) === 0, 30_000);
    // The last message of the stream: once B has stored it, it has stored everything before it.
    const marker = alice.sign({ kind: 1, content: 'after the 1 000' });
    await publishAll(A.url, [marker]);
    B = await start('B', [], dataDir);
    const line = await B.waitLog((l) => l.msg === 'following the stream');
    t.match(line, { consumer: 'resumed', behindRetention: false, caughtUpBefore: true }, 'B resumes its durable consumer');
    const onB = await subscribe(B.url, { ids: [marker.id] });
    t.teardown(() => onB.client.close());
    await onB.waitAll([marker.id]);
    t.equal(await countOf(B.url, { authors: [bob.pubkey] }), 1000, 'B holds all 1 000');
    t.equal(B.lines.filter((l) => l.msg === 'caught up from a peer by NIP-77').length, 0, 'from the stream alone: no NIP-77 needed');
    for (const n of [A, B, C]) t.same(await storedIds(n.url, [dave.pubkey]), [kept.id], `${n.name} serves the unexpired event, none of the expired ones`);
  });

  t.test('a node down longer than the stream keeps events, and a node new to the cluster, catch up by NIP-77', async (t) => {
    const carol = signer();
    const dataDir = C.dataDir;
    await C.kill();
    const events = Array.from({ length: 300 }, (_, i) => carol.sign({ kind: 1, content: `while C was down ${i}`, created_at: now() - i }));
    t.equal((await publishAll(A.url, events)).filter(([ok]) => ok).length, 300);
    // The stream drops all but its last 20 events (an operator's purge, as retention would).
    const nc = await connect({ servers: nats.url.replace('nats://', '') });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge('BAZAAR_EVENTS', { keep: 20 });
    await nc.close();
    C = await start('C', [], dataDir);
    t.match(await C.waitLog((l) => l.msg === 'following the stream'), { consumer: 'resumed', behindRetention: true }, 'C sees it is behind the stream');
    const cu = await C.waitLog((l) => l.msg === 'caught up from a peer by NIP-77');
    t.ok((cu.need as number) >= 280, `C fetched what the stream lost from a peer (${String(cu.need)} events)`);
    t.equal(await countOf(C.url, { authors: [carol.pubkey] }), 300, 'C holds all 300');

    D = await start('D');
    const du = await D.waitLog((l) => l.msg === 'caught up from a peer by NIP-77');
    t.ok((du.need as number) > 1000, `the new node D fetched ${String(du.need)} events by NIP-77`);
    const everything = {};
    t.equal(await countOf(D.url, everything), await countOf(A.url, everything), 'D holds what A holds');
    // …then follows the stream.
    const onD = await subscribe(D.url, { authors: [alice.pubkey] });
    t.teardown(() => onD.client.close());
    const later = alice.sign({ kind: 1, content: 'after D joined' });
    await publishAll(B.url, [later]);
    await onD.waitAll([later.id]);
    t.pass('D follows the stream');
  });

  t.test('replaceable, addressable and deleted events converge on every node (differential against the oracle)', async (t) => {
    const authors: Signer[] = [signer(), signer(), signer()];
    const T = now() - 10_000;
    const evs: NostrEvent[] = [];
    let n = 0;
    const pick = <X>(xs: readonly X[]): X => xs[Math.floor(Math.random() * xs.length)];
    for (const a of authors) {
      for (let v = 0; v < 4; v++) {
        evs.push(a.sign({ kind: 0, created_at: T + v, content: `profile v${v}` }));
        evs.push(a.sign({ kind: 10002, created_at: T + (v % 2), content: `relays v${v}` })); // equal timestamps: lowest id wins
        for (const d of ['x', 'y']) evs.push(a.sign({ kind: 30023, created_at: T + v, tags: [['d', d]], content: `article ${d} v${v}` }));
      }
      const notes = Array.from({ length: 12 }, (_, i) => a.sign({ kind: 1, created_at: T + 100 + i, content: `note ${n++}`, tags: i % 4 === 0 ? [['expiration', String(now() + 86_400)]] : [] }));
      evs.push(...notes);
      evs.push(a.sign({ kind: 5, created_at: T + 200, tags: notes.filter((_, i) => i % 3 === 0).map((x) => ['e', x.id]) }));
      evs.push(a.sign({ kind: 5, created_at: T + 2, tags: [['a', `30023:${a.pubkey}:x`]] })); // deletes x versions up to T + 2
    }
    // Someone else's deletion deletes nothing.
    const other = authors[0];
    evs.push(other.sign({ kind: 5, created_at: T + 300, tags: [['e', evs.find((e) => e.pubkey === authors[1].pubkey && e.kind === 1)!.id]] }));
    // Shuffled (deletions often arrive before their targets), each event to a random node, all at once.
    evs.sort(() => Math.random() - 0.5);
    const targets = [A, B, C];
    await Promise.all(targets.map((node) => publishAll(node.url, evs.filter((_, i) => i % 3 === targets.indexOf(node)))));
    // Some replaceable versions also go to a second node at the same moment.
    await Promise.all(evs.filter((e) => e.kind === 0).map((e) => publishAll(pick(targets).url, [e])));
    // One marker per node: once a node has all three, it has stored everything sent before them.
    const marks = signer();
    const markers = targets.map((node) => marks.sign({ kind: 1, content: `marker from ${node.name}` }));
    const subs = await Promise.all([A, B, C, D].map(async (node) => ({ node, sub: await subscribe(node.url, { authors: [marks.pubkey] }) })));
    await Promise.all(targets.map((node, i) => publishAll(node.url, [markers[i]])));
    for (const { sub } of subs) {
      await sub.waitAll(markers.map((m) => m.id));
      await sub.client.close();
    }
    const oracle = createMemoryStore();
    for (const e of evs) await oracle.put([e]);
    const want = (await oracle.query([{ authors: authors.map((a) => a.pubkey), limit: 500 }])).map((j) => (JSON.parse(j) as NostrEvent).id).sort();
    t.ok(want.length > 20 && want.length < evs.length, `the oracle keeps ${want.length} of ${evs.length} events`);
    for (const { node } of subs) t.same(await storedIds(node.url, authors.map((a) => a.pubkey)), want, `${node.name} holds exactly the oracle's events`);
  });

  t.test('A killed the moment it acknowledged 50 events, more in flight: every acknowledged event is on every node', async (t) => {
    const erin = signer();
    const watchers = await Promise.all([B, C, D].map(async (node) => ({ node, sub: await subscribe(node.url, { authors: [erin.pubkey] }) })));
    t.teardown(() => Promise.all(watchers.map((w) => w.sub.client.close())));
    const events = Array.from({ length: 200 }, (_, i) => erin.sign({ kind: 1, content: `A dies after 50 OKs ${i}`, created_at: now() - i }));
    const c = await TestClient.connect(A.url);
    const acked: string[] = [];
    let killed!: Promise<void>;
    const dead = new Promise<void>((resolve) => {
      c.ws.on('message', (data) => {
        const f = JSON.parse(String(data)) as unknown[];
        if (f[0] !== 'OK' || f[2] !== true || acked.length >= 50) return;
        acked.push(f[1] as string);
        if (acked.length === 50) {
          killed = A.kill(); // SIGKILL at once, while the rest are being published and stored
          resolve();
        }
      });
    });
    for (const e of events) c.send(['EVENT', e]);
    await dead;
    await killed;
    await c.close();
    t.equal(acked.length, 50);
    for (const { node, sub } of watchers) {
      await sub.waitAll(acked);
      t.pass(`all 50 acknowledged events reached a live subscriber on ${node.name}`);
    }
    A = await start('A', [], A.dataDir);
    const reader = await TestClient.connect(A.url);
    t.teardown(() => reader.close());
    const onA = new Set((await reader.query('acked', { ids: acked })).map((e) => e.id));
    t.equal(onA.size, 50, 'A holds them after its restart (stored before its OK)');
  });

  t.test('a node that cannot join says why and exits 1', async (t) => {
    const dir = join(work, 'refused');
    const unreachable = await relayExits(['--data', dir, '--cluster', 'nats://127.0.0.1:1', '--node', 'X']);
    t.equal(unreachable.code, 1);
    t.match(unreachable.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:1: connection refused/);
    const plain = await startNatsServer({ binary: natsBin.path!, workDir: join(work, 'plain-nats'), jetstream: false });
    t.teardown(() => plain.stop());
    const noJs = await relayExits(['--data', dir, '--cluster', plain.url, '--node', 'X']);
    t.equal(noJs.code, 1);
    t.match(noJs.stderr, /has no usable JetStream \(run nats-server with -js\)/);
    for (const [args, want] of [
      [['--cluster', nats.url], /--cluster needs --node NAME/],
      [['--node', 'X'], /--node names a cluster node: give --cluster too/],
      [['--cluster', nats.url, '--node', 'a b'], /cluster node name must be 1-64 characters/],
      [['--cluster', 'http://127.0.0.1:4222', '--node', 'X'], /cluster servers must be nats:\/\/host:port/],
    ] as const) {
      const r = await relayExits(['--data', dir, ...args]);
      t.equal(r.code, 2, `exit 2: ${args.join(' ')}`);
      t.match(r.stderr, want);
    }
  });

  t.test('OK true only after the stream acknowledged: without NATS a node refuses and stores nothing', async (t) => {
    await nats.stop();
    const e = alice.sign({ kind: 1, content: 'nobody to ack this' });
    const [ok, msg] = (await publishAll(A.url, [e]))[0];
    t.equal(ok, false);
    t.match(msg, /^error: the relay cluster did not take the event/);
    t.equal(await countOf(A.url, { ids: [e.id] }), 0, 'not stored');
    t.equal((await storedIds(A.url, [alice.pubkey])).length > 0, true, 'reads go on from the local store');
  });
}
